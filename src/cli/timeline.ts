/**
 * `fleetboot host timeline MAC` (what the server saw of the machine's
 * boots, step by step) and `fleetboot host why MAC` (how far its last boot
 * got and what was expected next): GET /api/v1/hosts/:mac/timeline|why.
 */
import type { Command } from 'commander';
import type { BootDiagnosis, BootEvent, BootTimeline } from '../http/schemas/index.js';
import { CliError, connect } from './client.js';
import type { GlobalOptions } from './globals.js';
import { printJson, printLine, printTable } from './output.js';

function stepRows(events: readonly BootEvent[]): Array<Array<string | null>> {
  return events.map((e) => [e.at.replace('T', ' ').replace(/Z$/, ''), e.kind, e.ip, e.summary]);
}

export function registerTimelineCommands(program: Command, globals: GlobalOptions): void {
  const host = program.commands.find((c) => c.name() === 'host');
  if (!host) throw new TypeError('registerTimelineCommands() must run after registerApiCommands() (no `host` command)');
  const api = () => connect(globals);

  host
    .command('timeline')
    .description("what the server saw of a machine's boots, oldest first: DHCP answers (file and why), TFTP and HTTP fetches, boot decisions, task steps")
    .argument('<mac>')
    .option('--limit <n>', 'the newest N steps (1-5000)', '50')
    .action(async (mac: string, o: { limit: string }) => {
      if (!/^[1-9][0-9]{0,3}$/.test(o.limit) || Number(o.limit) > 5000) throw new CliError(`--limit must be a whole number from 1 to 5000: got ${JSON.stringify(o.limit)}`);
      const r = await (await api()).request<BootTimeline>('GET', `/hosts/${encodeURIComponent(mac)}/timeline?limit=${o.limit}`);
      if (globals.json) printJson(r);
      else printTable(['TIME (UTC)', 'STEP', 'ADDRESS', 'WHAT'], stepRows(r.events), `No boot of ${r.mac} on record.`);
    });

  host
    .command('why')
    .description("how far a machine's last boot got, from the server's own records, and what was expected next")
    .argument('<mac>')
    .action(async (mac: string) => {
      const d = await (await api()).request<BootDiagnosis>('GET', `/hosts/${encodeURIComponent(mac)}/why`);
      if (globals.json) {
        printJson(d);
        return;
      }
      printLine(`${d.mac}: ${d.verdict}`);
      if (d.next) printLine(`expected next: ${d.next}`);
      if (d.steps.length) {
        printLine('');
        printTable(['TIME (UTC)', 'STEP', 'ADDRESS', 'WHAT'], stepRows(d.steps), '');
      }
    });
}
