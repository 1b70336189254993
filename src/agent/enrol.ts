/**
 * A deploy with `enrol` (TaskSpec.enrol): once every partition is written
 * and verified, the agent finds the deployed Linux root filesystem and
 * writes the endpoint agent's enrolment file into it, so the machine's
 * `fleetboot-agent` enrols as its host at first boot (src/endpoint-agent/
 * state.ts reads <state>/enrol.json, enrols, deletes it).
 *
 * - Candidates: the image's partitions with a Linux root's filesystem
 *   (ext2/3/4, mounted through the ext4 module; xfs, btrfs where the kernel
 *   has them: Fleetboot's boot environment carries only ext4, so these fail
 *   to mount and are named in the warning), in partition order; the root
 *   is the first that holds etc/os-release (or usr/lib/os-release).
 * - It writes var/lib/fleetboot-agent/enrol.json there: the directories are
 *   made if missing (var and var/lib 0755, fleetboot-agent 0700, root's),
 *   none of them may be a symbolic link (a link in the deployed tree would
 *   point into the boot environment's own files); the file is 0600, written
 *   to a temporary name (O_EXCL|O_NOFOLLOW), fsynced, renamed, and the
 *   directory fsynced; then the filesystem is unmounted.
 * - No Linux root found (a Windows image, an unknown filesystem): the deploy
 *   still succeeds, with a warning naming every partition tried and why.
 *
 * What the server sent passed parseEnrolSpec (src/model/endpoint.ts) before
 * the deploy began; partition devices come from the disk the agent chose and
 * the manifest's partition numbers: nothing of the server's reaches a path
 * or a command line unchecked, and the file is written by Node, not a shell.
 */
import { chmodSync, chownSync, closeSync, constants, fsyncSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmdirSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnrolSpec } from '../model/endpoint.js';
import type { Manifest } from '../model/manifest.js';
import type { EnrolOutcome } from '../imaging/protocol.js';
import { partitionDevice } from './disk.js';
import { errorMessage } from './errors.js';
import { runCommand, runOk } from './exec.js';

/** Where the endpoint agent's state lives on the deployed system (its DEFAULT_STATE_DIR, without the leading /). */
export const ENROL_DIR = ['var', 'lib', 'fleetboot-agent'] as const;
export const ENROL_FILE = 'enrol.json';

/** Filesystems a Linux root may be on, with the type given to mount (ext2/ext3 go through the ext4 driver). */
const LINUX_FS: Readonly<Record<string, string>> = { ext4: 'ext4', ext3: 'ext4', ext2: 'ext4', xfs: 'xfs', btrfs: 'btrfs' };

export interface EnrolTarget {
  number: number;
  device: string;
  filesystem: string;
}

/** The partitions that may hold a Linux root, in partition order, and the others with why they were passed over. */
export function enrolCandidates(m: Manifest, disk: string): { candidates: EnrolTarget[]; skipped: Array<{ number: number; text: string }> } {
  const candidates: EnrolTarget[] = [];
  const skipped: Array<{ number: number; text: string }> = [];
  for (const p of [...m.partitions].sort((a, b) => a.number - b.number)) {
    const device = partitionDevice(disk, p.number);
    const fs = p.filesystem ?? '';
    if (LINUX_FS[fs] !== undefined) candidates.push({ number: p.number, device, filesystem: fs });
    else skipped.push({ number: p.number, text: `${device} (${fs || 'no filesystem'})` });
  }
  return { candidates, skipped };
}

function isDir(path: string): 'dir' | 'missing' | 'other' {
  try {
    const s = lstatSync(path);
    return s.isDirectory() && !s.isSymbolicLink() ? 'dir' : 'other';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw err;
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Make root/var/lib/fleetboot-agent (no symbolic link on the way): its path. */
function stateDir(root: string): string {
  let dir = root;
  for (const [i, name] of ENROL_DIR.entries()) {
    dir = join(dir, name);
    const last = i === ENROL_DIR.length - 1;
    const kind = isDir(dir);
    if (kind === 'other') throw new Error(`${ENROL_DIR.slice(0, i + 1).join('/')} is not a directory (a symbolic link or a file): refused`);
    if (kind === 'missing') mkdirSync(dir, { mode: last ? 0o700 : 0o755 });
  }
  // The endpoint agent refuses a state directory other users can open, or that is not its user's (root).
  chownSync(dir, 0, 0);
  chmodSync(dir, 0o700);
  return dir;
}

/** Write `text` as dir/name, 0600, atomically (temporary file, fsync, rename, fsync of the directory). */
function atomicWrite(dir: string, name: string, text: string): void {
  const tmp = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, join(dir, name));
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
  const d = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(d);
  } finally {
    closeSync(d);
  }
}

