/**
 * Images (token required):
 *   GET    /api/v1/images          -> { images: ImageInfo[] }
 *   GET    /api/v1/images/:name    -> ImageInfo + { manifest } (partitions, tools, stream sizes, sha256)
 *   DELETE /api/v1/images/:name    -> { deleted } (409 while an active task uses it)
 *
 * Images are made only by capture tasks (the agent's uploads, verified by the
 * server); there is no upload here.
 */
import type { FastifyInstance } from 'fastify';
import { removeImage } from '../../imaging/image-store.js';
import { FleetbootError } from '../../lib/errors.js';
import { NAME_PATTERN } from '../../store/index.js';
import { getImage, listImages } from '../../store/images.js';
import type { AppContext } from '../context.js';

const imageInfoProperties = {
  name: { type: 'string' },
  createdAt: { type: 'string' },
  sizeBytes: { type: 'integer' },
  diskBytes: { type: 'integer' },
  tableType: { type: 'string' },
  partitions: { type: 'integer' },
  sourceMac: { type: ['string', 'null'] },
  taskId: { type: ['integer', 'null'] },
} as const;

const imageInfoSchema = {
  type: 'object',
  required: ['name', 'createdAt', 'sizeBytes', 'diskBytes', 'tableType', 'partitions', 'sourceMac', 'taskId'],
  properties: imageInfoProperties,
} as const;

const imageDetailSchema = {
  type: 'object',
  required: [...imageInfoSchema.required, 'manifest'],
  // The manifest is validated when it is stored (parseManifest); it goes out whole.
  properties: { ...imageInfoProperties, manifest: { type: 'object', additionalProperties: true } },
} as const;

const nameParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', pattern: NAME_PATTERN } },
} as const;

export async function imageRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const { store } = ctx;

  app.get('/images', { schema: { response: { 200: { type: 'object', properties: { images: { type: 'array', items: imageInfoSchema } } } } } }, async () => ({
    images: await listImages(store.db),
  }));

  app.get<{ Params: { name: string } }>('/images/:name', { schema: { params: nameParams, response: { 200: imageDetailSchema } } }, async (req) => {
    const image = await getImage(store.db, req.params.name);
    if (!image) throw new FleetbootError('NOT_FOUND', `No image named '${req.params.name}'`);
    return { ...image.info, manifest: image.manifest };
  });

  app.delete<{ Params: { name: string } }>('/images/:name', { schema: { params: nameParams } }, async (req) => {
    await removeImage(store, req.params.name);
    ctx.log.info({ subsystem: 'api', image: req.params.name }, 'image deleted');
    return { deleted: req.params.name };
  });
}
