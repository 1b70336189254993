/**
 * What the cluster benchmarks share (bench/cluster-store.ts, bench/replication.ts):
 * a throwaway PostgreSQL in a lab namespace and Fleetboot servers in theirs,
 * each pinned to a CPU, and the description of the machine they ran on.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { program, type Argv, type ProgramName } from '../src/lib/programs.js';
import type { PostgresServer } from '../src/store/test-postgres.js';
import type { Lab } from '../test/lab/lab.js';
import { ProcessLog } from '../test/lab/bootenv/services.js';
import { startLabPostgres } from '../test/lab/postgres.js';
import { sleep } from './lib.js';

export const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const execFileP = promisify(execFile);

/** `--name value` from the command line, or `def`. */
export function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? (process.argv[i + 1] as string) : def;
}

export const log = (msg: string): void => void process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);

/**
 * A database `fleetboot` (C collation) on a PostgreSQL started in `host`'s namespace, listening on its
 * address for the lab's /24: `url` for the lab's servers (TCP), `localUrl` for the benchmark itself (its socket).
 */
export async function labPostgres(lab: Lab, host: string, o: { cpus: string; parentDir?: string; synchronousCommit?: boolean }): Promise<{ server: PostgresServer; url: string; localUrl: string }> {
  // Benchmarks measure PostgreSQL as it is run: fsync, synchronous commits and full-page writes on.
  const { server, url, localUrl } = await startLabPostgres(lab, host, { fsync: true, cpus: o.cpus, ...(o.synchronousCommit !== undefined ? { synchronousCommit: o.synchronousCommit } : {}), ...(o.parentDir ? { parentDir: o.parentDir } : {}) });
  return { server, url, localUrl };
}

export interface NodeProcess {
  log: ProcessLog;
  /** The server's node process (ip netns exec and taskset exec). */
  pid: number;
  dataDir: string;
  ip: string;
  httpPort: number;
  httpsPort: number | null;
}

export interface StartNodeOptions {
  dataDir: string;
  ip: string;
  cpu: string;
  /** A PostgreSQL URL; SQLite in the data directory without. */
  database?: string;
  nodeName?: string;
  /** Written as the --config file. */
  config?: Record<string, unknown>;
  /** serve's flags beyond the common ones. */
  extra?: string[];
  httpPort?: number;
  /** null: --no-https. */
  httpsPort?: number | null;
  logLevel?: string;
}

/** `fleetboot serve` (from the sources) in `host`'s namespace, pinned to `o.cpu`, with a stand-in boot environment (so boot decisions hand out tasks). */
export async function startNode(lab: Lab, host: string, o: StartNodeOptions): Promise<NodeProcess> {
  const h = lab.host(host);
  const httpPort = o.httpPort ?? 8080;
  const httpsPort = o.httpsPort === undefined ? 8443 : o.httpsPort;
  mkdirSync(join(o.dataDir, 'bootenv'), { recursive: true, mode: 0o700 });
  writeFileSync(join(o.dataDir, 'bootenv', 'vmlinuz'), Buffer.alloc(4096, 1));
  writeFileSync(join(o.dataDir, 'bootenv', 'initrd.img'), 'initrd');
  const cfg = join(o.dataDir, '..', `${host}-fleetboot.json`);
  writeFileSync(cfg, JSON.stringify(o.config ?? {}));
  rmSync(join(o.dataDir, 'server.json'), { force: true });
  const argv: Argv = [
    'taskset', '-c', o.cpu, process.execPath, '--import', 'tsx', join(repo, 'src/cli/main.ts'), 'serve', '--allow-root', '--config', cfg,
    '--data-dir', o.dataDir, '--interface', h.ifname, '--server-ip', o.ip, '--http-port', String(httpPort),
    ...(httpsPort === null ? ['--no-https'] : ['--https-port', String(httpsPort)]),
    '--no-tftp', '--log-format', 'json', '--log-level', o.logLevel ?? 'warn',
    ...(o.database ? ['--database', o.database] : []),
    ...(o.nodeName ? ['--node-name', o.nodeName] : []),
    ...(o.extra ?? []),
  ];
  const p = new ProcessLog(`fleetboot(${host})`, lab.spawnIn(h.netns, argv, { cwd: repo }));
  const base = `http://${o.ip}:${httpPort}/`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (!p.running) throw new Error(`fleetboot serve in ${host} exited during start:\n${p.tail(60)}`);
    const code = await lab.nsExec(h.netns, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', base]).catch(() => '000');
    if (code.trim() !== '000' && existsSync(join(o.dataDir, 'server.json'))) break;
    if (Date.now() > deadline) throw new Error(`fleetboot serve in ${host} was not ready within 90 s:\n${p.tail(60)}`);
    await sleep(300);
  }
  const pid = p.child.pid as number;
  const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  if (comm !== 'node') throw new Error(`pid ${pid} is ${comm}, not the server's node process`);
  return { log: p, pid, dataDir: o.dataDir, ip: o.ip, httpPort, httpsPort };
}

/** CPU time (user + system, seconds) of a process, 0 when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/** The first line of a program's version output ('?' when it fails). */
export async function version(cmd: ProgramName, args: string[]): Promise<string> {
  try {
    const r = await execFileP(program(cmd), args);
    return (r.stdout + r.stderr).split('\n')[0]?.trim() ?? '?';
  } catch (err) {
    return ((err as { stderr?: string }).stderr ?? '').split('\n')[0]?.trim() || '?';
  }
}

/** The machine, for the results file: CPU, cores, memory, kernel, Node, the disk of `dir`, and the load. */
export async function machine(dir: string, loadAtStart: number[]): Promise<string[]> {
  const fs = await execFileP(program('findmnt'), ['-n', '-o', 'SOURCE,FSTYPE', '-T', dir]).then((r) => r.stdout.trim(), () => '?');
  return [
    `- CPU: ${cpus()[0]?.model ?? '?'}, nproc ${cpus().length}; RAM ${(totalmem() / 2 ** 30).toFixed(1)} GiB; kernel ${release()}; Node ${process.version}`,
    `- Data directories under ${dir} (${fs})`,
    `- Load average (1/5/15 min) at the start: ${loadAtStart.map((x) => x.toFixed(2)).join(' ')}, at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`,
  ];
}
