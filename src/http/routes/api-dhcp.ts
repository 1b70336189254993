/**
 *   GET /api/v1/dhcp/leases   the DHCP server's leases (role viewer); ?all=false (default true) hides inactive ones
 */
import type { FastifyInstance } from 'fastify';
import { listLeases } from '../../store/index.js';
import type { AppContext } from '../context.js';
import { dhcpApi } from '../schemas/dhcp.js';
import type { ApiTypeProvider } from '../type-provider.js';

export async function dhcpRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  app.get('/dhcp/leases', { config: { role: 'viewer' }, schema: dhcpApi.leases }, async (req) => {
    const leases = await listLeases(ctx.store.db);
    return { mode: ctx.config.dhcp.mode, leases: req.query.all === 'false' ? leases.filter((l) => l.active) : leases };
  });
}
