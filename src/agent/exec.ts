/**
 * Running the external tools (sfdisk, blkid, partclone, zstd, ...): a short
 * command with its output collected, and a watched long-running child whose
 * exit and stderr tail feed an error message.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { program, type ProgramName } from '../lib/programs.js';
import { AgentError } from './errors.js';

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run a command to its end, feeding `input` on stdin. Never throws for a non-zero exit (see runOk). */
export function runCommand(cmd: ProgramName, args: readonly string[], opts: { input?: string; signal?: AbortSignal } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program(cmd), args, { stdio: ['pipe', 'pipe', 'pipe'], signal: opts.signal, env: toolEnv() });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') reject(new AgentError(`${cmd} is not installed (not found in PATH)`));
      else reject(e);
    });
    child.on('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.on('error', () => undefined); // the tool may exit without reading its input
    child.stdin.end(opts.input ?? '');
  });
}

/** runCommand that throws an AgentError with the tool's last stderr line on a non-zero exit. */
export async function runOk(cmd: ProgramName, args: readonly string[], opts: { input?: string; signal?: AbortSignal } = {}): Promise<string> {
  const r = await runCommand(cmd, args, opts);
  if (r.code !== 0) throw new AgentError(`${cmd} ${args.join(' ')}: ${exitText(r.code, r.signal)}${lastLines(r.stderr || r.stdout, 2)}`);
  return r.stdout;
}

/** Environment for the tools: C locale so their output parses the same everywhere. */
export function toolEnv(): NodeJS.ProcessEnv {
  return { ...process.env, LC_ALL: 'C', LANG: 'C' };
}

export function exitText(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exited with code ${String(code)}`;
}

/** ": last line(s)" of a tool's output (partclone paints progress with \r), or "" when empty. */
export function lastLines(text: string, n: number): string {
  const lines = text
    .replace(/\x1b\[[0-9;]*[A-Za-z]/g, '')
    .split(/[\r\n]+/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const tail = lines.slice(-n).join(' / ');
  return tail ? `: ${tail.slice(0, 400)}` : '';
}

/** A spawned long-running child: its exit as a promise and the tail of its stderr. */
export class Watched {
  readonly child: ChildProcess;
  readonly name: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private tail = '';
  private allStderr = '';
  private spawnError: Error | null = null;
  private done = false;

  constructor(cmd: ProgramName, args: readonly string[], stdio: StdioOptions, opts: { keepStderr?: boolean } = {}) {
    this.name = cmd;
    this.child = spawn(program(cmd), args, { stdio, env: toolEnv() });
    this.exited = new Promise((resolve) => {
      this.child.on('error', (e: NodeJS.ErrnoException) => {
        this.spawnError = e.code === 'ENOENT' ? new AgentError(`${cmd} is not installed (not found in PATH)`) : e;
      });
      this.child.on('close', (code, signal) => {
        this.done = true;
        resolve({ code, signal });
      });
    });
    this.child.stderr?.on('data', (b: Buffer) => {
      const s = b.toString('utf8');
      this.tail = (this.tail + s).slice(-4096);
      if (opts.keepStderr) this.allStderr = (this.allStderr + s).slice(-65536);
    });
  }

  /** Everything the child wrote on stderr (last 64 KiB) when keepStderr was set. */
  get stderrText(): string {
    return this.allStderr;
  }

  get finished(): boolean {
    return this.done;
  }

  /** Wait for the exit; returns null on success, else a message "<name> exited with code N: <stderr tail>". */
  async failure(): Promise<string | null> {
    const { code, signal } = await this.exited;
    if (this.spawnError) return this.spawnError.message;
    if (code === 0) return null;
    return `${this.name} ${exitText(code, signal)}${lastLines(this.tail, 2)}`;
  }

  kill(): void {
    if (!this.done) this.child.kill('SIGKILL');
  }
}