/** "/var" when the deployed system's etc/fstab mounts /var (or below it) from another filesystem, else null. */
function separateVar(root: string): string | null {
  const fstab = join(root, 'etc', 'fstab');
  try {
    const s = lstatSync(fstab);
    if (!s.isFile() || s.size > 1024 * 1024) return null;
    for (const line of readFileSync(fstab, 'utf8').split('\n')) {
      const mountPoint = line.replace(/#.*/, '').trim().split(/\s+/)[1];
      if (mountPoint === '/var' || mountPoint === '/var/lib' || mountPoint === '/var/lib/fleetboot-agent') return mountPoint;
    }
  } catch {
    return null;
  }
  return null;
}

/**
 * Write root/var/lib/fleetboot-agent/enrol.json (0600; the directory 0700,
 * root's; no symbolic link on the way), atomically. `root` is the mounted
 * Linux root; exported for the unit test.
 */
export function writeEnrolFile(root: string, spec: EnrolSpec): string {
  const dir = stateDir(root);
  atomicWrite(dir, ENROL_FILE, `${JSON.stringify({ server: spec.server, caSha256: spec.caSha256, token: spec.token }, null, 2)}\n`);
  return join(dir, ENROL_FILE);
}

export interface WriteEnrolOptions {
  manifest: Manifest;
  /** The disk the image was written to. */
  disk: string;
  spec: EnrolSpec;
  log: (msg: string) => void;
  /** Where mount points are made (default the OS temporary directory). */
  tmp?: string;
}

/** Find the deployed Linux root and write the enrolment file into it; the outcome for the task (never throws for "no Linux root"). */
export async function writeEnrolment(o: WriteEnrolOptions): Promise<EnrolOutcome> {
  const { candidates, skipped } = enrolCandidates(o.manifest, o.disk);
  const tried: Array<{ number: number; text: string }> = [...skipped];
  for (const c of candidates) {
    const mnt = mkdtempSync(join(o.tmp ?? tmpdir(), 'fleetboot-enrol-'));
    let mounted = false;
    try {
      // The boot environment loads filesystem modules on demand (the kernel asks modprobe); ask once more, quietly, where that is off.
      await runCommand('modprobe', ['-q', LINUX_FS[c.filesystem] ?? c.filesystem]).catch(() => undefined);
      const m = await runCommand('mount', ['-t', LINUX_FS[c.filesystem] ?? c.filesystem, '-o', 'rw', c.device, mnt]);
      if (m.code !== 0) {
        tried.push({ number: c.number, text: `${c.device} (${c.filesystem}: mount failed: ${(m.stderr || m.stdout).trim().split('\n').pop()?.slice(0, 160) ?? `exit ${String(m.code)}`})` });
        continue;
      }
      mounted = true;
      if (!exists(join(mnt, 'etc', 'os-release')) && !exists(join(mnt, 'usr', 'lib', 'os-release'))) {
        tried.push({ number: c.number, text: `${c.device} (${c.filesystem}: no etc/os-release)` });
        continue;
      }
      writeEnrolFile(mnt, o.spec);
      const varMount = separateVar(mnt);
      await runOk('umount', [mnt]);
      mounted = false;
      const path = `/${ENROL_DIR.join('/')}/${ENROL_FILE}`;
      o.log(`enrolment file written: ${c.device} (${c.filesystem}) ${path}, for ${o.spec.server}`);
      const note = varMount !== null ? `; warning: its etc/fstab mounts ${varMount} from another filesystem, which hides the file at boot` : '';
      return { written: c.device, message: `enrolment token written to ${c.device} (${c.filesystem}, ${path})${note}` };
    } catch (err) {
      tried.push({ number: c.number, text: `${c.device} (${c.filesystem}: ${errorMessage(err)})` });
    } finally {
      if (mounted) await runCommand('umount', [mnt]).catch(() => undefined);
      try {
        rmdirSync(mnt);
      } catch {
        // still mounted (umount failed): leave the directory
      }
    }
  }
  const message = `warning: no Linux root filesystem among the deployed partitions (tried ${tried.length ? tried.sort((x, y) => x.number - y.number).map((t) => t.text).join(', ') : 'none: the image has no partitions'}): no enrolment token was written; the machine's agent will not enrol by itself`;
  o.log(message);
  return { written: null, message };
}
