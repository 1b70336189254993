/**
 * Logins and sessions (roles: src/http/auth.ts):
 *   POST   /api/v1/auth/login { name, password }   public -> { user, csrfToken, expiresAt, idleMinutes } + the session cookie
 *          401 (no cookie) for a wrong name or password, the same answer for both;
 *          429 with retry-after after 5 failed attempts in a minute from the address or for the name
 *   POST   /api/v1/auth/logout                     ends this session, clears the cookie
 *   GET    /api/v1/auth/me                         who is asking: the user, role, how, and a session's csrfToken
 *   GET    /api/v1/sessions[?user=NAME]            open sessions: one's own (an admin: everyone's)
 *   DELETE /api/v1/sessions/:id                    revoke one (one's own; an admin: any)
 * A session's id is the sha256 of the cookie's secret: it can be shown and
 * revoked, but it opens nothing.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FleetbootError } from '../../lib/errors.js';
import { roleAtLeast } from '../../model/roles.js';
import { getSession, getUser, listSessions, revokeSession, type Session } from '../../store/index.js';
import { clearedSessionCookie, overTls, principalOf, sessionCookie } from '../auth.js';
import { clientAddress } from '../client-address.js';
import type { AppContext } from '../context.js';
import { authApi } from '../schemas/auth.js';
import type { ApiTypeProvider } from '../type-provider.js';

export async function authRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  const { store, auth } = ctx;
  const idleMinutes = ctx.config.auth.sessionIdleMinutes;

  const sessionView = (s: Session, req: FastifyRequest) => {
    const p = req.principal;
    const idleExpiresAt = new Date(Math.min(Date.parse(s.lastSeenAt) + auth.idleMs, Date.parse(s.expiresAt))).toISOString();
    return { ...s, idleExpiresAt, current: p?.kind === 'session' && p.session.id === s.id };
  };

  app.post('/auth/login', { config: { role: 'public' }, schema: authApi.login }, async (req, reply) => {
    const { name, password } = req.body;
    req.auditActor = `login as ${JSON.stringify(name)}`;
    const ip = clientAddress(req.ip);
    const r = await auth.login(name, password, { ip, userAgent: req.headers['user-agent'] ?? null });
    if (!r.ok && r.reason === 'throttled') {
      ctx.log.warn({ subsystem: 'auth', ip, user: name, by: r.by, retryAfterSeconds: r.retryAfterSeconds }, 'login refused: too many failed attempts');
      const what = r.by === 'address' ? `from ${ip}` : `for user ${JSON.stringify(name)}`;
      return reply
        .code(429)
        .header('retry-after', String(r.retryAfterSeconds))
        .send({ error: 'RATE_LIMITED', message: `Too many failed logins ${what}: try again in ${r.retryAfterSeconds} second${r.retryAfterSeconds === 1 ? '' : 's'}` });
    }
    if (!r.ok) {
      ctx.log.info({ subsystem: 'auth', ip, user: name }, 'login failed');
      return reply.code(401).send({ error: 'UNAUTHORIZED', message: 'Wrong user name or password' });
    }
    ctx.log.info({ subsystem: 'auth', ip, user: r.user.name, role: r.user.role }, 'logged in');
    reply.header('set-cookie', sessionCookie(r.secret, { maxAgeSeconds: auth.maxMs / 1000, secure: overTls(req) }));
    return {
      user: { name: r.user.name, role: r.user.role, mustChangePassword: r.user.mustChangePassword },
      csrfToken: r.csrfToken,
      expiresAt: r.session.expiresAt,
      idleMinutes,
    };
  });

  app.post('/auth/logout', { config: { role: 'viewer', beforePasswordChange: true }, schema: authApi.logout }, async (req, reply) => {
    const p = principalOf(req);
    if (p.kind !== 'session') throw new FleetbootError('INVALID_INPUT', 'Logging out ends a login session; this request came with an API token (revoke tokens with DELETE /api/v1/tokens/ID)');
    await revokeSession(store.db, p.session.id, auth.now().toISOString());
    ctx.log.info({ subsystem: 'auth', user: p.user.name }, 'logged out');
    reply.header('set-cookie', clearedSessionCookie(overTls(req)));
    return { loggedOut: p.user.name };
  });

  app.get('/auth/me', { config: { role: 'viewer', beforePasswordChange: true }, schema: authApi.me }, async (req) => {
    const p = principalOf(req);
    const base = { role: p.role, via: p.kind, actor: p.actor };
    if (p.kind === 'local') return { ...base, user: null };
    const user = { name: p.user.name, role: p.user.role, mustChangePassword: p.user.mustChangePassword };
    if (p.kind === 'token') return { ...base, user, token: { id: p.token.id, name: p.token.name, role: p.token.role, expiresAt: p.token.expiresAt } };
    return { ...base, user, csrfToken: p.csrfToken, session: sessionView(p.session, req) };
  });

  app.get('/sessions', { config: { role: 'viewer' }, schema: authApi.sessions }, async (req) => {
    const p = principalOf(req);
    const admin = roleAtLeast(p.role, 'admin');
    let userId: number | undefined;
    if (req.query.user !== undefined) {
      if (!admin && req.query.user !== p.user?.name) throw new FleetbootError('FORBIDDEN', "Only an admin sees other users' sessions");
      const u = await getUser(store.db, req.query.user);
      if (!u) throw new FleetbootError('NOT_FOUND', `No user named '${req.query.user}'`);
      userId = u.id;
    } else if (!admin) {
      // A non-admin is a user (the local admin token is an admin).
      userId = p.user?.id ?? -1;
    }
    const now = auth.now().getTime();
    const sessions = await listSessions(store.db, {
      now: new Date(now).toISOString(),
      idleSince: new Date(now - auth.idleMs).toISOString(),
      ...(userId !== undefined ? { userId } : {}),
    });
    return { sessions: sessions.map((s) => sessionView(s, req)) };
  });

  app.delete('/sessions/:id', { config: { role: 'viewer' }, schema: authApi.revokeSession }, async (req, reply) => {
    const p = principalOf(req);
    const s = await getSession(store.db, req.params.id);
    if (!s) throw new FleetbootError('NOT_FOUND', `No session ${req.params.id} (fleetboot session list)`);
    if (!roleAtLeast(p.role, 'admin') && s.userId !== p.user?.id) throw new FleetbootError('FORBIDDEN', `Session ${s.id.slice(0, 12)}… is ${s.user}'s: only an admin may revoke another user's session`);
    const revoked = await revokeSession(store.db, s.id, auth.now().toISOString());
    ctx.log.info({ subsystem: 'auth', user: s.user, session: s.id.slice(0, 12), by: p.actor }, 'session revoked');
    const view = sessionView(revoked, req);
    if (view.current) reply.header('set-cookie', clearedSessionCookie(overTls(req)));
    return { revoked: view };
  });
}
