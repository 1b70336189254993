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
 * The decision is src/boot/decide.ts (pure); these handlers gather its
 * inputs (host, entry, active task, the MAC the network knows for the
 * client's address, the boot environment), call it and perform its
 * effects: a token bound to the client's address (src/imaging/tasks.ts
 * handOut), a failed task, a register task. Whatever creates something
 * (a register task, a pending host, a menu inventory task) is rate-limited
 * per client address (imaging.createRateLimit).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { chainScript, messageScript, bootEnvScript } from '../../boot/ipxe.js';
import { BOOTENV_MISSING_MESSAGE, decideBoot, decisionLogFields, parseDecideQuery, renderDecision, type BootDecision, type DecisionTask } from '../../boot/decide.js';
import { BOOTENV_INITRD, BOOTENV_KERNEL } from '../../imaging/tasks.js';
import { FleetbootError } from '../../lib/errors.js';
import { RateLimiter } from '../../lib/rate-limit.js';
import { neighbourMac } from '../../net/neighbours.js';
import { activeTaskForMac, createHost, createTask, entryDir, findBootTarget, getEntry, getHost, leaseMacOf, listEntries, listTasks, normaliseMac, FILE_NAME_PATTERN, IPV4_PATTERN, NAME_PATTERN, type Task } from '../../store/index.js';
import type { AppContext } from '../context.js';
import { clientAddress } from '../client-address.js';
import { decisionBootEvent } from '../../boot/boot-events.js';
import { announceTasks } from '../../imaging/submit.js';
import { openInside, sendFile } from '../send-file.js';

const IPXE = 'text/plain; charset=utf-8';
const IPV4 = new RegExp(IPV4_PATTERN);

function decisionTask(t: Task): DecisionTask {
  const seen = Date.parse(t.lastSeenAt ?? '');
  // activeTaskForMac() returns active tasks only; a finished one here is a programming error.
  if (t.state !== 'scheduled' && t.state !== 'queued' && t.state !== 'booting' && t.state !== 'waiting' && t.state !== 'running') throw new TypeError(`task #${t.id} is ${t.state}, not active`);
  return { id: t.id, type: t.type, state: t.state, attempts: t.attempts, lastSeenMs: Number.isFinite(seen) ? seen : null, tokenIp: t.tokenIp };
}

