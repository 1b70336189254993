/**
 * The audit log (admin):
 *   GET /api/v1/audit[?limit=N&before=ID]   newest first -> { entries, nextBefore }
 * limit 1-1000 (default 100); `before` pages: pass the answer's nextBefore
 * (null when there is nothing older).
 */
import type { FastifyInstance } from 'fastify';
import { listAudit } from '../../store/index.js';
import type { AppContext } from '../context.js';

const entrySchema = {
  type: 'object',
  required: ['id', 'at', 'actor', 'ip', 'method', 'route', 'url', 'status', 'summary'],
  properties: {
    id: { type: 'integer' },
    at: { type: 'string' },
    actor: { type: 'string' },
    ip: { type: ['string', 'null'] },
    method: { type: 'string' },
    route: { type: ['string', 'null'] },
    url: { type: 'string' },
    status: { type: 'integer' },
    summary: {},
  },
} as const;

export async function auditRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get<{ Querystring: { limit?: string; before?: string } }>(
    '/audit',
    {
      config: { role: 'admin' },
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' }, before: { type: 'string', pattern: '^[1-9][0-9]{0,12}$' } },
        },
        response: { 200: { type: 'object', properties: { entries: { type: 'array', items: entrySchema }, nextBefore: { type: ['integer', 'null'] } } } },
      },
    },
    async (req) => {
      const limit = Math.min(Number(req.query.limit ?? 100), 1000);
      const entries = await listAudit(ctx.store.db, { limit, ...(req.query.before !== undefined ? { before: Number(req.query.before) } : {}) });
      const last = entries[entries.length - 1];
      return { entries, nextBefore: entries.length === limit && last ? last.id : null };
    },
  );
}
