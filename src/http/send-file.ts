/**
 * Serving files over HTTP: a name inside a root is opened by lib/safe-path.ts
 * (the same rules and the same function as TFTP: no "..", absolute names
 * taken inside the root, symlinks only when they stay inside, O_NOFOLLOW and
 * a check of the opened descriptor), and the opened file is sent with exact
 * Content-Length and single-range Range support (206/416). No path is ever
 * opened twice: the bytes sent are those of the file that was checked.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { openInRoot, type SafeFile } from '../lib/safe-path.js';

export type { SafeFile } from '../lib/safe-path.js';

/**
 * `name` inside `root`, open for reading, or null when it is not a regular
 * file inside the root (missing, a directory, "..", a symlink that leads out,
 * a NUL...). Pass the result to sendFile(), which closes it.
 */
export async function openInside(root: string, name: string): Promise<SafeFile | null> {
  const r = await openInRoot(root, name);
  return r.ok ? r : null;
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

/**
 * Send an opened file (GET or HEAD) with Range support, and close it. Size
 * and bytes come from the one descriptor: they always match. `type`: the
 * Content-Type (default: from the name, for boot files).
 */
export async function sendFile(req: FastifyRequest, reply: FastifyReply, file: SafeFile, type?: string): Promise<FastifyReply> {
  const fh = file.handle;
  let handedOff = false;
  try {
    const st = file.stat;
    if (!st.isFile()) {
      return reply.code(404).send({ error: 'NOT_FOUND', message: 'Not found' });
    }
    const size = st.size;
    reply.header('accept-ranges', 'bytes').header('content-type', type ?? contentType(file.path)).header('last-modified', st.mtime.toUTCString());
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
