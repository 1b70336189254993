/**
 * Imaging tasks: one row per task, with its lifecycle (src/imaging/protocol.ts
 * TaskState), progress, options and the sha256 of its current boot token.
 * Plain functions over a Kysely handle; the lifecycle rules that need more
 * than one row (slots, the reaper, the boot decision) live in src/imaging/.
 */
import type { Kysely, Selectable, Updateable } from 'kysely';
import { FleetbootError } from '../lib/errors.js';
import { ACTIVE_TASK_STATES, BOOTABLE_TASK_STATES, TASK_PHASES, type TaskPhase, type TaskState, type TaskType } from '../model/task.js';
import { DISK_PATTERN, PARTITION_TABLES } from '../model/task-request.js';
import type { Database, TaskTable } from './schema.js';
import { isUniqueViolation } from './db.js';
import { isValidName, normaliseMac } from '../model/validate.js';

export { DISK_PATTERN };

export interface TaskOptions {
  /** Target disk device (/dev/...), or null for the agent's default (first fixed disk). */
  disk: string | null;
  /** deploy: write the partition table as captured, or converted. */
  table: 'keep' | 'gpt' | 'mbr';
}

export interface Task {
  id: number;
  type: TaskType;
  mac: string;
  /** Name of the host with this MAC, when there is one and it has a name. */
  hostName: string | null;
  image: string | null;
  state: TaskState;
  phase: TaskPhase | null;
  bytesDone: number;
  bytesTotal: number | null;
  rateBps: number | null;
  etaSeconds: number | null;
  partition: number | null;
  message: string | null;
  error: string | null;
  /** How many times the machine was handed the boot environment for it. */
  attempts: number;
  options: TaskOptions;
  retryOf: number | null;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  lastSeenAt: string | null;
  /** deploy: the image revision it writes (null until pinned at the agent's start); capture: the revision it created. */
  revision: number | null;
  /** deploy: the revision it was asked for (null: the current one when its agent starts). */
  requestedRevision: number | null;
  /** The client address the current token was handed to. */
  tokenIp: string | null;
  /** The hardware identity the agent reported (JSON as stored), or null before it did. */
  identity: string | null;
  /** The job (a request for a host group) it belongs to, or null. */
  jobId: number | null;
  /** A scheduled task: when it becomes queued (ISO); null when it was queued at once. */
  startAt: string | null;
  /** Wake-on-LAN when queued. */
  wake: boolean;
  /** Wake rounds sent (0, 1, 2). */
  wakeRounds: number;
  /** When the last wake round started (ISO), or null. */
  wokenAt: string | null;
  /** An enrolled machine's endpoint agent reboots it into the task once it is queued (FOG's task reboot). */
  reboot: boolean;
  /** deploy: write a one-use enrolment token for the host into the deployed Linux system (its endpoint agent enrols at first boot). */
  enrol: boolean;
  /** deploy: the multicast session it receives from, or null (unicast). */
  multicastId: number | null;
  /** Its receiver id in that session (hex), or null. */
  multicastReceiver: string | null;
}

export interface NewTask {
  type: TaskType;
  mac: string;
  image?: string | null;
  /** deploy: a ready revision of the image (default: the current one when the agent starts). */
  revision?: number | null;
  options?: Partial<TaskOptions>;
  /** The task waits as 'scheduled' until then (ISO); absent or null: queued at once. */
  startAt?: string | null;
  /** Wake the machine (Wake-on-LAN) when the task is queued. */
  wake?: boolean;
  /** Its endpoint agent reboots the machine into the task when it is queued. */
  reboot?: boolean;
  /** deploy: write an enrolment token for the host into the deployed Linux system. */
  enrol?: boolean;
  /** The job it belongs to. */
  jobId?: number | null;
}

type Db = Kysely<Database>;

export const TASK_TYPES: readonly TaskType[] = ['capture', 'deploy', 'inventory', 'register'];
export const TERMINAL_TASK_STATES: readonly TaskState[] = ['done', 'failed', 'cancelled'];
const DISK_RE = new RegExp(DISK_PATTERN);
const TABLES: readonly TaskOptions['table'][] = PARTITION_TABLES;
export const TASK_STATES: readonly TaskState[] = [...ACTIVE_TASK_STATES, ...TERMINAL_TASK_STATES];

