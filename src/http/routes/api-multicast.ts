/**
 * Multicast sessions (roles: reads viewer, changes operator), made by POST /api/v1/tasks with
 * `group` or `macs` and `multicast` (src/multicast/service.ts):
 *   GET  /api/v1/multicast[?active=true]          newest first -> { sessions }
 *   GET  /api/v1/multicast/:id                    the session, its live figures while it runs
 *                                                 (rate, retransmitted share) and its members
 *                                                 (task, receiver state, bytes, loss share)
 *   POST /api/v1/multicast/:id/cancel             end it; its members go on by unicast -> the session
 *   POST /api/v1/multicast/:id/drop/:task         one member leaves it and goes on by unicast -> the session
 *   POST /api/v1/multicast/:id/rate               { maxRateMbps } a new rate ceiling while it runs -> the session
 * Cancelling the tasks themselves: POST /api/v1/jobs/:id/cancel.
 */
import type { FastifyInstance } from 'fastify';
import { FleetbootError } from '../../lib/errors.js';
import type { AppContext } from '../context.js';
import { multicastApi } from '../schemas/multicast.js';
import type { ApiTypeProvider } from '../type-provider.js';

export async function multicastRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  const service = () => {
    if (!ctx.multicast) throw new FleetbootError('CONFLICT', 'This server runs without multicast sessions');
    return ctx.multicast;
  };
  const detail = async (id: number) => {
    const d = await service().show(id);
    if (!d) throw new FleetbootError('NOT_FOUND', `No multicast session #${id}`);
    return d;
  };

  app.get('/multicast', { config: { role: 'viewer' }, schema: multicastApi.list }, async (req) => ({
    sessions: ctx.multicast ? await ctx.multicast.list({ active: req.query.active === 'true' }) : [],
  }));

  app.get('/multicast/:id', { config: { role: 'viewer' }, schema: multicastApi.show }, async (req) => detail(Number(req.params.id)));

  app.post('/multicast/:id/cancel', { config: { role: 'operator' }, schema: multicastApi.cancel }, async (req) => {
    const id = Number(req.params.id);
    await service().cancel(id, 'cancelled by an operator');
    ctx.log.info({ subsystem: 'api', session: id }, `multicast session #${id} cancelled (its members go on by unicast)`);
    return detail(id);
  });

  app.post('/multicast/:id/drop/:task', { config: { role: 'operator' }, schema: multicastApi.drop }, async (req) => {
    const id = Number(req.params.id);
    const task = Number(req.params.task);
    await service().drop(id, task, 'dropped by an operator');
    ctx.log.info({ subsystem: 'api', session: id, task }, `multicast session #${id}: task #${task} dropped (it goes on by unicast)`);
    return detail(id);
  });

  app.post('/multicast/:id/rate', { config: { role: 'operator' }, schema: multicastApi.rate }, async (req) => {
    const id = Number(req.params.id);
    await service().setMaxRate(id, req.body.maxRateMbps);
    return detail(id);
  });
}
