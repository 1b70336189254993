/**
 * Endpoint agent and package commands (they speak only the HTTP API):
 *
 *   agent token create [--host MAC | --group NAME] [--ttl DURATION] [--uses N]
 *   agent token list | agent token revoke ID
 *   agent list [--state S] | agent show ID|MAC
 *   agent approve ID [--host MAC] | agent revoke ID|MAC
 *   agent do inventory|hostname|reboot MAC... | --group NAME
 *   agent wake --via MAC MAC...
 *   package add NAME --file PATH... [--timeout SECONDS] [--reboot-codes LIST] [--success-codes LIST] -- ARGV...
 *   package list | package show NAME [--revision N]
 *   package deploy NAME --host MAC... | --group NAME [--at TIME]
 *   package runs [--host MAC] [--json]
 *
 * `agent token create` prints the secret alone on stdout (what it is, and
 * the `fleetboot-agent enroll` line to run on the machine, on stderr).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import type { Agent, AgentWork, CreatedEnrolToken, EnrolToken, Package, Status, TlsInfo } from '../http/schemas/index.js';
import { connect, CliError, type ApiClient } from './client.js';
import type { GlobalOptions } from './globals.js';
import { time } from './imaging.js';
import { printJson, printLine, printTable } from './output.js';
import { resolveAt } from './task-request.js';

/** "90s", "30m", "24h", "7d" or plain seconds -> seconds. */
export function parseDuration(raw: string, flag: string): number {
  const m = /^([1-9][0-9]{0,6})([smhd]?)$/.exec(raw.trim());
  if (!m) throw new CliError(`Invalid ${flag} ${JSON.stringify(raw)}: expected a duration such as 90s, 30m, 24h or 7d`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/** "0,3010" -> [0, 3010]. */
export function parseCodes(raw: string, flag: string): number[] {
  const parts = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const codes = parts.map((p) => (/^-?[0-9]{1,10}$/.test(p) ? Number(p) : NaN));
  if (parts.length === 0 || codes.some((c) => !Number.isSafeInteger(c) || c < -2147483648 || c > 4294967295)) {
    throw new CliError(`Invalid ${flag} ${JSON.stringify(raw)}: expected exit codes separated by commas, such as 3010,1641`);
  }
  return codes;
}

function agentLine(a: Agent): string[] {
  return [a.id, a.state, a.host ? `${a.host.mac}${a.host.name ? ` (${a.host.name})` : ''}` : '-', a.lastIdentity?.hostname ?? a.identity.hostname ?? '-', a.lastIp ?? '-', time(a.lastSeenAt) ?? '-'];
}

function tokenState(t: EnrolToken, now: number): string {
  if (t.revokedAt !== null) return 'revoked';
  if (Date.parse(t.expiresAt) <= now) return 'expired';
  if (t.usesLeft <= 0) return 'used';
  return 'usable';
}

function workWhat(w: AgentWork): string {
  if (w.kind === 'package' && w.package) return `package ${w.package.name} r${w.package.revision}`;
  if (w.kind === 'reboot' && w.taskId !== null) return `reboot (task #${w.taskId})`;
  return w.kind;
}

function workResult(w: AgentWork): string {
  const parts: string[] = [w.state];
  if (w.exitCode !== null) parts.push(`exit ${w.exitCode}`);
  if (w.signal !== null) parts.push(w.signal);
  if (w.durationMs !== null) parts.push(`${(w.durationMs / 1000).toFixed(1)} s`);
  return parts.join(', ');
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The enrolment line for the machine, when the server says where its HTTPS and CA are. */
async function enrollHint(api: ApiClient, token: string): Promise<string | null> {
  try {
    const tls = await api.request<TlsInfo>('GET', '/tls');
    const status = await api.request<Status>('GET', '/status');
    const port = status.https.port;
    const host = new URL(api.baseUrl).hostname;
    const serverHost = host === '127.0.0.1' || host === 'localhost' ? (tls.server.names.find((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n) && !n.startsWith('127.')) ?? host) : host;
    if (port === null || tls.ca === null) return null;
    return `fleetboot-agent enroll --server https://${serverHost}:${port} --ca-sha256 ${tls.ca.sha256} --token ${token}`;
  } catch {
    return null;
  }
}

export function registerAgentCommands(program: Command, globals: GlobalOptions): void {
  const api = (): Promise<ApiClient> => connect(globals);

  const agent = program.command('agent').description('endpoint agents (fleetboot-agent) on installed machines: enrolment tokens, approval, revocation, work');
  const token = agent.command('token').description('enrolment tokens');
  token
    .command('create')
    .description('make an enrolment token (printed once, alone on stdout): for one host, the hosts of a group, or any machine (it then becomes the host with its MAC)')
    .option('--host <mac>', 'the agent becomes this host')
    .option('--group <name>', "the agent's host joins this group")
    .option('--ttl <duration>', 'how long the token is valid: 90s, 30m, 24h, 7d', '24h')
    .option('--uses <n>', 'how many agents may enrol with it (a --host token: 1)', '1')
    .action(async (o: { host?: string; group?: string; ttl: string; uses: string }) => {
      if (!/^[1-9][0-9]{0,5}$/.test(o.uses)) throw new CliError(`Invalid --uses ${JSON.stringify(o.uses)}: expected a number from 1 to 100000`);
      const client = await api();
      const r = await client.request<CreatedEnrolToken>('POST', '/agents/tokens', { ...(o.host ? { host: o.host } : {}), ...(o.group ? { group: o.group } : {}), ttlSeconds: parseDuration(o.ttl, '--ttl'), uses: Number(o.uses) });
      if (globals.json) {
        printJson(r);
        return;
      }
      const hint = await enrollHint(client, r.token);
      const i = r.info;
      process.stderr.write(
        `Enrolment token #${i.id}${i.host ? ` for host ${i.host}` : ''}${i.group ? ` (group ${i.group})` : ''}, ${i.usesLeft} use${i.usesLeft === 1 ? '' : 's'}, valid until ${time(i.expiresAt) ?? i.expiresAt}. Shown this once:\n` +
          (hint ? `On the machine: ${hint}\n` : ''),
      );
      printLine(r.token);
    });
  token
    .command('list')
    .alias('ls')
    .description('list enrolment tokens (never their secrets)')
    .action(async () => {
      const { tokens } = await (await api()).request<{ tokens: EnrolToken[] }>('GET', '/agents/tokens');
      const now = Date.now();
      if (globals.json) printJson(tokens);
      else printTable(['ID', 'STATE', 'HOST', 'GROUP', 'USES', 'LEFT', 'EXPIRES', 'BY'], tokens.map((t) => [String(t.id), tokenState(t, now), t.host ?? '-', t.group ?? '-', String(t.uses), String(t.usesLeft), time(t.expiresAt), t.createdBy]), 'No enrolment tokens.');
    });
  token
    .command('revoke')
    .description('revoke an enrolment token')
    .argument('<id>')
    .action(async (id: string) => {
      if (!/^[1-9][0-9]{0,14}$/.test(id)) throw new CliError(`Invalid token id ${JSON.stringify(id)}: expected a number (fleetboot agent token list)`);
      const t = await (await api()).request<EnrolToken>('DELETE', `/agents/tokens/${id}`);
      if (globals.json) printJson(t);
      else printLine(`Revoked enrolment token #${t.id}`);
    });

  agent
    .command('list')
    .alias('ls')
    .description('list endpoint agents')
    .option('--state <state>', 'active, pending or revoked')
    .action(async (o: { state?: string }) => {
      const { agents } = await (await api()).request<{ agents: Agent[] }>('GET', `/agents${o.state ? `?state=${encodeURIComponent(o.state)}` : ''}`);
      if (globals.json) printJson(agents);
      else printTable(['AGENT', 'STATE', 'HOST', 'MACHINE', 'ADDRESS', 'LAST SEEN'], agents.map(agentLine), 'No agents (make a token: fleetboot agent token create).');
    });
  agent
    .command('show')
    .description('one agent: its host, the machine it enrolled on and what it reported last')
    .argument('<id-or-mac>')
    .action(async (id: string) => {
      const a = await (await api()).request<Agent>('GET', `/agents/${encodeURIComponent(id)}`);
      if (globals.json) {
        printJson(a);
        return;
      }
      const rows: Array<[string, string | null]> = [
        ['agent', a.id],
        ['state', a.state],
        ['host', a.host ? `${a.host.mac}${a.host.name ? ` (${a.host.name})` : ''}` : null],
        ['machine', `${a.identity.hostname ?? '?'}, ${a.identity.os ?? '?'}, MACs ${a.identity.macs.join(' ')}, SMBIOS UUID ${a.identity.smbiosUuid ?? '-'}`],
        ['agent version', a.lastIdentity?.agentVersion ?? a.identity.agentVersion],
        ['address', a.lastIp],
        ['enrolled', time(a.enrolledAt)],
        ['approved', time(a.approvedAt)],
        ['revoked', time(a.revokedAt)],
        ['last seen', time(a.lastSeenAt)],
      ];
      for (const [k, v] of rows) if (v !== null) printLine(`${k.padEnd(14)} ${v}`);
    });
  agent
    .command('approve')
    .description('approve a pending agent (enrolled without a token) for a host')
    .argument('<id>', 'the agent id (fleetboot agent list --state pending)')
    .option('--host <mac>', 'the host it acts for (default: the host with a MAC it reported, made when none has it)')
    .action(async (id: string, o: { host?: string }) => {
      const a = await (await api()).request<Agent>('POST', `/agents/${encodeURIComponent(id)}/approve`, o.host ? { host: o.host } : {});
      if (globals.json) printJson(a);
      else printLine(`Agent ${a.id} is active for ${a.host?.mac ?? '?'}`);
    });
  agent
    .command('revoke')
    .description("revoke an agent's key: its next request gets 401; the machine must enrol again with a new token")
    .argument('<id-or-mac>')
    .action(async (id: string) => {
      const a = await (await api()).request<Agent>('POST', `/agents/${encodeURIComponent(id)}/revoke`);
      if (globals.json) printJson(a);
      else printLine(`Revoked agent ${a.id}${a.host ? ` of ${a.host.mac}` : ''}`);
    });
  agent
    .command('do')
    .description("ask agents to refresh the inventory, set the machine's name to the host's name, or reboot")
    .argument('<kind>', 'inventory, hostname or reboot')
    .argument('[macs...]')
    .option('--group <name>', 'every member of this group')
    .action(async (kind: string, macs: string[], o: { group?: string }) => {
      if (kind !== 'inventory' && kind !== 'hostname' && kind !== 'reboot') throw new CliError(`Invalid kind ${JSON.stringify(kind)}: expected inventory, hostname or reboot`);
      const body = { kind, ...(macs.length ? { macs } : {}), ...(o.group ? { group: o.group } : {}) };
      const { work } = await (await api()).request<{ work: AgentWork[] }>('POST', '/agents/work', body);
      if (globals.json) printJson(work);
      else printLine(`Queued ${kind} for ${work.length} host${work.length === 1 ? '' : 's'}: work ${work.map((w) => `#${w.id}`).join(' ')} (fleetboot package runs shows how it ends)`);
    });
  agent
    .command('wake')
    .description("wake machines through the agent of a host on their segment (routed subnets whose directed broadcasts are dropped)")
    .requiredOption('--via <mac>', 'the host whose agent sends the magic packets')
    .argument('<macs...>')
    .action(async (macs: string[], o: { via: string }) => {
      const w = await (await api()).request<AgentWork>('POST', '/agents/wake', { via: o.via, macs });
      if (globals.json) printJson(w);
      else printLine(`Asked the agent of ${w.mac} to wake ${macs.length} machine${macs.length === 1 ? '' : 's'} (work #${w.id})`);
    });

  const pkg = program.command('package').description('software packages run by the endpoint agents (FOG snapins, Altiris RapidInstall): signed by the server, checked by sha256 before anything runs');
  pkg
    .command('add')
    .description('add a package (or a new revision of it): its files and the command, as an argument array after -- (no shell)')
    .argument('<name>')
    .argument('<argv...>', 'the command, after --, run in the directory holding the files: -- /bin/sh install.sh --quiet')
    .requiredOption('--file <path...>', 'files of the package (their executable bit is kept)')
    .option('--timeout <seconds>', 'kill the run with all its children after this long', '3600')
    .option('--reboot-codes <list>', 'exit codes that mean "done, reboot needed" (e.g. 3010,1641)')
    .option('--success-codes <list>', 'exit codes that mean success', '0')
    .action(async (name: string, argv: string[], o: { file: string[]; timeout: string; rebootCodes?: string; successCodes: string }) => {
      if (!/^[1-9][0-9]{0,6}$/.test(o.timeout)) throw new CliError(`Invalid --timeout ${JSON.stringify(o.timeout)}: expected seconds (1 to 604800)`);
      const client = await api();
      const files: Array<{ name: string; sha256: string; executable: boolean }> = [];
      for (const path of o.file) {
        let st;
        try {
          st = await stat(path);
        } catch (err) {
          throw new CliError(`Cannot read --file ${path}: ${(err as Error).message}`);
        }
        if (!st.isFile()) throw new CliError(`--file ${path} is not a file`);
        const sha256 = await sha256File(path);
        await client.upload(`/packages/files/${sha256}`, path);
        files.push({ name: basename(path), sha256, executable: (st.mode & 0o111) !== 0 });
      }
      const p = await client.request<Package>('POST', '/packages', {
        name,
        files,
        argv,
        timeoutSeconds: Number(o.timeout),
        ...(o.rebootCodes ? { rebootCodes: parseCodes(o.rebootCodes, '--reboot-codes') } : {}),
        successCodes: parseCodes(o.successCodes, '--success-codes'),
      });
      if (globals.json) printJson(p);
      else printLine(`Added package ${p.name} revision ${p.revision}: ${p.files.length} file${p.files.length === 1 ? '' : 's'}, runs ${JSON.stringify(p.argv)}`);
    });
  pkg
    .command('list')
    .alias('ls')
    .description('list packages (newest revision of each)')
    .action(async () => {
      const { packages } = await (await api()).request<{ packages: Package[] }>('GET', '/packages');
      if (globals.json) printJson(packages);
      else printTable(['NAME', 'REV', 'FILES', 'COMMAND', 'TIMEOUT', 'ADDED'], packages.map((p) => [p.name, String(p.revision), String(p.files.length), JSON.stringify(p.argv), `${p.timeoutSeconds} s`, time(p.createdAt)]), 'No packages (fleetboot package add NAME --file PATH -- COMMAND...).');
    });
  pkg
    .command('show')
    .description('one package: files with their sha256, the command')
    .argument('<name>')
    .option('--revision <n>')
    .action(async (name: string, o: { revision?: string }) => {
      const p = await (await api()).request<Package>('GET', `/packages/${encodeURIComponent(name)}${o.revision ? `?revision=${encodeURIComponent(o.revision)}` : ''}`);
      if (globals.json) {
        printJson(p);
        return;
      }
      printLine(`${p.name} revision ${p.revision}, added ${time(p.createdAt) ?? ''} by ${p.createdBy}`);
      printLine(`command       ${JSON.stringify(p.argv)}`);
      printLine(`timeout       ${p.timeoutSeconds} s; success ${p.successCodes.join(',')}; reboot ${p.rebootCodes.join(',') || '-'}`);
      for (const f of p.files) printLine(`file          ${f.name} ${f.size} bytes sha256 ${f.sha256}${f.executable ? ' (executable)' : ''}`);
    });
  pkg
    .command('deploy')
    .description("run a package's newest revision on hosts, at their agents' next poll (or from --at)")
    .argument('<name>')
    .option('--host <mac...>', 'the hosts')
    .option('--group <name>', 'every member of this group')
    .option('--at <time>', 'not before: HH:MM or ISO 8601 (local time unless it has an offset)')
    .action(async (name: string, o: { host?: string[]; group?: string; at?: string }) => {
      const body = { ...(o.host ? { macs: o.host } : {}), ...(o.group ? { group: o.group } : {}), ...(o.at !== undefined ? { at: resolveAt(o.at) } : {}) };
      const { work } = await (await api()).request<{ work: AgentWork[] }>('POST', `/packages/${encodeURIComponent(name)}/deploy`, body);
      if (globals.json) printJson(work);
      else printLine(`Package ${name} queued for ${work.length} host${work.length === 1 ? '' : 's'}: work ${work.map((w) => `#${w.id}`).join(' ')} (fleetboot package runs shows how they end)`);
    });
  pkg
    .command('runs')
    .description('package runs and other agent work, newest first, with exit codes and output')
    .option('--host <mac>', 'one host')
    .option('--all', 'every kind of agent work, not only package runs')
    .action(async (o: { host?: string; all?: boolean }) => {
      const q = new URLSearchParams();
      if (o.host) q.set('mac', o.host);
      if (!o.all) q.set('kind', 'package');
      const { work } = await (await api()).request<{ work: AgentWork[] }>('GET', `/agents/work?${q.toString()}`);
      if (globals.json) {
        printJson(work);
        return;
      }
      printTable(['ID', 'HOST', 'WHAT', 'RESULT', 'FINISHED', 'MESSAGE'], work.map((w) => [String(w.id), w.hostName ?? w.mac, workWhat(w), workResult(w), time(w.finishedAt) ?? '-', (w.message ?? '').slice(0, 80)]), 'No runs.');
    });
}
