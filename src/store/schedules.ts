/**
 * Recurring schedules: a cron expression and the task request it submits
 * (stored as validated JSON, never as a command line), with the next due
 * time. The scheduler (src/schedule/scheduler.ts) computes times; this
 * module only keeps them. Firing is a compare-and-swap on next_run_at
 * (claimScheduleRun), so that each due time fires once even with two
 * servers on one database.
 */
import type { Kysely, Selectable } from 'kysely';
import { FleetbootError } from '../lib/errors.js';
import { parseTaskRequest, type TaskRequest } from '../model/task-request.js';
import { isValidName } from '../model/validate.js';
import type { Database, ScheduleTable } from './schema.js';

export interface Schedule {
  id: number;
  name: string | null;
  cron: string;
  request: TaskRequest;
  nextRunAt: string;
  lastRunAt: string | null;
  lastResult: string | null;
  lastJobId: number | null;
  lastTaskId: number | null;
  createdAt: string;
}

export interface NewSchedule {
  name: string | null;
  cron: string;
  /** Checked here again (parseTaskRequest, no start time). */
  request: unknown;
  /** The first due time (ISO), from the cron expression. */
  nextRunAt: string;
}

type Db = Kysely<Database>;

function toSchedule(r: Selectable<ScheduleTable>): Schedule {
  return {
    id: r.id,
    name: r.name,
    cron: r.cron,
    request: parseTaskRequest(JSON.parse(r.request) as unknown, { allowAt: false }),
    nextRunAt: r.next_run_at,
    lastRunAt: r.last_run_at,
    lastResult: r.last_result,
    lastJobId: r.last_job_id,
    lastTaskId: r.last_task_id,
    createdAt: r.created_at,
  };
}

/** An id ("7") or a name. */
function byRef(db: Db, ref: string) {
  const q = db.selectFrom('schedules').selectAll();
  return /^[1-9][0-9]{0,14}$/.test(ref) ? q.where('id', '=', Number(ref)) : q.where('name', '=', ref);
}

export function checkScheduleName(name: string | null): void {
  if (name === null) return;
  if (!isValidName(name)) throw new FleetbootError('INVALID_INPUT', `Invalid schedule name ${JSON.stringify(name)}: expected letters, digits, . _ - (up to 64, starting with a letter or digit)`);
  if (/^[0-9]+$/.test(name)) throw new FleetbootError('INVALID_INPUT', `Invalid schedule name ${JSON.stringify(name)}: it must not be a number (schedules are named by id or name)`);
}

/** INVALID_INPUT (name, request), CONFLICT (name taken), NOT_FOUND (the request's group or hosts, every unknown one named). */
export async function createSchedule(db: Db, s: NewSchedule): Promise<Schedule> {
  checkScheduleName(s.name);
  const request = parseTaskRequest(s.request, { allowAt: false });
  if (!Number.isFinite(Date.parse(s.nextRunAt))) throw new TypeError(`createSchedule(): nextRunAt must be an ISO time: ${JSON.stringify(s.nextRunAt)}`);
  return db.transaction().execute(async (trx) => {
    if (s.name !== null && (await trx.selectFrom('schedules').select('id').where('name', '=', s.name).executeTakeFirst())) {
      throw new FleetbootError('CONFLICT', `A schedule named '${s.name}' already exists`);
    }
    if (request.group !== undefined && !(await trx.selectFrom('groups').select('id').where('name', '=', request.group).executeTakeFirst())) {
      throw new FleetbootError('NOT_FOUND', `No group named '${request.group}' (fleetboot group add ${request.group})`);
    }
    if (request.mac !== undefined && !(await trx.selectFrom('hosts').select('id').where('mac', '=', request.mac).executeTakeFirst())) {
      throw new FleetbootError('NOT_FOUND', `No host with MAC ${request.mac} (fleetboot host add ${request.mac})`);
    }
    if (request.macs !== undefined) {
      const known = new Set((await trx.selectFrom('hosts').select('mac').where('mac', 'in', request.macs).execute()).map((h) => h.mac));
      const unknown = request.macs.filter((m) => !known.has(m));
      if (unknown.length) throw new FleetbootError('NOT_FOUND', `No host with MAC ${unknown.join(', ')} (fleetboot host add ${unknown.length === 1 ? unknown[0] : 'MAC'})`);
    }
    const now = new Date().toISOString();
    // group_name and mac let a group or host in use be found; a list of MACs leaves both null (its MACs are in the request).
    const { id } = await trx
      .insertInto('schedules')
      .values({ name: s.name, cron: s.cron, request: JSON.stringify(request), group_name: request.group ?? null, mac: request.mac ?? null, next_run_at: s.nextRunAt, created_at: now })
      .returning('id')
      .executeTakeFirstOrThrow();
    return toSchedule(await trx.selectFrom('schedules').selectAll().where('id', '=', id).executeTakeFirstOrThrow());
  });
}

export async function listSchedules(db: Db): Promise<Schedule[]> {
  return (await db.selectFrom('schedules').selectAll().orderBy('id').execute()).map(toSchedule);
}

/** By id or name, or null. */
export async function getSchedule(db: Db, ref: string): Promise<Schedule | null> {
  const r = await byRef(db, ref).executeTakeFirst();
  return r ? toSchedule(r) : null;
}

/** By id or name; NOT_FOUND. Tasks and jobs it made stay. */
export async function deleteSchedule(db: Db, ref: string): Promise<Schedule> {
  return db.transaction().execute(async (trx) => {
    const r = await byRef(trx, ref).executeTakeFirst();
    if (!r) throw new FleetbootError('NOT_FOUND', `No schedule ${/^[0-9]+$/.test(ref) ? `#${ref}` : `named '${ref}'`}`);
    await trx.deleteFrom('schedules').where('id', '=', r.id).execute();
    return toSchedule(r);
  });
}

/** Schedules due at nowIso (next_run_at <= nowIso), earliest first. */
export async function dueSchedules(db: Db, nowIso: string): Promise<Schedule[]> {
  return (await db.selectFrom('schedules').selectAll().where('next_run_at', '<=', nowIso).orderBy('next_run_at').execute()).map(toSchedule);
}

/** The earliest next_run_at (ISO), or null when there are no schedules. */
export async function nextScheduleRunAt(db: Db): Promise<string | null> {
  const r = await db.selectFrom('schedules').select((eb) => eb.fn.min<string>('next_run_at').as('next')).executeTakeFirst();
  return r?.next ?? null;
}

/**
 * Take the due time `due` of schedule `id`: next_run_at moves from `due` to
 * `next` only if it still is `due` (compare-and-swap). True: this caller
 * fires it, once; false: someone else did, or it was removed or changed.
 */
export async function claimScheduleRun(db: Db, id: number, due: string, next: string, nowIso: string): Promise<boolean> {
  const r = await db.updateTable('schedules').set({ next_run_at: next, last_run_at: nowIso }).where('id', '=', id).where('next_run_at', '=', due).executeTakeFirst();
  return r.numUpdatedRows > 0n;
}

/** What the last firing did. */
export async function recordScheduleResult(db: Db, id: number, r: { result: string; jobId: number | null; taskId: number | null }): Promise<void> {
  await db.updateTable('schedules').set({ last_result: r.result.slice(0, 2000), last_job_id: r.jobId, last_task_id: r.taskId }).where('id', '=', id).execute();
}
