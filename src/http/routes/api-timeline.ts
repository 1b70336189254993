/**
 * What the server saw of a machine's boots (role viewer), from its own
 * records (src/model/boot-event.ts), for any MAC that booted here (a host
 * or not):
 *   GET /api/v1/hosts/:mac/timeline[?limit=N&before=ID]  its steps, oldest first
 *                                                        (the newest N, default 200)
 *   GET /api/v1/hosts/:mac/why                           how far its last boot got and
 *                                                        what was expected next (src/boot/why.ts)
 */
import type { FastifyInstance } from 'fastify';
import { diagnoseBoot } from '../../boot/why.js';
import { FleetbootError } from '../../lib/errors.js';
import { listBootEvents, normaliseMac } from '../../store/index.js';
import type { AppContext } from '../context.js';
import { timelineApi } from '../schemas/timeline.js';
import type { ApiTypeProvider } from '../type-provider.js';

function macOf(raw: string): string {
  const mac = normaliseMac(raw);
  if (mac === null) throw new FleetbootError('INVALID_INPUT', `Invalid MAC address ${JSON.stringify(raw)}: expected six hex bytes such as 52:54:00:12:34:56`);
  return mac;
}

export async function timelineRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  const { store } = ctx;

  app.get('/hosts/:mac/timeline', { config: { role: 'viewer' }, schema: timelineApi.timeline }, async (req) => {
    const mac = macOf(req.params.mac);
    const events = await listBootEvents(store.db, mac, {
      ...(req.query.limit !== undefined ? { limit: Number(req.query.limit) } : {}),
      ...(req.query.before !== undefined ? { beforeId: Number(req.query.before) } : {}),
    });
    return { mac, events };
  });

  app.get('/hosts/:mac/why', { config: { role: 'viewer' }, schema: timelineApi.why }, async (req) => {
    const mac = macOf(req.params.mac);
    const events = await listBootEvents(store.db, mac, { limit: 500 });
    const runtime = ctx.runtime();
    const dp = ctx.config.tftp.dataPorts;
    return diagnoseBoot(mac, events, { httpPort: runtime.httpPort, tftpDataPorts: dp === null ? null : dp.from === dp.to ? String(dp.from) : `${dp.from}-${dp.to}` });
  });
}
