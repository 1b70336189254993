/**
 * Jobs: the tasks one request made for several machines, the members of a
 * host group or a list of MACs, one task per member (tasks.job_id), made in
 * one transaction: every member or none. A job has no state of its own: it
 * is read from its tasks.
 */
import type { Kysely, Selectable } from 'kysely';
import { FleetbootError } from '../lib/errors.js';
import { ACTIVE_TASK_STATES, type TaskState } from '../model/task.js';
import { parseTaskRequest, type TaskRequest } from '../model/task-request.js';
import { groupMacs } from './groups.js';
import type { Database, JobTable } from './schema.js';
import { lockFor } from './locks.js';
import { insertTask, listTasks, type Task } from './tasks.js';
import { createSessionIn, type AllocateEndpoint } from './multicast.js';

/** scheduled: every unfinished member waits for its start time; active: some member is queued or further; then done (all done), failed (one failed at least) or cancelled. */
export type JobState = 'scheduled' | 'active' | 'done' | 'failed' | 'cancelled';

export interface Job {
  id: number;
  type: string;
  /** The group's name when the job was made; null for a list of MACs (request.macs). */
  group: string | null;
  image: string | null;
  state: JobState;
  /** Member tasks. */
  total: number;
  /** Member tasks per state (only states that occur). */
  counts: Partial<Record<TaskState, number>>;
  /** Mean progress of the members (a done one counts 100), one decimal; null without members. */
  percent: number | null;
  /** The members' start time when scheduled (ISO), or null. */
  startAt: string | null;
  /** The schedule that made it, or null. */
  scheduleId: number | null;
  /** The multicast session that carries a multicast deploy, or null. */
  multicastSessionId: number | null;
  createdAt: string;
}

export interface JobDetail extends Job {
  /** The request as submitted. */
  request: TaskRequest;
  /** The member tasks, by MAC. */
  tasks: Task[];
}

type Db = Kysely<Database>;

/** The job's state from its tasks' states. */
export function jobState(states: readonly TaskState[]): JobState {
  const active = states.filter((s) => ACTIVE_TASK_STATES.includes(s));
  if (active.length > 0) return active.every((s) => s === 'scheduled') ? 'scheduled' : 'active';
  if (states.length > 0 && states.every((s) => s === 'done')) return 'done';
  if (states.includes('failed')) return 'failed';
  return states.length === 0 ? 'done' : 'cancelled';
}

/** A member's progress in percent: done 100, else bytes done of the total (0 when unknown). */
export function taskPercent(t: Pick<Task, 'state' | 'bytesDone' | 'bytesTotal'>): number {
  if (t.state === 'done') return 100;
  if (t.bytesTotal === null || t.bytesTotal <= 0) return 0;
  return Math.min(100, (100 * t.bytesDone) / t.bytesTotal);
}

type JobRow = Selectable<JobTable>;

function summarise(r: JobRow, tasks: readonly Task[]): Job {
  const counts: Partial<Record<TaskState, number>> = {};
  for (const t of tasks) counts[t.state] = (counts[t.state] ?? 0) + 1;
  const percent = tasks.length === 0 ? null : Math.round((10 * tasks.reduce((a, t) => a + taskPercent(t), 0)) / tasks.length) / 10;
  const waiting = tasks.filter((t) => t.state === 'scheduled' && t.startAt !== null).map((t) => t.startAt as string);
  return {
    id: r.id,
    type: r.type,
    group: r.group_name,
    image: r.image,
    state: jobState(tasks.map((t) => t.state)),
    total: tasks.length,
    counts,
    percent,
    startAt: waiting.sort()[0] ?? null,
    scheduleId: r.schedule_id,
    multicastSessionId: r.multicast_session_id,
    createdAt: r.created_at,
  };
}

function storedRequest(r: JobRow): TaskRequest {
  return parseTaskRequest(JSON.parse(r.request) as unknown, { allowAt: true });
}

export async function getJob(db: Db, id: number): Promise<JobDetail | null> {
  if (!Number.isSafeInteger(id) || id < 1) return null;
  const r = await db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
  if (!r) return null;
  const tasks = (await listTasks(db, { jobId: id })).sort((a, b) => a.mac.localeCompare(b.mac));
  return { ...summarise(r, tasks), request: storedRequest(r), tasks };
}

/** Newest first. */
export async function listJobs(db: Db, filter: { limit?: number } = {}): Promise<Job[]> {
  const rows = await db
    .selectFrom('jobs')
    .selectAll()
    .orderBy('id', 'desc')
    .limit(Math.max(1, Math.min(10_000, Math.floor(filter.limit ?? 100))))
    .execute();
  if (rows.length === 0) return [];
  const byJob = new Map<number, Task[]>();
  for (const r of rows) byJob.set(r.id, []);
  for (const r of rows) byJob.set(r.id, await listTasks(db, { jobId: r.id }));
  return rows.map((r) => summarise(r, byJob.get(r.id) ?? []));
}

export interface NewJob {
  /** A request for a group or a list of MACs (request.group or request.macs set; `at` already resolved into startAt). */
  request: TaskRequest;
  /** The members wait as scheduled until then (ISO), or null: queued at once. */
  startAt: string | null;
  scheduleId?: number | null;
  /** With request.multicast: how the session gets its group address and port (the configuration's ranges). */
  allocateMulticast?: AllocateEndpoint;
}

