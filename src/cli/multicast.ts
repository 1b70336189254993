/**
 * `fleetboot multicast send|receive`: the standalone sender and receiver
 * (src/multicast/standalone.ts), the same code a server session and the
 * boot environment run. Logs go to stderr; the last line on stdout is a JSON
 * summary. Exit status 0 only when the file is complete and verified
 * (receive), or every receiver has it (send).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { MulticastSetupError, receiveFile, sendFile } from '../multicast/standalone.js';
import { ExitStatus, UsageError, type GlobalOptions } from './globals.js';
import { CliError, connect } from './client.js';
import { printJson, printLine, printTable } from './output.js';
import { MAX_RATE_MBPS } from '../model/multicast.js';
import type { MulticastSessionDetail as SessionDetail, MulticastSessionList } from '../http/schemas/index.js';

function int(name: string, min: number, max: number): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
    return n;
  };
}

function positive(name: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${name} must be a number above 0, got ${JSON.stringify(v)}`);
    return n;
  };
}

/** This process's CPU time and peak resident memory (VmHWM), for the summary line (benchmarks read them). */
function usage(): { cpuUserMs: number; cpuSystemMs: number; peakRssMiB: number | null } {
  const u = process.resourceUsage();
  let peak: number | null = null;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) peak = Math.round(Number(m[1]) / 1024);
  } catch {
    /* not Linux */
  }
  return { cpuUserMs: Math.round(u.userCPUTime / 1000), cpuSystemMs: Math.round(u.systemCPUTime / 1000), peakRssMiB: peak };
}

const log = (msg: string): void => {
  process.stderr.write(`fleetboot multicast: ${msg}\n`);
};

interface SendFlags {
  address: string;
  port: number;
  receivers: number;
  minReceivers?: number;
  interface?: string;
  maxWait?: number;
  maxRate: number;
  ttl: number;
  slowSeconds?: number;
  feedbackPort: number;
}

interface ReceiveFlags {
  address: string;
  port: number;
  out: string;
  interface?: string;
  timeout?: number;
}

function sessionId(raw: string): number {
  if (!/^[1-9][0-9]{0,14}$/.test(raw)) throw new CliError(`A session id is a number (see fleetboot multicast list): got ${JSON.stringify(raw)}`);
  return Number(raw);
}

const mb = (n: number | null | undefined): string | null => (n === null || n === undefined ? null : (n / 1e6).toFixed(1));

function printSession(d: SessionDetail): void {
  const live = d.live;
  printLine(
    `session #${d.id} (${d.session}): ${d.state}, ${d.image} revision ${d.revision} on ${d.address}:${d.port}, ${d.expected} member(s)` +
      (d.maxWaitSeconds !== null ? `, starts after ${d.maxWaitSeconds} s with at least ${d.minReceivers}` : ', waits for every member') +
      (d.jobId !== null ? `, job ${d.jobId}` : '') +
      (d.node !== null ? `, on node ${d.node}` : ''),
  );
  if (live) printLine(`  ${(live.rateBps * 8e-6).toFixed(0)} Mbit/s now (ceiling ${+(live.maxRateBps * 8e-6).toFixed(2)}), ${(live.retransmittedShare * 100).toFixed(1)} % retransmitted, sweep ${live.sweeps}${live.elapsedMs !== null ? `, ${(live.elapsedMs / 1000).toFixed(0)} s sending` : ''}`);
  if (d.error) printLine(`  ${d.error}`);
  printTable(
    ['TASK', 'MAC', 'TASK STATE', 'RECEIVER', 'MB', 'LOSS %', 'WHY'],
    d.members.map((m) => [String(m.taskId), m.mac, m.taskState, m.receiverState, mb(m.receiverBytes ?? m.bytesDone), m.lossShare === null ? null : (m.lossShare * 100).toFixed(2), m.reason ?? m.error]),
    'No members.',
  );
}

