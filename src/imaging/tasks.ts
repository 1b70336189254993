/**
 * The task lifecycle on the server: what the boot decision and the agent
 * endpoints do to a task, with one log line per state change.
 *
 *   queued --boot decision--> booting --agent GET task--> running
 *   running <--slot--> waiting (no transfer slot free)
 *   any active --complete--> done | --fail/reaper--> failed | --cancel--> cancelled
 *   any active --PXE boot again--> booting (new token, attempts+1)
 *
 * Tokens: 32 random bytes as hex, handed to the machine once on the kernel
 * command line; the database keeps only their sha256.
 *
 * A deploy with `enrol` gets, with its spec, a one-use enrolment token for
 * the endpoint agent of its host (bound to the host's MAC, valid
 * DEPLOY_ENROL_TOKEN_TTL_SECONDS (src/endpoints/deploy-enrol.ts); only its sha256 is stored, by the endpoint
 * service), the server's HTTPS URL and its CA's SHA-256 (`deps.enrolment`).
 * Each GET of the spec makes a new token and revokes the task's unused
 * earlier one. When the server cannot say where to enrol (HTTPS off), the
 * task fails before anything is written; the API refuses such a deploy at
 * creation already (src/imaging/submit.ts).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FleetbootConfig } from '../config/config.js';
import { FleetbootError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Store } from '../store/db.js';
import { createHost, getHost } from '../store/hosts.js';
import { getRevision } from '../store/images.js';
import { getInventory, putInventory } from '../store/inventory.js';
import { identityMismatch, IdentityError, parseIdentity, type HardwareIdentity } from '../model/identity.js';
import { bootTaskRow, finishTask, getTask, isActiveState, patchActiveTask, slotStates, taskByTokenHash, type Task } from '../store/tasks.js';
import { lockFor } from '../store/locks.js';
import { commitCapture, discardIncoming } from './image-store.js';
import { ManifestError, parseInventory, type Inventory } from '../model/manifest.js';
import type { EnrolSpec, ProgressReport, SlotAnswer, TaskPhase, TaskSpec, TaskState } from './protocol.js';
import { RateTracker } from './rate.js';
import type { DeployEnrolment } from '../endpoints/deploy-enrol.js';
import { decideSlot } from './slots.js';
import { streamsSourceFor } from './streams-source.js';
import { taskBootEvent } from '../boot/boot-events.js';
import type { NewBootEvent } from '../model/boot-event.js';
import { taskStateEvent, type EventPublisher } from '../model/events.js';

export const BOOTENV_KERNEL = 'vmlinuz';
export const BOOTENV_INITRD = 'initrd.img';

/** Longest failure reason kept. */
const MAX_REASON = 2000;
/** last_seen_at is written at most this often by data transfers (progress reports always write it). */
const TOUCH_EVERY_MS = 5000;

export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function newToken(): string {
  return randomBytes(32).toString('hex');
}

/** The name a register task gives the new host: host-<mac without colons>. */
export function registeredHostName(mac: string): string {
  return `host-${mac.replace(/:/g, '')}`;
}

export interface ImagingDeps {
  store: Store;
  config: Readonly<FleetbootConfig>;
  log: Logger;
  /** Clock (ms since the epoch); tests pass their own. */
  now?: () => number;
  /** Hears each task's state changes and progress quarters, as steps of its machine's boot (src/events/boot-recorder.ts). */
  onTaskStep?: (e: NewBootEvent) => void;
  /** Live events (src/events/bus.ts): each state change, each progress report, a host a register task made. */
  events?: EventPublisher;
  /** Deploys with `enrol` (absent: they are refused and fail). */
  enrolment?: DeployEnrolment;
  /** This server's node name: its captures are recorded as its verified copies (src/store/copies.ts). */
  nodeName?: string | null;
}

export type ImagingService = ReturnType<typeof createImagingService>;

/** What handOut() gives the boot decision. */
export type HandOut = { kind: 'token'; token: string } | { kind: 'gone' };

