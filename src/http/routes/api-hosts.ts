/**
 * Hosts (token required):
 *   GET    /api/v1/hosts
 *   POST   /api/v1/hosts        { mac, name?, entry? } -> 201
 *   GET    /api/v1/hosts/:mac   (any usual MAC spelling; stored lower-case with colons)
 *   PATCH  /api/v1/hosts/:mac   { entry?: name | null, name?: name | null }  assign / unassign / rename
 *   DELETE /api/v1/hosts/:mac
 */
import type { FastifyInstance } from 'fastify';
import { FleetbootError } from '../../lib/errors.js';
import { createHost, deleteHost, getHost, listHosts, updateHost, NAME_PATTERN } from '../../store/index.js';
import type { AppContext } from '../context.js';

const nullableName = { anyOf: [{ type: 'string', pattern: NAME_PATTERN }, { type: 'null' }] } as const;

const hostSchema = {
  type: 'object',
  required: ['mac', 'name', 'entry', 'createdAt', 'updatedAt'],
  properties: {
    mac: { type: 'string' },
    name: { type: ['string', 'null'] },
    entry: { type: ['string', 'null'] },
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
  },
} as const;

const macParams = {
  type: 'object',
  required: ['mac'],
  properties: { mac: { type: 'string', minLength: 12, maxLength: 17 } },
} as const;

export async function hostRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const { store } = ctx;

  app.get('/hosts', { schema: { response: { 200: { type: 'object', properties: { hosts: { type: 'array', items: hostSchema } } } } } }, async () => ({
    hosts: await listHosts(store.db),
  }));

  app.post<{ Body: { mac: string; name?: string | null; entry?: string | null } }>(
    '/hosts',
    {
      schema: {
        body: {
          type: 'object',
          required: ['mac'],
          additionalProperties: false,
          properties: { mac: { type: 'string', minLength: 12, maxLength: 17 }, name: nullableName, entry: nullableName },
        },
        response: { 201: hostSchema },
      },
    },
    async (req, reply) => {
      const host = await createHost(store.db, req.body);
      ctx.log.info({ subsystem: 'api', mac: host.mac, entry: host.entry }, 'host added');
      return reply.code(201).send(host);
    },
  );

  app.get<{ Params: { mac: string } }>('/hosts/:mac', { schema: { params: macParams, response: { 200: hostSchema } } }, async (req) => {
    const host = await getHost(store.db, req.params.mac);
    if (!host) throw new FleetbootError('NOT_FOUND', `No host with MAC ${req.params.mac}`);
    return host;
  });

  app.patch<{ Params: { mac: string }; Body: { entry?: string | null; name?: string | null } }>(
    '/hosts/:mac',
    {
      schema: {
        params: macParams,
        body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { entry: nullableName, name: nullableName } },
        response: { 200: hostSchema },
      },
    },
    async (req) => {
      const host = await updateHost(store.db, req.params.mac, req.body);
      ctx.log.info({ subsystem: 'api', mac: host.mac, entry: host.entry, name: host.name }, 'host changed');
      return host;
    },
  );

  app.delete<{ Params: { mac: string } }>('/hosts/:mac', { schema: { params: macParams } }, async (req) => {
    await deleteHost(store.db, req.params.mac);
    ctx.log.info({ subsystem: 'api', mac: req.params.mac }, 'host deleted');
    return { deleted: req.params.mac };
  });
}
