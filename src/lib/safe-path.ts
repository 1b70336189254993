/**
 * Path containment: the one way a name from the network (a TFTP file name,
 * an HTTP path under /tftp/, /boot/entries/, /boot/env/, an image stream the
 * agent downloads) becomes an open file inside a root directory, so that
 * nothing outside the root can ever be read. Used by net/tftp-server.ts and,
 * through http/send-file.ts, by every HTTP route that serves files.
 *
 * `openInRoot()` returns an open file handle with its fstat, never a path:
 * the caller reads exactly the file that was checked (no check-then-open
 * window), and the size it announces is that file's size.
 *
 * Name rules (normalizeRequestName, pure):
 *   - Backslashes are path separators ("Boot\x64\wdsnbp.com", as Windows-minded
 *     PXE clients send them).
 *   - Absolute names are taken relative to the root, like a chroot (tftp-hpa -s)
 *     and dnsmasq (which strips the leading '/'): "/pxelinux.0" is
 *     ROOT/pxelinux.0. As in dnsmasq, a name that starts with the root's own
 *     path is accepted too ("/srv/tftp/a" -> ROOT/a). So "/etc/passwd" means
 *     ROOT/etc/passwd: usually "not found", never the host's file.
 *   - Empty and "." segments are skipped; any ".." segment is an access
 *     violation (even when it would stay inside the root: no guessing).
 *   - A NUL byte is an access violation; a name over 4095 bytes, or with a
 *     segment over 255 bytes (Linux's PATH_MAX / NAME_MAX), is "not found"
 *     (no such file can exist), refused before any system call.
 *   - The root itself is "not a file".
 *
 * Symlinks (the decision): a symlink is followed when, and only when, where it
 * leads stays inside the root's real path, whichever component it is (a file
 * link "ipxe.efi -> snponly.efi", a directory link "efi64 -> efi"). A symlink
 * leading out (to a file or a directory, absolute or relative) is an access
 * violation. TFTP roots are often laid out with symlinks, and a link inside
 * the root gives no access the root does not give already.
 *
 * How it is enforced, without a window between check and open:
 *   1. realpath() of ROOT/segments must lie inside realpath(ROOT);
 *   2. that resolved path is opened with O_NOFOLLOW (a final component swapped
 *      for a symlink after step 1 fails with ELOOP: access violation) and
 *      O_NONBLOCK (a FIFO cannot block us);
 *   3. the descriptor's own path, /proc/self/fd/N (what the kernel actually
 *      opened), must again lie inside the root: a directory on the way swapped
 *      for a symlink after step 1 is caught here. Without /proc (not Linux)
 *      nothing is served: access violation, said in the message;
 *   4. fstat() of the descriptor must be a regular file.
 *
 * File names are bytes on the wire; wireNameToUtf8() reads them as UTF-8 and
 * a name that is not valid UTF-8 is "not found" (the caller's decision).
 */
import { constants, promises as fsp, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { relative, sep } from 'node:path';

export type SafePathFailure = 'not-found' | 'access' | 'not-a-file';

/** A regular file inside the root, open for reading. The caller closes `handle`. */
export interface SafeFile {
  readonly handle: FileHandle;
  /** The real path of what was opened (from the descriptor). */
  readonly path: string;
  /** `path` relative to the root's real path. */
  readonly relative: string;
  /** Bytes, from the descriptor's fstat. */
  readonly size: number;
  readonly stat: Stats;
}

export type SafeOpenResult = ({ ok: true } & SafeFile) | { ok: false; reason: SafePathFailure; message: string };

export type NormalizeResult = { ok: true; segments: string[] } | { ok: false; reason: SafePathFailure; message: string };

export interface OpenInRootOptions {
  /**
   * Runs after the containment check (step 1), just before the open: where a
   * racing rename or symlink swap would land. For tests.
   */
  beforeOpen?: (resolvedPath: string) => void | Promise<void>;
}

/** Linux PATH_MAX (with its NUL) and NAME_MAX, in bytes. */
export const MAX_NAME_BYTES = 4095;
export const MAX_SEGMENT_BYTES = 255;

function show(name: string): string {
  return JSON.stringify(name.length > 100 ? `${name.slice(0, 100)}...` : name);
}

/**
 * The path segments of a requested name, relative to the root (pure, no I/O).
 * `rootPath` is the root as configured, for names that start with it.
 */
export function normalizeRequestName(name: string, rootPath: string): NormalizeResult {
  if (name.includes('\0')) return { ok: false, reason: 'access', message: 'name contains NUL' };
  if (name.length > MAX_NAME_BYTES || Buffer.byteLength(name) > MAX_NAME_BYTES) {
    return { ok: false, reason: 'not-found', message: `name too long: ${Buffer.byteLength(name)} bytes (at most ${MAX_NAME_BYTES})` };
  }
  let n = name.replace(/\\/g, '/');
  const root = rootPath.replace(/\/+$/, '');
  if (root !== '' && n.startsWith(root + '/')) n = n.slice(root.length);
  const segments: string[] = [];
  for (const s of n.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') return { ok: false, reason: 'access', message: `'..' in ${show(name)}` };
    if (Buffer.byteLength(s) > MAX_SEGMENT_BYTES) {
      return { ok: false, reason: 'not-found', message: `name too long: a segment of ${Buffer.byteLength(s)} bytes (at most ${MAX_SEGMENT_BYTES})` };
    }
    segments.push(s);
  }
  if (segments.length === 0) return { ok: false, reason: 'not-a-file', message: `${show(name)} names the root` };
  return { ok: true, segments };
}

/** Interpret a latin1 wire string as UTF-8 bytes; null when the bytes are not valid UTF-8. */
export function wireNameToUtf8(latin1: string): string | null {
  const bytes = Buffer.from(latin1, 'latin1');
  const s = bytes.toString('utf8');
  return Buffer.from(s, 'utf8').equals(bytes) ? s : null;
}

function isInside(realRoot: string, p: string): boolean {
  return p.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep);
}

