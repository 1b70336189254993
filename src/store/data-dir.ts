/**
 * The data directory is private to the server's user: it holds the API
 * token, the database (hosts, inventories, leases) and, below it, images.
 *
 * - A new data directory is created 0700; the database (with its -wal and
 *   -shm) and the token file are 0600, set with chmod, so the umask does not
 *   decide.
 * - An existing data directory that the group or others can enter is
 *   tightened to 0700 (only the group/other bits are removed) and the caller
 *   logs a warning with the mode it had: nothing in it is meant for another
 *   user, and leaving it open would keep exposing server.json and boot-entry
 *   names. When that chmod fails (not the owner, read-only file system) the
 *   start goes on, since the secret files are 0600 themselves, and the caller
 *   logs the failure as an error.
 *
 * What stays readable on purpose: the TFTP root (default <data>/tftp) and
 * the boot environment hold public boot files that the LAN fetches without
 * authentication; their modes are left to the umask.
 */
import { chmodSync, closeSync, fchmodSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { FleetbootError, errorMessage } from '../lib/errors.js';

/** Mode of the data directory and of private directories in it. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of the database, its -wal/-shm, the API token and server.json. */
export const PRIVATE_FILE_MODE = 0o600;

export interface DataDirState {
  /** The directory did not exist and was created 0700. */
  created: boolean;
  /** The group/world-accessible mode it had before it was tightened to 0700, or null. */
  tightenedFrom: number | null;
  /** Why it is still group/world accessible (the chmod failed), or null. */
  problem: string | null;
}

/** `0o755` -> `'0755'`. */
export function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

/** Create the data directory 0700, or tighten an existing one (see the header). */
export function prepareDataDir(dir: string): DataDirState {
  let created = false;
  mkdirSync(dirname(dir), { recursive: true });
  try {
    mkdirSync(dir, { mode: PRIVATE_DIR_MODE });
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new FleetbootError('IO', `Cannot create the data directory ${dir}: ${errorMessage(err)}`, { cause: err });
    }
  }
  const st = statSync(dir);
  if (!st.isDirectory()) throw new FleetbootError('CONFIG', `The data directory ${dir} exists and is not a directory`);
  if (created) {
    chmodSync(dir, PRIVATE_DIR_MODE); // a umask such as 0277 would have left it 0500
    return { created, tightenedFrom: null, problem: null };
  }
  if ((st.mode & 0o077) === 0) return { created, tightenedFrom: null, problem: null };
  try {
    chmodSync(dir, st.mode & 0o700);
    return { created, tightenedFrom: st.mode & 0o777, problem: null };
  } catch (err) {
    return { created, tightenedFrom: null, problem: `it is mode ${octal(st.mode)} and chmod 0700 failed: ${errorMessage(err)}` };
  }
}

/**
 * Make `file` exist with mode 0600 (created empty if absent; an existing
 * file keeps its content and loses group/world access).
 */
export function ensurePrivateFile(file: string): void {
  const fd = openSync(file, 'a', PRIVATE_FILE_MODE);
  try {
    fchmodSync(fd, PRIVATE_FILE_MODE);
  } finally {
    closeSync(fd);
  }
}

/** chmod 0600 if the file exists; absent files are fine. */
export function tightenFileIfPresent(file: string): void {
  try {
    chmodSync(file, PRIVATE_FILE_MODE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
