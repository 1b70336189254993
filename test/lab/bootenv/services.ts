/**
 * The lab's server-side processes for boot tests and the demo, each started
 * inside a lab namespace with its output captured:
 *
 * - startExistingDhcp(): dnsmasq as the site's existing DHCP server, handing
 *   out addresses only (no PXE options, no boot file);
 * - startLabHttp(): lab-http.ts, which records the test initrd's callbacks
 *   (and can serve files, standing in for a boot server's HTTP side);
 * - startFleetboot(): `fleetboot serve` from the sources (tsx), and
 *   fleetbootCli() to run CLI commands inside its namespace.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Argv } from '../../../src/lib/programs.js';
import type { Lab } from '../lab.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Collects a child's stdout+stderr (bounded) and lets callers wait for a line. */
export class ProcessLog {
  private text = '';
  private readonly waiters = new Set<() => void>();
  exitCode: number | null | undefined = undefined;

  constructor(
    readonly label: string,
    readonly child: ChildProcess,
  ) {
    for (const s of [child.stdout, child.stderr]) {
      s?.setEncoding('utf8');
      s?.on('data', (d: string) => this.append(d));
    }
    child.on('exit', (code, signal) => {
      this.exitCode = code;
      this.append(`\n[${label} exited: ${code ?? signal}]\n`);
    });
  }

