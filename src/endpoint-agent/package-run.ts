/**
 * Running a signed package (WorkItem kind 'package'):
 *
 * 1. The manifest's Ed25519 signature is checked with the server's package
 *    key over packageSigningBytes(manifest): `bad-signature`, nothing runs.
 * 2. Each file is downloaded into a fresh private run directory
 *    (runs/<workId>.d, 0700), hashed while it streams; more bytes than the
 *    manifest's size stop the download. Any size or sha256 difference:
 *    `hash-mismatch` naming the file and both hashes, the directory is
 *    removed, nothing runs.
 * 3. `beforeStart` (the caller writes the run marker) runs before the spawn.
 * 4. argv[0] with argv.slice(1): no shell, cwd the run directory, stdin
 *    closed, its own process group. A bare argv[0] that names one of the
 *    package's files runs that file (./name), never a program of the same
 *    name found on PATH.
 * 5. The last OUTPUT_TAIL_BYTES of stdout and of stderr are kept.
 * 6. After timeoutSeconds the whole tree is killed (AgentOs.killTree: SIGTERM,
 *    SIGKILL after the grace): `timeout`.
 * 7. Exit code in successCodes ([0] when the list is empty): succeeded; in rebootCodes: succeeded with
 *    rebootRequested; else failed; a signal: failed, naming it.
 *
 * Processes the command leaves behind after it exits normally are not
 * killed (an installer may start a service); their hold on the output pipes
 * is cut 2 s after the exit.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, rmSync, writeSync, constants } from 'node:fs';
import { join } from 'node:path';
import { ed25519PublicKey, OUTPUT_TAIL_BYTES, packageSigningBytes, verifySignature, type PackageManifest, type SignedPackage, type WorkResult } from '../model/endpoint.js';
import { RequestError } from './client.js';
import type { AgentLog } from './log.js';
import { TailBuffer } from './tail.js';

export const KILL_GRACE_MS = 5000;
const DOWNLOAD_ATTEMPTS = 3;
const CLOSE_AFTER_EXIT_MS = 2000;

/** A result with the fields of an outcome where nothing ran. */
export function resultOf(status: WorkResult['status'], message: string, extra: Partial<WorkResult> = {}): WorkResult {
  return { status, exitCode: null, signal: null, durationMs: 0, stdout: '', stderr: '', message: message.replace(/[\r\n]+/g, ' ').slice(0, 2000), rebootRequested: false, inventory: null, ...extra };
}

export interface PackageRunOptions {
  /** Where the run directory is made (runs/<workId>.d). */
  runDir: string;
  /** The package key (SPKI DER base64) given at enrolment or with the session. */
  packageKey: string;
  /** Stream the file with this sha256 from the server into onChunk. */
  fetchFile: (sha256: string, onChunk: (chunk: Buffer) => void) => Promise<void>;
  /** Called after the checks and downloads, just before the command starts (write the run marker). */
  beforeStart: () => void;
  killTree: (pid: number, graceMs: number) => Promise<unknown>;
  /** Told the command's pid once it started, and null when it ended (so the agent can kill it when stopped). */
  onProcess?: (pid: number | null) => void;
  log: AgentLog;
  /** SIGTERM to SIGKILL (default KILL_GRACE_MS). */
  graceMs?: number;
  /** Wait between download attempts (default 2000 ms). */
  retryMs?: number;
  now?: () => number;
}

/** Whether the signature verifies; never throws. */
export function packageSignatureOk(pkg: SignedPackage, packageKey: string): boolean {
  try {
    return verifySignature(ed25519PublicKey(packageKey), packageSigningBytes(pkg.manifest), pkg.signature);
  } catch {
    return false;
  }
}

class HashMismatch extends Error {}

async function downloadInto(dir: string, m: PackageManifest, opts: PackageRunOptions): Promise<WorkResult | null> {
  for (const f of m.files) {
    const path = join(dir, f.name);
    let last: unknown = null;
    for (let attempt = 1; attempt <= DOWNLOAD_ATTEMPTS; attempt++) {
      rmSync(path, { force: true });
      const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, f.executable ? 0o700 : 0o600);
      const hash = createHash('sha256');
      let size = 0;
      try {
        await opts.fetchFile(f.sha256, (chunk) => {
          size += chunk.length;
          if (size > f.size) throw new HashMismatch(`${f.name}: the server sent more than the manifest's ${f.size} bytes (expected sha256 ${f.sha256})`);
          hash.update(chunk);
          let off = 0;
          while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
        });
        closeSync(fd);
        const got = hash.digest('hex');
        if (size !== f.size || got !== f.sha256) {
          return resultOf('hash-mismatch', `${f.name}: expected sha256 ${f.sha256} (${f.size} bytes), got ${got} (${size} bytes); nothing was run`);
        }
        last = null;
        break;
      } catch (err) {
        try {
          closeSync(fd);
        } catch {
          // closed already
        }
        if (err instanceof HashMismatch) return resultOf('hash-mismatch', `${err.message}; nothing was run`);
        last = err;
        const again = err instanceof RequestError && (err.retryable || err.code === 'SESSION_EXPIRED') && attempt < DOWNLOAD_ATTEMPTS;
        opts.log.warn('package file download failed', { file: f.name, attempt, error: (err as Error).message, again });
        if (!again) break;
        await new Promise((r) => setTimeout(r, opts.retryMs ?? 2000));
      }
    }
    if (last !== null) return resultOf('failed', `download of ${f.name} failed: ${(last as Error).message}; nothing was run`);
  }
  return null;
}

