/**
 * Per-user API tokens (any logged-in role; one's own, an admin's: anyone's):
 *   GET    /api/v1/tokens[?user=NAME&revoked=true]   -> { tokens } (never the secrets)
 *   POST   /api/v1/tokens { name, role, user?, expiresInDays? }  -> 201 { token, secret }
 *          the secret (fbt_...) is in this answer only; the server keeps its sha256.
 *          role: at most the owner's (403 above it); user: the owner (default: oneself;
 *          another user: admin only; required with the local admin token, which has no user);
 *          expiresInDays: 1-3650, null = never, default 90.
 *   DELETE /api/v1/tokens/:id                          revoke -> { revoked: token }
 * A token cannot make tokens (a leaked short-lived one would mint a lasting
 * one): log in, or use the local admin token.
 */
import type { FastifyInstance } from 'fastify';
import { FleetbootError } from '../../lib/errors.js';
import { aRole, roleAtLeast } from '../../model/roles.js';
import { getApiToken, getUser, listApiTokens, revokeApiToken, type ApiToken } from '../../store/index.js';
import { principalOf } from '../auth.js';
import type { AppContext } from '../context.js';
import { DEFAULT_TOKEN_DAYS, tokensApi } from '../schemas/tokens.js';
import type { ApiTypeProvider } from '../type-provider.js';

export { DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS } from '../schemas/tokens.js';

export async function tokenRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  const { store, auth } = ctx;

  app.get('/tokens', { config: { role: 'viewer' }, schema: tokensApi.list }, async (req) => {
    const p = principalOf(req);
    const admin = roleAtLeast(p.role, 'admin');
    let userId: number | undefined;
    if (req.query.user !== undefined) {
      if (!admin && req.query.user !== p.user?.name) throw new FleetbootError('FORBIDDEN', "Only an admin sees other users' tokens");
      const u = await getUser(store.db, req.query.user);
      if (!u) throw new FleetbootError('NOT_FOUND', `No user named '${req.query.user}'`);
      userId = u.id;
    } else if (!admin) {
      userId = p.user?.id ?? -1;
    }
    return { tokens: await listApiTokens(store.db, { ...(userId !== undefined ? { userId } : {}), includeRevoked: req.query.revoked === 'true' }) };
  });

  app.post('/tokens', { config: { role: 'viewer' }, schema: tokensApi.create }, async (req, reply) => {
    const p = principalOf(req);
    if (p.kind === 'token') throw new FleetbootError('FORBIDDEN', 'An API token cannot make API tokens: log in, or use the local admin token (fleetboot token create)');
    const ownerName = req.body.user ?? p.user?.name;
    if (ownerName === undefined) throw new FleetbootError('INVALID_INPUT', 'The local admin token has no user: say whose token this is ("user"; fleetboot token create NAME --user USER)');
    if (ownerName !== p.user?.name && !roleAtLeast(p.role, 'admin')) throw new FleetbootError('FORBIDDEN', `Only an admin may make a token for another user; ${p.actor} is ${aRole(p.role)}`);
    const owner = await getUser(store.db, ownerName);
    if (!owner) throw new FleetbootError('NOT_FOUND', `No user named '${ownerName}' (fleetboot user list)`);
    const days = req.body.expiresInDays === undefined ? DEFAULT_TOKEN_DAYS : req.body.expiresInDays;
    const expiresAt = days === null ? null : new Date(auth.now().getTime() + days * 86_400_000).toISOString();
    const { secret, token } = await auth.createToken(owner, req.body.name, req.body.role, expiresAt);
    ctx.log.info({ subsystem: 'auth', token: token.id, name: token.name, user: owner.name, role: token.role, expiresAt, by: p.actor }, 'API token made');
    return reply.code(201).send({ token, secret });
  });

  app.delete('/tokens/:id', { config: { role: 'viewer' }, schema: tokensApi.revoke }, async (req) => {
    const p = principalOf(req);
    const id = Number(req.params.id);
    const t: ApiToken | null = await getApiToken(store.db, id);
    if (!t) throw new FleetbootError('NOT_FOUND', `No API token #${id} (fleetboot token list)`);
    if (!roleAtLeast(p.role, 'admin') && t.userId !== p.user?.id) throw new FleetbootError('FORBIDDEN', `Token #${id} is ${t.user}'s: only an admin may revoke another user's token`);
    const revoked = await revokeApiToken(store.db, id, auth.now().toISOString());
    ctx.log.info({ subsystem: 'auth', token: id, name: t.name, user: t.user, by: p.actor }, 'API token revoked');
    return { revoked };
  });
}
