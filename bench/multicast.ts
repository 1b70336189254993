/**
 * Multicast imaging benchmark (issue 11): one file to N receivers at once,
 * Fleetboot's standalone sender/receiver against udpcast and UFTP in the same
 * run, clean and with random loss.
 *
 *   node --import tsx bench/multicast.ts [--size-mib 512] [--reps 3] [--receivers 1,3,8]
 *        [--loss 0,2] [--peers fleetboot,udpcast,udpcast-fd,uftp] [--lossy-runs 20]
 *        [--uftp-rate 1000000] [--fb-max-rate MBPS] [--timeout-s S] [--out bench/results/multicast.md]
 *
 * Lab (10.213.85.0/24, one bridge): a sender namespace (.1) and up to 8
 * receiver namespaces (.11-.18), each address with its subnet broadcast
 * (udpcast's rendezvous at TTL 1 goes to it) and no default or multicast
 * route: every peer is told its interface (eth0). The sender is pinned to
 * CPU 0, every receiver to CPU 1. The file (random bytes) and every
 * receiver's output are on a tmpfs the benchmark mounts.
 *
 * Peers (FILE is the source, OUT the receiver's file, N the receivers):
 *   udpcast     udp-sender --file FILE --interface eth0 --portbase 9000 --min-receivers N --nokbd
 *                 --nopointopoint --mcast-data-address 239.255.85.10 --rexmit-hello-interval 1000
 *                 --retries-until-drop 2000 --half-duplex
 *               udp-receiver --file OUT --interface eth0 --portbase 9000 --nokbd --rcvbuf 4194304
 *               (--half-duplex: the man page's default; on a veth udpcast detects full duplex
 *               and would use it unasked; --nopointopoint, as FOG passes: a single receiver
 *               would otherwise get unicast)
 *   udpcast-fd  the same with --full-duplex (FOG's default), portbase 9010, group 239.255.85.11
 *   uftp        uftpd -d -I eth0 -M 239.255.85.20 -p 7044 -D DIR -B 4194304 -q -F @LOG
 *               uftp -I eth0 -M 239.255.85.20 -P 239.255.85.21 -p 7044 -R RATE -B 4194304
 *                 -H ID,ID... FILE
 *               (RATE in kbit/s, --uftp-rate, default 1000000 = 1 Gbit/s; its own default is
 *               1000, i.e. 1 Mbit/s; -H: a closed group of the receivers' IDs, so the
 *               announcement ends as soon as all have registered; -B: 4 MiB socket buffers,
 *               like udpcast's --rcvbuf; net.core.rmem_max is 4 MiB here)
 *   fleetboot   node fleetboot-cli.mjs multicast send FILE --address 239.255.85.30
 *                 --port 9030 --receivers N --interface eth0 --max-wait 60 [--max-rate MBPS]
 *               node fleetboot-cli.mjs multicast receive --address 239.255.85.30
 *                 --port 9030 --out OUT --interface eth0
 *               (skipped, with a message, while the tree has no `fleetboot multicast`)
 *
 * A run: the receivers start first (as in a real session) and the sender
 * only once each of them has bound its UDP port; the clock starts with the
 * sender. A receiver is complete when it says so: udp-receiver's "Transfer
 * complete." (it then waits --exit-wait, 500 ms, before exiting), uftpd's
 * RESULT line (it keeps running: a daemon), Fleetboot's receiver exiting 0
 * (it verifies the file itself). The time of a run is the sender's start to
 * the last receiver's completion; then every output is compared with the
 * source (size, sha256: not timed) and a run counts only when every receiver
 * has the same bytes. A run that passes --timeout-s (default 30 s + 0.25 s
 * per MiB) is killed and recorded as failed, as is a receiver left waiting
 * 10 s after its sender exited.
 *
 * Loss: --loss P drops P % of the UDP packets entering every receiver and the
 * sender (nftables numgen random, Lab.dropPercent), so feedback is lost too.
 * Order: each repetition runs every loss level, receiver count and peer, the
 * peers' order rotated from one repetition to the next. --lossy-runs N then
 * runs Fleetboot N more times at 2 % loss with 3 receivers (the issue's "20
 * of 20 lossy runs byte-identical").
 *
 * CPU: each process runs in its own cgroup (cgroup v1 cpuacct or v2 cpu.stat),
 * which counts its threads and children: sender CPU per MB of the file, and
 * each receiver's. Sender peak RSS: the largest VmHWM of the processes in the
 * sender's cgroup, sampled every 50 ms.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { program, resolveArgv, type Argv, type ProgramName } from '../src/lib/programs.js';
import { fleetbootVersion } from '../src/http/version.js';
import { Lab, labAvailable, type LabHost } from '../test/lab/lab.js';
import { ProcessLog } from '../test/lab/bootenv/services.js';
import { bundledCli } from '../test/lab/cli-bundle.js';
import { appendResults, cleanupStack, median, pairedRatio, sleep, vmHwmMiB } from './lib.js';

const execFileP = promisify(execFile);
const repo = join(dirname(fileURLToPath(import.meta.url)), '..');

const PEER_NAMES = ['fleetboot', 'udpcast', 'udpcast-fd', 'uftp'] as const;
type PeerName = (typeof PEER_NAMES)[number];

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? (process.argv[i + 1] as string) : def;
}
function intList(name: string, def: string, min: number, max: number): number[] {
  const text = arg(name, def);
  const xs = text.split(',').map((x) => Number(x.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < min || x > max)) {
    throw new RangeError(`--${name} must be a comma-separated list of whole numbers ${min}-${max}: current value is '${text}'`);
  }
  return [...new Set(xs)];
}

const SIZE_MIB = Number(arg('size-mib', '512'));
const REPS = Number(arg('reps', '3'));
const RECEIVERS = intList('receivers', '1,3,8', 1, 8);
const LOSSES = intList('loss', '0,2', 0, 50);
const LOSSY_RUNS = Number(arg('lossy-runs', '20'));
const UFTP_RATE = Number(arg('uftp-rate', '1000000'));
const FB_MAX_RATE = arg('fb-max-rate', '');
const OUT = arg('out', join(repo, 'bench/results/multicast.md'));
const PEERS_ASKED = arg('peers', PEER_NAMES.join(',')).split(',').map((p) => p.trim());
if (!(Number.isInteger(SIZE_MIB) && SIZE_MIB >= 1 && SIZE_MIB <= 4096)) throw new RangeError(`--size-mib must be a whole number 1-4096: current value is ${SIZE_MIB}`);
if (!(Number.isInteger(REPS) && REPS >= 1)) throw new RangeError(`--reps must be a positive integer: current value is ${REPS}`);
if (!(Number.isInteger(LOSSY_RUNS) && LOSSY_RUNS >= 0)) throw new RangeError(`--lossy-runs must be a whole number: current value is ${LOSSY_RUNS}`);
if (!(Number.isInteger(UFTP_RATE) && (UFTP_RATE === -1 || UFTP_RATE >= 1000))) throw new RangeError(`--uftp-rate must be kbit/s (at least 1000) or -1 (as fast as the interface allows): current value is ${UFTP_RATE}`);
if (FB_MAX_RATE !== '' && !(Number(FB_MAX_RATE) > 0)) throw new RangeError(`--fb-max-rate must be a positive number (Mbit/s, passed as --max-rate): current value is '${FB_MAX_RATE}'`);
for (const p of PEERS_ASKED) if (!(PEER_NAMES as readonly string[]).includes(p)) throw new RangeError(`--peers: unknown peer '${p}' (known: ${PEER_NAMES.join(', ')})`);
const TIMEOUT_S = Number(arg('timeout-s', String(Math.round(30 + SIZE_MIB * 0.25))));
if (!(TIMEOUT_S >= 5)) throw new RangeError(`--timeout-s must be at least 5: current value is ${TIMEOUT_S}`);

const SIZE = SIZE_MIB * 2 ** 20;
const MB = SIZE / 1e6;
const SUBNET = '10.213.85';
const SENDER_IP = `${SUBNET}.1`;
const receiverIp = (i: number): string => `${SUBNET}.${11 + i}`;
/** A receiver still waiting this long after its sender exited is killed and recorded as failed. */
const AFTER_SENDER_MS = 10_000;
/** How long a sender may keep running after the last receiver completed (UFTP's closing handshake). */
const SENDER_TAIL_MS = 15_000;
const READY_MS = 30_000;
/** The CLI bundled by esbuild (test/lab/cli-bundle.ts), as compiled code runs: set in main(). */
let FB: Argv = ['node'];
const UFTP_PUB = '239.255.85.20';
const UFTP_PORT = 7044;

