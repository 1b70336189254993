/** The real CLI from the sources, for the CLI tests: run commands, start `serve` on loopback. */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { program, type Argv } from '../src/lib/programs.js';

const execFileP = promisify(execFile);
export const ROOT = new URL('..', import.meta.url).pathname;
export const CLI: Argv = ['node', '--import', 'tsx', join(ROOT, 'src/cli/main.ts')];

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Run `fleetboot ARGS` to its end (120 s at most: several CLIs at once on a loaded 2-core VM take seconds each).
 * `env` is added to this process's environment.
 */
export async function cli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  try {
    const { stdout, stderr } = await execFileP(program(CLI[0]), [...CLI.slice(1), ...args], { cwd: ROOT, timeout: 120_000, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Poll `check` every 100 ms; throws when `child` exits first or after `ms`. */
export async function waitUntil(check: () => boolean, what: string, ms: number, child?: ChildProcess): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (child && child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} while waiting for ${what}`);
    if (Date.now() > until) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * `fleetboot serve` on 127.0.0.1 (HTTP and HTTPS on port 0) with `dataDir`, plus `extra`
 * flags (default: no DHCP, no TFTP); its stdout and stderr are collected
 * (`log`: both, as they came; `stdout`, `stderr`: each).
 */
export function spawnServe(dataDir: string, extra: string[] = ['--dhcp', 'off', '--no-tftp']): { server: ChildProcess; log: () => string; stdout: () => string; stderr: () => string } {
  let log = '';
  let out = '';
  let err = '';
  const server = spawn(program(CLI[0]), [...CLI.slice(1), 'serve', '--allow-root', '--server-ip', '127.0.0.1', '--http-host', '127.0.0.1', '--http-port', '0', '--https-host', '127.0.0.1', '--https-port', '0', ...extra, '--data-dir', dataDir], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout?.on('data', (b: Buffer) => {
    log += b.toString();
    out += b.toString();
  });
  server.stderr?.on('data', (b: Buffer) => {
    log += b.toString();
    err += b.toString();
  });
  return { server, log: () => log, stdout: () => out, stderr: () => err };
}

/** Assert a run exited 0 (the message shows its output); returns it. */
export function ok(r: CliRun, what: string): CliRun {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** Assert a run exited 1 with stderr matching; returns it. */
export function fails(r: CliRun, what: string, stderr: RegExp): CliRun {
  assert.equal(r.code, 1, `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.match(r.stderr, stderr, what);
  return r;
}