export function createImagingService(deps: ImagingDeps) {
  const { store, config } = deps;
  const db = store.db;
  const log = deps.log.child({ subsystem: 'imaging' });
  const now = deps.now ?? Date.now;
  const rates = new RateTracker();
  const touched = new Map<number, number>();
  /** Capture tasks whose image is being committed (one completion at a time). */
  const committing = new Set<number>();
  const iso = (): string => new Date(now()).toISOString();

  function transition(t: Pick<Task, 'id' | 'mac' | 'type' | 'image' | 'jobId'>, from: TaskState, to: TaskState, reason: string | null = null, extra: Record<string, unknown> = {}): void {
    const line = { task: t.id, mac: t.mac, type: t.type, image: t.image, from, state: to, ...(reason ? { reason } : {}), ...extra };
    const text = `task #${t.id} ${t.type} ${t.mac}: ${from} -> ${to}${reason ? ` (${reason})` : ''}`;
    if (to === 'failed') log.warn(line, text);
    else log.info(line, text);
    const ip = typeof extra['ip'] === 'string' ? extra['ip'] : null;
    deps.onTaskStep?.(taskBootEvent({ task: t.id, mac: t.mac, type: t.type, from, to, reason, ip }));
    deps.events?.publish(taskStateEvent(t, from, to, reason));
  }

  /** The last quarter of progress reported as a boot step, per task. */
  const quarters = new Map<number, number>();

  /** End an active task; false when it had already ended. Cleans what the task left behind. */
  async function finish(t: Task, state: 'done' | 'failed' | 'cancelled', reason: string | null): Promise<boolean> {
    const r = reason === null ? null : reason.slice(0, MAX_REASON);
    const after = await finishTask(db, t.id, state, r);
    rates.forget(t.id);
    touched.delete(t.id);
    // A commit in progress owns the incoming directory (it fails on its own when the task ended).
    if (t.type === 'capture' && state !== 'done' && !committing.has(t.id)) {
      try {
        await discardIncoming(store, t.id);
      } catch (err) {
        log.error({ task: t.id, err: errorMessage(err) }, 'removing the incoming directory of a capture failed');
      }
    }
    if (!after) return false;
    quarters.delete(t.id);
    transition(t, t.state, state, r);
    return true;
  }

  /** Compare `id` with the host's inventory of record: mismatch is null when it is that machine (or there is no record). */
  async function checkIdentity(t: Task, id: HardwareIdentity): Promise<{ recorded: boolean; mismatch: string | null }> {
    const recorded = await getInventory(db, t.mac);
    if (!recorded) return { recorded: false, mismatch: null };
    return { recorded: true, mismatch: identityMismatch(id, recorded.inventory, t.type === 'capture' || t.type === 'deploy') };
  }

  /** Why deploys with `enrol` cannot be served now, or null. */
  function enrolUnavailable(): string | null {
    if (!deps.enrolment) return 'this server runs without its endpoint agent service';
    const target = deps.enrolment.target();
    return 'unavailable' in target ? target.unavailable : null;
  }

  return {
    rates,

    enrolUnavailable,

    /** Are the boot environment files there? */
    async bootEnvReady(): Promise<boolean> {
      for (const f of [BOOTENV_KERNEL, BOOTENV_INITRD]) {
        try {
          if (!(await stat(join(config.imaging.bootEnvDir, f))).isFile()) return false;
        } catch {
          return false;
        }
      }
      return true;
    },

    /**
     * The boot decision (src/boot/decide.ts) chose to hand task `t` the boot
     * environment: a new token (the only time it exists in clear), bound to
     * `clientIp`, state booting, attempts + 1. The row changes only if it
     * is as `t` says (attempts, token address, last contact: what the
     * decision was made on), so two machines asking at once never both get
     * a token, and an agent heard from meanwhile keeps its own.
     */
    async handOut(t: Task, clientIp: string): Promise<HandOut> {
      const token = newToken();
      if (!(await bootTaskRow(db, t.id, tokenHash(token), clientIp, t))) return { kind: 'gone' };
      rates.forget(t.id);
      transition(t, t.state, 'booting', null, { attempt: t.attempts + 1, ip: clientIp });
      return { kind: 'token', token };
    },

    /** Cancel task `id` (the API): NOT_FOUND; CONFLICT when it already ended. */
    async cancel(id: number): Promise<Task> {
      const t = await getTask(db, id);
      if (!t) throw new FleetbootError('NOT_FOUND', `No task #${id}`);
      if (!(await finish(t, 'cancelled', 'cancelled by the administrator'))) {
        const now = await getTask(db, id);
        throw new FleetbootError('CONFLICT', `Task #${id} is already ${now?.state ?? 'gone'}`);
      }
      const after = await getTask(db, id);
      if (!after) throw new FleetbootError('NOT_FOUND', `No task #${id}`);
      return after;
    },

    /** The task a Bearer token belongs to (any state), or null. */
    async authenticate(header: string | undefined): Promise<Task | null> {
      const m = /^Bearer[ ]+([0-9a-f]{16,128})\s*$/i.exec(header ?? '');
      if (!m?.[1]) return null;
      const hash = tokenHash(m[1].toLowerCase());
      const found = await taskByTokenHash(db, hash);
      if (!found) return null;
      const a = Buffer.from(hash, 'hex');
      const b = Buffer.from(found.tokenSha256, 'hex');
      return a.length === b.length && timingSafeEqual(a, b) ? found.task : null;
    },

    /** Note agent contact (data transfers), at most every few seconds per task. */
    async touch(t: Task): Promise<void> {
      const n = now();
      if (n - (touched.get(t.id) ?? 0) < TOUCH_EVERY_MS) return;
      touched.set(t.id, n);
      await patchActiveTask(db, t.id, { last_seen_at: iso() });
    },

    /**
     * GET /agent/v1/task: booting -> running; the spec. `clientIp`: the
     * agent's address, for a deploy's nearest streams node (streams-source.ts).
     */
    async start(t: Task, clientIp: string | null = null): Promise<TaskSpec> {
      const at = iso();
      if (t.state === 'booting' || t.state === 'queued') {
        await patchActiveTask(db, t.id, { state: 'running', started_at: t.startedAt ?? at, last_seen_at: at, phase: 'starting' });
        transition(t, t.state, 'running', null, { attempt: t.attempts });
      } else {
        await patchActiveTask(db, t.id, { last_seen_at: at });
      }
      let manifest = null;
      let revision = t.revision;
      if (t.type === 'deploy') {
        // A deploy writes one revision from start to end: pinned here when the task did not name one.
        const rec = t.image === null ? null : await getRevision(db, t.image, revision);
        if (!rec) {
          const reason = revision === null ? `image '${t.image ?? ''}' no longer exists or has no approved revision` : `revision ${revision} of image '${t.image ?? ''}' no longer exists`;
          await finish(t, 'failed', reason);
          throw new FleetbootError('CONFLICT', `Task #${t.id}: ${reason}`);
        }
        if (revision === null) {
          revision = rec.revision.number;
          await patchActiveTask(db, t.id, { revision });
        }
        manifest = rec.manifest;
      }
      let enrol: EnrolSpec | null = null;
      if (t.type === 'deploy' && t.enrol) {
        const target = deps.enrolment?.target() ?? { unavailable: enrolUnavailable() ?? 'no enrolment service' };
        if (!deps.enrolment || 'unavailable' in target) {
          const reason = `the deploy was asked to enrol the machine's endpoint agent, but ${'unavailable' in target ? target.unavailable : 'no enrolment service runs'}: nothing was written (turn HTTPS on, or deploy without enrol)`;
          await finish(t, 'failed', reason);
          throw new FleetbootError('CONFLICT', `Task #${t.id}: ${reason}`);
        }
        enrol = { server: target.server, caSha256: target.caSha256, token: await deps.enrolment.token({ id: t.id, mac: t.mac }) };
        log.info({ task: t.id, mac: t.mac, server: target.server }, `task #${t.id}: an enrolment token for ${t.mac} goes with the deploy (agent at ${target.server})`);
      }
      let streamsUrl: string | null = null;
      if (t.type === 'deploy' && t.image !== null && revision !== null && clientIp !== null) {
        const src = await streamsSourceFor(store, deps.nodeName ?? null, t.image, revision, clientIp);
        if (src !== null) {
          streamsUrl = src.url;
          const why = src.reason === 'subnet' ? `the node serving ${clientIp}` : src.reason === 'self' ? 'this node' : `no nearer node holds a verified copy`;
          // Info when another node serves them (the interesting case); debug when this one does.
          log[src.url === null ? 'debug' : 'info']({ task: t.id, mac: t.mac, ip: clientIp, streamsNode: src.node, streamsUrl: src.url, reason: src.reason }, `task #${t.id}: streams of ${t.image} revision ${revision} from node ${src.node} (${why})`);
        }
      }
      return {
        id: t.id,
        type: t.type,
        mac: t.mac,
        image: t.image,
        revision,
        manifest,
        ...(streamsUrl !== null ? { streamsUrl } : {}),
        disk: t.options.disk,
        table: t.options.table,
        progressIntervalSeconds: config.imaging.progressIntervalSeconds,
        agentTimeoutSeconds: config.imaging.agentTimeoutSeconds,
        enrol,
      };
    },

    /** POST progress: store it with the server's rate/ETA; the state after it. */
    async progress(t: Task, r: ProgressReport): Promise<TaskState> {
      if (!isActiveState(t.state)) return t.state;
      const { rateBps, etaSeconds } = rates.report(t.id, r.bytesDone, r.bytesTotal, now());
      const ok = await patchActiveTask(db, t.id, {
        phase: r.phase,
        bytes_done: r.bytesDone,
        bytes_total: r.bytesTotal,
        partition: r.partition,
        message: r.message ?? null,
        rate_bps: rateBps,
        eta_seconds: etaSeconds,
        last_seen_at: iso(),
      });
      if (!ok) return (await getTask(db, t.id))?.state ?? 'cancelled';
      deps.events?.publish({
        kind: 'task.progress',
        taskId: t.id,
        mac: t.mac,
        phase: r.phase,
        bytesDone: r.bytesDone,
        bytesTotal: r.bytesTotal,
        partition: r.partition,
        rateBps,
        etaSeconds,
        message: r.message ?? null,
      });
      if (deps.onTaskStep && r.bytesTotal !== null && r.bytesTotal > 0) {
        const q = Math.min(3, Math.floor((4 * r.bytesDone) / r.bytesTotal));
        if (q > (quarters.get(t.id) ?? 0)) {
          quarters.set(t.id, q);
          deps.onTaskStep({
            kind: 'task',
            mac: t.mac,
            ip: null,
            summary: `task #${t.id} ${t.type}: ${q * 25} % (${r.bytesDone} of ${r.bytesTotal} bytes, ${r.phase})`,
            detail: { task: t.id, type: t.type, state: t.state, progress: q * 25, bytesDone: r.bytesDone, bytesTotal: r.bytesTotal, phase: r.phase },
          });
        }
      }
      return t.state;
    },

    /** POST slot: grant (running) or queue (waiting, with the position). */
    async slot(t: Task): Promise<SlotAnswer> {
      const policy = {
        maxTransfers: config.imaging.maxTransfers,
        retryAfterSeconds: Math.max(1, Math.min(config.imaging.progressIntervalSeconds, 10)),
        staleWaitMs: Math.max(30_000, config.imaging.progressIntervalSeconds * 4000),
      };
      const { answer, from, to } = await db.transaction().execute(async (trx) => {
        // Servers sharing the store count each other's slots: one grant at a time.
        await lockFor(trx, 'transfer-slots');
        const n = now();
        const at = new Date(n).toISOString();
        const list = (await slotStates(trx)).map((s) => ({ id: s.id, requestedAt: s.requestedAt, grantedAt: s.grantedAt, lastSeenMs: Date.parse(s.lastSeenAt ?? s.updatedAt) }));
        const current = await getTask(trx, t.id);
        if (!current || !isActiveState(current.state)) throw new FleetbootError('CONFLICT', `Task #${t.id} is ${current?.state ?? 'gone'}`);
        const a = decideSlot(list, t.id, n, policy);
        const mine = list.find((s) => s.id === t.id);
        const requestedAt = mine?.requestedAt ?? at;
        const state: TaskState = a.granted ? 'running' : 'waiting';
        const phase: TaskPhase | null = a.granted ? (current.phase === 'waiting-slot' ? 'transfer' : current.phase) : 'waiting-slot';
        await patchActiveTask(trx, t.id, { state, phase, slot_requested_at: requestedAt, slot_granted_at: a.granted ? (mine?.grantedAt ?? at) : null, last_seen_at: at, started_at: current.startedAt ?? at });
        return { answer: a, from: current.state, to: state };
      });
      if (from !== to) transition(t, from, to, answer.granted ? 'transfer slot granted' : `waiting for a transfer slot (position ${answer.position})`);
      return answer;
    },

    /**
     * POST identity: the agent says which machine it runs on before any
     * transfer. Stored on the task; when the host has an inventory of record
     * and the identity differs (src/model/identity.ts), the task fails with
     * both named (CONFLICT: the agent stops) before a byte moves.
     */
    async identify(t: Task, body: unknown): Promise<void> {
      let id: HardwareIdentity;
      try {
        id = parseIdentity(body);
      } catch (err) {
        if (err instanceof IdentityError) throw new FleetbootError('INVALID_INPUT', `Invalid identity: ${err.message}`);
        throw err;
      }
      const { recorded, mismatch } = await checkIdentity(t, id);
      if (mismatch !== null) {
        log.warn({ task: t.id, mac: t.mac, type: t.type, identity: id }, `task #${t.id} ${t.type} ${t.mac}: ${mismatch}`);
        await finish(t, 'failed', `hardware identity check: ${mismatch}`);
        throw new FleetbootError('CONFLICT', `Task #${t.id}: hardware identity check: ${mismatch}`);
      }
      await patchActiveTask(db, t.id, { identity: JSON.stringify(id), last_seen_at: iso() });
      log.info({ task: t.id, mac: t.mac, identity: id }, `task #${t.id}: hardware identity reported${recorded ? ' and matches the inventory of record' : ' (no inventory of record to compare)'}`);
    },

    /** POST complete: capture -> commit the image; deploy -> done; inventory/register -> store it (register: the host). */
    async complete(t: Task, body: unknown): Promise<void> {
      if (typeof body !== 'object' || body === null) throw new FleetbootError('INVALID_INPUT', `The body must be a JSON object: got ${JSON.stringify(body)?.slice(0, 80) ?? 'nothing'}`);
      const b = body as Record<string, unknown>;
      const type = b['type'];
      const sameKind = type === t.type || ((type === 'inventory' || type === 'register') && (t.type === 'inventory' || t.type === 'register'));
      if (!sameKind) throw new FleetbootError('INVALID_INPUT', `Task #${t.id} is a ${t.type} task; the completion says ${JSON.stringify(type)}`);
      if (t.state === 'done') {
        // A retried completion whose first answer was lost: the same task committed its revision.
        if (t.type !== 'capture' || t.revision !== null) return;
        throw new FleetbootError('CONFLICT', `Task #${t.id} is already done`);
      }
      if (t.type === 'capture') {
        if (committing.has(t.id)) throw new FleetbootError('CONFLICT', `Task #${t.id} is already being committed`);
        committing.add(t.id);
        try {
          await patchActiveTask(db, t.id, { phase: 'finishing', last_seen_at: iso() });
          // commitCapture ends the task as done in the transaction that switches the image.
          const name = t.image ?? '';
          const c = await commitCapture(store, t.id, name, b['manifest'], {
            mac: t.mac,
            maxBytes: config.imaging.maxImageBytes,
            approval: config.imaging.captureApproval,
            keepRevisions: config.imaging.keepRevisions,
            node: deps.nodeName ?? null,
          });
          rates.forget(t.id);
          touched.delete(t.id);
          const fields = { task: t.id, mac: t.mac, image: name, revision: c.revision, state: c.state, manifestSha256: c.manifestSha256, pruned: c.pruned };
          if (c.state === 'pending') log.info(fields, `image '${name}' revision ${c.revision} stored, pending approval (fleetboot image approve ${name} ${c.revision})`);
          else log.info(fields, `image '${name}' revision ${c.revision} stored and current`);
          if (c.pruned.length > 0) log.info(fields, `image '${name}': revisions ${c.pruned.join(', ')} removed (imaging.keepRevisions ${config.imaging.keepRevisions})`);
          transition(t, t.state, 'done');
        } catch (err) {
          if (err instanceof FleetbootError && err.code === 'INVALID_INPUT') {
            // No commit runs any more: finish() removes the refused uploads.
            committing.delete(t.id);
            await finish(t, 'failed', `capture refused: ${err.message}`);
          }
          throw err;
        } finally {
          committing.delete(t.id);
        }
        return;
      }
      if (t.type === 'deploy') {
        if (b['verified'] !== true) throw new FleetbootError('INVALID_INPUT', `A deploy completion must say verified: true: got verified: ${JSON.stringify(b['verified']) ?? 'nothing'}`);
        const e = b['enrol'];
        if (e !== undefined) {
          const o = typeof e === 'object' && e !== null ? (e as Record<string, unknown>) : {};
          const written = o['written'];
          const message = o['message'];
          if ((written !== null && (typeof written !== 'string' || written.length > 128)) || typeof message !== 'string' || message.length > 500) {
            throw new FleetbootError('INVALID_INPUT', `A deploy completion's enrol must be { written: device | null, message (up to 500 characters) }: got ${JSON.stringify(e)?.slice(0, 120) ?? 'nothing'}`);
          }
          await patchActiveTask(db, t.id, { message, last_seen_at: iso() });
          const fields = { task: t.id, mac: t.mac, written, enrol: t.enrol };
          if (written === null) log.warn(fields, `task #${t.id} deploy ${t.mac}: ${message}`);
          else log.info(fields, `task #${t.id} deploy ${t.mac}: ${message}`);
        }
        await finish(t, 'done', null);
        return;
      }
      let inv: Inventory;
      try {
        inv = parseInventory(b['inventory']);
      } catch (err) {
        if (err instanceof ManifestError) throw new FleetbootError('INVALID_INPUT', `Invalid inventory: ${err.message}`);
        throw err;
      }
      // A known host's record changes only from the machine it describes.
      const { mismatch } = await checkIdentity(t, { smbiosUuid: inv.smbios.uuid, smbiosSerial: inv.smbios.serial, disk: null });
      if (mismatch !== null) {
        await finish(t, 'failed', `inventory refused: ${mismatch}`);
        throw new FleetbootError('CONFLICT', `Task #${t.id}: inventory refused: ${mismatch}`);
      }
      await putInventory(db, t.mac, inv);
      if (t.type === 'register' && !(await getHost(db, t.mac))) {
        // From the boot menu (imaging.unknownPolicy 'menu') the host waits in the inbox; the register policy approves at once.
        const status = config.imaging.unknownPolicy === 'register' ? 'approved' : 'pending';
        try {
          const host = await createHost(db, { mac: t.mac, name: registeredHostName(t.mac), status });
          log.info({ task: t.id, mac: t.mac, name: registeredHostName(t.mac), status }, `host ${t.mac} registered as ${registeredHostName(t.mac)}${status === 'pending' ? ', pending approval (fleetboot host approve)' : ''}`);
          deps.events?.publish(
            status === 'pending'
              ? { kind: 'host.pending', mac: host.mac, name: host.name, ip: t.tokenIp, via: 'register-task' }
              : { kind: 'host.changed', mac: host.mac, change: 'created', name: host.name, status: host.status },
          );
        } catch (err) {
          if (!(err instanceof FleetbootError && err.code === 'CONFLICT')) throw err;
        }
      }
      await finish(t, 'done', null);
    },

    /** POST fail: failed with the agent's reason (and its inventory, when sent). */
    async fail(t: Task, reason: string, inventory: unknown): Promise<void> {
      if (inventory !== undefined) {
        try {
          const inv = parseInventory(inventory);
          // As for a completed inventory: the record changes only from the machine it describes.
          const { mismatch } = await checkIdentity(t, { smbiosUuid: inv.smbios.uuid, smbiosSerial: inv.smbios.serial, disk: null });
          if (mismatch === null) await putInventory(db, t.mac, inv);
          else log.warn({ task: t.id, mac: t.mac }, `task #${t.id}: the inventory sent with the failure was not stored: ${mismatch}`);
        } catch (err) {
          log.warn({ task: t.id, mac: t.mac, err: errorMessage(err) }, 'the inventory sent with a failure was not stored');
        }
      }
      await finish(t, 'failed', reason.trim() === '' ? 'the agent failed without a reason' : reason);
    },

    finish,
  };
}