const log = (msg: string): void => void process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);

// ---- what runs where ----

interface Session {
  src: string;
  n: number;
  /** Each receiver's output directory (on the tmpfs). */
  dirs: string[];
}

interface Peer {
  name: PeerName;
  /** The UDP port every receiver binds: the sender starts once all have. */
  port: number;
  sender(s: Session): Argv;
  receiver(s: Session, i: number): Argv;
  /** Where receiver i writes the file. */
  outFile(s: Session, i: number): string;
  /** A receiver is complete at this line of its output; null: when it exits with status 0. */
  doneLine: RegExp | null;
  /** Receivers keep running after the transfer (the bench stops them); else they exit by themselves. */
  daemon: boolean;
  /** The share of the data sent again, when the sender's output says. */
  resent(senderOut: string): number | null;
}

function udpcast(name: 'udpcast' | 'udpcast-fd', portbase: number, group: string, duplex: '--half-duplex' | '--full-duplex'): Peer {
  return {
    name,
    port: portbase,
    sender: (s) => ['udp-sender', '--file', s.src, '--interface', 'eth0', '--portbase', String(portbase), '--min-receivers', String(s.n), '--nokbd', '--nopointopoint',
      '--mcast-data-address', group, '--rexmit-hello-interval', '1000', '--retries-until-drop', '2000', duplex],
    receiver: (s, i) => ['udp-receiver', '--file', join(s.dirs[i] as string, 'out.bin'), '--interface', 'eth0', '--portbase', String(portbase), '--nokbd', '--rcvbuf', '4194304'],
    outFile: (s, i) => join(s.dirs[i] as string, 'out.bin'),
    doneLine: /Transfer complete\./,
    daemon: false,
    resent: (out) => {
      // The sender's statistics line: "bytes=  8 388 608  re-xmits=0000363 ( 12.5%) slice=..."
      const all = [...out.matchAll(/re-xmits=\d+\s*\(\s*([\d.]+)%\)/g)];
      const last = all.at(-1);
      return last ? Number(last[1]) / 100 : null;
    },
  };
}

