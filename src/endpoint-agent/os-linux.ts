/**
 * The Linux side of the agent (AgentOs, os.ts):
 * - reboot: `systemctl reboot --message=...` (then plain `systemctl reboot`);
 * - host name: `hostnamectl set-hostname NAME`; without systemd-hostnamed,
 *   /etc/hostname written atomically and `hostname NAME`;
 * - process trees: kill-tree.ts (/proc parent links and the process group);
 * - identity: identity.ts; inventory: the imaging agent's collectInventory().
 *
 * Test and site hooks: `rebootCommand` and `hostnameCommand` (argv arrays,
 * `run --reboot-command`, `--hostname-command`) replace the real commands,
 * the host name appended to the latter, so lab tests never reboot or rename
 * the machine they run on; a site may use them for its own procedure.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { collectInventory } from '../agent/inventory.js';
import type { AgentIdentity } from '../model/endpoint.js';
import type { Inventory } from '../model/manifest.js';
import { linuxIdentity } from './identity.js';
import { killTreeLinux } from './kill-tree.js';
import type { AgentLog } from './log.js';
import type { AgentOs } from './os.js';
import { atomicWrite } from './state.js';
import { TailBuffer } from './tail.js';

export interface CommandResult {
  code: number | null;
  signal: string | null;
  output: string;
}

/** Run argv (no shell), stdin closed; resolves with its exit and the tail of its output. Rejects when it cannot start. */
export function runCommand(argv: readonly string[], timeoutMs = 60_000): Promise<CommandResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined || cmd === '') return Promise.reject(new TypeError('runCommand: argv must name a program'));
  return new Promise((resolve, reject) => {
    // runs the machine's own program: systemctl, hostnamectl, hostname, or the site's --reboot-command/--hostname-command
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], shell: false });
    const tail = new TailBuffer(2048);
    child.stdout.on('data', (c: Buffer) => tail.push(c));
    child.stderr.on('data', (c: Buffer) => tail.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output: tail.text().trim() });
    });
  });
}

function failure(argv: readonly string[], r: CommandResult): string {
  const how = r.signal ? `was killed by ${r.signal}` : `exited with ${r.code}`;
  const out = r.output.split('\n').pop() ?? '';
  return `${argv.join(' ')} ${how}${out ? `: ${out.slice(0, 300)}` : ''}`;
}

export interface LinuxOsOptions {
  agentVersion: string;
  log: AgentLog;
  /** Root of /sys, /proc and /etc for identity and inventory (tests; default '/'). */
  root?: string;
  /** Instead of systemctl reboot (test/site hook). */
  rebootCommand?: readonly string[] | null;
  /** Instead of hostnamectl; the name is appended (test/site hook). */
  hostnameCommand?: readonly string[] | null;
  /** Where /proc is for killTree (default '/proc'). */
  procRoot?: string;
}

export class LinuxOs implements AgentOs {
  readonly name = 'linux';
  private readonly opts: LinuxOsOptions;
  private readonly root: string;

  constructor(opts: LinuxOsOptions) {
    this.opts = opts;
    this.root = opts.root ?? '/';
  }

  async reboot(reason: string): Promise<void> {
    const { log, rebootCommand } = this.opts;
    if (rebootCommand && rebootCommand.length > 0) {
      log.info('rebooting through the reboot hook', { reason, command: rebootCommand });
      const r = await runCommand(rebootCommand);
      if (r.code !== 0) throw new Error(failure(rebootCommand, r));
      return;
    }
    log.info('rebooting', { reason });
    const withMessage = ['systemctl', 'reboot', `--message=fleetboot-agent: ${reason}`.slice(0, 200)];
    const r = await runCommand(withMessage).catch((err: unknown) => ({ code: null, signal: null, output: String(err) }) satisfies CommandResult);
    if (r.code === 0) return;
    const plain = ['systemctl', 'reboot'];
    const r2 = await runCommand(plain);
    if (r2.code !== 0) throw new Error(failure(plain, r2));
  }

  async setHostname(name: string): Promise<string> {
    const { hostnameCommand } = this.opts;
    if (hostnameCommand && hostnameCommand.length > 0) {
      const argv = [...hostnameCommand, name];
      const r = await runCommand(argv);
      if (r.code !== 0) throw new Error(failure(argv, r));
      return `host name set to ${name} (hostname hook)`;
    }
    const argv = ['hostnamectl', 'set-hostname', name];
    let first: string;
    try {
      const r = await runCommand(argv);
      if (r.code === 0) return `host name set to ${name} (hostnamectl)`;
      first = failure(argv, r);
    } catch (err) {
      first = (err as Error).message;
    }
    // No systemd-hostnamed (containers, minimal systems): the file and the kernel's name.
    atomicWrite(join(this.root, 'etc/hostname'), `${name}\n`, 0o644);
    const r = await runCommand(['hostname', name]);
    if (r.code !== 0) throw new Error(`${first}; then ${failure(['hostname', name], r)}`);
    return `host name set to ${name} (/etc/hostname and hostname; hostnamectl failed: ${first})`;
  }

  killTree(pid: number, graceMs: number): Promise<number> {
    return killTreeLinux(pid, graceMs, this.opts.procRoot === undefined ? {} : { procRoot: this.opts.procRoot });
  }

  identity(): AgentIdentity {
    return linuxIdentity(this.root, this.opts.agentVersion);
  }

  inventory(): Inventory {
    return collectInventory(this.root);
  }
}
