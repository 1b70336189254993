/**
 * HTTPS certificates (src/tls/service.ts):
 *   GET  /api/v1/tls        -> the CA (PEM, SHA-256, expiry, subject) and the server certificate (role viewer)
 *   POST /api/v1/tls/renew  -> a new server certificate under the same CA, served at once (role admin)
 * Both answer 503 when HTTPS does not run (https.enabled false).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { AppContext } from '../context.js';
import { tlsApi } from '../schemas/tls.js';
import type { ApiTypeProvider } from '../type-provider.js';

export async function tlsRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();

  const service = (reply: FastifyReply): NonNullable<AppContext['tls']> | null => {
    if (ctx.tls) return ctx.tls;
    void reply.code(503).send({ error: 'UNAVAILABLE', message: 'HTTPS does not run in this server (https.enabled is false): it has no certificate' });
    return null;
  };

  app.get('/tls', { config: { role: 'viewer' }, schema: tlsApi.show }, async (_req, reply) => {
    const tls = service(reply);
    if (!tls) return reply;
    return tls.info();
  });

  app.post('/tls/renew', { config: { role: 'admin' }, schema: tlsApi.renew }, async (req, reply) => {
    const tls = service(reply);
    if (!tls) return reply;
    return tls.renew(`asked for by ${req.principal?.actor ?? 'an admin'} (POST /api/v1/tls/renew)`);
  });
}
