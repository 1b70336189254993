/**
 * Bearer-token authentication for /api/v1. The comparison is constant-time:
 * both sides are hashed to 32 bytes first, so neither the content nor the
 * length of the expected token leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

export function bearerTokenCheck(token: string): (header: string | undefined) => boolean {
  if (token.length < 16) throw new RangeError('The API token must be at least 16 characters');
  const expected = createHash('sha256').update(token).digest();
  return (header) => {
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
    const given = createHash('sha256')
      .update(m?.[1] ?? '')
      .digest();
    return timingSafeEqual(given, expected) && m !== null;
  };
}

/** An onRequest hook: 401 unless the request carries the token. Runs before the body is read. */
export function requireToken(token: string) {
  const ok = bearerTokenCheck(token);
  return async function authHook(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (ok(req.headers.authorization)) return;
    await reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="fleetboot"')
      .send({ error: 'UNAUTHORIZED', message: 'Missing or wrong API token: send "Authorization: Bearer <token>" (the token is in <dataDir>/api-token)' });
  };
}
