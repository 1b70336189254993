/**
 * A task request (src/model/task-request.ts) becomes tasks: one task for a
 * MAC, or a job with one task per member of a group or per listed MAC
 * (atomic, see src/store/jobs.ts). With `at`, the tasks wait as scheduled
 * until then. Shared by POST /api/v1/tasks and the scheduler's recurring
 * schedules.
 */
import { checkStartTime, parseWhen } from '../model/when.js';
import { macListText, type TaskRequest } from '../model/task-request.js';
import type { Store } from '../store/db.js';
import { createJob, type JobDetail } from '../store/jobs.js';
import { createTask, type Task } from '../store/tasks.js';
import type { AllocateEndpoint } from '../store/multicast.js';
import { FleetbootError } from '../lib/errors.js';
import { taskStateEvent, type EventPublisher } from '../model/events.js';

export type Submitted = { kind: 'task'; task: Task } | { kind: 'job'; job: JobDetail };

/** One line for logs and a schedule's last result: "task #7 inventory of 52:54:..", "job #3: 12 deploy tasks for group lab12", "job #4: 2 inventory tasks for 52:54:.. 52:54:..". */
export function describeSubmitted(s: Submitted): string {
  if (s.kind === 'task') return `task #${s.task.id} ${s.task.type} of ${s.task.mac}${s.task.state === 'scheduled' ? `, scheduled for ${s.task.startAt ?? '?'}` : ''}`;
  const who = s.job.group !== null ? `group ${s.job.group}` : macListText(s.job.request.macs ?? []);
  return `job #${s.job.id}: ${s.job.total} ${s.job.type} task${s.job.total === 1 ? '' : 's'} for ${who}${s.job.state === 'scheduled' ? `, scheduled for ${s.job.startAt ?? '?'}` : ''}`;
}

/** The live task.state event of a task just made (from null). */
export function announceTasks(events: EventPublisher | null | undefined, tasks: readonly Task[]): void {
  for (const t of tasks) events?.publish(taskStateEvent(t, null, t.state, t.error));
}

/** Errors as the store's (INVALID_INPUT for a bad or past `at`, NOT_FOUND, CONFLICT). Each task made is announced on `events`. */
export async function submitTaskRequest(
  store: Store,
  request: TaskRequest,
  opts: { now: Date; scheduleId?: number | null; allocateMulticast?: AllocateEndpoint | null; events?: EventPublisher | null },
): Promise<Submitted> {
  if (request.multicast !== undefined && !opts.allocateMulticast) throw new FleetbootError('CONFLICT', 'Multicast sessions are not available on this server (it runs without its multicast service)');
  let startAt: string | null = null;
  if (request.at !== undefined) {
    const at = parseWhen(request.at, opts.now);
    checkStartTime(at, opts.now, request.at);
    startAt = at.toISOString();
  }
  if (request.group !== undefined || request.macs !== undefined) {
    const job = await createJob(store.db, { request, startAt, scheduleId: opts.scheduleId ?? null, ...(opts.allocateMulticast ? { allocateMulticast: opts.allocateMulticast } : {}) });
    announceTasks(opts.events, job.tasks);
    return { kind: 'job', job };
  }
  const options = { disk: request.disk ?? null, ...(request.table !== undefined ? { table: request.table } : {}) };
  const task = await createTask(store.db, { type: request.type, mac: request.mac ?? '', image: request.image ?? null, revision: request.revision ?? null, options, startAt, wake: request.wake === true, reboot: request.reboot === true });
  announceTasks(opts.events, [task]);
  return { kind: 'task', task };
}
