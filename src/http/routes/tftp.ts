/**
 *   GET /tftp/<path>   the TFTP root over HTTP (UEFI HTTP boot, iPXE): regular
 *                      files strictly inside the root, with Range. Names
 *                      follow the TFTP server's rules (lib/safe-path.ts), so
 *                      both protocols serve the same file for the same name.
 */
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import { openInRoot } from '../../lib/safe-path.js';
import { sendFile } from '../send-file.js';

export async function tftpRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.route<{ Params: { '*': string } }>({
    method: ['GET', 'HEAD'],
    url: '/tftp/*',
    exposeHeadRoute: false,
    handler: async (req, reply) => {
      const rel = req.params['*'];
      const opened = await openInRoot(ctx.config.tftp.root, rel);
      if (!opened.ok) {
        ctx.log.info({ subsystem: 'http', ip: req.ip, path: `/tftp/${rel}`.slice(0, 300), status: 404, reason: opened.reason, why: opened.message }, 'tftp root over http: not found or refused');
        return reply.code(404).send({ error: 'NOT_FOUND', message: 'Not found' });
      }
      return sendFile(req, reply, opened);
    },
  });
}
