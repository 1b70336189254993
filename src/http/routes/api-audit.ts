/**
 * The audit log (admin):
 *   GET /api/v1/audit[?limit=N&before=ID]   newest first -> { entries, nextBefore }
 * limit 1-1000 (default 100); `before` pages: pass the answer's nextBefore
 * (null when there is nothing older).
 */
import type { FastifyInstance } from 'fastify';
import { listAudit } from '../../store/index.js';
import type { AppContext } from '../context.js';
import { auditApi } from '../schemas/audit.js';
import type { ApiTypeProvider } from '../type-provider.js';

export async function auditRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  app.get('/audit', { config: { role: 'admin' }, schema: auditApi.list }, async (req) => {
    const limit = Math.min(Number(req.query.limit ?? 100), 1000);
    const entries = await listAudit(ctx.store.db, { limit, ...(req.query.before !== undefined ? { before: Number(req.query.before) } : {}) });
    const last = entries[entries.length - 1];
    return { entries, nextBefore: entries.length === limit && last ? last.id : null };
  });
}