export function isActiveState(s: TaskState): boolean {
  return ACTIVE_TASK_STATES.includes(s);
}

function oneOf<T extends string>(list: readonly T[], v: string | null, what: string): T {
  const found = list.find((x) => x === v);
  if (found === undefined) throw new TypeError(`The database holds an unknown task ${what} ${JSON.stringify(v)}`);
  return found;
}

function parseOptions(text: string): TaskOptions {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    o = {};
  }
  const r = typeof o === 'object' && o !== null ? (o as Record<string, unknown>) : {};
  const disk = typeof r['disk'] === 'string' ? r['disk'] : null;
  const table = TABLES.find((t) => t === r['table']) ?? 'keep';
  return { disk, table };
}

type TaskRow = Selectable<TaskTable> & { host_name: string | null };

export function taskQuery(db: Db) {
  return db.selectFrom('tasks').leftJoin('hosts', 'hosts.mac', 'tasks.mac').selectAll('tasks').select('hosts.name as host_name');
}

export function toTask(r: TaskRow): Task {
  return {
    id: r.id,
    type: oneOf(TASK_TYPES, r.type, 'type'),
    mac: r.mac,
    hostName: r.host_name,
    image: r.image,
    state: oneOf(TASK_STATES, r.state, 'state'),
    phase: r.phase === null ? null : oneOf(TASK_PHASES, r.phase, 'phase'),
    bytesDone: Number(r.bytes_done),
    bytesTotal: r.bytes_total === null ? null : Number(r.bytes_total),
    rateBps: r.rate_bps === null ? null : Number(r.rate_bps),
    etaSeconds: r.eta_seconds,
    partition: r.partition,
    message: r.message,
    error: r.error,
    attempts: r.attempts,
    options: parseOptions(r.options),
    retryOf: r.retry_of,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    lastSeenAt: r.last_seen_at,
    revision: r.revision,
    requestedRevision: r.requested_revision,
    tokenIp: r.token_ip,
    identity: r.identity,
    jobId: r.job_id,
    startAt: r.start_at,
    wake: r.wake === 1,
    wakeRounds: r.wake_rounds,
    wokenAt: r.woken_at,
    reboot: r.reboot === 1,
    enrol: r.enrol === 1,
    multicastId: r.multicast_id,
    multicastReceiver: r.multicast_receiver,
  };
}

function checkOptions(o: Partial<TaskOptions> | undefined): TaskOptions {
  const disk = o?.disk ?? null;
  const table = o?.table ?? 'keep';
  if (disk !== null && (typeof disk !== 'string' || !DISK_RE.test(disk) || disk.length > 128 || disk.includes('..'))) {
    throw new FleetbootError('INVALID_INPUT', `Invalid disk ${JSON.stringify(disk)}: expected a device path such as /dev/sda or /dev/nvme0n1`);
  }
  if (!TABLES.includes(table)) throw new FleetbootError('INVALID_INPUT', `Invalid partition table ${JSON.stringify(table)}: expected keep, gpt or mbr`);
  return { disk, table };
}

async function activeTaskOf(db: Db, mac: string): Promise<{ id: number; type: string; state: string } | undefined> {
  return db.selectFrom('tasks').select(['id', 'type', 'state']).where('mac', '=', mac).where('state', 'in', [...ACTIVE_TASK_STATES]).executeTakeFirst();
}

