/**
 * Images and their revisions (roles: reads viewer, changes operator, deletes admin):
 *   GET    /api/v1/images                          -> { images: ImageInfo[] }
 *   GET    /api/v1/images/:name                    -> ImageInfo + { manifest (current revision), revisions: ImageRevision[] }
 *   POST   /api/v1/images/:name/rollback           { to?: N } -> the revision now current
 *                                                  (default: the newest ready revision before the current one)
 *   POST   /api/v1/images/:name/revisions/:n/approve -> the approved revision (now current)
 *   PATCH  /api/v1/images/:name                   { protected } -> ImageInfo: a protected image refuses
 *                                                  capture tasks into it (409 protecting it while one is active)
 *   DELETE /api/v1/images/:name                    -> { deleted } (every revision; 409 while an active task uses it)
 *
 * Images are made only by capture tasks (the agent's uploads, verified by the
 * server), one revision per capture; there is no upload here.
 */
import type { FastifyInstance } from 'fastify';
import { removeImage } from '../../imaging/image-store.js';
import { FleetbootError } from '../../lib/errors.js';
import { NAME_PATTERN } from '../../store/index.js';
import { approveRevision, getImageDetail, listImages, setCurrentRevision, setImageProtected, type ImageInfo, type ImageRevision } from '../../store/images.js';
import type { AppContext } from '../context.js';

const nullableInt = { type: ['integer', 'null'] } as const;

const imageInfoProperties = {
  name: { type: 'string' },
  createdAt: { type: 'string' },
  revision: nullableInt,
  revisionCount: { type: 'integer' },
  pending: { type: 'integer' },
  sizeBytes: { type: 'integer' },
  diskBytes: { type: 'integer' },
  tableType: { type: 'string' },
  partitions: { type: 'integer' },
  sourceMac: { type: ['string', 'null'] },
  taskId: nullableInt,
  manifestSha256: { type: 'string' },
  protected: { type: 'boolean' },
} as const;

const imageInfoSchema = {
  type: 'object',
  required: ['name', 'createdAt', 'revision', 'revisionCount', 'pending', 'sizeBytes', 'diskBytes', 'tableType', 'partitions', 'sourceMac', 'taskId', 'manifestSha256', 'protected'],
  properties: imageInfoProperties,
} as const;

const revisionSchema = {
  type: 'object',
  required: ['image', 'number', 'state', 'current', 'createdAt', 'sizeBytes', 'manifestSha256'],
  properties: {
    image: { type: 'string' },
    number: { type: 'integer' },
    state: { type: 'string', enum: ['ready', 'pending'] },
    current: { type: 'boolean' },
    createdAt: { type: 'string' },
    approvedAt: { type: ['string', 'null'] },
    sourceMac: { type: ['string', 'null'] },
    taskId: nullableInt,
    sizeBytes: { type: 'integer' },
    manifestSha256: { type: 'string' },
    diskBytes: { type: 'integer' },
    tableType: { type: 'string' },
    partitions: { type: 'integer' },
  },
} as const;

const imageDetailSchema = {
  type: 'object',
  required: [...imageInfoSchema.required, 'manifest', 'revisions'],
  properties: {
    ...imageInfoProperties,
    // The current revision's manifest (null while none is approved); validated when it was stored (parseManifest).
    manifest: { type: ['object', 'null'], additionalProperties: true },
    revisions: { type: 'array', items: revisionSchema },
  },
} as const;

const nameParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', pattern: NAME_PATTERN } },
} as const;

function revisionNumber(raw: string): number {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new FleetbootError('INVALID_INPUT', `Invalid revision ${JSON.stringify(raw)}: expected a revision number (1, 2, ...)`);
  return n;
}

export async function imageRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const { store } = ctx;

  const detail = async (name: string) => {
    const d = await getImageDetail(store.db, name);
    if (!d) throw new FleetbootError('NOT_FOUND', `No image named '${name}'`);
    return d;
  };

  app.get('/images', { config: { role: 'viewer' }, schema: { response: { 200: { type: 'object', properties: { images: { type: 'array', items: imageInfoSchema } } } } } }, async () => ({
    images: await listImages(store.db),
  }));

  app.get<{ Params: { name: string } }>('/images/:name', { config: { role: 'viewer' }, schema: { params: nameParams, response: { 200: imageDetailSchema } } }, async (req) => {
    const d = await detail(req.params.name);
    const current = d.revisions.find((r) => r.revision.current);
    return { ...d.info, manifest: current?.manifest ?? null, revisions: d.revisions.map((r) => r.revision) };
  });

  app.post<{ Params: { name: string }; Body: { to?: number } | undefined }>(
    '/images/:name/rollback',
    { config: { role: 'operator' }, schema: { params: nameParams, body: { type: ['object', 'null'], additionalProperties: false, properties: { to: { type: 'integer', minimum: 1 } } }, response: { 200: revisionSchema } } },
    async (req): Promise<ImageRevision> => {
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
    },
  );

  app.post<{ Params: { name: string; n: string } }>(
    '/images/:name/revisions/:n/approve',
    { config: { role: 'operator' }, schema: { params: { type: 'object', required: ['name', 'n'], properties: { name: nameParams.properties.name, n: { type: 'string', pattern: '^[1-9][0-9]{0,9}$' } } }, response: { 200: revisionSchema } } },
    async (req): Promise<ImageRevision> => {
      const n = revisionNumber(req.params.n);
      const r = await approveRevision(store.db, req.params.name, n);
      ctx.log.info({ subsystem: 'api', image: req.params.name, revision: n }, `image '${req.params.name}': revision ${n} approved and current`);
      return r.revision;
    },
  );

  app.patch<{ Params: { name: string }; Body: { protected: boolean } }>(
    '/images/:name',
    {
      config: { role: 'operator' },
      schema: { params: nameParams, body: { type: 'object', required: ['protected'], additionalProperties: false, properties: { protected: { type: 'boolean' } } }, response: { 200: imageInfoSchema } },
    },
    async (req): Promise<ImageInfo> => {
      const info = await setImageProtected(store.db, req.params.name, req.body.protected);
      ctx.log.info({ subsystem: 'api', image: req.params.name, protected: info.protected }, `image '${req.params.name}' ${info.protected ? 'protected against capture' : 'no longer protected against capture'}`);
      return info;
    },
  );

  app.delete<{ Params: { name: string } }>('/images/:name', { config: { role: 'admin' }, schema: { params: nameParams } }, async (req) => {
    await removeImage(store, req.params.name);
    ctx.log.info({ subsystem: 'api', image: req.params.name }, 'image deleted');
    return { deleted: req.params.name };
  });
}
