/**
 * What machines fetch while booting; no authentication, so each hands out
 * only what the asking machine needs (README "HTTP endpoints" lists what
 * each can read or change):
 *   GET /boot.ipxe                   the entry script the proxyDHCP hands to iPXE
 *   GET /boot/decide?mac=..          the per-machine script (always 200 + a script)
 *   GET /boot/entries/:name/:file    files of boot entries (Range, exact sizes)
 *   GET /boot/env/vmlinuz|initrd.img the imaging boot environment (Range)
 *   GET /boot/task?mac=..&type=register|inventory
 *                                    the menu's imaging items: create the task, boot the environment
 *
 * The decision is src/boot/decide.ts (pure); src/imaging/boot-decider.ts
 * gathers its inputs and performs its effects (a token bound to the
 * client's address, a failed task, a register task; creations rate-limited
 * per client address), for iPXE here and for GRUB over TFTP
 * (src/imaging/grub-files.ts).
 */
import type { FastifyInstance } from 'fastify';
import { chainScript, messageScript, bootEnvScript } from '../../boot/ipxe.js';
import { parseDecideQuery, renderDecision } from '../../boot/decide.js';
import { BOOTENV_INITRD, BOOTENV_KERNEL } from '../../imaging/tasks.js';
import { entryDir, getEntry, normaliseMac, FILE_NAME_PATTERN, IPV4_PATTERN, NAME_PATTERN } from '../../store/index.js';
import type { AppContext } from '../context.js';
import { clientAddress } from '../client-address.js';
import { openInside, sendFile } from '../send-file.js';

const IPXE = 'text/plain; charset=utf-8';
const IPV4 = new RegExp(IPV4_PATTERN);

export async function bootRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const { store, config, log, bootDecider } = ctx;

  app.get('/boot.ipxe', async (req, reply) => {
    log.info({ subsystem: 'http', ip: req.ip, path: '/boot.ipxe' }, 'entry script served');
    return reply.header('content-type', IPXE).header('cache-control', 'no-store').send(chainScript(ctx.baseUrl()));
  });

  app.get('/boot/decide', { schema: { querystring: { type: 'object', additionalProperties: true } } }, async (req, reply) => {
    reply.header('content-type', IPXE).header('cache-control', 'no-store');
    const q = parseDecideQuery(req.query as Record<string, unknown>);
    const ip = clientAddress(req.ip);
    try {
      const out = await bootDecider.decide(q, ip, 'ipxe');
      if (out.kind === 'limited') return reply.header('retry-after', String(out.retryAfterSeconds)).send(messageScript(out.message, { pauseSeconds: 10 }));
      const { decision, token } = out;
      return reply.send(
        renderDecision(decision, {
          baseUrl: ctx.baseUrl(),
          platform: q.platform,
          menuTimeoutSeconds: config.boot.menuTimeoutSeconds,
          menuEntries: out.menuEntries,
          bootEnv: token !== null ? { token, kernelArgs: config.imaging.kernelArgs, clientIp: IPV4.test(ip) ? ip : null } : null,
          menuTools: true,
        }),
      );
    } catch (err) {
      log.error({ subsystem: 'http', ip, mac: q.mac ?? q.rawMac, err }, 'boot decision failed');
      return reply.send(messageScript('server error while deciding how to boot this machine; see the server log'));
    }
  });

  // The boot menu's imaging items (src/imaging/boot-decider.ts menuTask).
  app.get('/boot/task', { schema: { querystring: { type: 'object', additionalProperties: true } } }, async (req, reply) => {
    reply.header('content-type', IPXE).header('cache-control', 'no-store');
    const query = req.query as Record<string, unknown>;
    const mac = typeof query['mac'] === 'string' ? normaliseMac(query['mac']) : null;
    const type = query['type'];
    const ip = clientAddress(req.ip);
    if (mac === null || (type !== 'register' && type !== 'inventory')) {
      return reply.send(messageScript('bad request: expected mac=MAC and type=register or type=inventory'));
    }
    try {
      const out = await bootDecider.menuTask(mac, type, ip);
      if (out.kind === 'limited') return reply.header('retry-after', String(out.retryAfterSeconds)).send(messageScript(out.message, { pauseSeconds: 10 }));
      if (out.kind === 'message') return reply.send(messageScript(out.message, { pauseSeconds: out.pauseSeconds }));
      return reply.send(
        bootEnvScript({ baseUrl: ctx.baseUrl(), mac, hostName: out.hostName, taskId: out.task.id, taskType: out.task.type, token: out.token, kernelArgs: config.imaging.kernelArgs, ...(IPV4.test(ip) ? { clientIp: ip } : {}) }),
      );
    } catch (err) {
      log.error({ subsystem: 'imaging', ip, mac, type, err }, 'creating a task from the boot menu failed');
      return reply.send(messageScript('server error while creating the task; see the server log'));
    }
  });

  app.route<{ Params: { file: string } }>({
    method: ['GET', 'HEAD'],
    url: '/boot/env/:file',
    exposeHeadRoute: false,
    schema: { params: { type: 'object', required: ['file'], properties: { file: { type: 'string', enum: [BOOTENV_KERNEL, BOOTENV_INITRD] } } } },
    handler: async (req, reply) => {
      const real = await openInside(config.imaging.bootEnvDir, req.params.file);
      if (real === null) {
        return reply.code(404).send({ error: 'NOT_FOUND', message: `The boot environment has no ${req.params.file}: build it with scripts/build-bootenv.sh (into ${config.imaging.bootEnvDir})` });
      }
      return sendFile(req, reply, real);
    },
  });

  app.route<{ Params: { name: string; file: string } }>({
    method: ['GET', 'HEAD'],
    url: '/boot/entries/:name/:file',
    exposeHeadRoute: false,
    schema: {
      params: {
        type: 'object',
        required: ['name', 'file'],
        properties: { name: { type: 'string', pattern: NAME_PATTERN }, file: { type: 'string', pattern: FILE_NAME_PATTERN } },
      },
    },
    handler: async (req, reply) => {
      const { name, file } = req.params;
      const entry = await getEntry(store.db, name);
      // Only files the entry uses are served (not leftovers of a failed upload).
      if (!entry || (entry.kernel !== file && !entry.initrds.includes(file))) {
        return reply.code(404).send({ error: 'NOT_FOUND', message: `No file ${file} in boot entry ${name}` });
      }
      const real = await openInside(entryDir(store.entriesDir, name), file);
      if (real === null) return reply.code(404).send({ error: 'NOT_FOUND', message: `No file ${file} in boot entry ${name}` });
      return sendFile(req, reply, real);
    },
  });
}
