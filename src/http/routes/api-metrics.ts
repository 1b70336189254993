/**
 *   GET /api/v1/metrics   Prometheus text exposition format 0.0.4 (role viewer; src/metrics/fleetboot.ts)
 *
 * Behind the API's own authentication (Bearer token of a viewer, or a
 * session), not on a port of its own: Prometheus sends the token
 * (`authorization: { credentials_file: ... }`), HTTPS carries it when
 * enabled, and no port is added to `fleetboot ports` or the firewall.
 */
import type { FastifyInstance } from 'fastify';
import { EXPOSITION_CONTENT_TYPE } from '../../metrics/exposition.js';
import type { AppContext } from '../context.js';
import { statusApi } from '../schemas/status.js';
import type { ApiTypeProvider } from '../type-provider.js';

export async function metricsRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  app.get('/metrics', { config: { role: 'viewer' }, schema: statusApi.metrics }, async (_req, reply) => {
    if (!ctx.metrics) {
      void reply.code(503).send({ error: 'UNAVAILABLE', message: 'this server runs without metrics' });
      return reply;
    }
    const text = await ctx.metrics();
    void reply.header('content-type', EXPOSITION_CONTENT_TYPE).header('cache-control', 'no-store').send(text);
    return reply;
  });
}
