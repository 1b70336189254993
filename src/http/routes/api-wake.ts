/**
 * Wake-on-LAN (roles: reads viewer, changes operator):
 *   POST /api/v1/wake { macs?: [MAC...], group?: NAME } -> 202 the round: machines, targets,
 *        repeats, spacing, datagrams of the first send and what failed in it
 *   GET  /api/v1/wake/targets -> { targets: [{ address, port, reason }], relays: [...] }
 * The packets go to the targets src/wake/targets.ts chooses, `wake.repeats`
 * times `wake.spacingSeconds` apart. Any MAC may be woken (it need not be a
 * host); a group wakes its members.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { FleetbootError } from '../../lib/errors.js';
import { groupMacs, listRelays, normaliseMac } from '../../store/index.js';
import type { WakeService } from '../../wake/service.js';
import type { AppContext } from '../context.js';
import { wakeApi } from '../schemas/wake.js';
import type { ApiTypeProvider } from '../type-provider.js';

export async function wakeRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  const { store } = ctx;

  const service = (reply: FastifyReply): WakeService | null => {
    if (ctx.wake) return ctx.wake;
    void reply.code(503).send({ error: 'UNAVAILABLE', message: 'Wake-on-LAN does not run in this server' });
    return null;
  };

  app.post('/wake', { config: { role: 'operator' }, schema: wakeApi.wake }, async (req, reply) => {
    const { macs, group } = req.body;
    if ((macs === undefined) === (group === undefined)) throw new FleetbootError('INVALID_INPUT', `Name the machines to wake: "macs" (a list of MACs) or "group" (a host group), not ${macs === undefined ? 'neither' : 'both'}`);
    let list: string[];
    if (macs !== undefined) {
      const bad = macs.filter((m) => normaliseMac(m) === null);
      if (bad.length) throw new FleetbootError('INVALID_INPUT', `Invalid MAC address ${bad.map((m) => JSON.stringify(m)).join(', ')}: expected six hex bytes such as 52:54:00:12:34:56`);
      list = [...new Set(macs.map((m) => normaliseMac(m) as string))];
    } else {
      list = await groupMacs(store.db, group as string);
      if (list.length === 0) throw new FleetbootError('CONFLICT', `Group '${group as string}' has no members to wake`);
    }
    const wake = service(reply);
    if (!wake) return reply;
    const r = await wake.wake(list, group !== undefined ? `fleetboot wake --group ${group}` : 'fleetboot wake');
    return reply.code(202).send(r);
  });

  app.get('/wake/targets', { config: { role: 'viewer' }, schema: wakeApi.targets }, async (_req, reply) => {
    const wake = service(reply);
    if (!wake) return reply;
    return { targets: await wake.targets(), relays: await listRelays(store.db) };
  });
}
