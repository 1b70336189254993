/**
 * Image copies served to other nodes (replication, issue 15), outside
 * /api/v1 and authenticated as a node (src/http/node-auth.ts):
 *
 *   GET /node/v1/images/:name/:revision/manifest        manifest.json (Range)
 *   GET /node/v1/images/:name/:revision/streams/:file   one stream (Range)
 *
 * Served only from a copy this node holds verified (src/store/copies.ts):
 * 404 saying so otherwise, so a peer never pulls from a partial or corrupt
 * copy. Names are validated (image name, revision number, stream file
 * name), and the file is opened inside the image root like every served
 * file (lib/safe-path.ts). The puller checks every byte against the shared
 * store's sha256s anyway (src/replication/service.ts).
 */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { FleetbootError } from '../../lib/errors.js';
import { isValidName } from '../../model/validate.js';
import { imagesRoot, isStreamFile, MANIFEST_FILE } from '../../imaging/image-store.js';
import { getCopy } from '../../store/copies.js';
import { getRevision } from '../../store/images.js';
import type { AppContext } from '../context.js';
import { nodeAuthHook } from '../node-auth.js';
import { openInside, sendFile } from '../send-file.js';

export const NODE_PREFIX = '/node/v1';

const params = {
  type: 'object',
  required: ['name', 'revision'],
  properties: { name: { type: 'string', maxLength: 64 }, revision: { type: 'string', pattern: '^[1-9][0-9]{0,8}$' }, file: { type: 'string', maxLength: 32 } },
} as const;

export async function nodeImageRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const { store } = ctx;
  app.addHook('onRequest', nodeAuthHook(store));

  /** The directory of a revision this node holds verified, or NOT_FOUND saying why not. */
  async function verifiedDir(name: string, revisionText: string): Promise<{ dir: string; revision: number }> {
    if (!isValidName(name)) throw new FleetbootError('INVALID_INPUT', `Invalid image name ${JSON.stringify(name)}`);
    const revision = Number(revisionText);
    const rec = await getRevision(store.db, name, revision);
    if (!rec) throw new FleetbootError('NOT_FOUND', `No revision ${revision} of image '${name}'`);
    const self = ctx.nodeName;
    const copy = self === null ? null : await getCopy(store.db, name, revision, self);
    if (!copy || copy.state !== 'verified') {
      throw new FleetbootError('NOT_FOUND', `Node '${self ?? '?'}' holds no verified copy of image '${name}' revision ${revision} (its copy is ${copy ? copy.state : 'missing'}): pull it from a node that does`);
    }
    return { dir: rec.dir, revision };
  }

  app.route<{ Params: { name: string; revision: string } }>({
    method: ['GET', 'HEAD'],
    url: '/images/:name/:revision/manifest',
    exposeHeadRoute: false,
    schema: { params },
    handler: async (req, reply) => {
      const { dir } = await verifiedDir(req.params.name, req.params.revision);
      const file = await openInside(imagesRoot(store), join(dir, MANIFEST_FILE));
      if (!file) throw new FleetbootError('NOT_FOUND', `The manifest of image '${req.params.name}' revision ${req.params.revision} is not on this node's disk`);
      return sendFile(req, reply, file, 'application/json');
    },
  });

  app.route<{ Params: { name: string; revision: string; file: string } }>({
    method: ['GET', 'HEAD'],
    url: '/images/:name/:revision/streams/:file',
    exposeHeadRoute: false,
    schema: { params: { ...params, required: ['name', 'revision', 'file'] } },
    handler: async (req, reply) => {
      const { name, file: fileName } = req.params;
      if (!isStreamFile(fileName)) throw new FleetbootError('INVALID_INPUT', `Invalid stream file name ${JSON.stringify(fileName)}: expected p<N>.pcl.zst or p<N>.raw.zst`);
      const { dir, revision } = await verifiedDir(name, req.params.revision);
      const rec = await getRevision(store.db, name, revision);
      if (!rec?.manifest.partitions.some((p) => p.file === fileName)) throw new FleetbootError('NOT_FOUND', `Image '${name}' revision ${revision} has no stream ${fileName}`);
      const file = await openInside(imagesRoot(store), join(dir, fileName));
      if (!file) throw new FleetbootError('NOT_FOUND', `Stream ${fileName} of image '${name}' revision ${revision} is not on this node's disk`);
      return sendFile(req, reply, file);
    },
  });
}
