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

const macParams = { type: 'object', required: ['mac'], properties: { mac: { type: 'string', minLength: 12, maxLength: 17 } } } as const;

const eventSchema = {
  type: 'object',
  required: ['id', 'at', 'kind', 'mac', 'ip', 'summary', 'detail'],
  properties: {
    id: { type: 'integer' },
    at: { type: 'string' },
    kind: { type: 'string' },
    mac: { type: ['string', 'null'] },
    ip: { type: ['string', 'null'] },
    summary: { type: 'string' },
    detail: { type: 'object', additionalProperties: true },
  },
} as const;

function macOf(raw: string): string {
  const mac = normaliseMac(raw);
  if (mac === null) throw new FleetbootError('INVALID_INPUT', `Invalid MAC address ${JSON.stringify(raw)}: expected six hex bytes such as 52:54:00:12:34:56`);
  return mac;
}

export async function timelineRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const { store } = ctx;

  app.get<{ Params: { mac: string }; Querystring: { limit?: string; before?: string } }>(
    '/hosts/:mac/timeline',
    {
      config: { role: 'viewer' },
      schema: {
        params: macParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' }, before: { type: 'string', pattern: '^[1-9][0-9]{0,14}$' } },
        },
        response: { 200: { type: 'object', required: ['mac', 'events'], properties: { mac: { type: 'string' }, events: { type: 'array', items: eventSchema } } } },
      },
    },
    async (req) => {
      const mac = macOf(req.params.mac);
      const events = await listBootEvents(store.db, mac, {
        ...(req.query.limit !== undefined ? { limit: Number(req.query.limit) } : {}),
        ...(req.query.before !== undefined ? { beforeId: Number(req.query.before) } : {}),
      });
      return { mac, events };
    },
  );

  app.get<{ Params: { mac: string } }>(
    '/hosts/:mac/why',
    {
      config: { role: 'viewer' },
      schema: {
        params: macParams,
        response: {
          200: {
            type: 'object',
            required: ['mac', 'stage', 'completed', 'verdict', 'next', 'steps'],
            properties: {
              mac: { type: 'string' },
              stage: { type: 'string' },
              completed: { type: 'boolean' },
              verdict: { type: 'string' },
              next: { type: ['string', 'null'] },
              steps: { type: 'array', items: eventSchema },
            },
          },
        },
      },
    },
    async (req) => {
      const mac = macOf(req.params.mac);
      const events = await listBootEvents(store.db, mac, { limit: 500 });
      const runtime = ctx.runtime();
      const dp = ctx.config.tftp.dataPorts;
      return diagnoseBoot(mac, events, { httpPort: runtime.httpPort, tftpDataPorts: dp === null ? null : dp.from === dp.to ? String(dp.from) : `${dp.from}-${dp.to}` });
    },
  );
}
