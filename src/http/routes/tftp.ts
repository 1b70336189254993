/**
 *   GET /tftp/<path>   the TFTP root over HTTP (UEFI HTTP boot, iPXE): regular
 *                      files strictly inside the root, with Range.
 */
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import { resolveInside, sendFile } from '../send-file.js';

export async function tftpRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.route<{ Params: { '*': string } }>({
    method: ['GET', 'HEAD'],
    url: '/tftp/*',
    exposeHeadRoute: false,
    handler: async (req, reply) => {
      const rel = req.params['*'];
      const real = await resolveInside(ctx.config.tftp.root, rel);
      if (real === null) {
        ctx.log.info({ subsystem: 'http', ip: req.ip, path: `/tftp/${rel}`.slice(0, 300), status: 404 }, 'tftp root over http: not found or refused');
        return reply.code(404).send({ error: 'NOT_FOUND', message: 'Not found' });
      }
      return sendFile(req, reply, real);
    },
  });
}