export function registerMulticastCommands(program: Command, globals: GlobalOptions): void {
  const mc = program.command('multicast').description('multicast sessions of deploy jobs (list, show, cancel, drop), and the standalone sender and receiver (one file to many machines)');
  const api = () => connect(globals);

  mc.command('list')
    .description('sessions, newest first (made by task deploy MAC MAC...|--group NAME --multicast)')
    .option('--active', 'only those waiting or sending')
    .action(async (o: { active?: boolean }) => {
      const r = await (await api()).request<MulticastSessionList>('GET', `/multicast${o.active ? '?active=true' : ''}`);
      if (globals.json) printJson(r);
      else
        printTable(
          ['ID', 'STATE', 'IMAGE', 'REV', 'GROUP ADDRESS', 'MEMBERS', 'JOB', 'NODE', 'CREATED'],
          r.sessions.map((x) => [String(x.id), x.state, x.image, String(x.revision), `${x.address}:${x.port}`, String(x.expected), x.jobId === null ? null : String(x.jobId), x.node, x.createdAt]),
          'No multicast sessions.',
        );
    });
  mc.command('show')
    .description("a session: state, rate, retransmitted share, and each member's receiver state, progress and loss")
    .argument('<id>')
    .action(async (raw: string) => {
      const d = await (await api()).request<SessionDetail>('GET', `/multicast/${sessionId(raw)}`);
      if (globals.json) printJson(d);
      else printSession(d);
    });
  mc.command('cancel')
    .description('end a session: its members go on by unicast (to stop the tasks too: fleetboot job cancel JOB)')
    .argument('<id>')
    .action(async (raw: string) => {
      const d = await (await api()).request<SessionDetail>('POST', `/multicast/${sessionId(raw)}/cancel`);
      if (globals.json) printJson(d);
      else printSession(d);
    });
  mc.command('drop')
    .description('one member leaves the session and goes on by unicast (a machine that holds the others back)')
    .argument('<id>', 'the session')
    .argument('<task>', "the member's task id")
    .action(async (raw: string, task: string) => {
      const d = await (await api()).request<SessionDetail>('POST', `/multicast/${sessionId(raw)}/drop/${sessionId(task)}`);
      if (globals.json) printJson(d);
      else printSession(d);
    });

  mc.command('rate')
    .description('a new rate ceiling for a running session, Mbit/s (throttle one that crowds a link; multicast.maxRateMbps is the default of new sessions)')
    .argument('<id>', 'the session')
    .argument('<mbps>', 'the ceiling, Mbit/s (e.g. 100, or 0.5)')
    .action(async (raw: string, mbps: string) => {
      const n = Number(mbps);
      if (!/^\d+(\.\d+)?$/.test(mbps) || !(n > 0) || n > MAX_RATE_MBPS) throw new CliError(`The rate ceiling is a number of Mbit/s above 0 and at most ${MAX_RATE_MBPS}: got ${JSON.stringify(mbps)}`);
      const d = await (await api()).request<SessionDetail>('POST', `/multicast/${sessionId(raw)}/rate`, { maxRateMbps: n });
      if (globals.json) printJson(d);
      else printSession(d);
    });

  mc.command('send')
    .description('send FILE to N receivers on a multicast group; exits 0 when every receiver has it, verified')
    .argument('<file>', 'the file to send')
    .requiredOption('--address <group>', 'multicast group (e.g. 239.255.42.1; not 224.0.0.x)')
    .requiredOption('--port <port>', 'UDP port of the group', int('--port', 1, 65535))
    .requiredOption('--receivers <n>', 'start when this many receivers have joined', int('--receivers', 1, 65535))
    .option('--min-receivers <n>', 'with --max-wait: start with at least this many', int('--min-receivers', 1, 65535))
    .option('--interface <iface>', 'interface name or address the session leaves by (default: the only one)')
    .option('--max-wait <seconds>', 'start after this long with --min-receivers (default 1) even if not all have joined', int('--max-wait', 0, 86400))
    .option('--max-rate <mbps>', 'ceiling of the send rate, Mbit/s', positive('--max-rate'), 800)
    .option('--ttl <n>', 'multicast TTL (above 1 to cross routers)', int('--ttl', 1, 255), 1)
    .option('--slow-seconds <s>', 'drop a receiver that holds the others back this long (default: never; a standalone receiver has no unicast to go on with)', int('--slow-seconds', 1, 3600))
    .option('--feedback-port <port>', 'UDP port the sender receives answers on (default: a free port the kernel picks)', int('--feedback-port', 0, 65535), 0)
    .action(async (file: string, f: SendFlags) => {
      try {
        const r = await sendFile({
          file,
          address: f.address,
          port: f.port,
          receivers: f.receivers,
          minReceivers: f.minReceivers,
          iface: f.interface,
          maxWaitS: f.maxWait ?? null,
          maxRateMbps: f.maxRate,
          ttl: f.ttl,
          slowS: f.slowSeconds,
          feedbackPort: f.feedbackPort,
          log,
        });
        const s = r.stats;
        const seconds = (s.elapsedMs ?? 0) / 1000;
        for (const rc of s.receivers) log(`receiver ${rc.id} ${rc.address}: ${rc.state}${rc.reason ? ` (${rc.reason})` : ''}, lost ${(rc.lossShare * 100).toFixed(2)} %`);
        log(`${r.ok ? 'done' : 'FAILED'}: ${s.objectBytes} bytes in ${seconds.toFixed(2)} s, ${(s.retransmittedShare * 100).toFixed(2)} % retransmitted`);
        process.stdout.write(
          JSON.stringify({ ok: r.ok, session: s.session, bytes: s.objectBytes, seconds, retransmittedShare: s.retransmittedShare, datagrams: s.datagrams, repairs: s.repairs, sendErrors: s.sendErrors, lastSendError: s.lastSendError, sweeps: s.sweeps, receivers: s.receivers, ...usage() }) + '\n',
        );
        if (!r.ok) throw new ExitStatus(1, 'not every receiver has the file');
      } catch (err) {
        if (err instanceof MulticastSetupError) throw new UsageError(err.message);
        throw err;
      }
    });

  mc.command('receive')
    .description('receive one session\'s file into --out; exits 0 only when it is complete and its sha256 matches')
    .requiredOption('--address <group>', 'multicast group')
    .requiredOption('--port <port>', 'UDP port of the group', int('--port', 1, 65535))
    .requiredOption('--out <file>', 'where to write (FILE.part until verified; a restart resumes it)')
    .option('--interface <iface>', 'interface name or address to join on (default: the only one)')
    .option('--timeout <seconds>', 'give up when no session is announced this long (default: wait)', int('--timeout', 1, 86400))
    .action(async (f: ReceiveFlags) => {
      try {
        const r = await receiveFile({ out: f.out, address: f.address, port: f.port, iface: f.interface, joinTimeoutS: f.timeout ?? null, log });
        process.stdout.write(JSON.stringify({ ...r, ...usage() }) + '\n');
        if (!r.ok) throw new ExitStatus(r.failure === 'dropped' ? 3 : 1, r.reason ?? 'failed');
        log(`done: ${r.bytes} bytes, sha256 ${r.sha256}`);
      } catch (err) {
        if (err instanceof MulticastSetupError) throw new UsageError(err.message);
        throw err;
      }
    });
}