/** A UFTP client ID: by default the client's IPv4 address as 8 hex digits. */
const uftpId = (ip: string): string => `0x${ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('')}`;

const PEERS: Record<PeerName, Peer> = {
  udpcast: udpcast('udpcast', 9000, '239.255.85.10', '--half-duplex'),
  'udpcast-fd': udpcast('udpcast-fd', 9010, '239.255.85.11', '--full-duplex'),
  uftp: {
    name: 'uftp',
    port: UFTP_PORT,
    sender: (s) => ['uftp', '-I', 'eth0', '-M', UFTP_PUB, '-P', '239.255.85.21', '-p', String(UFTP_PORT), '-R', String(UFTP_RATE), '-B', '4194304',
      '-H', s.dirs.map((_, i) => uftpId(receiverIp(i))).join(','), s.src],
    receiver: (s, i) => ['uftpd', '-d', '-I', 'eth0', '-M', UFTP_PUB, '-p', String(UFTP_PORT), '-D', s.dirs[i] as string, '-B', '4194304', '-q', '-F', '@LOG'],
    outFile: (s, i) => join(s.dirs[i] as string, basename(s.src)),
    // -F @LOG puts the status lines in the log: "RESULT;time;server;session;file;size;copied"
    doneLine: /^RESULT;[^\n]*;(copied|overwritten)\s*$/m,
    daemon: true,
    resent: () => null,
  },
  fleetboot: {
    name: 'fleetboot',
    port: 9030,
    sender: (s) => [...FB, 'multicast', 'send', s.src, '--address', '239.255.85.30', '--port', '9030', '--receivers', String(s.n),
      '--interface', 'eth0', '--max-wait', '60', ...(FB_MAX_RATE ? ['--max-rate', FB_MAX_RATE] : [])],
    receiver: (s, i) => [...FB, 'multicast', 'receive', '--address', '239.255.85.30', '--port', '9030', '--out', join(s.dirs[i] as string, 'out.bin'), '--interface', 'eth0'],
    outFile: (s, i) => join(s.dirs[i] as string, 'out.bin'),
    doneLine: null,
    daemon: false,
    resent: (out) => {
      const share = jsonSummary(out)?.retransmittedShare;
      return typeof share === 'number' ? share : null;
    },
  },
};

/** The last line of `out` that is a JSON object (Fleetboot's sender ends with a summary line). */
function jsonSummary(out: string): Record<string, unknown> | null {
  for (const line of out.split('\n').reverse()) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      const v: unknown = JSON.parse(t);
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // a progress line that only looks like JSON
    }
  }
  return null;
}

// ---- CPU and memory of a process tree ----

/** A cgroup that counts the CPU time of everything that ever ran in it (cgroup v1 cpuacct, or v2). */
class CpuGroup {
  private constructor(
    readonly dir: string,
    private readonly v2: boolean,
  ) {}

  static create(name: string): CpuGroup {
    const v1 = '/sys/fs/cgroup/cpuacct';
    if (existsSync(join(v1, 'cpuacct.usage'))) {
      mkdirSync(join(v1, name), { recursive: true });
      return new CpuGroup(join(v1, name), false);
    }
    if (existsSync('/sys/fs/cgroup/cgroup.controllers')) {
      mkdirSync(join('/sys/fs/cgroup', name), { recursive: true });
      return new CpuGroup(join('/sys/fs/cgroup', name), true);
    }
    throw new Error('the benchmark counts CPU time with cgroups: neither /sys/fs/cgroup/cpuacct (v1) nor a cgroup v2 hierarchy at /sys/fs/cgroup');
  }

  get procsFile(): string {
    return join(this.dir, 'cgroup.procs');
  }

  cpuS(): number {
    if (!this.v2) return Number(readFileSync(join(this.dir, 'cpuacct.usage'), 'utf8')) / 1e9;
    const m = /^usage_usec (\d+)$/m.exec(readFileSync(join(this.dir, 'cpu.stat'), 'utf8'));
    return m ? Number(m[1]) / 1e6 : NaN;
  }

  /** The largest VmHWM (MiB) among the processes in the group now. */
  peakRssMiB(): number {
    const pids = readFileSync(this.procsFile, 'utf8').split('\n').filter(Boolean).map(Number);
    return Math.max(0, ...pids.map(vmHwmMiB).filter((x) => Number.isFinite(x)));
  }

  remove(): void {
    try {
      rmdirSync(this.dir);
    } catch {
      // a process still in it (it will be gone with the lab) or already removed
    }
  }
}

interface Proc {
  log: ProcessLog;
  /** Exit status and the time (performance.now()) of the exit. */
  exit: Promise<{ code: number | null; at: number }>;
  /** All its output has been read. */
  closed: Promise<void>;
}

