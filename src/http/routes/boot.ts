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
 * Nearest node (issue 15): a machine whose address is in a subnet another
 * live node serves (ctx.servingNode, src/nodes/directory.ts) is sent on to
 * that node before anything is decided here: /boot.ipxe chains to its
 * /boot/decide, /boot/decide answers a script that chains to its
 * /boot.ipxe. Both carry `via=<this node>`, and a request with `via` is
 * never sent on again: one hop at most, even while two nodes' snapshots
 * disagree. Nothing is handed out on the way (no token: the hand-out is
 * decided once, by the node the machine lands on, with compare-and-swap in
 * the shared store), and that node's scripts name its own URLs, so the
 * kernel, initrd, boot environment and the agent's server URL
 * (fleetboot.url) are all the serving node's.
 *
 * The decision is src/boot/decide.ts (pure); src/imaging/boot-decider.ts
 * gathers its inputs and performs its effects (a token bound to the
 * client's address, a failed task, a register task; creations rate-limited
 * per client address), for iPXE here and for GRUB over TFTP
 * (src/imaging/grub-files.ts).
 */
import type { FastifyInstance } from 'fastify';
import { chainScript, messageScript, bootEnvScript, nodeRedirectScript } from '../../boot/ipxe.js';
import type { ServingNode } from '../../model/node.js';
import { parseDecideQuery, renderDecision } from '../../boot/decide.js';
import { BOOTENV_INITRD, BOOTENV_KERNEL } from '../../imaging/tasks.js';
import { entryDir, getEntry, normaliseMac, FILE_NAME_PATTERN, IPV4_PATTERN, NAME_PATTERN } from '../../store/index.js';
import type { AppContext } from '../context.js';
import { clientAddress } from '../client-address.js';
import { openInside, sendFile } from '../send-file.js';

const IPXE = 'text/plain; charset=utf-8';
const IPV4 = new RegExp(IPV4_PATTERN);
const NAME = new RegExp(NAME_PATTERN);

/** The `via` marker of a request another node sent on (a node name), or null. */
function viaOf(query: unknown): string | null {
  const v = typeof query === 'object' && query !== null ? (query as Record<string, unknown>)['via'] : undefined;
  return typeof v === 'string' && NAME.test(v) ? v : null;
}

export async function bootRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const { store, config, log, bootDecider } = ctx;

  /** The node to send this request on to (see the header), or null: it is served here. */
  const sendOn = (ip: string, via: string | null): ServingNode | null => {
    if (via !== null || ctx.nodeName === null || !IPV4.test(ip)) return null;
    return ctx.servingNode(ip);
  };

  app.get('/boot.ipxe', async (req, reply) => {
    reply.header('content-type', IPXE).header('cache-control', 'no-store');
    const ip = clientAddress(req.ip);
    const via = viaOf(req.query);
    const node = sendOn(ip, via);
    if (node !== null && ctx.nodeName !== null) {
      log.info({ subsystem: 'http', ip, path: '/boot.ipxe', node: node.name, url: node.httpBaseUrl }, `entry script: ${ip} is on a subnet node ${node.name} serves; chained to its /boot/decide`);
      return reply.send(chainScript(node.httpBaseUrl, { via: ctx.nodeName }));
    }
    log.info({ subsystem: 'http', ip, path: '/boot.ipxe', ...(via !== null ? { via } : {}) }, 'entry script served');
    return reply.send(chainScript(ctx.baseUrl(), via !== null ? { via } : {}));
  });

  app.get('/boot/decide', { schema: { querystring: { type: 'object', additionalProperties: true } } }, async (req, reply) => {
    reply.header('content-type', IPXE).header('cache-control', 'no-store');
    const q = parseDecideQuery(req.query as Record<string, unknown>);
    const ip = clientAddress(req.ip);
    const node = sendOn(ip, viaOf(req.query));
    if (node !== null && ctx.nodeName !== null) {
      log.info({ subsystem: 'http', ip, mac: q.mac ?? q.rawMac, path: '/boot/decide', node: node.name, url: node.httpBaseUrl }, `boot decision: ${ip} is on a subnet node ${node.name} serves; sent on to it, nothing decided here`);
      return reply.send(nodeRedirectScript({ node: node.name, baseUrl: node.httpBaseUrl, via: ctx.nodeName }));
    }
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
