/**
 * The imaging agent's endpoints (src/imaging/protocol.ts), under /agent/v1.
 * Authentication: the task token (Bearer), looked up by its sha256; it names
 * the task, so no path carries a task id.
 *   401 no or unknown token; 403 the token from another address than the one
 *   it was handed to (logged: someone else holds the token); 409 the task is
 *   no longer active (progress answers 200 with the state instead, so the
 *   agent learns it was cancelled), or a transfer before the identity.
 *
 *   GET  /task                spec (booting -> running)
 *   POST /task/identity       HardwareIdentity (before slot/streams/image)
 *   POST /task/progress       ProgressReport -> { state }
 *   POST /task/slot           -> SlotAnswer
 *   PUT  /task/streams/:file  capture upload (octet-stream, streamed to disk)
 *   GET  /task/image/:file    deploy download (Range); on several nodes the agent reads
 *                             these from the node its spec's streamsUrl names (any node
 *                             accepts the token: it is in the shared store), and each
 *                             node serves only copies it holds verified
 *   POST /task/complete       CompleteBody
 *   POST /task/fail           FailBody
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { relative } from 'node:path';
import { Readable } from 'node:stream';
import { FleetbootError, errorMessage } from '../../lib/errors.js';
import { imagesRoot, imageStreamPath, NoSpaceError, receiveStream, StreamTooLargeError } from '../../imaging/image-store.js';
import { STREAM_FILE_PATTERN, type ProgressReport } from '../../imaging/protocol.js';
import { TASK_PHASES } from '../../model/task.js';
import { isActiveState, type Task } from '../../store/tasks.js';
import type { AppContext } from '../context.js';
import { openInside, sendFile } from '../send-file.js';
import { clientAddress } from '../client-address.js';

const progressSchema = {
  type: 'object',
  required: ['phase', 'bytesDone', 'bytesTotal', 'partition'],
  properties: {
    phase: { type: 'string', enum: TASK_PHASES },
    bytesDone: { type: 'integer', minimum: 0 },
    bytesTotal: { type: ['integer', 'null'], minimum: 0 },
    partition: { type: ['integer', 'null'], minimum: 1, maximum: 128 },
    message: { type: 'string', maxLength: 500 },
  },
} as const;

const fileParams = {
  type: 'object',
  required: ['file'],
  properties: { file: { type: 'string', pattern: STREAM_FILE_PATTERN } },
} as const;

export async function agentRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const { imaging, store, config } = ctx;
  const log = ctx.log.child({ subsystem: 'imaging' });
  const tasks = new WeakMap<FastifyRequest, Task>();

  // Stream uploads reach the handler unread: they go to disk as they arrive.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => {
    done(null, payload);
  });

  app.addHook('onRequest', async (req, reply) => {
    const t = await imaging.authenticate(req.headers.authorization);
    if (!t) {
      await reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="fleetboot-imager"')
        .send({ error: 'UNAUTHORIZED', message: 'Missing or wrong task token (fleetboot.token on the kernel command line)' });
      return;
    }
    const path = req.url.split('?')[0] ?? '';
    const ip = clientAddress(req.ip);
    if (t.tokenIp !== null && t.tokenIp !== ip) {
      log.warn({ task: t.id, mac: t.mac, ip, tokenIp: t.tokenIp, path, method: req.method }, `task #${t.id}: its token was used from ${ip}, but it was handed to ${t.tokenIp}: refused (403)`);
      await reply.code(403).send({ error: 'FORBIDDEN', message: `This task's token was handed to ${t.tokenIp}; requests from ${ip} are refused` });
      return;
    }
    // progress answers with the state; a repeated complete of a done task is answered by complete().
    if (!isActiveState(t.state) && !path.endsWith('/task/progress') && !(t.state === 'done' && path.endsWith('/task/complete'))) {
      await reply.code(409).send({ error: 'CONFLICT', message: `Task #${t.id} is ${t.state}${t.error ? `: ${t.error}` : ''}` });
      return;
    }
    tasks.set(req, t);
  });

  const taskOf = (req: FastifyRequest): Task => {
    const t = tasks.get(req);
    if (!t) throw new FleetbootError('UNAUTHORIZED', 'No task for this request');
    return t;
  };
  /** Capture and deploy move no byte before the agent said which machine it runs on. */
  const transferTaskOf = (req: FastifyRequest): Task => {
    const t = taskOf(req);
    if ((t.type === 'capture' || t.type === 'deploy') && t.identity === null) {
      // 428, not 409 (which tells an agent its task is over): an agent from a boot environment built before identities existed fails the task with this.
      throw new FleetbootError('PRECONDITION', `Task #${t.id}: report the hardware identity (POST /agent/v1/task/identity) before any transfer; an agent that does not is from an older boot environment: rebuild it (fleetboot bootenv build)`);
    }
    return t;
  };

  app.get('/task', async (req) => {
    const t = taskOf(req);
    const spec = await imaging.start(t, clientAddress(req.ip));
    // A deploy of a multicast job: the session, its group and this task's receiver id (admitted from this address only).
    const multicast = ctx.multicast && t.multicastId !== null ? await ctx.multicast.specFor(t, clientAddress(req.ip)) : null;
    return multicast ? { ...spec, multicast } : spec;
  });

  app.post('/task/identity', { bodyLimit: 64 * 1024, schema: { body: { type: 'object' } } }, async (req) => {
    await imaging.identify(taskOf(req), req.body);
    return { ok: true };
  });

  app.post<{ Body: ProgressReport }>('/task/progress', { schema: { body: progressSchema } }, async (req) => {
    return { state: await imaging.progress(taskOf(req), req.body) };
  });

  app.post('/task/slot', async (req, reply) => {
    const a = await imaging.slot(transferTaskOf(req));
    if (!a.granted) reply.header('retry-after', String(a.retryAfterSeconds));
    return a;
  });

  app.put<{ Params: { file: string } }>(
    '/task/streams/:file',
    { schema: { params: fileParams }, bodyLimit: config.imaging.maxImageBytes },
    async (req, reply) => {
      const t = transferTaskOf(req);
      if (t.type !== 'capture') throw new FleetbootError('CONFLICT', `Task #${t.id} is a ${t.type} task: only capture tasks upload streams`);
      const body: unknown = req.body;
      // Only a raw stream is a stream: anything else must not replace an upload with nothing.
      if (!(body instanceof Readable)) {
        return reply.code(415).send({ error: 'UNSUPPORTED_MEDIA_TYPE', message: 'A stream upload must be sent as application/octet-stream' });
      }
      const source = body;
      const started = Date.now();
      await imaging.touch(t);
      try {
        const receipt = await receiveStream(store, t.id, req.params.file, source, {
          maxBytes: config.imaging.maxImageBytes,
          onBytes: () => {
            imaging.touch(t).catch(() => undefined);
          },
        });
        const ms = Date.now() - started;
        log.info({ task: t.id, mac: t.mac, file: receipt.file, bytes: receipt.bytes, sha256: receipt.sha256, ms }, `task #${t.id}: stream ${receipt.file} received (${receipt.bytes} bytes)`);
        return receipt;
      } catch (err) {
        if (err instanceof StreamTooLargeError) {
          log.warn({ task: t.id, mac: t.mac, file: req.params.file, err: err.message }, 'stream refused: too large');
          return reply.code(413).send({ error: 'TOO_LARGE', message: err.message });
        }
        if (err instanceof NoSpaceError) {
          // Final, not a retry: the task fails with the reason (its partial streams are dropped).
          await imaging.fail(t, `the server is out of disk space: ${err.message}`, undefined);
          return reply.code(507).send({ error: 'NO_SPACE', message: err.message });
        }
        if (err instanceof FleetbootError) throw err;
        // The agent went away mid-upload (or its connection broke): nothing was kept.
        log.info({ task: t.id, mac: t.mac, file: req.params.file, err: errorMessage(err) }, `task #${t.id}: upload of ${req.params.file} cut off; the partial file was dropped`);
        return reply.code(400).send({ error: 'INVALID_INPUT', message: `Upload cut off: ${errorMessage(err)}` });
      }
    },
  );

  app.route<{ Params: { file: string } }>({
    method: ['GET', 'HEAD'],
    url: '/task/image/:file',
    exposeHeadRoute: false,
    schema: { params: fileParams },
    handler: async (req, reply: FastifyReply) => {
      const t = transferTaskOf(req);
      const path = t.type === 'deploy' && t.image !== null && t.revision !== null ? await imageStreamPath(store, t.image, t.revision, req.params.file, ctx.nodeName) : null;
      // The path is the server's own, but it is opened like any other served file (lib/safe-path.ts): inside the images directory, O_NOFOLLOW.
      const file = path === null ? null : await openInside(imagesRoot(store), relative(imagesRoot(store), path));
      if (file === null) return reply.code(404).send({ error: 'NOT_FOUND', message: `Task #${t.id} has no image file ${req.params.file}` });
      try {
        await imaging.touch(t);
      } catch (err) {
        await file.handle.close();
        throw err;
      }
      reply.raw.once('finish', () => {
        imaging.touch(t).catch(() => undefined);
      });
      log.info({ task: t.id, mac: t.mac, file: req.params.file, range: req.headers.range }, `task #${t.id}: sending ${req.params.file}${req.headers.range ? ` (${req.headers.range})` : ''}`);
      return sendFile(req, reply, file);
    },
  });

  app.post('/task/complete', { bodyLimit: 8 * 1024 * 1024, schema: { body: { type: 'object', required: ['type'], properties: { type: { type: 'string' } } } } }, async (req) => {
    await imaging.complete(transferTaskOf(req), req.body);
    return { ok: true };
  });

  app.post<{ Body: { reason: string; inventory?: unknown } }>(
    '/task/fail',
    { schema: { body: { type: 'object', required: ['reason'], properties: { reason: { type: 'string', maxLength: 4000 }, inventory: { type: 'object' } } } } },
    async (req) => {
      await imaging.fail(taskOf(req), req.body.reason, req.body.inventory);
      return { ok: true };
    },
  );
}
