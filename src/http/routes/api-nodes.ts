/**
 * Nodes: the Fleetboot servers sharing the database (src/nodes/service.ts;
 * roles: reads viewer, removal admin):
 *   GET    /api/v1/nodes                      -> { nodes, self, replicationLag }
 *   GET    /api/v1/nodes/:name                -> the node
 *   DELETE /api/v1/nodes/:name[?force=true]   409 while it is up, unless force; always for the node answering
 */
import type { FastifyInstance } from 'fastify';
import { FleetbootError } from '../../lib/errors.js';
import { getNode, listNodes, removeNode, type NodeRecord } from '../../store/index.js';
import { replicationLag } from '../../store/copies.js';
import type { AppContext } from '../context.js';
import { nodesApi } from '../schemas/nodes.js';
import type { ApiTypeProvider } from '../type-provider.js';

export async function nodeRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  const view = (n: NodeRecord) => {
    const { id: _id, ...rest } = n;
    return { ...rest, self: n.name === ctx.nodeName };
  };

  app.get('/nodes', { config: { role: 'viewer' }, schema: nodesApi.list }, async () => ({
    nodes: (await listNodes(ctx.store.db)).map(view),
    self: ctx.nodeName,
    replicationLag: await replicationLag(ctx.store.db),
  }));

  app.get('/nodes/:name', { config: { role: 'viewer' }, schema: nodesApi.show }, async (req) => {
    const n = await getNode(ctx.store.db, req.params.name);
    if (!n) throw new FleetbootError('NOT_FOUND', `No node named '${req.params.name}'`);
    return view(n);
  });

  app.delete('/nodes/:name', { config: { role: 'admin' }, schema: nodesApi.remove }, async (req) => {
    const { name } = req.params;
    if (name === ctx.nodeName) throw new FleetbootError('CONFLICT', `Node '${name}' is the server answering this request: stop it and remove it through another node (or while no server runs under that name)`);
    const force = req.query.force === 'true' || req.query.force === '1';
    const n = await removeNode(ctx.store.db, name, { force });
    ctx.log.info({ subsystem: 'api', node: name, state: n.state, force }, `node ${name} removed (it was ${n.state})`);
    return { deleted: name };
  });
}
