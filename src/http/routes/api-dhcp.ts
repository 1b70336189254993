/**
 *   GET /api/v1/dhcp/leases   the DHCP server's leases (role viewer); ?all=false (default true) hides inactive ones
 */
import type { FastifyInstance } from 'fastify';
import { listLeases } from '../../store/index.js';
import type { AppContext } from '../context.js';

const leaseSchema = {
  type: 'object',
  required: ['ip', 'mac', 'clientId', 'hostname', 'state', 'expiresAt', 'updatedAt', 'active'],
  properties: {
    ip: { type: 'string' },
    mac: { type: 'string' },
    clientId: { type: ['string', 'null'] },
    hostname: { type: ['string', 'null'] },
    state: { type: 'string' },
    expiresAt: { type: 'string' },
    updatedAt: { type: 'string' },
    active: { type: 'boolean' },
  },
} as const;

export async function dhcpRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get<{ Querystring: { all?: 'true' | 'false' } }>(
    '/dhcp/leases',
    {
      config: { role: 'viewer' },
      schema: {
        querystring: { type: 'object', additionalProperties: false, properties: { all: { type: 'string', enum: ['true', 'false'] } } },
        response: { 200: { type: 'object', properties: { mode: { type: 'string' }, leases: { type: 'array', items: leaseSchema } } } },
      },
    },
    async (req) => {
      const leases = await listLeases(ctx.store.db);
      return { mode: ctx.config.dhcp.mode, leases: req.query.all === 'false' ? leases.filter((l) => l.active) : leases };
    },
  );
}
