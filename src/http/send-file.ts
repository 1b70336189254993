/**
 * Serving files: paths resolved strictly inside a root (no "..", no
 * absolute paths, no symlink leading outside: checked on the real path), and
 * sent with exact Content-Length and single-range Range support (206/416).
 */
import { open, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * The real path of `relative` inside `root`, or null when it does not name a
 * regular file inside the root (missing, a directory, "..", a symlink that
 * leads out, a NUL or backslash...).
 */
export async function resolveInside(root: string, relative: string): Promise<string | null> {
  if (relative.includes('\0') || relative.includes('\\')) return null;
  const parts = relative.split('/').filter((p) => p !== '');
  if (parts.length === 0 || parts.some((p) => p === '..' || p === '.')) return null;
  let realRoot: string;
  let real: string;
  try {
    realRoot = await realpath(root);
    real = await realpath(join(root, ...parts));
  } catch {
    return null;
  }
  if (!real.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep)) return null;
  try {
    return (await stat(real)).isFile() ? real : null;
  } catch {
    return null;
  }
}

/** A parsed Range header: one range, 'unsatisfiable', or null (absent or ignored). */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  if (header === undefined) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Several ranges or another unit: ignore the header and send everything (RFC 9110 14.2).
  if (!m || (m[1] === '' && m[2] === '')) return null;
  const [a, b] = [m[1] ?? '', m[2] ?? ''];
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (b !== '' && Number(b) < start) return null;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

function contentType(path: string): string {
  if (path.endsWith('.ipxe')) return 'text/plain; charset=utf-8';
  if (path.endsWith('.efi')) return 'application/efi';
  return 'application/octet-stream';
}

/** Send a regular file (GET or HEAD) with Range support. The file is opened once: size and bytes always match. */
export async function sendFile(req: FastifyRequest, reply: FastifyReply, path: string): Promise<FastifyReply> {
  const fh = await open(path, 'r');
  let handedOff = false;
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      return reply.code(404).send({ error: 'NOT_FOUND', message: 'Not found' });
    }
    const size = st.size;
    reply.header('accept-ranges', 'bytes').header('content-type', contentType(path)).header('last-modified', st.mtime.toUTCString());
    const range = parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') {
      return reply.code(416).header('content-range', `bytes */${size}`).send();
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    const length = size === 0 ? 0 : end - start + 1;
    if (range) reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
    reply.header('content-length', String(length));
    if (req.method === 'HEAD' || length === 0) return reply.send();
    handedOff = true;
    return reply.send(fh.createReadStream({ start, end, autoClose: true }));
  } finally {
    if (!handedOff) await fh.close();
  }
}