export async function bootRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const { store, config, log, imaging } = ctx;

  const limiter = new RateLimiter(config.imaging.createRateLimit);
  const policy = {
    unknownPolicy: config.imaging.unknownPolicy,
    maxAttempts: config.imaging.maxAttempts,
    // An attempt is over when its agent was silent as long as the reaper allows.
    attemptTimeoutMs: config.imaging.agentTimeoutSeconds * 1000,
    runningQuietMs: Math.max(30_000, config.imaging.progressIntervalSeconds * 3000),
  };

  /** Auto-registration does not loop: not again within the hour after a register task of this MAC failed. */
  async function recentlyFailedRegister(mac: string): Promise<boolean> {
    const [last] = await listTasks(store.db, { mac, limit: 1 });
    return last !== undefined && last.type === 'register' && last.state === 'failed' && Date.now() - Date.parse(last.finishedAt ?? last.updatedAt) < 3600_000;
  }

  /**
   * The MAC this server's network knows for `ip`: the neighbour table first
   * (who holds the address on our segment now), then, in DHCP server mode,
   * the lease; null when neither tells (a routed client, IPv6, no entry).
   */
  async function addressMac(ip: string): Promise<string | null> {
    if (!IPV4.test(ip)) return null;
    const neighbour = await neighbourMac(ip);
    if (neighbour !== null || config.dhcp.mode !== 'server') return neighbour;
    return leaseMacOf(store.db, ip);
  }

  /** A create refused by the rate limit: a script that says so (nothing is created). */
  function limited(reply: FastifyReply, ip: string, mac: string, what: string): FastifyReply | null {
    const r = limiter.take(ip);
    if (r.allowed) return null;
    const { burst, perMinute } = config.imaging.createRateLimit;
    log.warn({ subsystem: 'imaging', ip, mac, what, retryAfterSeconds: r.retryAfterSeconds }, `${what} for ${mac} refused: ${ip} is over the boot-time creation limit (imaging.createRateLimit: ${burst} at once, ${perMinute} per minute)`);
    return reply
      .header('retry-after', String(r.retryAfterSeconds))
      .send(messageScript(`too many registrations or tasks from ${ip}: at most ${burst} at once and ${perMinute} per minute; nothing was created, try again in ${r.retryAfterSeconds} s`, { pauseSeconds: 10 }));
  }

  app.get('/boot.ipxe', async (req, reply) => {
    log.info({ subsystem: 'http', ip: req.ip, path: '/boot.ipxe' }, 'entry script served');
    return reply.header('content-type', IPXE).header('cache-control', 'no-store').send(chainScript(ctx.baseUrl()));
  });

  app.get('/boot/decide', { schema: { querystring: { type: 'object', additionalProperties: true } } }, async (req, reply) => {
    reply.header('content-type', IPXE).header('cache-control', 'no-store');
    const q = parseDecideQuery(req.query as Record<string, unknown>);
    const ip = clientAddress(req.ip);
    try {
      const gather = async () => {
        const target = q.mac ? await findBootTarget(store.db, q.mac) : { host: null, entry: null };
        const task = q.mac ? await activeTaskForMac(store.db, q.mac) : null;
        const unknownRegister = target.host === null && config.imaging.unknownPolicy === 'register';
        return {
          target,
          task,
          input: {
            req: q,
            clientIp: ip,
            host: target.host,
            entry: target.entry,
            task: task ? decisionTask(task) : null,
            addressMac: task !== null || unknownRegister ? await addressMac(ip) : null,
            bootEnvReady: task !== null || unknownRegister ? await imaging.bootEnvReady() : false,
            registerFailedRecently: unknownRegister && q.mac !== null ? await recentlyFailedRegister(q.mac) : false,
            nowMs: Date.now(),
            policy,
          },
        };
      };
      let g = await gather();
      let decision: BootDecision = decideBoot(g.input);
      let token: string | null = null;
      // Effects. A hand-out that lost a race (the task changed since it was read) decides again, once.
      for (let round = 0; round < 2; round++) {
        if (decision.kind === 'register') {
          const refused = limited(reply, ip, decision.mac, 'automatic registration');
          if (refused) return refused;
          try {
            const t = await createTask(store.db, { type: 'register', mac: decision.mac });
            log.info({ subsystem: 'imaging', task: t.id, mac: t.mac, type: 'register', state: 'queued', ip }, `task #${t.id} register ${t.mac}: created (unknown machine, imaging.unknownPolicy register)`);
            announceTasks(ctx.events, [t]);
          } catch (err) {
            if (!(err instanceof FleetbootError && err.code === 'CONFLICT')) throw err;
          }
          g = await gather();
          decision = decideBoot(g.input);
        }
        if (decision.kind === 'fail-task' && g.task) {
          await imaging.finish(g.task, 'failed', decision.reason);
        }
        if (decision.kind === 'task' && g.task) {
          const h = await imaging.handOut(g.task, ip);
          if (h.kind === 'token') {
            token = h.token;
            break;
          }
          g = await gather();
          decision = decideBoot(g.input);
          continue;
        }
        break;
      }
      if (decision.kind === 'task' && token === null) decision = { kind: 'wait', mac: decision.mac, task: decision.task, suspicious: false, reason: `task #${decision.task.id} was handed out or ended by another request at the same moment`, retrySeconds: 5 };
      const script = renderDecision(decision, {
        baseUrl: ctx.baseUrl(),
        platform: q.platform,
        menuTimeoutSeconds: config.boot.menuTimeoutSeconds,
        menuEntries: decision.kind === 'menu' ? await listEntries(store.db) : [],
        bootEnv: token !== null ? { token, kernelArgs: config.imaging.kernelArgs, clientIp: IPV4.test(ip) ? ip : null } : null,
        menuTools: true,
      });
      const fields = decisionLogFields(decision);
      const line = { subsystem: 'http', ip, ...fields, platform: q.platform, buildarch: q.buildarch, uuid: q.uuid };
      switch (decision.kind) {
        case 'entry':
          log.info(line, `boot decision: ${fields.mac} boots entry ${fields.entry}`);
          break;
        case 'menu':
          log.info(line, `boot decision: ${fields.mac} gets the menu (${fields.reason})`);
          break;
        case 'local':
          log.info(line, `boot decision: ${fields.mac} boots its local disk (${decision.reason})`);
          break;
        case 'task':
          log.info(line, `boot decision: ${fields.mac} boots the imaging environment for task #${decision.task.id} (${decision.task.type}), token bound to ${ip}`);
          break;
        case 'wait':
          if (decision.suspicious) log.warn({ ...line, tokenIp: decision.task.tokenIp }, `boot decision: ${fields.mac} from ${ip} waits, possible impostor or second machine with this MAC: ${decision.reason}`);
          else log.info(line, `boot decision: ${fields.mac} waits (${decision.reason})`);
          break;
        case 'refuse':
          log.warn({ ...line, addressMac: g.input.addressMac }, `boot decision: impostor refused: ${decision.reason}`);
          break;
        case 'fail-task':
          log.warn(line, `boot decision: task #${decision.task.id} of ${fields.mac} failed (${decision.reason}); the machine boots as without it (${decision.then.kind})`);
          break;
        default:
          log.warn(line, `boot decision: ${decision.kind === 'invalid-mac' ? 'invalid MAC in the request' : 'registration did not start'}`);
      }
      if (decision.kind !== 'invalid-mac') {
        const reason = fields.reason ?? (decision.kind === 'entry' ? `host ${fields.mac} boots entry ${fields.entry}` : decision.kind);
        ctx.bootEvents?.record(decisionBootEvent({ ip, mac: fields.mac, decision: fields.decision, entry: fields.entry, task: fields.task ?? null, reason }));
      }
      return reply.send(script);
    } catch (err) {
      log.error({ subsystem: 'http', ip, mac: q.mac ?? q.rawMac, err }, 'boot decision failed');
      return reply.send(messageScript('server error while deciding how to boot this machine; see the server log'));
    }
  });

  // The boot menu's imaging items (no auth, as FOG's menu): only these two
  // types, only when the machine has no active task, rate-limited per
  // address. Register makes a pending host (the inbox) unless
  // imaging.unknownPolicy is 'register'.
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
      if (!(await imaging.bootEnvReady())) {
        log.warn({ subsystem: 'imaging', mac, type, ip, bootEnvDir: config.imaging.bootEnvDir }, `menu ${type} for ${mac}: the boot environment is missing`);
        return reply.send(messageScript(BOOTENV_MISSING_MESSAGE, { pauseSeconds: 10 }));
      }
      const owner = await addressMac(ip);
      if (owner !== null && owner !== mac) {
        log.warn({ subsystem: 'imaging', mac, type, ip, addressMac: owner }, `menu ${type} for ${mac} refused: impostor, ${ip} is ${owner} on this network`);
        return reply.send(messageScript(`the request for ${mac} came from ${ip}, which is ${owner} on this network`, { pauseSeconds: 10 }));
      }
      const refused = limited(reply, ip, mac, `menu ${type}`);
      if (refused) return refused;
      const host = await getHost(store.db, mac);
      if (type === 'register' && host === null) {
        const status = config.imaging.unknownPolicy === 'register' ? 'approved' : 'pending';
        const created = await createHost(store.db, { mac, status });
        log.info({ subsystem: 'imaging', mac, ip, status }, `host ${mac} registered from the boot menu${status === 'pending' ? ', pending approval (fleetboot host approve)' : ''}`);
        ctx.events.publish(
          created.status === 'pending'
            ? { kind: 'host.pending', mac: created.mac, name: created.name, ip, via: 'boot-menu' }
            : { kind: 'host.changed', mac: created.mac, change: 'created', name: created.name, status: created.status },
        );
      }
      let task: Task;
      try {
        task = await createTask(store.db, { type, mac }, { allowUnknownHost: true });
      } catch (err) {
        if (err instanceof FleetbootError && (err.code === 'CONFLICT' || err.code === 'NOT_FOUND')) {
          log.info({ subsystem: 'imaging', mac, type, ip, reason: err.message }, `menu ${type} for ${mac} refused`);
          return reply.send(messageScript(err.message, { pauseSeconds: 10 }));
        }
        throw err;
      }
      log.info({ subsystem: 'imaging', task: task.id, mac, type, state: 'queued', ip }, `task #${task.id} ${type} ${mac}: created from the boot menu`);
      announceTasks(ctx.events, [task]);
      const h = await imaging.handOut(task, ip);
      if (h.kind !== 'token') return reply.send(messageScript(`task ${task.id} was ended or handed out elsewhere before it could start; boot again`));
      const target = await findBootTarget(store.db, mac);
      return reply.send(
        bootEnvScript({ baseUrl: ctx.baseUrl(), mac, hostName: target.host?.name ?? null, taskId: task.id, taskType: task.type, token: h.token, kernelArgs: config.imaging.kernelArgs, ...(IPV4.test(ip) ? { clientIp: ip } : {}) }),
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
