/**
 * The task commands that make tasks (`task capture|deploy|inventory`),
 * defined once and used twice: by `fleetboot task ...`, which sends the
 * request to POST /api/v1/tasks, and by `fleetboot schedule add --cron X --
 * task ...`, which parses the words after `--` with these same options into
 * the request a schedule stores (never a command line).
 *
 * Each takes one machine (MAC), several (MAC MAC...: one task each, a job)
 * or `--group NAME` (capture: one MAC only), `--wake` (Wake-on-LAN when
 * queued) and `--at TIME` (resolved here, in this machine's local time, and
 * sent as UTC: src/model/when.ts). One MAC is a single task, as it always was.
 */
import { Command, CommanderError } from 'commander';
import { FleetbootError } from '../lib/errors.js';
import { CAPTURE_GROUP_REFUSED, CAPTURE_MACS_REFUSED, macListText, parseTaskRequest, PARTITION_TABLES, type TaskRequest } from '../model/task-request.js';
import { parseWhen } from '../model/when.js';
import type { JobDetail, Task } from '../http/schemas/index.js';
import { CliError } from './client.js';

export function parseRevision(raw: string): number {
  if (!/^[1-9][0-9]{0,9}$/.test(raw)) throw new CliError(`Invalid revision ${JSON.stringify(raw)}: expected a revision number (1, 2, ...)`);
  return Number(raw);
}

/** `--at TIME` -> an ISO time in UTC (this machine's local time when TIME has no offset). */
export function resolveAt(text: string, now: Date = new Date()): string {
  try {
    return parseWhen(text, now).toISOString();
  } catch (err) {
    if (err instanceof FleetbootError) throw new CliError(`--at: ${err.message}`);
    throw err;
  }
}

interface Common {
  group?: string;
  wake?: boolean;
  reboot?: boolean;
  at?: string;
}

/** One machine, several (a job) or a group: exactly one of them. The server checks the MACs themselves. */
function target(macs: readonly string[], o: Common): { mac: string } | { macs: string[] } | { group: string } {
  if (macs.length > 0 && o.group !== undefined) throw new CliError(`Name machines (MAC...) or --group NAME, not both: got ${macs.join(' ')} and --group ${o.group}`);
  const [first] = macs;
  if (first !== undefined) return macs.length === 1 ? { mac: first } : { macs: [...macs] };
  if (o.group !== undefined) return { group: o.group };
  throw new CliError('Name the machines (MAC MAC...) or a host group (--group NAME)');
}

function common(o: Common): Record<string, unknown> {
  return { ...(o.wake ? { wake: true } : {}), ...(o.reboot ? { reboot: true } : {}), ...(o.at !== undefined ? { at: resolveAt(o.at) } : {}) };
}

function withCommon(c: Command, what: string): Command {
  return c
    .option('--group <name>', `every member of this host group (one task each: a job)${what}`)
    .option('--wake', 'wake the machine(s) with Wake-on-LAN when the task is queued (at once, or at --at)')
    .option('--reboot', "the machine's endpoint agent (fleetboot-agent, when enrolled) reboots it into the task once queued")
    .option('--at <time>', 'start then, not now: HH:MM (the next such time) or ISO 8601 (2026-12-24T22:00, local time unless it has an offset); the task waits as scheduled');
}

