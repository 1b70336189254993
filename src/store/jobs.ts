/**
 * Jobs: the tasks one request made for the members of a host group, one
 * task per member (tasks.job_id), made in one transaction: every member or
 * none. A job has no state of its own: it is read from its tasks.
 */
import type { Kysely, Selectable } from 'kysely';
import { FleetbootError } from '../lib/errors.js';
import { ACTIVE_TASK_STATES, type TaskState } from '../model/task.js';
import { parseTaskRequest, type TaskRequest } from '../model/task-request.js';
import { groupMacs } from './groups.js';
import type { Database, JobTable } from './schema.js';
import { insertTask, listTasks, type Task } from './tasks.js';
import { createSessionIn, type AllocateEndpoint } from './multicast.js';

/** scheduled: every unfinished member waits for its start time; active: some member is queued or further; then done (all done), failed (one failed at least) or cancelled. */
export type JobState = 'scheduled' | 'active' | 'done' | 'failed' | 'cancelled';

export interface Job {
  id: number;
  type: string;
  /** The group's name when the job was made. */
  group: string;
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
  /** Room for multicast deployment (always null for now). */
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
  /** A request for a group (request.group set; `at` already resolved into startAt). */
  request: TaskRequest;
  /** The members wait as scheduled until then (ISO), or null: queued at once. */
  startAt: string | null;
  scheduleId?: number | null;
  /** With request.multicast: how the session gets its group address and port (the configuration's ranges). */
  allocateMulticast?: AllocateEndpoint;
}

/**
 * One task per member of the request's group, in one transaction: all or
 * none. NOT_FOUND for an unknown group; CONFLICT for an empty one, or when
 * members already have an active task (all of them named); the checks of a
 * single task otherwise (image, revision).
 */
export async function createJob(db: Db, j: NewJob): Promise<JobDetail> {
  const group = j.request.group;
  if (group === undefined) throw new TypeError('createJob(): the request names no group');
  return db.transaction().execute(async (trx) => {
    const macs = await groupMacs(trx, group);
    if (macs.length === 0) throw new FleetbootError('CONFLICT', `Group '${group}' has no members: add hosts first (fleetboot group add-host ${group} MAC...)`);
    const busy = await trx.selectFrom('tasks').select(['id', 'mac', 'type', 'state']).where('mac', 'in', macs).where('state', 'in', [...ACTIVE_TASK_STATES]).orderBy('mac').execute();
    if (busy.length) {
      const list = busy.map((t) => `${t.mac} (task #${t.id}, ${t.type}, ${t.state})`).join(', ');
      throw new FleetbootError('CONFLICT', `No task was created: ${busy.length} of the ${macs.length} members of group '${group}' already ${busy.length > 1 ? 'have an active task' : 'has an active task'}: ${list}; cancel ${busy.length > 1 ? 'them' : 'it'} or remove ${busy.length > 1 ? 'those hosts' : 'that host'} from the group`);
    }
    const now = new Date().toISOString();
    const { id } = await trx
      .insertInto('jobs')
      .values({ type: j.request.type, group_name: group, image: j.request.image ?? null, request: JSON.stringify(j.request), schedule_id: j.scheduleId ?? null, multicast_session_id: null, created_at: now })
      .returning('id')
      .executeTakeFirstOrThrow();
    const options = { disk: j.request.disk ?? null, ...(j.request.table !== undefined ? { table: j.request.table } : {}) };
    const taskIds: number[] = [];
    for (const mac of macs) {
      taskIds.push(await insertTask(trx, { type: j.request.type, mac, image: j.request.image ?? null, revision: j.request.revision ?? null, options, startAt: j.startAt, wake: j.request.wake === true, jobId: id }, null));
    }
    const mc = j.request.multicast;
    if (mc !== undefined) {
      if (!j.allocateMulticast || !j.request.image) throw new FleetbootError('INVALID_INPUT', 'A multicast deploy needs an image and the server\'s multicast settings');
      await createSessionIn(trx, {
        jobId: id,
        image: j.request.image,
        revision: j.request.revision ?? null,
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
