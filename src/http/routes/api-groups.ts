/**
 * Host groups (roles: reads viewer, changes operator, deletes admin):
 *   GET    /api/v1/groups                          -> { groups: [{ name, members, createdAt }] }
 *   POST   /api/v1/groups { name }                 -> 201 the group
 *   GET    /api/v1/groups/:name                    -> { name, createdAt, members: [{ mac, name, addedAt }] }
 *   DELETE /api/v1/groups/:name                    (409 while a schedule uses it)
 *   POST   /api/v1/groups/:name/members { macs }   add known hosts, all or none -> { group, added, already }
 *   POST   /api/v1/groups/:name/members/remove { macs }  remove members, all or none -> the group
 * A task request with `group` (POST /api/v1/tasks) makes one task per member: a job.
 */
import type { FastifyInstance } from 'fastify';
import { FleetbootError } from '../../lib/errors.js';
import { addGroupMembers, createGroup, deleteGroup, getGroup, listGroups, removeGroupMembers, NAME_PATTERN } from '../../store/index.js';
import type { AppContext } from '../context.js';

const groupSchema = {
  type: 'object',
  required: ['name', 'createdAt', 'members'],
  properties: {
    name: { type: 'string' },
    createdAt: { type: 'string' },
    members: {
      type: 'array',
      items: { type: 'object', required: ['mac', 'name', 'addedAt'], properties: { mac: { type: 'string' }, name: { type: ['string', 'null'] }, addedAt: { type: 'string' } } },
    },
  },
} as const;

const nameParams = { type: 'object', required: ['name'], properties: { name: { type: 'string', pattern: NAME_PATTERN } } } as const;
const macsBody = {
  type: 'object',
  required: ['macs'],
  additionalProperties: false,
  properties: { macs: { type: 'array', minItems: 1, maxItems: 10_000, items: { type: 'string', minLength: 12, maxLength: 17 } } },
} as const;

export async function groupRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const { store } = ctx;

  app.get(
    '/groups',
    { config: { role: 'viewer' }, schema: { response: { 200: { type: 'object', properties: { groups: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, members: { type: 'integer' }, createdAt: { type: 'string' } } } } } } } } },
    async () => ({ groups: await listGroups(store.db) }),
  );

  app.post<{ Body: { name: string } }>(
    '/groups',
    { config: { role: 'operator' }, schema: { body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', pattern: NAME_PATTERN } } }, response: { 201: groupSchema } } },
    async (req, reply) => {
      const g = await createGroup(store.db, req.body.name);
      ctx.log.info({ subsystem: 'api', group: g.name }, 'group added');
      return reply.code(201).send(g);
    },
  );

  app.get<{ Params: { name: string } }>('/groups/:name', { config: { role: 'viewer' }, schema: { params: nameParams, response: { 200: groupSchema } } }, async (req) => {
    const g = await getGroup(store.db, req.params.name);
    if (!g) throw new FleetbootError('NOT_FOUND', `No group named '${req.params.name}'`);
    return g;
  });

  app.delete<{ Params: { name: string } }>('/groups/:name', { config: { role: 'admin' }, schema: { params: nameParams } }, async (req) => {
    await deleteGroup(store.db, req.params.name);
    ctx.log.info({ subsystem: 'api', group: req.params.name }, 'group deleted');
    return { deleted: req.params.name };
  });

  app.post<{ Params: { name: string }; Body: { macs: string[] } }>(
    '/groups/:name/members',
    {
      config: { role: 'operator' },
      schema: {
        params: nameParams,
        body: macsBody,
        response: { 200: { type: 'object', properties: { group: groupSchema, added: { type: 'array', items: { type: 'string' } }, already: { type: 'array', items: { type: 'string' } } } } },
      },
    },
    async (req) => {
      const r = await addGroupMembers(store.db, req.params.name, req.body.macs);
      ctx.log.info({ subsystem: 'api', group: req.params.name, added: r.added, already: r.already }, 'group members added');
      return r;
    },
  );

  app.post<{ Params: { name: string }; Body: { macs: string[] } }>(
    '/groups/:name/members/remove',
    { config: { role: 'operator' }, schema: { params: nameParams, body: macsBody, response: { 200: groupSchema } } },
    async (req) => {
      const g = await removeGroupMembers(store.db, req.params.name, req.body.macs);
      ctx.log.info({ subsystem: 'api', group: req.params.name, removed: req.body.macs }, 'group members removed');
      return g;
    },
  );
}