/**
 * The listed MACs, every one a known, approved host: NOT_FOUND naming every
 * unknown one (and how to add a host), CONFLICT naming every pending one.
 */
async function listedHosts(db: Db, macs: readonly string[]): Promise<string[]> {
  const hosts = await db.selectFrom('hosts').select(['mac', 'status']).where('mac', 'in', [...macs]).execute();
  const known = new Map(hosts.map((h) => [h.mac, h.status]));
  const unknown = macs.filter((m) => !known.has(m));
  if (unknown.length) {
    const one = unknown.length === 1;
    throw new FleetbootError('NOT_FOUND', `No task was created: no host with MAC ${unknown.join(', ')}; add ${one ? 'it' : 'them'} first (fleetboot host add ${one ? unknown[0] : 'MAC'} [--name NAME]) or leave ${one ? 'it' : 'them'} out`);
  }
  const pending = macs.filter((m) => known.get(m) === 'pending');
  if (pending.length) throw new FleetbootError('CONFLICT', `No task was created: host${pending.length > 1 ? 's' : ''} ${pending.join(', ')} ${pending.length > 1 ? 'are' : 'is'} pending approval: approve first (fleetboot host approve MAC)`);
  return [...macs];
}

interface Members {
  macs: string[];
  /** "members of group 'lab12'", "machines named": for the busy-member conflict. */
  who: string;
  /** What else to do about busy members than cancelling their tasks. */
  leaveOut(many: boolean): string;
}

/** The request's group's members, or its listed MACs (createJob has checked it names one of them). */
async function jobMembers(db: Db, request: TaskRequest): Promise<Members> {
  const group = request.group;
  if (group !== undefined) {
    const macs = await groupMacs(db, group);
    if (macs.length === 0) throw new FleetbootError('CONFLICT', `Group '${group}' has no members: add hosts first (fleetboot group add-host ${group} MAC...)`);
    return { macs, who: `members of group '${group}'`, leaveOut: (many) => `remove ${many ? 'those hosts' : 'that host'} from the group` };
  }
  return { macs: await listedHosts(db, request.macs ?? []), who: 'machines named', leaveOut: (many) => `leave ${many ? 'them' : 'it'} out` };
}

/**
 * One task per member: of the request's group, or of its list of MACs; in
 * one transaction: all or none. The request is checked again
 * (parseTaskRequest: a list's MACs are distinct). NOT_FOUND for an unknown
 * group or listed MACs that are no host (all of them named); CONFLICT for an
 * empty group, pending listed hosts, or when members already have an active
 * task (all of them named); the checks of a single task otherwise (image,
 * revision).
 */
export async function createJob(db: Db, j: NewJob): Promise<JobDetail> {
  const request = parseTaskRequest(j.request, { allowAt: true });
  if (request.group === undefined && request.macs === undefined) throw new TypeError('createJob(): the request names neither a group nor a list of MACs');
  return db.transaction().execute(async (trx) => {
    // First, before any row: the session takes a free group address and port (src/store/multicast.ts).
    if (request.multicast !== undefined) await lockFor(trx, 'multicast-endpoints');
    const { macs, who, leaveOut } = await jobMembers(trx, request);
    const busy = await trx.selectFrom('tasks').select(['id', 'mac', 'type', 'state']).where('mac', 'in', macs).where('state', 'in', [...ACTIVE_TASK_STATES]).orderBy('mac').execute();
    if (busy.length) {
      const list = busy.map((t) => `${t.mac} (task #${t.id}, ${t.type}, ${t.state})`).join(', ');
      const many = busy.length > 1;
      throw new FleetbootError('CONFLICT', `No task was created: ${busy.length} of the ${macs.length} ${who} already ${many ? 'have an active task' : 'has an active task'}: ${list}; cancel ${many ? 'them' : 'it'} or ${leaveOut(many)}`);
    }
    const now = new Date().toISOString();
    const { id } = await trx
      .insertInto('jobs')
      .values({ type: request.type, group_name: request.group ?? null, image: request.image ?? null, request: JSON.stringify(request), schedule_id: j.scheduleId ?? null, multicast_session_id: null, created_at: now })
      .returning('id')
      .executeTakeFirstOrThrow();
    const options = { disk: request.disk ?? null, ...(request.table !== undefined ? { table: request.table } : {}) };
    const taskIds: number[] = [];
    for (const mac of macs) {
      taskIds.push(await insertTask(trx, { type: request.type, mac, image: request.image ?? null, revision: request.revision ?? null, options, startAt: j.startAt, wake: request.wake === true, reboot: request.reboot === true, enrol: request.enrol === true, jobId: id }, null));
    }
    const mc = request.multicast;
    if (mc !== undefined) {
      if (!j.allocateMulticast || !request.image) throw new FleetbootError('INVALID_INPUT', 'A multicast deploy needs an image and the server\'s multicast settings');
      await createSessionIn(trx, {
        jobId: id,
        image: request.image,
        revision: request.revision ?? null,
        taskIds,
        minReceivers: mc.minReceivers ?? taskIds.length,
        maxWaitSeconds: mc.maxWaitSeconds ?? null,
        allocate: j.allocateMulticast,
      });
    }
    const job = await getJob(trx, id);
    if (!job) throw new TypeError(`job #${id} vanished inside its own transaction`);
    return job;
  });
}