/** Define capture, deploy and inventory under `parent`; each hands its request body to `submit`. */
export function defineTaskRequestCommands(parent: Command, submit: (body: Record<string, unknown>) => Promise<void>): void {
  withCommon(
    parent
      .command('capture')
      .description("capture a host's disk into a new revision of an image (current once complete and verified; earlier revisions are kept)")
      .argument('[mac]', 'the machine (one: an image comes from one disk)')
      // Several MACs reach the action, which refuses them saying why (not commander's "too many arguments").
      .allowExcessArguments()
      .requiredOption('--image <name>', 'image name: letters, digits, . _ - (up to 64)')
      .option('--disk <dev>', 'the disk to capture, e.g. /dev/sda (default: the first fixed disk)'),
    ' (refused: a capture takes one machine)',
  ).action(async (_mac: string | undefined, opts: Common & { image: string; disk?: string }, cmd: Command) => {
    if (opts.group !== undefined) throw new CliError(CAPTURE_GROUP_REFUSED);
    if (cmd.args.length > 1) throw new CliError(`${CAPTURE_MACS_REFUSED}: got ${cmd.args.join(' ')}`);
    if (cmd.args.length === 0) throw new CliError('Name the machine to capture (MAC)');
    await submit({ type: 'capture', ...target(cmd.args, opts), image: opts.image, ...(opts.disk ? { disk: opts.disk } : {}), ...common(opts) });
  });
  withCommon(
    parent
      .command('deploy')
      .description("write an image to a host's disk (everything on that disk is replaced)")
      .argument('[macs...]', 'the machine, or several (one task each, shown as a job); or --group')
      .requiredOption('--image <name>', 'the image to write')
      .option('--revision <n>', 'write this revision (default: the current one when the machine starts)')
      .option('--disk <dev>', 'the target disk, e.g. /dev/sda (default: the first fixed disk)')
      .option('--table <kind>', 'partition table to write: keep (as captured), gpt or mbr', 'keep')
      .option('--multicast', 'with --group or several MACs: one multicast session sends the image to every member at once (late members get it in a later round, slow ones by unicast)')
      .option('--min-receivers <n>', 'with --multicast and --max-wait: start with at least this many members once the wait is over')
      .option('--max-wait <seconds>', 'with --multicast: start after this long with the members present (default: wait for every member)'),
    '',
  ).action(async (macs: string[], opts: Common & { image: string; revision?: string; disk?: string; table: string; multicast?: boolean; minReceivers?: string; maxWait?: string }) => {
    if (!PARTITION_TABLES.some((t) => t === opts.table)) throw new CliError(`Invalid --table ${JSON.stringify(opts.table)}: expected keep, gpt or mbr`);
    const wholeNumber = (flag: string, v: string, min: number): number => {
      if (!/^\d{1,6}$/.test(v) || Number(v) < min) throw new CliError(`${flag} must be a whole number of at least ${min}: got ${JSON.stringify(v)}`);
      return Number(v);
    };
    if (!opts.multicast && (opts.minReceivers !== undefined || opts.maxWait !== undefined)) throw new CliError('--min-receivers and --max-wait go with --multicast');
    const to = target(macs, opts);
    if (opts.multicast && 'mac' in to) throw new CliError(`--multicast sends one image to several machines at once; a deploy to one machine (${to.mac}) goes by unicast: drop --multicast, or name more MACs or --group NAME`);
    const multicast = opts.multicast
      ? {
          multicast: {
            ...(opts.minReceivers !== undefined ? { minReceivers: wholeNumber('--min-receivers', opts.minReceivers, 1) } : {}),
            ...(opts.maxWait !== undefined ? { maxWaitSeconds: wholeNumber('--max-wait', opts.maxWait, 0) } : {}),
          },
        }
      : {};
    await submit({
      type: 'deploy',
      ...to,
      image: opts.image,
      table: opts.table,
      ...(opts.revision !== undefined ? { revision: parseRevision(opts.revision) } : {}),
      ...(opts.disk ? { disk: opts.disk } : {}),
      ...multicast,
      ...common(opts),
    });
  });
  withCommon(
    parent
      .command('inventory')
      .description("collect a host's hardware inventory (CPU, memory, disks, NICs, SMBIOS)")
      .argument('[macs...]', 'the machine, or several (one task each, shown as a job); or --group'),
    '',
  ).action(async (macs: string[], opts: Common) => {
    await submit({ type: 'inventory', ...target(macs, opts), ...common(opts) });
  });
}

/**
 * The words after `--` of `schedule add` ("task inventory --group lab12
 * --wake") -> the request a schedule stores, parsed with the task
 * commands' own options and checked as the server will (no --at).
 */
export async function parseScheduledTask(words: readonly string[]): Promise<TaskRequest> {
  if (words[0] !== 'task') throw new CliError(`After -- comes a task command, e.g. \`-- task inventory --group lab12\`: got ${JSON.stringify(words.join(' '))}`);
  let body: Record<string, unknown> | null = null;
  let out = '';
  const program = new Command('fleetboot').exitOverride().configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  const task = program.command('task').exitOverride();
  defineTaskRequestCommands(task, async (b) => {
    body = b;
  });
  for (const c of task.commands) c.exitOverride();
  try {
    await program.parseAsync([...words], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) throw new CliError(`The task after --: ${out.trim().replace(/^error: /, '') || err.message}`);
    throw err;
  }
  if (body === null) throw new CliError(`After -- comes a task command that makes tasks (task capture|deploy|inventory ...): got ${JSON.stringify(words.join(' '))}`);
  try {
    return parseTaskRequest(body, { allowAt: false });
  } catch (err) {
    if (err instanceof FleetbootError) throw new CliError(err.message);
    throw err;
  }
}

function isJob(r: Task | JobDetail): r is JobDetail {
  return 'tasks' in r && Array.isArray(r.tasks);
}

function local(iso: string | null): string {
  if (iso === null) return '?';
  const d = new Date(iso);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} (local time)`;
}

/** What a made task or job says on the terminal. */
export function queuedText(r: Task | JobDetail): string {
  if (isJob(r)) {
    const when = r.state === 'scheduled' ? `they wait until ${local(r.startAt)}, then start at each machine's next network boot` : "they start at each machine's next network boot";
    const wake = r.request.wake ? ', after Wake-on-LAN wakes it' : '';
    const who = r.group !== null ? `group ${r.group}` : macListText(r.request.macs ?? []);
    return `Job ${r.id}: ${r.total} ${r.type} task${r.total === 1 ? '' : 's'} for ${who}${r.image ? ` (image ${r.image})` : ''}, tasks ${r.tasks.map((t) => t.id).join(' ')}; ${when}${wake}. Follow it: fleetboot job show ${r.id}`;
  }
  const host = `${r.mac}${r.hostName ? ` (${r.hostName})` : ''}`;
  const what = r.type === 'capture' ? `capture of ${host} into image ${r.image ?? '?'}` : r.type === 'deploy' ? `deploy of image ${r.image ?? '?'} to ${host}` : `${r.type} of ${host}`;
  const when = r.state === 'scheduled' ? `it waits until ${local(r.startAt)}, then starts at the machine's next network boot` : "it starts at the machine's next network boot";
  return `${r.state === 'scheduled' ? 'Scheduled' : 'Queued'} task ${r.id}: ${what}; ${when}${r.wake ? ', after Wake-on-LAN wakes it' : ''}`;
}