function errCode(err: unknown): string {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : 'error';
}

/** What the kernel opened as descriptor `fd` (Linux: /proc/self/fd); null when that cannot be read. */
async function descriptorPath(fd: number): Promise<string | null> {
  try {
    const p = await fsp.readlink(`/proc/self/fd/${fd}`);
    // A file unlinked since the open reads "PATH (deleted)"; it is still the file that was opened.
    return p.endsWith(' (deleted)') ? p.slice(0, -' (deleted)'.length) : p;
  } catch {
    return null;
  }
}

/** Resolve `name` inside `root` (rules in the header) and open it for reading. The caller closes `handle`. */
export async function openInRoot(root: string, name: string, options: OpenInRootOptions = {}): Promise<SafeOpenResult> {
  const norm = normalizeRequestName(name, root);
  if (!norm.ok) return norm;
  const shown = norm.segments.join('/');
  let realRoot: string;
  try {
    realRoot = await fsp.realpath(root);
  } catch {
    return { ok: false, reason: 'not-found', message: `root ${root} does not exist` };
  }
  const candidate = [realRoot.replace(/\/+$/, ''), ...norm.segments].join(sep);
  let real: string;
  try {
    real = await fsp.realpath(candidate);
  } catch (err) {
    const code = errCode(err);
    if (code === 'EACCES' || code === 'ELOOP') return { ok: false, reason: 'access', message: `${code} resolving ${shown}` };
    return { ok: false, reason: 'not-found', message: `${shown} not found (${code})` };
  }
  if (!isInside(realRoot, real)) {
    return { ok: false, reason: 'access', message: `${shown} resolves outside the root` };
  }
  if (options.beforeOpen) await options.beforeOpen(real);
  let handle: FileHandle;
  try {
    handle = await fsp.open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = errCode(err);
    if (code === 'ENOENT') return { ok: false, reason: 'not-found', message: `${shown} not found` };
    if (code === 'ELOOP') return { ok: false, reason: 'access', message: `${shown} became a symlink after it was checked` };
    return { ok: false, reason: 'access', message: `${code} opening ${shown}` };
  }
  const fail = async (reason: SafePathFailure, message: string): Promise<SafeOpenResult> => {
    await handle.close().catch(() => undefined);
    return { ok: false, reason, message };
  };
  const opened = await descriptorPath(handle.fd);
  if (opened === null) return fail('access', `cannot verify where ${shown} was opened (/proc/self/fd is not readable)`);
  if (!isInside(realRoot, opened)) return fail('access', `${shown} was opened outside the root (a directory on the way changed after the check)`);
  let st: Stats;
  try {
    st = await handle.stat();
  } catch (err) {
    return fail('access', `cannot stat ${shown}: ${errCode(err)}`);
  }
  if (!st.isFile()) return fail('not-a-file', `${shown} is not a regular file`);
  return { ok: true, handle, path: opened, relative: relative(realRoot, opened), size: st.size, stat: st };
}
