/**
 * Images and their revisions (roles: reads viewer, changes operator, deletes admin):
 *   GET    /api/v1/images                          -> { images: ImageInfo[] }
 *   GET    /api/v1/images/:name                    -> ImageInfo + { manifest (current revision), revisions: ImageRevision[] }
 *   POST   /api/v1/images/:name/rollback           { to?: N } -> the revision now current
 *                                                  (default: the newest ready revision before the current one)
 *   POST   /api/v1/images/:name/revisions/:n/approve -> the approved revision (now current)
 *   PATCH  /api/v1/images/:name                   { protected?, nodes? } -> ImageInfo: a protected image refuses
 *                                                  capture tasks into it (409 protecting it while one is active);
 *                                                  nodes: 'all' or the node names its revisions are replicated to
 *   DELETE /api/v1/images/:name                    -> { deleted } (every revision; 409 while an active task uses it)
 *   POST   /api/v1/images/:name/verify             -> { node, results }: this node re-hashes its verified copies of
 *                                                  the image's revisions now (a mismatch marks the copy corrupt and
 *                                                  replication pulls it again), as it does every replication.verifyIntervalHours
 *
 * Images are made only by capture tasks (the agent's uploads, verified by the
 * server), one revision per capture; there is no upload here.
 */
import type { FastifyInstance } from 'fastify';
import { removeImage } from '../../imaging/image-store.js';
import { FleetbootError } from '../../lib/errors.js';
import { approveRevision, getImageDetail, listImages, setCurrentRevision, setImageNodes, setImageProtected, type ImageInfo, type ImageRevision } from '../../store/images.js';
import { listCopies } from '../../store/copies.js';
import type { AppContext } from '../context.js';
import { imagesApi } from '../schemas/images.js';
import type { ApiTypeProvider } from '../type-provider.js';

function revisionNumber(raw: string): number {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new FleetbootError('INVALID_INPUT', `Invalid revision ${JSON.stringify(raw)}: expected a revision number (1, 2, ...)`);
  return n;
}

export async function imageRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  const { store } = ctx;

  const detail = async (name: string) => {
    const d = await getImageDetail(store.db, name);
    if (!d) throw new FleetbootError('NOT_FOUND', `No image named '${name}'`);
    return d;
  };

  app.get('/images', { config: { role: 'viewer' }, schema: imagesApi.list }, async () => ({
    images: await listImages(store.db),
  }));

  app.get('/images/:name', { config: { role: 'viewer' }, schema: imagesApi.show }, async (req) => {
    const d = await detail(req.params.name);
    const current = d.revisions.find((r) => r.revision.current);
    const copies = (await listCopies(store.db, d.info.name)).map(({ image: _image, ...c }) => c);
    return { ...d.info, manifest: current ? { ...current.manifest } : null, revisions: d.revisions.map((r) => r.revision), copies };
  });

  app.post('/images/:name/rollback', { config: { role: 'operator' }, schema: imagesApi.rollback }, async (req): Promise<ImageRevision> => {
    const { name } = req.params;
    let to = req.body?.to;
    if (to === undefined) {
      const d = await detail(name);
      const cur = d.info.revision;
      const earlier = d.revisions.filter((r) => r.revision.state === 'ready' && (cur === null || r.revision.number < cur)).pop();
      if (!earlier) throw new FleetbootError('CONFLICT', `Image '${name}' has no ready revision before revision ${cur ?? 'none'} to roll back to (see fleetboot image show ${name})`);
      to = earlier.revision.number;
    }
    const r = await setCurrentRevision(store.db, name, to);
    ctx.log.info({ subsystem: 'api', image: name, revision: to, manifestSha256: r.revision.manifestSha256 }, `image '${name}': revision ${to} is current`);
    return r.revision;
  });

  app.post('/images/:name/revisions/:n/approve', { config: { role: 'operator' }, schema: imagesApi.approve }, async (req): Promise<ImageRevision> => {
    const n = revisionNumber(req.params.n);
    const r = await approveRevision(store.db, req.params.name, n);
    ctx.imagesChanged();
    ctx.log.info({ subsystem: 'api', image: req.params.name, revision: n }, `image '${req.params.name}': revision ${n} approved and current`);
    return r.revision;
  });

  app.patch('/images/:name', { config: { role: 'operator' }, schema: imagesApi.protect }, async (req): Promise<ImageInfo> => {
    const { name } = req.params;
    const { protected: protect, nodes } = req.body;
    if (protect === undefined && nodes === undefined) throw new FleetbootError('INVALID_INPUT', 'Nothing to change: give protected (true or false) and/or nodes (\'all\' or a list of node names and group:NAME)');
    let info: ImageInfo | null = null;
    if (nodes !== undefined) {
      info = await setImageNodes(store.db, name, nodes === 'all' ? 'all' : [...nodes]);
      ctx.imagesChanged();
      ctx.log.info({ subsystem: 'api', image: name, nodes: info.nodes }, `image '${name}' is replicated to ${info.nodes === 'all' ? 'every node' : `nodes ${info.nodes.join(', ')}`}`);
    }
    if (protect !== undefined) {
      info = await setImageProtected(store.db, name, protect);
      ctx.log.info({ subsystem: 'api', image: name, protected: info.protected }, `image '${name}' ${info.protected ? 'protected against capture' : 'no longer protected against capture'}`);
    }
    if (!info) throw new FleetbootError('INVALID_INPUT', 'Nothing to change');
    return info;
  });

  app.post('/images/:name/verify', { config: { role: 'operator' }, schema: imagesApi.verify }, async (req) => {
    const { name } = req.params;
    await detail(name);
    if (ctx.verifyImage === null) throw new FleetbootError('CONFLICT', 'This server runs without replication: nothing verifies image copies here');
    const results = (await ctx.verifyImage(name)).map(({ image: _image, ...r }) => r);
    const bad = results.filter((r) => r.outcome === 'corrupt').length;
    ctx.log.info({ subsystem: 'api', image: name, node: ctx.nodeName, verified: results.length - bad, corrupt: bad }, `image '${name}': ${results.length} verified cop${results.length === 1 ? 'y' : 'ies'} on this node re-hashed, ${bad} corrupt`);
    return { node: ctx.nodeName, results };
  });

  app.delete('/images/:name', { config: { role: 'admin' }, schema: imagesApi.remove }, async (req) => {
    await removeImage(store, req.params.name);
    ctx.log.info({ subsystem: 'api', image: req.params.name }, 'image deleted');
    return { deleted: req.params.name };
  });
}
