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
import { MAX_RATE_MBPS } from '../../model/multicast.js';
import type { AppContext } from '../context.js';

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[1-9][0-9]{0,14}$' } } } as const;
const dropParams = {
  type: 'object',
  required: ['id', 'task'],
  properties: { id: { type: 'string', pattern: '^[1-9][0-9]{0,14}$' }, task: { type: 'string', pattern: '^[1-9][0-9]{0,14}$' } },
} as const;
const nullableString = { type: ['string', 'null'] } as const;
const nullableInt = { type: ['integer', 'null'] } as const;
const nullableNumber = { type: ['number', 'null'] } as const;

const sessionProperties = {
  id: { type: 'integer' },
  session: { type: 'string' },
  jobId: nullableInt,
  image: { type: 'string' },
  revision: { type: 'integer' },
  address: { type: 'string' },
  port: { type: 'integer' },
  state: { type: 'string' },
  expected: { type: 'integer' },
  minReceivers: { type: 'integer' },
  maxWaitSeconds: nullableInt,
  error: nullableString,
  stats: {},
  createdAt: { type: 'string' },
  startedAt: nullableString,
  finishedAt: nullableString,
} as const;

const sessionSchema = { type: 'object', required: ['id', 'session', 'image', 'revision', 'address', 'port', 'state', 'expected'], properties: sessionProperties } as const;

const detailSchema = {
  type: 'object',
  required: [...sessionSchema.required, 'members'],
  properties: {
    ...sessionProperties,
    live: { type: ['object', 'null'], additionalProperties: true },
    members: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          taskId: { type: 'integer' },
          mac: { type: 'string' },
          taskState: { type: 'string' },
          tokenIp: nullableString,
          bytesDone: { type: 'integer' },
          bytesTotal: nullableInt,
          error: nullableString,
          receiverState: nullableString,
          receiverBytes: nullableInt,
          lossShare: nullableNumber,
          reason: nullableString,
        },
      },
    },
  },
} as const;

export async function multicastRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const service = () => {
    if (!ctx.multicast) throw new FleetbootError('CONFLICT', 'This server runs without multicast sessions');
    return ctx.multicast;
  };
  const detail = async (id: number) => {
    const d = await service().show(id);
    if (!d) throw new FleetbootError('NOT_FOUND', `No multicast session #${id}`);
    return d;
  };

  app.get<{ Querystring: { active?: 'true' | 'false' } }>(
    '/multicast',
    {
      config: { role: 'viewer' },
      schema: {
        querystring: { type: 'object', additionalProperties: false, properties: { active: { type: 'string', enum: ['true', 'false'] } } },
        response: { 200: { type: 'object', properties: { sessions: { type: 'array', items: sessionSchema } } } },
      },
    },
    async (req) => ({ sessions: ctx.multicast ? await ctx.multicast.list({ active: req.query.active === 'true' }) : [] }),
  );

  app.get<{ Params: { id: string } }>('/multicast/:id', { config: { role: 'viewer' }, schema: { params: idParams, response: { 200: detailSchema } } }, async (req) => detail(Number(req.params.id)));

  app.post<{ Params: { id: string } }>('/multicast/:id/cancel', { config: { role: 'operator' }, schema: { params: idParams, response: { 200: detailSchema } } }, async (req) => {
    const id = Number(req.params.id);
    await service().cancel(id, 'cancelled by an operator');
    ctx.log.info({ subsystem: 'api', session: id }, `multicast session #${id} cancelled (its members go on by unicast)`);
    return detail(id);
  });

  app.post<{ Params: { id: string; task: string } }>('/multicast/:id/drop/:task', { config: { role: 'operator' }, schema: { params: dropParams, response: { 200: detailSchema } } }, async (req) => {
    const id = Number(req.params.id);
    const task = Number(req.params.task);
    await service().drop(id, task, 'dropped by an operator');
    ctx.log.info({ subsystem: 'api', session: id, task }, `multicast session #${id}: task #${task} dropped (it goes on by unicast)`);
    return detail(id);
  });

  app.post<{ Params: { id: string }; Body: { maxRateMbps: number } }>(
    '/multicast/:id/rate',
    {
      config: { role: 'operator' },
      schema: {
        params: idParams,
        body: { type: 'object', additionalProperties: false, required: ['maxRateMbps'], properties: { maxRateMbps: { type: 'number', exclusiveMinimum: 0, maximum: MAX_RATE_MBPS } } },
        response: { 200: detailSchema },
      },
    },
    async (req) => {
      const id = Number(req.params.id);
      await service().setMaxRate(id, req.body.maxRateMbps);
      return detail(id);
    },
  );
}
