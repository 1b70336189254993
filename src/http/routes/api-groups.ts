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
import { addGroupMembers, createGroup, deleteGroup, getGroup, listGroups, removeGroupMembers } from '../../store/index.js';
import type { AppContext } from '../context.js';
import { groupsApi } from '../schemas/groups.js';
import type { ApiTypeProvider } from '../type-provider.js';

export async function groupRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  const { store } = ctx;

  app.get('/groups', { config: { role: 'viewer' }, schema: groupsApi.list }, async () => ({ groups: await listGroups(store.db) }));

  app.post('/groups', { config: { role: 'operator' }, schema: groupsApi.create }, async (req, reply) => {
    const g = await createGroup(store.db, req.body.name);
    ctx.log.info({ subsystem: 'api', group: g.name }, 'group added');
    return reply.code(201).send(g);
  });

  app.get('/groups/:name', { config: { role: 'viewer' }, schema: groupsApi.show }, async (req) => {
    const g = await getGroup(store.db, req.params.name);
    if (!g) throw new FleetbootError('NOT_FOUND', `No group named '${req.params.name}'`);
    return g;
  });

  app.delete('/groups/:name', { config: { role: 'admin' }, schema: groupsApi.remove }, async (req) => {
    await deleteGroup(store.db, req.params.name);
    ctx.log.info({ subsystem: 'api', group: req.params.name }, 'group deleted');
    return { deleted: req.params.name };
  });

  app.post('/groups/:name/members', { config: { role: 'operator' }, schema: groupsApi.addMembers }, async (req) => {
    const r = await addGroupMembers(store.db, req.params.name, req.body.macs);
    ctx.log.info({ subsystem: 'api', group: req.params.name, added: r.added, already: r.already }, 'group members added');
    return r;
  });

  app.post('/groups/:name/members/remove', { config: { role: 'operator' }, schema: groupsApi.removeMembers }, async (req) => {
    const g = await removeGroupMembers(store.db, req.params.name, req.body.macs);
    ctx.log.info({ subsystem: 'api', group: req.params.name, removed: req.body.macs }, 'group members removed');
    return g;
  });
}