/** Insert one task after checking it (the host, the image, one active task per MAC); its id. For store modules that batch (jobs.ts). */
export async function insertTask(db: Db, t: NewTask, retryOf: number | null, opts: CreateTaskOptions = {}): Promise<number> {
  if (!TASK_TYPES.includes(t.type)) throw new FleetbootError('INVALID_INPUT', `Invalid task type ${JSON.stringify(t.type)}: expected one of ${TASK_TYPES.join(', ')}`);
  const mac = typeof t.mac === 'string' ? normaliseMac(t.mac) : null;
  if (!mac) throw new FleetbootError('INVALID_INPUT', `Invalid MAC address ${JSON.stringify(t.mac)}: expected six hex bytes such as 52:54:00:12:34:56`);
  const image = t.image ?? null;
  if (image !== null && (typeof image !== 'string' || !isValidName(image))) throw new FleetbootError('INVALID_INPUT', `Invalid image name ${JSON.stringify(image)}`);
  if ((t.type === 'capture' || t.type === 'deploy') && image === null) throw new FleetbootError('INVALID_INPUT', `A ${t.type} task needs an image name`);
  if ((t.type === 'inventory' || t.type === 'register') && image !== null) throw new FleetbootError('INVALID_INPUT', `A ${t.type} task takes no image`);
  const options = checkOptions(t.options);
  if (t.enrol === true && t.type !== 'deploy') throw new FleetbootError('INVALID_INPUT', `A ${t.type} task takes no enrol: only a deploy writes an enrolment token into the system it deploys`);
  if (t.type !== 'register' && !(t.type === 'inventory' && opts.allowUnknownHost === true)) {
    const host = await db.selectFrom('hosts').select(['id', 'status']).where('mac', '=', mac).executeTakeFirst();
    if (!host) throw new FleetbootError('NOT_FOUND', `No host with MAC ${mac} (add it first, or use a register task)`);
    if (host.status === 'pending') throw new FleetbootError('CONFLICT', `Host ${mac} is pending approval: approve it first (fleetboot host approve ${mac})`);
  }
  const revision = t.revision ?? null;
  if (revision !== null && (t.type !== 'deploy' || !Number.isSafeInteger(revision) || revision < 1)) {
    throw new FleetbootError('INVALID_INPUT', t.type === 'deploy' ? `Invalid revision ${JSON.stringify(revision)}: expected a revision number (1, 2, ...)` : `A ${t.type} task takes no revision`);
  }
  if (t.type === 'deploy' && image !== null) {
    const img = await db.selectFrom('images').select(['id', 'current_revision']).where('name', '=', image).executeTakeFirst();
    if (!img) throw new FleetbootError('NOT_FOUND', `No image named '${image}'`);
    if (revision !== null) {
      const rev = await db.selectFrom('image_revisions').select('state').where('image', '=', image).where('number', '=', revision).executeTakeFirst();
      if (!rev) throw new FleetbootError('NOT_FOUND', `Image '${image}' has no revision ${revision}`);
      if (rev.state !== 'ready') throw new FleetbootError('CONFLICT', `Revision ${revision} of image '${image}' is pending approval (fleetboot image approve ${image} ${revision})`);
    } else if (img.current_revision === null) {
      throw new FleetbootError('CONFLICT', `Image '${image}' has no approved revision yet (fleetboot image show ${image})`);
    }
  }
  if (t.type === 'capture' && image !== null) {
    const img = await db.selectFrom('images').select('protected').where('name', '=', image).executeTakeFirst();
    if (img?.protected === 1) throw new FleetbootError('CONFLICT', `Image '${image}' is protected against capture: a capture would add a revision to it; unprotect it first (PATCH /api/v1/images/${image} {"protected": false}), or capture into another name`);
  }
  if (image !== null && (t.type === 'capture' || t.type === 'deploy')) {
    // A capture replaces the files a deploy of that image reads: never both at once.
    const other = t.type === 'capture' ? 'deploy' : 'capture';
    const clash = await db.selectFrom('tasks').select(['id', 'state']).where('image', '=', image).where('type', '=', other).where('state', 'in', [...ACTIVE_TASK_STATES]).executeTakeFirst();
    if (clash) throw new FleetbootError('CONFLICT', `Image '${image}' is being ${other === 'capture' ? 'captured' : 'deployed'} by task #${clash.id} (${clash.state}): wait for it or cancel it`);
  }
  const active = await activeTaskOf(db, mac);
  if (active) throw new FleetbootError('CONFLICT', `MAC ${mac} already has an active task (#${active.id}, ${active.type}, ${active.state}): cancel it first`);
  const startAt = t.startAt ?? null;
  if (startAt !== null && !Number.isFinite(Date.parse(startAt))) throw new TypeError(`insertTask(): startAt must be an ISO time: ${JSON.stringify(startAt)}`);
  const now = new Date().toISOString();
  try {
    const { id } = await db
      .insertInto('tasks')
      .values({
        type: t.type,
        mac,
        image,
        revision,
        requested_revision: revision,
        state: startAt === null ? 'queued' : 'scheduled',
        start_at: startAt,
        wake: t.wake === true ? 1 : 0,
        reboot: t.reboot === true ? 1 : 0,
        enrol: t.enrol === true ? 1 : 0,
        job_id: t.jobId ?? null,
        options: JSON.stringify(options),
        retry_of: retryOf,
        bytes_done: 0,
        attempts: 0,
        created_at: now,
        updated_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return id;
  } catch (err) {
    // The partial unique index: another create for this MAC won the race.
    if (isUniqueViolation(err)) {
      throw new FleetbootError('CONFLICT', `MAC ${mac} already has an active task: cancel it first`, { cause: err });
    }
    throw err;
  }
}

export interface CreateTaskOptions {
  /**
   * An inventory task for a MAC that is not a host (the boot menu's
   * "Hardware inventory" on an unknown machine); the inventory is kept by MAC.
   */
  allowUnknownHost?: boolean;
}

/** Queue a task. See NewTask; errors: INVALID_INPUT, NOT_FOUND (host, deploy image), CONFLICT (active task for the MAC). */
export async function createTask(db: Db, t: NewTask, opts: CreateTaskOptions = {}): Promise<Task> {
  return db.transaction().execute(async (trx) => {
    const id = await insertTask(trx, t, null, opts);
    return toTask(await taskQuery(trx).where('tasks.id', '=', id).executeTakeFirstOrThrow());
  });
}

export async function getTask(db: Db, id: number): Promise<Task | null> {
  if (!Number.isSafeInteger(id) || id < 1) return null;
  const r = await taskQuery(db).where('tasks.id', '=', id).executeTakeFirst();
  return r ? toTask(r) : null;
}

/** Newest first. `state`: only that state. `active`: true = only scheduled/queued/booting/waiting/running, false = only finished ones. */
export async function listTasks(db: Db, filter: { mac?: string; active?: boolean; state?: TaskState; limit?: number; jobId?: number } = {}): Promise<Task[]> {
  let q = taskQuery(db);
  if (filter.state !== undefined) q = q.where('tasks.state', '=', filter.state);
  if (filter.jobId !== undefined) q = q.where('tasks.job_id', '=', filter.jobId);
  if (filter.mac !== undefined) {
    const mac = normaliseMac(filter.mac);
    if (!mac) throw new FleetbootError('INVALID_INPUT', `Invalid MAC address ${JSON.stringify(filter.mac)}`);
    q = q.where('tasks.mac', '=', mac);
  }
  if (filter.active === true) q = q.where('tasks.state', 'in', [...ACTIVE_TASK_STATES]);
  if (filter.active === false) q = q.where('tasks.state', 'in', [...TERMINAL_TASK_STATES]);
  q = q.orderBy('tasks.id', 'desc');
  if (filter.limit !== undefined) q = q.limit(Math.max(1, Math.min(10000, Math.floor(filter.limit))));
  return (await q.execute()).map(toTask);
}

/** The active task of a MAC, or null. */
export async function activeTaskForMac(db: Db, mac: string): Promise<Task | null> {
  const m = normaliseMac(mac);
  if (!m) return null;
  const r = await taskQuery(db).where('tasks.mac', '=', m).where('tasks.state', 'in', [...ACTIVE_TASK_STATES]).executeTakeFirst();
  return r ? toTask(r) : null;
}

/**
 * Move an active task to a terminal state (done, failed with `error`, or
 * cancelled), releasing its slot. Returns the task as it is afterwards, or
 * null when it was not active any more (someone else finished it first).
 */
export async function finishTask(db: Db, id: number, state: 'done' | 'failed' | 'cancelled', error: string | null = null): Promise<Task | null> {
  const now = new Date().toISOString();
  const r = await db
    .updateTable('tasks')
    .set({ state, error: state === 'done' ? null : error, finished_at: now, updated_at: now, slot_granted_at: null, rate_bps: null, eta_seconds: null })
    .where('id', '=', id)
    .where('state', 'in', [...ACTIVE_TASK_STATES])
    .executeTakeFirst();
  if (r.numUpdatedRows === 0n) return null;
  return getTask(db, id);
}

/** NOT_FOUND; CONFLICT when the task already ended. */
export async function cancelTask(db: Db, id: number): Promise<Task> {
  const t = await getTask(db, id);
  if (!t) throw new FleetbootError('NOT_FOUND', `No task #${id}`);
  if (!isActiveState(t.state)) throw new FleetbootError('CONFLICT', `Task #${id} is already ${t.state}`);
  const after = await finishTask(db, id, 'cancelled', 'cancelled by the administrator');
  if (!after) {
    const now = await getTask(db, id);
    throw new FleetbootError('CONFLICT', `Task #${id} is already ${now?.state ?? 'gone'}`);
  }
  return after;
}

/** A new queued task like a failed or cancelled one (retryOf = id). */
export async function retryTask(db: Db, id: number): Promise<Task> {
  return db.transaction().execute(async (trx) => {
    const old = await getTask(trx, id);
    if (!old) throw new FleetbootError('NOT_FOUND', `No task #${id}`);
    if (old.state !== 'failed' && old.state !== 'cancelled') throw new FleetbootError('CONFLICT', `Task #${id} is ${old.state}: only a failed or cancelled task can be retried`);
    // Queued at once (no start time), outside the job; it wakes its machine if the first one did.
    const newId = await insertTask(trx, { type: old.type, mac: old.mac, image: old.image, revision: old.requestedRevision, options: old.options, wake: old.wake, reboot: old.reboot, enrol: old.enrol }, old.id);
    return toTask(await taskQuery(trx).where('tasks.id', '=', newId).executeTakeFirstOrThrow());
  });
}

/** Columns the lifecycle may change on an active task. */
export type TaskPatch = Pick<
  Updateable<TaskTable>,
  'state' | 'phase' | 'bytes_done' | 'bytes_total' | 'rate_bps' | 'eta_seconds' | 'partition' | 'message' | 'started_at' | 'last_seen_at' | 'slot_requested_at' | 'slot_granted_at' | 'revision' | 'identity'
>;

/** Change an active task (updated_at set); false when it is not active any more. */
export async function patchActiveTask(db: Db, id: number, patch: TaskPatch): Promise<boolean> {
  const r = await db
    .updateTable('tasks')
    .set({ ...patch, updated_at: new Date().toISOString() })
    .where('id', '=', id)
    .where('state', 'in', [...ACTIVE_TASK_STATES])
    .executeTakeFirst();
  return r.numUpdatedRows > 0n;
}

/**
 * The boot decision handed the machine the boot environment: store the new
 * token's sha256 (the old token stops working) and the address it went to,
 * state booting, attempts+1, slot released and reported identity cleared
 * (the previous agent, if any, is gone). False when the task is not active
 * or changed since `before` was read (handed out again, or its agent was
 * heard from: the decision was made on what `before` says).
 */
export async function bootTaskRow(db: Db, id: number, tokenSha256: string, clientIp: string, before: Pick<Task, 'attempts' | 'tokenIp' | 'lastSeenAt'>): Promise<boolean> {
  const now = new Date().toISOString();
  const r = await db
    .updateTable('tasks')
    .set((eb) => ({
      state: 'booting',
      token_sha256: tokenSha256,
      token_ip: clientIp,
      identity: null,
      attempts: eb('attempts', '+', 1),
      slot_granted_at: null,
      slot_requested_at: null,
      rate_bps: null,
      eta_seconds: null,
      last_seen_at: now,
      updated_at: now,
    }))
    .where('id', '=', id)
    .where('attempts', '=', before.attempts)
    .where('token_ip', before.tokenIp === null ? 'is' : '=', before.tokenIp)
    .where('last_seen_at', before.lastSeenAt === null ? 'is' : '=', before.lastSeenAt)
    // Never a scheduled task: it waits for its start time.
    .where('state', 'in', [...BOOTABLE_TASK_STATES])
    .executeTakeFirst();
  return r.numUpdatedRows > 0n;
}

/** The task whose current token has this sha256, with the stored hash (for a constant-time compare), or null. */
export async function taskByTokenHash(db: Db, tokenSha256: string): Promise<{ task: Task; tokenSha256: string } | null> {
  const r = await taskQuery(db).where('tasks.token_sha256', '=', tokenSha256).executeTakeFirst();
  return r && r.token_sha256 !== null ? { task: toTask(r), tokenSha256: r.token_sha256 } : null;
}

/** Slot state of every active task, for src/imaging/slots.ts. */
export async function slotStates(db: Db): Promise<{ id: number; requestedAt: string | null; grantedAt: string | null; lastSeenAt: string | null; updatedAt: string }[]> {
  const rows = await db
    .selectFrom('tasks')
    .select(['id', 'slot_requested_at', 'slot_granted_at', 'last_seen_at', 'updated_at'])
    .where('state', 'in', [...ACTIVE_TASK_STATES])
    .execute();
  return rows.map((r) => ({ id: r.id, requestedAt: r.slot_requested_at, grantedAt: r.slot_granted_at, lastSeenAt: r.last_seen_at, updatedAt: r.updated_at }));
}

/** The earliest start time of a scheduled task (ISO), or null when none waits. */
export async function nextStartAt(db: Db): Promise<string | null> {
  const r = await db.selectFrom('tasks').select((eb) => eb.fn.min<string>('start_at').as('next')).where('state', '=', 'scheduled').executeTakeFirst();
  return r?.next ?? null;
}

/**
 * Scheduled tasks whose start time has come (start_at <= nowIso) become
 * queued, each by a compare-and-swap on its state (a cancel, or another
 * server, in between wins). Returns the tasks it moved, as they are now.
 */
export async function promoteDueTasks(db: Db, nowIso: string): Promise<Task[]> {
  const due = await db.selectFrom('tasks').select('id').where('state', '=', 'scheduled').where('start_at', '<=', nowIso).orderBy('start_at').execute();
  const out: Task[] = [];
  for (const { id } of due) {
    const r = await db.updateTable('tasks').set({ state: 'queued', updated_at: nowIso }).where('id', '=', id).where('state', '=', 'scheduled').executeTakeFirst();
    if (r.numUpdatedRows === 0n) continue;
    const t = await getTask(db, id);
    if (t) out.push(t);
  }
  return out;
}

/** Queued tasks that wake their machine, with their wake bookkeeping (src/wake/service.ts). */
export async function wakeCandidates(db: Db): Promise<Array<{ id: number; mac: string; wakeRounds: number; wokenAt: string | null }>> {
  const rows = await db.selectFrom('tasks').select(['id', 'mac', 'wake_rounds', 'woken_at']).where('state', '=', 'queued').where('wake', '=', 1).orderBy('id').execute();
  return rows.map((r) => ({ id: r.id, mac: r.mac, wakeRounds: r.wake_rounds, wokenAt: r.woken_at }));
}

/**
 * Start wake round `from + 1` of a queued task: a compare-and-swap on
 * wake_rounds (and the state), so that one server sends each round once.
 * False when the task moved on (booted, cancelled) or another did it.
 */
export async function claimWakeRound(db: Db, id: number, from: number, nowIso: string): Promise<boolean> {
  const r = await db
    .updateTable('tasks')
    .set({ wake_rounds: from + 1, woken_at: nowIso, updated_at: nowIso })
    .where('id', '=', id)
    .where('wake_rounds', '=', from)
    .where('state', '=', 'queued')
    .executeTakeFirst();
  return r.numUpdatedRows > 0n;
}