  private append(d: string): void {
    this.text += d;
    // Keep the last 4 MiB: plenty for one test, bounded for a long demo.
    if (this.text.length > 4 << 20) this.text = this.text.slice(-(2 << 20));
    for (const w of [...this.waiters]) w();
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  all(): string {
    return this.text;
  }

  tail(lines = 40): string {
    return this.text.split('\n').slice(-lines).join('\n');
  }

  /** Resolve with the first match of `re` in the output (searching from `from`), or null on timeout / exit. */
  waitFor(re: RegExp, timeoutMs: number, from = 0): Promise<RegExpExecArray | null> {
    return new Promise((res) => {
      const check = (): boolean => {
        const m = re.exec(this.text.slice(from));
        if (m) {
          done(m);
          return true;
        }
        if (!this.running) {
          done(null);
          return true;
        }
        return false;
      };
      const done = (v: RegExpExecArray | null): void => {
        clearTimeout(timer);
        this.waiters.delete(onData);
        res(v);
      };
      const onData = (): void => void check();
      const timer = setTimeout(() => done(null), timeoutMs);
      this.waiters.add(onData);
      check();
    });
  }

  /** Send `signal` (default SIGTERM) and wait until the process is gone (SIGKILL after `graceMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }

  /** Current length: pass as `from` to waitFor() to look only at what comes later. */
  mark(): number {
    return this.text.length;
  }
}

export interface DhcpServer {
  log: ProcessLog;
  range: [string, string];
}

/**
 * dnsmasq as the site's ordinary DHCP server: addresses only, no PXE
 * options and no boot file (no --dhcp-boot, --pxe-service or --enable-tftp;
 * dnsmasq then sends no siaddr/file and no option 43/60/66/67).
 */
export async function startExistingDhcp(lab: Lab, host: string, workDir: string): Promise<DhcpServer> {
  const h = lab.host(host);
  const range: [string, string] = [`${lab.subnet}.100`, `${lab.subnet}.199`];
  const child = lab.spawnIn(h.netns, [
    'dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', '--pid-file=',
    `--dhcp-leasefile=${join(workDir, `dnsmasq-${host}.leases`)}`,
    `--interface=${h.ifname}`, '--bind-interfaces',
    `--dhcp-range=${range[0]},${range[1]},255.255.255.0,1h`,
    '--dhcp-authoritative', '--log-dhcp', '--log-facility=-',
  ]);
  const log = new ProcessLog(`dnsmasq(${host})`, child);
  const ok = await log.waitFor(/DHCP, IP range|started, version/, 5000);
  if (!ok) throw new Error(`dnsmasq (existing DHCP) did not start:\n${log.tail()}`);
  return { log, range };
}

export interface Callback {
  mac: string;
  ip: string;
  marker: string;
  remote: string;
  t: number;
}

export interface LabHttp {
  log: ProcessLog;
  url: string;
  callbacks: Callback[];
  /** Resolve with the first callback from `mac` (lower-case aa:bb:..), or null on timeout. */
  waitForCallback(mac: string, timeoutMs: number): Promise<Callback | null>;
}

/** lab-http.ts inside a namespace: records initrd callbacks at /ran, optionally serves `root`. */
export async function startLabHttp(lab: Lab, host: string, port: number, root?: string): Promise<LabHttp> {
  const h = lab.host(host);
  const argv: Argv = ['node', '--import', 'tsx', join(REPO, 'test/lab/bootenv/lab-http.ts'), '--host', h.ip, '--port', String(port)];
  if (root) argv.push('--root', root);
  const log = new ProcessLog(`lab-http(${host})`, lab.spawnIn(h.netns, argv, { cwd: REPO }));
  if (!(await log.waitFor(/"event":"listening"/, 15_000))) throw new Error(`lab-http did not start:\n${log.tail()}`);
  const callbacks: Callback[] = [];
  const parse = (): void => {
    callbacks.length = 0;
    for (const line of log.all().split('\n')) {
      if (!line.includes('"event":"callback"')) continue;
      try {
        const o = JSON.parse(line) as Record<string, unknown>;
        callbacks.push({ mac: String(o.mac), ip: String(o.ip), marker: String(o.marker), remote: String(o.remote), t: Number(o.t) });
      } catch {
        /* partial line */
      }
    }
  };
  const http: LabHttp = {
    log,
    url: `http://${h.ip}:${port}`,
    callbacks,
    async waitForCallback(mac, timeoutMs) {
      const re = new RegExp(`"event":"callback"[^\\n]*"mac":"${mac.toLowerCase()}"`);
      const m = await log.waitFor(re, timeoutMs);
      parse();
      return m ? (callbacks.find((c) => c.mac === mac.toLowerCase()) ?? null) : null;
    },
  };
  return http;
}

export interface Fleetboot {
  log: ProcessLog;
  baseUrl: string;
  dataDir: string;
}

export interface FleetbootOptions {
  dataDir: string;
  serverIp: string;
  httpPort?: number;
  configFile?: string;
  /** Extra `serve` flags. */
  extra?: string[];
  /** How long the start may take (default 30 s). */
  readyTimeoutMs?: number;
}

/** `fleetboot serve` from the sources (no build needed), inside a lab host's namespace. */
export async function startFleetboot(lab: Lab, host: string, o: FleetbootOptions): Promise<Fleetboot> {
  const h = lab.host(host);
  const port = o.httpPort ?? 8080;
  const argv: Argv = ['node', '--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'serve', '--allow-root',
    '--data-dir', o.dataDir, '--interface', h.ifname, '--server-ip', o.serverIp, '--http-port', String(port), '--dhcp', 'proxy'];
  if (o.configFile) argv.push('--config', o.configFile);
  if (o.extra) argv.push(...o.extra);
  // A server.json left by a killed server (kill -9 tests) must not count as ready.
  rmSync(join(o.dataDir, 'server.json'), { force: true });
  const log = new ProcessLog(`fleetboot(${host})`, lab.spawnIn(h.netns, argv, { cwd: REPO }));
  const baseUrl = `http://${o.serverIp}:${port}`;
  // Ready when it has written server.json (the last step of its start, after
  // DHCP and TFTP are listening and any start-up DHCP probe is done) and its
  // HTTP side answers inside the namespace.
  const readyMs = o.readyTimeoutMs ?? 30_000;
  const deadline = Date.now() + readyMs;
  for (;;) {
    if (!log.running) throw new Error(`fleetboot serve exited during start:\n${log.tail(60)}`);
    const up = await lab.nsExec(h.netns, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', `${baseUrl}/`]).then(
      (code) => code.trim() !== '000',
      () => false,
    );
    if (up && existsSync(join(o.dataDir, 'server.json'))) break;
    if (Date.now() > deadline) throw new Error(`fleetboot serve was not ready (HTTP on ${baseUrl} and server.json) within ${readyMs / 1000} s:\n${log.tail(60)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  return { log, baseUrl, dataDir: o.dataDir };
}

/** Run `fleetboot ARGS --data-dir DIR` (from the sources) inside the server's namespace; returns stdout. */
export async function fleetbootCli(lab: Lab, host: string, dataDir: string, args: string[]): Promise<string> {
  return lab.nsExec(lab.host(host).netns, ['env', '-C', REPO, 'node', '--import', 'tsx', join(REPO, 'src/cli/main.ts'), ...args, '--data-dir', dataDir]);
}

/** Fleetboot's JSON log lines, parsed (other and partial lines are skipped). */
export function logEvents(fb: Fleetboot): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of fb.log.all().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o: unknown = JSON.parse(line);
      if (typeof o === 'object' && o !== null) out.push(o as Record<string, unknown>);
    } catch {
      /* partial line */
    }
  }
  return out;
}

/** A MAC in any notation (aa:bb…, aa-bb…) as bare lower-case hex, for comparing log fields. */
export const macHex = (mac: unknown): string => String(mac ?? '').toLowerCase().replace(/[^0-9a-f]/g, '');