/** Run a package work item to its WorkResult (never throws for the package's own failures). */
export async function runPackage(workId: number, pkg: SignedPackage, opts: PackageRunOptions): Promise<WorkResult> {
  const { log } = opts;
  const now = opts.now ?? Date.now;
  const m = pkg.manifest;
  const what = `${m.name} r${m.revision}`;
  if (!packageSignatureOk(pkg, opts.packageKey)) {
    log.warn('package signature does not verify: refused', { workId, package: what });
    return resultOf('bad-signature', `the signature of ${what} does not verify with the server's package key; nothing was run`);
  }
  const dir = opts.runDir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { mode: 0o700 });
  log.info('downloading package files', { workId, package: what, files: m.files.length, bytes: m.files.reduce((a, f) => a + f.size, 0) });
  const refused = await downloadInto(dir, m, opts);
  if (refused !== null) {
    rmSync(dir, { recursive: true, force: true });
    log.warn('package refused', { workId, package: what, status: refused.status, message: refused.message });
    return refused;
  }
  opts.beforeStart();
  const [arg0, ...args] = m.argv as [string, ...string[]];
  const program = !arg0.includes('/') && m.files.some((f) => f.name === arg0) ? `./${arg0}` : arg0;
  const started = now();
  log.info('package started', { workId, package: what, argv: [program, ...args], timeoutSeconds: m.timeoutSeconds });
  const out = new TailBuffer(OUTPUT_TAIL_BYTES);
  const err = new TailBuffer(OUTPUT_TAIL_BYTES);
  const ended = await new Promise<{ code: number | null; signal: string | null; spawnError: string | null; timedOut: boolean }>((resolve) => {
    let timedOut = false;
    let exit: { code: number | null; signal: string | null } | null = null;
    let done = false;
    // runs the machine's own program: the package's argv[0], named by the administrator (its signature was checked)
    const child = spawn(program, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true, shell: false, env: process.env });
    if (child.pid !== undefined) opts.onProcess?.(child.pid);
    const finish = (spawnError: string | null): void => {
      if (done) return;
      done = true;
      opts.onProcess?.(null);
      clearTimeout(timer);
      resolve({ code: exit?.code ?? null, signal: exit?.signal ?? null, spawnError, timedOut });
    };
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => {
      timedOut = true;
      log.warn('package timed out: killing its process tree', { workId, package: what, pid: child.pid ?? null });
      if (child.pid !== undefined) {
        opts.killTree(child.pid, opts.graceMs ?? KILL_GRACE_MS).catch((e: unknown) => log.error('killing the package failed', { workId, error: (e as Error).message }));
      }
    }, m.timeoutSeconds * 1000);
    child.on('error', (e) => finish(`cannot start ${program}: ${e.message}`));
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      // Leftover processes may hold the pipes: stop waiting for them after a while.
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish(null);
      }, timedOut ? (opts.graceMs ?? KILL_GRACE_MS) + 1000 : CLOSE_AFTER_EXIT_MS).unref();
    });
    child.on('close', () => finish(null));
  });
  const durationMs = Math.max(0, now() - started);
  const tails = { stdout: out.text(), stderr: err.text(), durationMs };
  let result: WorkResult;
  if (ended.spawnError !== null) {
    result = resultOf('failed', `${ended.spawnError}`, tails);
  } else if (ended.timedOut) {
    result = resultOf('timeout', `${what} did not finish within ${m.timeoutSeconds} s: its process tree was killed`, { ...tails, exitCode: ended.code, signal: ended.signal });
  } else if (ended.signal !== null) {
    result = resultOf('failed', `${what} was killed by ${ended.signal}`, { ...tails, signal: ended.signal });
  } else {
    const code = ended.code ?? -1;
    const success = m.successCodes.length > 0 ? m.successCodes : [0];
    if (success.includes(code)) result = resultOf('succeeded', `${what} exited with ${code} (success)`, { ...tails, exitCode: code });
    else if (m.rebootCodes.includes(code)) result = resultOf('succeeded', `${what} exited with ${code}: done, reboot requested`, { ...tails, exitCode: code, rebootRequested: true });
    else result = resultOf('failed', `${what} exited with ${code} (success codes: ${success.join(', ')})`, { ...tails, exitCode: code });
  }
  log.info('package ended', { workId, package: what, status: result.status, exitCode: result.exitCode, signal: result.signal, durationMs });
  return result;
}
