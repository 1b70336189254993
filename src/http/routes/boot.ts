/**
 * What machines fetch while booting; no authentication, nothing secret:
 *   GET /boot.ipxe                   the entry script the proxyDHCP hands to iPXE
 *   GET /boot/decide?mac=..          the per-machine script (always 200 + a script)
 *   GET /boot/entries/:name/:file    files of boot entries (Range, exact sizes)
 *   GET /boot/env/vmlinuz|initrd.img the imaging boot environment (Range)
 *   GET /boot/task?mac=..&type=register|inventory
 *                                    the menu's imaging items: create the task, boot the environment
 *
 * A machine with an active imaging task boots the boot environment; the
 * task's token is made here (src/imaging/tasks.ts handOut), so the decision
 * and its rendering stay pure.
 */
import type { FastifyInstance } from 'fastify';
import { bootEnvScript, chainScript, messageScript, retryScript } from '../../boot/ipxe.js';
import { BOOTENV_MISSING_MESSAGE, decideBoot, decisionLogFields, parseDecideQuery, renderDecision, type BootDecision } from '../../boot/decide.js';
import { BOOTENV_INITRD, BOOTENV_KERNEL } from '../../imaging/tasks.js';
import { FleetbootError } from '../../lib/errors.js';
import { activeTaskForMac, createTask, entryDir, findBootTarget, getEntry, listEntries, listTasks, normaliseMac, FILE_NAME_PATTERN, NAME_PATTERN, type Task } from '../../store/index.js';
import type { AppContext } from '../context.js';
import { openInside, sendFile } from '../send-file.js';

const IPXE = 'text/plain; charset=utf-8';

