/**
 * Resolve a name requested by a network client to a file inside a root
 * directory, so that nothing outside the root can ever be reached.
 *
 * Rules (TFTP names, also usable for HTTP paths):
 *   - Backslashes are path separators ("Boot\x64\wdsnbp.com", as Windows-minded
 *     PXE clients send them).
 *   - Absolute names are taken relative to the root, like a chroot (tftp-hpa -s)
 *     and dnsmasq (which strips the leading '/'): "/pxelinux.0" is
 *     ROOT/pxelinux.0. As in dnsmasq, a name that starts with the root's own
 *     path is accepted too ("/srv/tftp/a" -> ROOT/a). So "/etc/passwd" means
 *     ROOT/etc/passwd: usually "not found", never the host's file.
 *   - Empty and "." segments are skipped; any ".." segment is an access
 *     violation (even when it would stay inside the root: no guessing).
 *   - The result's real path (symlinks resolved) must lie inside the root's
 *     real path: a symlink pointing outside the root is an access violation.
 *   - The file is opened here (O_NOFOLLOW on the resolved path, O_NONBLOCK so a
 *     FIFO cannot block us) and must be a regular file.
 *   - File names are bytes on the wire; they are read as UTF-8 and a name
 *     that is not valid UTF-8 is "not found".
 */
import { constants, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { relative, sep } from 'node:path';

export type SafePathFailure = 'not-found' | 'access' | 'not-a-file';

export type SafeOpenResult =
  | { ok: true; path: string; relative: string; handle: FileHandle; size: number }
  | { ok: false; reason: SafePathFailure; message: string };

export type NormalizeResult = { ok: true; segments: string[] } | { ok: false; reason: SafePathFailure; message: string };

/**
 * The path segments of a requested name, relative to the root (pure, no I/O).
 * `rootPath` is the root as configured, for names that start with it.
 */
export function normalizeRequestName(name: string, rootPath: string): NormalizeResult {
  if (name.includes('\0')) return { ok: false, reason: 'access', message: 'name contains NUL' };
  let n = name.replace(/\\/g, '/');
  const root = rootPath.replace(/\/+$/, '');
  if (root !== '' && n.startsWith(root + '/')) n = n.slice(root.length);
  const segments: string[] = [];
  for (const s of n.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') return { ok: false, reason: 'access', message: `'..' in ${JSON.stringify(name)}` };
    segments.push(s);
  }
  if (segments.length === 0) return { ok: false, reason: 'not-a-file', message: `${JSON.stringify(name)} names the root` };
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

/** Resolve `name` inside `root` and open it for reading. The caller closes `handle`. */
export async function openInRoot(root: string, name: string): Promise<SafeOpenResult> {
  const norm = normalizeRequestName(name, root);
  if (!norm.ok) return norm;
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
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'ELOOP') return { ok: false, reason: 'access', message: `${code} resolving ${norm.segments.join('/')}` };
    return { ok: false, reason: 'not-found', message: `${norm.segments.join('/')} not found` };
  }
  if (!isInside(realRoot, real)) {
    return { ok: false, reason: 'access', message: `${norm.segments.join('/')} resolves outside the root` };
  }
  let handle: FileHandle;
  try {
    handle = await fsp.open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { ok: false, reason: 'not-found', message: `${norm.segments.join('/')} not found` };
    return { ok: false, reason: 'access', message: `${code ?? 'error'} opening ${norm.segments.join('/')}` };
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      await handle.close();
      return { ok: false, reason: 'not-a-file', message: `${norm.segments.join('/')} is not a regular file` };
    }
    return { ok: true, path: real, relative: relative(realRoot, real), handle, size: st.size };
  } catch (err) {
    await handle.close().catch(() => undefined);
    return { ok: false, reason: 'access', message: `cannot stat ${norm.segments.join('/')}: ${(err as Error).message}` };
  }
}