/**
 * Start argv in a lab namespace, pinned to `cpu`, inside `group`: a shell
 * joins the cgroup and becomes `ip netns exec` (inside the namespace /sys is
 * mounted again and the cgroup tree is out of sight), which becomes taskset,
 * which becomes the program: one pid all along.
 */
function start(label: string, ns: string, cpu: 0 | 1, group: CpuGroup, argv: Argv): Proc {
  const child = spawn(program('sh'), ['-c', 'echo $$ > "$1" && shift && exec "$@"', 'sh', group.procsFile, ...resolveArgv(['ip', 'netns', 'exec', ns, 'taskset', '-c', String(cpu), ...resolveArgv(argv)])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: repo,
  });
  const exit = new Promise<{ code: number | null; at: number }>((r) => child.once('exit', (code) => r({ code, at: performance.now() })));
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  return { log: new ProcessLog(label, child), exit, closed };
}

/** Until a UDP socket of the host's namespace is bound to `port` (false: not within `ms`, or p exited). */
async function waitBound(lab: Lab, host: string, port: number, p: Proc, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end && p.log.running) {
    if (await lab.udpBound(host, port)) return true;
    await sleep(50);
  }
  return false;
}

/** The last line a process printed (not ProcessLog's own "[label exited: code]"). */
const lastLine = (text: string): string =>
  text.split(/[\r\n]+/).map((l) => l.trim()).filter((l) => l !== '' && !/^\[.* exited: .*\]$/.test(l)).at(-1)?.slice(0, 200) ?? '(no output)';

// ---- one run ----

interface RunResult {
  peer: PeerName;
  n: number;
  loss: number;
  /** Repetition (1-based), or 'lossy' for the --lossy-runs series. */
  rep: number | 'lossy';
  ok: boolean;
  /** Sender start to the last receiver's completion, s (NaN when one did not complete). */
  lastS: number;
  /** Each receiver's completion, s after the sender's start (NaN: none). */
  doneS: number[];
  senderExitS: number;
  senderCode: number | null;
  senderCpuS: number;
  receiverCpuS: number[];
  senderPeakMiB: number;
  resent: number | null;
  failures: string[];
  load1: number;
}

interface Bench {
  lab: Lab;
  sender: LabHost;
  receivers: LabHost[];
  senderGroup: CpuGroup;
  receiverGroups: CpuGroup[];
  work: string;
  src: string;
  srcSum: string;
  logDir: string;
}

async function sha256(file: string): Promise<string> {
  return (await execFileP(program('sha256sum'), [file])).stdout.split(' ')[0] ?? '';
}

/** null when `file` holds the source's bytes, else what is wrong with it. */
async function verify(b: Bench, file: string): Promise<string | null> {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return 'no output file';
  }
  if (size < SIZE) return `truncated: ${size} of ${SIZE} bytes`;
  if (size > SIZE) return `too long: ${size} of ${SIZE} bytes`;
  const sum = await sha256(file);
  return sum === b.srcSum ? null : `same size, other bytes (sha256 ${sum.slice(0, 16)}…)`;
}