export async function bootRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const { store, config, log, imaging } = ctx;

  /** Auto-registration does not loop: not again within the hour after a register task of this MAC failed. */
  async function recentlyFailedRegister(mac: string): Promise<boolean> {
    const [last] = await listTasks(store.db, { mac, limit: 1 });
    return last !== undefined && last.type === 'register' && last.state === 'failed' && Date.now() - Date.parse(last.finishedAt ?? last.updatedAt) < 3600_000;
  }

  app.get('/boot.ipxe', async (req, reply) => {
    log.info({ subsystem: 'http', ip: req.ip, path: '/boot.ipxe' }, 'entry script served');
    return reply.header('content-type', IPXE).header('cache-control', 'no-store').send(chainScript(ctx.baseUrl()));
  });

  app.get('/boot/decide', { schema: { querystring: { type: 'object', additionalProperties: true } } }, async (req, reply) => {
    reply.header('content-type', IPXE).header('cache-control', 'no-store');
    const q = parseDecideQuery(req.query as Record<string, unknown>);
    try {
      const target = q.mac ? await findBootTarget(store.db, q.mac) : { host: null, entry: null };
      let task: Task | null = q.mac ? await activeTaskForMac(store.db, q.mac) : null;
      const imagingInput = { task: task ? { id: task.id, type: task.type } : null, unknownPolicy: config.imaging.unknownPolicy };
      let decision: BootDecision = decideBoot(q, target.host, target.entry, imagingInput);
      const envReady = decision.kind === 'task' || decision.kind === 'register' ? await imaging.bootEnvReady() : false;
      if (decision.kind === 'register' && envReady && (await recentlyFailedRegister(decision.mac))) {
        log.warn({ subsystem: 'imaging', mac: decision.mac }, `boot decision: ${decision.mac} is not registered again: its register task failed within the hour (see task list)`);
        decision = decideBoot(q, target.host, target.entry, { task: null, unknownPolicy: 'menu' });
      }
      if (decision.kind === 'register' && envReady) {
        // FOG's quick registration: a register task, then the boot environment.
        try {
          task = await createTask(store.db, { type: 'register', mac: decision.mac });
          log.info({ subsystem: 'imaging', task: task.id, mac: task.mac, type: 'register', state: 'queued' }, `task #${task.id} register ${task.mac}: created (unknown machine, imaging.unknownPolicy register)`);
        } catch (err) {
          if (!(err instanceof FleetbootError && err.code === 'CONFLICT')) throw err;
          task = await activeTaskForMac(store.db, decision.mac);
        }
        if (task) decision = { kind: 'task', mac: decision.mac, host: null, task: { id: task.id, type: task.type } };
      }
      let bootEnv: { token: string; kernelArgs: string } | null = null;
      if (decision.kind === 'task' && task && envReady) {
        const h = await imaging.handOut(task);
        if (h.kind === 'busy') {
          log.info({ subsystem: 'http', ip: req.ip, mac: decision.mac, task: task.id }, `boot decision: ${decision.mac} waits (${h.reason})`);
          return reply.send(retryScript(ctx.baseUrl(), h.reason, h.retrySeconds));
        }
        if (h.kind === 'token') bootEnv = { token: h.token, kernelArgs: config.imaging.kernelArgs };
        // The task ended between the two reads (or just failed for too many boots): decide as if it never was.
        else decision = decideBoot(q, target.host, target.entry, { task: null, unknownPolicy: 'menu' });
      }
      const script = renderDecision(decision, {
        baseUrl: ctx.baseUrl(),
        platform: q.platform,
        menuTimeoutSeconds: config.boot.menuTimeoutSeconds,
        menuEntries: decision.kind === 'menu' ? await listEntries(store.db) : [],
        imaging: { bootEnv, menuTools: true },
      });
      const fields = decisionLogFields(decision);
      const line = { subsystem: 'http', ip: req.ip, ...fields, platform: q.platform, buildarch: q.buildarch, uuid: q.uuid };
      if (decision.kind === 'entry') log.info(line, `boot decision: ${fields.mac} boots entry ${fields.entry}`);
      else if (decision.kind === 'menu') log.info(line, `boot decision: ${fields.mac} gets the menu (${fields.reason})`);
      else if (decision.kind === 'task' && bootEnv) log.info(line, `boot decision: ${fields.mac} boots the imaging environment for task #${decision.task.id} (${decision.task.type})`);
      else if (decision.kind === 'task' || decision.kind === 'register')
        log.warn({ ...line, bootEnvDir: config.imaging.bootEnvDir }, `boot decision: ${fields.mac} has imaging work but the boot environment is missing in ${config.imaging.bootEnvDir} (run scripts/build-bootenv.sh)`);
      else log.warn(line, 'boot decision: invalid MAC in the request');
      return reply.send(script);
    } catch (err) {
      log.error({ subsystem: 'http', ip: req.ip, mac: q.mac ?? q.rawMac, err }, 'boot decision failed');
      return reply.send(messageScript('server error while deciding how to boot this machine; see the server log'));
    }
  });

  // The boot menu's imaging items (no auth, as FOG's menu): only these two
  // types, and only when the machine has no active task.
  app.get('/boot/task', { schema: { querystring: { type: 'object', additionalProperties: true } } }, async (req, reply) => {
    reply.header('content-type', IPXE).header('cache-control', 'no-store');
    const query = req.query as Record<string, unknown>;
    const mac = typeof query['mac'] === 'string' ? normaliseMac(query['mac']) : null;
    const type = query['type'];
    if (mac === null || (type !== 'register' && type !== 'inventory')) {
      return reply.send(messageScript('bad request: expected mac=MAC and type=register or type=inventory'));
    }
    try {
      if (!(await imaging.bootEnvReady())) {
        log.warn({ subsystem: 'imaging', mac, type, bootEnvDir: config.imaging.bootEnvDir }, `menu ${type} for ${mac}: the boot environment is missing`);
        return reply.send(messageScript(BOOTENV_MISSING_MESSAGE, { pauseSeconds: 10 }));
      }
      let task: Task;
      try {
        task = await createTask(store.db, { type, mac }, { allowUnknownHost: true });
      } catch (err) {
        if (err instanceof FleetbootError && (err.code === 'CONFLICT' || err.code === 'NOT_FOUND')) {
          log.info({ subsystem: 'imaging', mac, type, reason: err.message }, `menu ${type} for ${mac} refused`);
          return reply.send(messageScript(err.message, { pauseSeconds: 10 }));
        }
        throw err;
      }
      log.info({ subsystem: 'imaging', task: task.id, mac, type, state: 'queued' }, `task #${task.id} ${type} ${mac}: created from the boot menu`);
      const h = await imaging.handOut(task);
      if (h.kind !== 'token') return reply.send(messageScript(`task ${task.id} ended before it could start`));
      const token = h.token;
      const target = await findBootTarget(store.db, mac);
      return reply.send(bootEnvScript({ baseUrl: ctx.baseUrl(), mac, hostName: target.host?.name ?? null, taskId: task.id, taskType: task.type, token, kernelArgs: config.imaging.kernelArgs }));
    } catch (err) {
      log.error({ subsystem: 'imaging', ip: req.ip, mac, type, err }, 'creating a task from the boot menu failed');
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
