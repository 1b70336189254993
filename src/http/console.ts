/**
 * The web console (web/, built into web/dist by scripts/build-web.mjs):
 *   GET /             -> 302 /ui/
 *   GET /ui/assets/F  the built files, by name (content-hashed: cached for a year)
 *   GET /ui, /ui/...  index.html (the console routes in the browser)
 * Files are opened through openInside() (lib/safe-path.ts), like every file
 * the server sends. Every answer carries a Content-Security-Policy that
 * allows only the server's own scripts, styles and connections, and denies
 * framing. Without a build, /ui answers 503 saying how to build it.
 * These routes need no login: the console asks the API who is logged in.
 */
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { openInside, sendFile } from './send-file.js';

export const CONSOLE_PREFIX = '/ui';

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

function typeOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return TYPES[dot < 0 ? '' : name.slice(dot)] ?? 'application/octet-stream';
}

function secure(reply: FastifyReply): FastifyReply {
  return reply.header('content-security-policy', CSP).header('x-content-type-options', 'nosniff').header('referrer-policy', 'same-origin').header('x-frame-options', 'DENY');
}

/** `dir`: the built console (web/dist). */
export async function consoleRoutes(app: FastifyInstance, dir: string): Promise<void> {
  const notBuilt = (reply: FastifyReply): FastifyReply =>
    secure(reply)
      .code(503)
      .header('content-type', 'text/plain; charset=utf-8')
      .send(`The web console is not built (no ${join(dir, 'index.html')}): run \`npm run build\` in Fleetboot's directory, then reload.\n`);

  const index = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const f = await openInside(dir, 'index.html');
    if (!f) return notBuilt(reply);
    secure(reply).header('cache-control', 'no-cache');
    return sendFile(req, reply, f, typeOf('index.html'));
  };

  app.get('/', async (_req, reply) => reply.redirect(`${CONSOLE_PREFIX}/`, 302));
  app.get<{ Params: { file: string } }>(`${CONSOLE_PREFIX}/assets/:file`, async (req, reply) => {
    const { file } = req.params;
    const f = /^[A-Za-z0-9._-]{1,128}$/.test(file) ? await openInside(join(dir, 'assets'), file) : null;
    if (!f) return secure(reply).code(404).send({ error: 'NOT_FOUND', message: `No console file ${JSON.stringify(file.slice(0, 128))}` });
    secure(reply).header('cache-control', 'public, max-age=31536000, immutable');
    return sendFile(req, reply, f, typeOf(file));
  });
  app.get(CONSOLE_PREFIX, index);
  app.get(`${CONSOLE_PREFIX}/`, index);
  app.get(`${CONSOLE_PREFIX}/*`, index);
}