async function runOnce(b: Bench, peer: Peer, n: number, loss: number, rep: number | 'lossy'): Promise<RunResult> {
  const dirs = Array.from({ length: n }, (_, i) => join(b.work, `r${i + 1}`));
  for (const d of dirs) {
    rmSync(d, { recursive: true, force: true });
    mkdirSync(d);
  }
  const s: Session = { src: b.src, n, dirs };
  const failures: string[] = [];
  const notes: string[] = [];
  const rx: Proc[] = [];
  let tx: Proc | null = null;
  let sampler: NodeJS.Timeout | null = null;
  const timers: NodeJS.Timeout[] = [];
  const kill = (p: Proc | null): void => {
    if (p?.log.running) p.log.child.kill('SIGKILL');
  };
  try {
    for (let i = 0; i < n; i++) {
      rx.push(start(`${peer.name} r${i + 1}`, (b.receivers[i] as LabHost).netns, 1, b.receiverGroups[i] as CpuGroup, peer.receiver(s, i)));
    }
    const bound = await Promise.all(rx.map((p, i) => waitBound(b.lab, (b.receivers[i] as LabHost).name, peer.port, p, READY_MS)));
    bound.forEach((ok, i) => {
      if (!ok) notes.push(`r${i + 1} had not bound UDP port ${peer.port} after ${READY_MS / 1000} s${rx[i]?.log.running ? '' : ` (exited: ${lastLine(rx[i]?.log.all() ?? '')})`}`);
    });
    await sleep(200); // the receivers' last steps after bind (group joins) before the sender's first packet
    const senderCpu0 = b.senderGroup.cpuS();
    const receiverCpu0 = b.receiverGroups.slice(0, n).map((g) => g.cpuS());
    const load1 = loadavg()[0] ?? NaN;
    const t0 = performance.now();
    const sender = start(`${peer.name} sender`, b.sender.netns, 0, b.senderGroup, peer.sender(s));
    tx = sender;
    let peak = 0;
    sampler = setInterval(() => (peak = Math.max(peak, b.senderGroup.peakRssMiB())), 50);
    // Never hang: everything is killed at the deadline, and receivers still waiting a while after their sender exited.
    timers.push(setTimeout(() => [sender, ...rx].forEach(kill), TIMEOUT_S * 1000));
    void sender.exit.then(() => timers.push(setTimeout(() => rx.forEach(kill), AFTER_SENDER_MS)));

    const doneAt = await Promise.all(
      rx.map(async (p): Promise<number> => {
        if (peer.doneLine) {
          const m = await p.log.waitFor(peer.doneLine, TIMEOUT_S * 1000 + 1000);
          return m ? performance.now() : NaN;
        }
        const e = await p.exit;
        return e.code === 0 ? e.at : NaN;
      }),
    );
    // The sender's own end (UFTP still closes the session after the last completion).
    let tailKilled = false;
    const tail = setTimeout(() => {
      tailKilled = sender.log.running;
      kill(sender);
    }, SENDER_TAIL_MS);
    const senderExit = await sender.exit;
    clearTimeout(tail);
    clearInterval(sampler);
    sampler = null;
    // Daemons (uftpd) are stopped; the others exit by themselves (udp-receiver after --exit-wait, 500 ms).
    for (const p of rx) {
      if (!peer.daemon) await Promise.race([p.exit, sleep(5000)]);
      if (p.log.running) await p.log.stop('SIGTERM', 3000);
    }
    await Promise.all([sender, ...rx].map((p) => p.closed));
    const senderOut = sender.log.all();

    const senderExitS = (senderExit.at - t0) / 1000;
    if (tailKilled) failures.push(`sender still running ${SENDER_TAIL_MS / 1000} s after the last receiver's completion: killed`);
    else if (senderExit.code !== 0) failures.push(`sender exited ${senderExit.code ?? 'on a signal (the timeout)'} after ${senderExitS.toFixed(1)} s: ${lastLine(senderOut)}`);
    const doneS = doneAt.map((at) => (at - t0) / 1000);
    for (let i = 0; i < n; i++) {
      const out = rx[i]?.log.all() ?? '';
      if (Number.isNaN(doneS[i] as number)) {
        failures.push(`r${i + 1}: no completion (${/Dropped by server/.test(out) ? 'dropped by the sender' : lastLine(out)})`);
      }
      const bad = await verify(b, peer.outFile(s, i));
      if (bad) failures.push(`r${i + 1}: ${bad}`);
    }
    const result: RunResult = {
      peer: peer.name,
      n,
      loss,
      rep,
      ok: failures.length === 0,
      lastS: failures.length === 0 ? Math.max(...doneS) : NaN,
      doneS,
      senderExitS,
      senderCode: senderExit.code,
      senderCpuS: b.senderGroup.cpuS() - senderCpu0,
      receiverCpuS: b.receiverGroups.slice(0, n).map((g, i) => g.cpuS() - (receiverCpu0[i] as number)),
      senderPeakMiB: peak,
      resent: peer.resent(senderOut),
      failures: [...failures, ...notes.map((x) => `note: ${x}`)],
      load1,
    };
    if (!result.ok) {
      mkdirSync(b.logDir, { recursive: true });
      const file = join(b.logDir, `${peer.name}-n${n}-loss${loss}-${rep}-${Date.now()}.log`);
      writeFileSync(file, [`== sender`, senderOut, ...rx.map((p, i) => `== r${i + 1}\n${p.log.all()}`)].join('\n'));
    }
    return result;
  } finally {
    if (sampler) clearInterval(sampler);
    for (const t of timers) clearTimeout(t);
    for (const p of [tx, ...rx]) kill(p);
    await Promise.all([tx, ...rx].map((p) => p?.exit));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

// ---- the report ----

const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');
const pct = (x: number | null): string => (x === null || !Number.isFinite(x) ? '-' : `${(x * 100).toFixed(1)} %`);
const verdict = (ok: boolean): string => (ok ? '**met**' : '**NOT met**');

interface Cell {
  runs: RunResult[];
  ok: RunResult[];
  lastS: number;
}

function cellOf(results: RunResult[], peer: PeerName, n: number, loss: number): Cell {
  const runs = results.filter((r) => r.rep !== 'lossy' && r.peer === peer && r.n === n && r.loss === loss);
  const ok = runs.filter((r) => r.ok);
  return { runs, ok, lastS: median(ok.map((r) => r.lastS)) };
}

async function version(pkg: string): Promise<string> {
  try {
    return (await execFileP(program('dpkg-query'), ['-W', '-f', '${Version}', pkg])).stdout.trim() || '?';
  } catch {
    return 'not installed';
  }
}

interface Meta {
  startedAt: Date;
  loadAtStart: number[];
  peers: PeerName[];
  fbSkipped: string | null;
  fbStartup: { wallS: number; cpuS: number } | null;
  logDir: string;
}

async function report(results: RunResult[], meta: Meta): Promise<string> {
  const L: string[] = [];
  const fullRun = meta.peers.length === PEER_NAMES.length && SIZE_MIB >= 512 && [1, 3, 8].every((n) => RECEIVERS.includes(n)) && [0, 2].every((l) => LOSSES.includes(l)) && LOSSY_RUNS >= 20;
  L.push(`## Run ${meta.startedAt.toISOString()}`, '');
  L.push(`\`node --import tsx bench/multicast.ts ${process.argv.slice(2).join(' ')}\` (medians of ${REPS}; peers' order rotated each repetition).`, '');
  if (!fullRun) {
    L.push(`> **Not the issue's run**: ${SIZE_MIB} MiB, receivers ${RECEIVERS.join('/')}, loss ${LOSSES.join('/')} %, peers ${meta.peers.join(', ')}, ${LOSSY_RUNS} lossy runs` +
      `${meta.fbSkipped ? ` (Fleetboot skipped: ${meta.fbSkipped})` : ''}. The full run (512 MiB, 1/3/8 receivers, 0/2 % loss, all four peers, 20 lossy runs) is pending.`, '');
  }
  L.push('### Machine', '');
  L.push(`- CPU: ${cpus()[0]?.model ?? '?'}, nproc ${cpus().length}; RAM ${(totalmem() / 2 ** 30).toFixed(1)} GiB; kernel ${release()}; Node ${process.version}`);
  L.push(`- udpcast ${await version('udpcast')} (udp-sender 20120424); uftp ${await version('uftp')}; Fleetboot ${fleetbootVersion()} (the CLI bundled by esbuild, as compiled code runs)`);
  L.push(`- Load average at the start: ${meta.loadAtStart.map((x) => x.toFixed(2)).join(' ')}, at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')} (2 shared vCPUs; the 1-minute load at each run's start is in "All runs")`);
  if (meta.fbStartup) L.push(`- Fleetboot's start-up (\`multicast send --help\`, same namespace and core): ${f2(meta.fbStartup.wallS)} s wall, ${f2(meta.fbStartup.cpuS)} s CPU, inside its times and its sender CPU below`);
  L.push('');
  L.push('### Setup', '');
  L.push(`${SIZE_MIB} MiB of random bytes on a tmpfs; one lab bridge (veth, no added latency); the sender in its namespace pinned to CPU 0, each receiver in its own namespace, all pinned to CPU 1, writing to the tmpfs. ` +
    'Loss: that share of the UDP packets entering every receiver and the sender is dropped (nftables), so feedback is lost too. ' +
    'Time: the sender\'s start (receivers already up) to the last receiver\'s completion (udp-receiver "Transfer complete.", which it prints after its 500 ms --exit-wait, hence "sender exit" 0.5 s earlier; uftpd\'s RESULT line, Fleetboot\'s receiver exiting 0); every output then compared with the source (size and sha256, not timed); a run counts only when every receiver has the same bytes. ' +
    `Per-receiver MB/s = file MB (${MB.toFixed(1)}) / time to the last receiver. CPU from each process's cgroup (threads and children): sender CPU per MB of the file, receivers' mean per MB. ` +
    `Timeout ${TIMEOUT_S} s a run. UFTP at -R ${UFTP_RATE} kbit/s. The exact command lines are in the header of bench/multicast.ts.`, '');
  L.push('### Results (medians of the runs that succeeded)', '');
  L.push('| receivers | loss | peer | runs ok | time to last receiver (s) | per-receiver MB/s | sender exit (s) | resent | sender CPU (ms/MB) | receiver CPU (ms/MB, mean) | sender peak RSS (MB) |');
  L.push('|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const loss of LOSSES) {
    for (const n of RECEIVERS) {
      for (const p of meta.peers) {
        const c = cellOf(results, p, n, loss);
        if (c.runs.length === 0) continue;
        const resent = c.ok.map((r) => r.resent).filter((x): x is number => x !== null);
        const name = p === 'fleetboot' ? '**fleetboot**' : p;
        L.push(`| ${n} | ${loss} % | ${name} | ${c.ok.length}/${c.runs.length} | ${f2(c.lastS)} | ${f1(MB / c.lastS)} | ${f2(median(c.ok.map((r) => r.senderExitS)))} | ` +
          `${resent.length ? pct(median(resent)) : '-'} | ${f1(median(c.ok.map((r) => (r.senderCpuS * 1000) / MB)))} | ` +
          `${f1(median(c.ok.map((r) => (r.receiverCpuS.reduce((a, x) => a + x, 0) / r.n) * 1000 / MB)))} | ${f1(Math.max(...c.runs.map((r) => r.senderPeakMiB)))} |`);
      }
    }
  }
  L.push('');
  const failed = results.filter((r) => r.failures.length > 0);
  L.push('### Runs where a peer failed (or a note was taken)', '');
  if (failed.length === 0) L.push('None.');
  else {
    L.push('| run | peer | receivers | loss | what happened |', '|---|---|---:|---:|---|');
    for (const r of failed) L.push(`| ${r.rep === 'lossy' ? 'lossy series' : `rep ${r.rep}`} | ${r.peer} | ${r.n} | ${r.loss} % | ${r.failures.join('; ').replace(/\|/g, '\\|')} |`);
    L.push('', `Their full output was kept in ${meta.logDir} on the machine that ran them.`);
  }
  L.push('');

  const lossy = results.filter((r) => r.rep === 'lossy');
  L.push('### Targets', '');
  if (!meta.peers.includes('fleetboot')) {
    L.push(`Pending: no Fleetboot runs${meta.fbSkipped ? ` (${meta.fbSkipped})` : ''}.`, '');
  } else {
    const peersOnly = meta.peers.filter((p) => p !== 'fleetboot');
    for (const loss of [0, 2]) {
      if (!LOSSES.includes(loss) || !RECEIVERS.includes(3)) continue;
      const fb = cellOf(results, 'fleetboot', 3, loss);
      const best = peersOnly.map((p) => ({ p, c: cellOf(results, p, 3, loss) })).filter((x) => x.c.ok.length > 0).sort((a, b) => a.c.lastS - b.c.lastS)[0];
      if (!best || fb.ok.length === 0) {
        L.push(`- 3 receivers, ${loss} % loss: no comparison (${fb.ok.length === 0 ? 'no Fleetboot run succeeded' : 'no peer run succeeded'})`);
        continue;
      }
      const ratio = fb.lastS / best.c.lastS;
      const pairs = fb.ok.flatMap((r) => {
        const q = best.c.ok.find((x) => x.rep === r.rep);
        return q ? [q.lastS / r.lastS] : [];
      });
      const pr = pairedRatio(pairs);
      const interval = Number.isNaN(pr.low) ? '' : `; paired by repetition: ${f2(1 / pr.mean)}× (95 % interval ${f2(1 / pr.high)}-${f2(1 / pr.low)}×, ${pr.n} pairs)`;
      L.push(`- 3 receivers, ${loss} % loss: Fleetboot ${f2(fb.lastS)} s vs the best peer (${best.p}) ${f2(best.c.lastS)} s = ${f2(ratio)}× ≤ 0.8× → ${verdict(ratio <= 0.8)}${interval}`);
    }
    for (const loss of LOSSES) {
      if (!RECEIVERS.includes(1) || !RECEIVERS.includes(8)) break;
      const one = cellOf(results, 'fleetboot', 1, loss);
      const eight = cellOf(results, 'fleetboot', 8, loss);
      const r = one.lastS / eight.lastS;
      const line = `per-receiver throughput at 8 receivers ${f1(MB / eight.lastS)} MB/s vs 1 receiver ${f1(MB / one.lastS)} MB/s = ${f2(r)}× ≥ 0.8×`;
      L.push(`- ${loss} % loss, ${line} → ${loss === 0 ? verdict(r >= 0.8) : r >= 0.8 ? 'at or above 0.8× (the target is stated for the clean case)' : 'below 0.8× (the target is stated for the clean case)'}`);
    }
    if (LOSSY_RUNS > 0) {
      const identical = lossy.filter((r) => r.ok).length;
      L.push(`- Lossy runs (2 % loss, 3 receivers), byte-identical at every receiver: ${identical} of ${lossy.length} (the target: 20 of 20; median time ${f2(median(lossy.filter((r) => r.ok).map((r) => r.lastS)))} s) → ${verdict(lossy.length >= 20 && identical === lossy.length)}`);
    }
    const fbRuns = results.filter((r) => r.peer === 'fleetboot');
    L.push(`- CPU per MB recorded (table above): Fleetboot's sender ${f1(median(fbRuns.filter((r) => r.ok).map((r) => (r.senderCpuS * 1000) / MB)))} ms/MB, receivers ${f1(median(fbRuns.filter((r) => r.ok).map((r) => (r.receiverCpuS.reduce((a, x) => a + x, 0) / r.n) * 1000 / MB)))} ms/MB (medians over all its runs)`);
    const peak = Math.max(...fbRuns.map((r) => r.senderPeakMiB));
    L.push(`- Sender peak RSS under 200 MB: ${f1(peak)} MB (largest over Fleetboot's runs) → ${verdict(peak > 0 && peak < 200)}`);
    L.push('');
  }
  L.push('All runs (time to the last receiver in s, FAIL when a receiver lacked the bytes; @ 1-min load): ' +
    results.map((r) => `${r.rep === 'lossy' ? 'lossy' : `rep${r.rep}`} ${r.peer}/${r.n}/${r.loss}% ${r.ok ? f2(r.lastS) : 'FAIL'}@${r.load1.toFixed(1)}`).join('; '), '');
  return L.join('\n');
}

// ---- main ----

async function main(): Promise<void> {
  FB = await bundledCli();
  if (!(await labAvailable())) throw new Error('the benchmark needs root and ip netns (a lab)');
  const cleanups = cleanupStack();
  try {
    const startedAt = new Date();
    const loadAtStart = loadavg();
    const needs: ProgramName[] = ['nft', 'taskset', 'sha256sum', 'mount', 'umount', 'dd'];
    if (PEERS_ASKED.some((p) => p.startsWith('udpcast'))) needs.push('udp-sender', 'udp-receiver');
    if (PEERS_ASKED.includes('uftp')) needs.push('uftp', 'uftpd');
    for (const tool of needs) {
      await execFileP(program('sh'), ['-c', `command -v ${tool}`]).catch(() => {
        throw new Error(`${tool} is missing: run bash scripts/install-deps.sh --with-test`);
      });
    }
    const maxN = Math.max(...RECEIVERS, LOSSY_RUNS > 0 ? 3 : 1);
    const needMiB = SIZE_MIB * (1 + maxN) + 64;
    const availMiB = Number(/^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1024;
    if (availMiB < needMiB + 1024) throw new Error(`the tmpfs needs ${needMiB} MiB (the file and ${maxN} copies) and 1 GiB to spare: ${availMiB.toFixed(0)} MiB available`);

    // The file and every receiver's copy on a tmpfs of our own.
    const work = mkdtempSync(join(tmpdir(), 'fb-mcast-bench-'));
    cleanups.push(() => rmSync(work, { recursive: true, force: true }));
    await execFileP(program('mount'), ['-t', 'tmpfs', '-o', `size=${needMiB}m,mode=0755`, 'fb-mcast-bench', work]);
    cleanups.push(async () => void (await execFileP(program('umount'), [work])));
    const src = join(work, 'image.bin');
    log(`${SIZE_MIB} MiB of random bytes on a tmpfs at ${work}`);
    await execFileP(program('dd'), ['if=/dev/urandom', `of=${src}`, 'bs=1M', `count=${SIZE_MIB}`, 'status=none']);
    const srcSum = await sha256(src);
    // Made on the first failed run.
    const logDir = join(tmpdir(), `fb-mcast-logs-${startedAt.toISOString().replace(/[:.]/g, '-')}`);

    const lab = await Lab.create({ subnet: SUBNET });
    cleanups.push(() => lab.destroy());
    const sender = await lab.addHost('snd', SENDER_IP, { broadcast: true });
    const receivers: LabHost[] = [];
    for (let i = 0; i < maxN; i++) receivers.push(await lab.addHost(`r${i + 1}`, receiverIp(i), { broadcast: true }));
    const senderGroup = CpuGroup.create(`fbmc${lab.id}-snd`);
    cleanups.push(() => senderGroup.remove());
    const receiverGroups = receivers.map((h) => CpuGroup.create(`fbmc${lab.id}-${h.name}`));
    cleanups.push(() => receiverGroups.forEach((g) => g.remove()));
    const b: Bench = { lab, sender, receivers, senderGroup, receiverGroups, work, src, srcSum, logDir };

    // Fleetboot's multicast commands exist only once its CLI has them.
    let peers = PEERS_ASKED as PeerName[];
    let fbSkipped: string | null = null;
    let fbStartup: Meta['fbStartup'] = null;
    if (peers.includes('fleetboot')) {
      const cpu0 = senderGroup.cpuS();
      const t0 = performance.now();
      const help = start('fleetboot --help', sender.netns, 0, senderGroup, [...FB, 'multicast', 'send', '--help']);
      const end = await Promise.race([help.exit, sleep(60_000).then(() => null)]);
      await help.log.stop('SIGKILL', 1000);
      if (end && /--receivers/.test(help.log.all())) fbStartup = { wallS: (end.at - t0) / 1000, cpuS: senderGroup.cpuS() - cpu0 };
      else {
        fbSkipped = "this tree's CLI has no `fleetboot multicast send` yet";
        log(`fleetboot: ${fbSkipped} (\`fleetboot multicast send --help\` exited ${end?.code ?? 'only at the 60 s timeout'} and lists no --receivers); its runs are skipped`);
        peers = peers.filter((p) => p !== 'fleetboot');
      }
    }
    if (peers.length === 0) throw new Error('no peer left to run');

    const results: RunResult[] = [];
    const record = (r: RunResult): void => {
      results.push(r);
      const what = r.ok ? `${f2(r.lastS)} s (${f1(MB / r.lastS)} MB/s per receiver), sender CPU ${f2(r.senderCpuS)} s, peak ${f1(r.senderPeakMiB)} MB` : `FAILED: ${r.failures.join('; ')}`;
      log(`${r.rep === 'lossy' ? 'lossy' : `rep ${r.rep}`} ${r.peer} to ${r.n} at ${r.loss} %: ${what}`);
    };
    const setLoss = async (loss: number): Promise<void> => {
      for (const h of [sender, ...receivers]) {
        await lab.clearDrops(h.name);
        if (loss > 0) await lab.dropPercent(h.name, loss);
      }
    };
    for (let rep = 1; rep <= REPS; rep++) {
      for (const loss of LOSSES) {
        await setLoss(loss);
        for (const n of RECEIVERS) {
          const order = peers.map((_, i) => peers[(i + rep - 1) % peers.length] as PeerName);
          for (const p of order) record(await runOnce(b, PEERS[p], n, loss, rep));
        }
      }
    }
    if (LOSSY_RUNS > 0 && peers.includes('fleetboot')) {
      await setLoss(2);
      for (let i = 0; i < LOSSY_RUNS; i++) record(await runOnce(b, PEERS.fleetboot, 3, 2, 'lossy'));
    }
    await setLoss(0);

    const text = await report(results, { startedAt, loadAtStart, peers, fbSkipped, fbStartup, logDir });
    appendResults(OUT, 'Multicast imaging benchmark: Fleetboot vs udpcast vs UFTP (issue 11)', text);
  } finally {
    await cleanups.run();
  }
}

await main();
