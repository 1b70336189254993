/**
 * The scheduler: scheduled tasks become queued at their start time, and
 * recurring schedules submit their task request at each of their cron
 * times (croner; 5 fields, or 6 with seconds first; the server's time zone).
 *
 * One timer, armed for the earliest of the next start time and the next
 * due schedule (at most `maxSleepMs` ahead, so that changes made by another
 * server on the same database are seen), and re-armed at once by poke()
 * after the API changed something. Each promotion and each firing is a
 * compare-and-swap in the store: a due time fires once. A schedule whose
 * time passed while the server was down fires once at start (logged), not
 * once per missed time: its next time is computed from now.
 */
import { Cron } from 'croner';
import { FleetbootError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Service } from '../lib/service.js';
import type { TaskRequest } from '../model/task-request.js';
import { taskStateEvent, type EventPublisher } from '../model/events.js';
import type { Store } from '../store/db.js';
import { claimScheduleRun, deleteSchedule, dueSchedules, nextScheduleRunAt, recordScheduleResult, type Schedule } from '../store/schedules.js';
import { nextStartAt, promoteDueTasks } from '../store/tasks.js';
import { describeSubmitted, type Submitted } from '../imaging/submit.js';

export const CRON_EXPECTED = 'expected a cron expression of 5 fields (minute hour day-of-month month day-of-week, e.g. "0 22 * * 1-5") or 6 with seconds first (e.g. "*/10 * * * * *")';

/** The first time after `after` that `expr` names, or null when it names none any more. INVALID_INPUT for a bad expression. */
export function nextCronRun(expr: string, after: Date): Date | null {
  let c: Cron;
  try {
    c = new Cron(expr, { paused: true });
  } catch (err) {
    throw new FleetbootError('INVALID_INPUT', `Invalid cron expression ${JSON.stringify(expr)} (${errorMessage(err)}): ${CRON_EXPECTED}`);
  }
  return c.nextRun(after);
}

/** How soon a pass runs again when something due was left by the last one. */
const RETRY_MS = 1000;

/** A schedule firing this late (ms) while the server ran was held up (busy, clock jump): logged as such. */
const LATE_MS = 60_000;

export interface SchedulerDeps {
  store: Store;
  log: Logger;
  /** Make a schedule's tasks (src/imaging/submit.ts). */
  submit(request: TaskRequest, scheduleId: number): Promise<Submitted>;
  /** Called after tasks were queued or created (the wake service looks at them). */
  onTasks(): void;
  /** Live events: a scheduled task queued at its time (src/events/bus.ts). */
  events?: EventPublisher;
  now?: () => number;
  /** Longest sleep between looks at the database (default 30 s). */
  maxSleepMs?: number;
}

export interface Scheduler extends Service {
  /** Look again soon: something was created or removed. */
  poke(): void;
  /** One pass: promote due tasks, fire due schedules (tests). */
  runOnce(): Promise<void>;
}

export function createScheduler(deps: SchedulerDeps): Scheduler {
  const { store } = deps;
  const log = deps.log.child({ subsystem: 'schedule' });
  const now = deps.now ?? Date.now;
  const maxSleep = deps.maxSleepMs ?? 30_000;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let again = false;
  let started = false;
  let closed = false;
  /** Due times before this were missed while the server was down. */
  let startedAt = now();

  async function fire(s: Schedule, n: number): Promise<void> {
    const nowDate = new Date(n);
    const due = Date.parse(s.nextRunAt);
    const next = nextCronRun(s.cron, nowDate);
    const label = `schedule #${s.id}${s.name ? ` (${s.name})` : ''}`;
    // The compare-and-swap: only the server that moves next_run_at on fires this due time.
    if (!(await claimScheduleRun(store.db, s.id, s.nextRunAt, next?.toISOString() ?? s.nextRunAt, nowDate.toISOString()))) return;
    const fields = { schedule: s.id, name: s.name, cron: s.cron, due: s.nextRunAt, next: next?.toISOString() ?? null };
    if (due < startedAt) {
      log.warn({ ...fields, lateSeconds: Math.round((n - due) / 1000) }, `${label} was due at ${s.nextRunAt} and missed while the server was down: it fires once now, not once per missed time`);
    } else if (n - due > LATE_MS) {
      log.warn({ ...fields, lateSeconds: Math.round((n - due) / 1000) }, `${label} was due at ${s.nextRunAt} and fires ${Math.round((n - due) / 1000)} s late (the server was busy or its clock jumped), once`);
    }
    let result: string;
    let jobId: number | null = null;
    let taskId: number | null = null;
    try {
      const sub = await deps.submit(s.request, s.id);
      result = describeSubmitted(sub);
      if (sub.kind === 'job') jobId = sub.job.id;
      else taskId = sub.task.id;
      log.info({ ...fields, job: jobId, task: taskId }, `${label} fired: ${result}`);
      deps.onTasks();
    } catch (err) {
      result = `failed: ${errorMessage(err)}`;
      log.warn({ ...fields, err: errorMessage(err) }, `${label} fired and created nothing: ${errorMessage(err)}`);
    }
    await recordScheduleResult(store.db, s.id, { result, jobId, taskId });
    if (next === null) {
      await deleteSchedule(store.db, String(s.id)).catch(() => undefined);
      log.info(fields, `${label} has no later time (${s.cron}): removed`);
    }
  }

  /** The clock reading of the last pass: what was due then it has handled (or failed to). */
  let lastPassAt = -Infinity;

  async function pass(): Promise<void> {
    const n = now();
    lastPassAt = n;
    const iso = new Date(n).toISOString();
    const queued = await promoteDueTasks(store.db, iso);
    for (const t of queued) {
      const late = n - Date.parse(t.startAt ?? iso);
      log.info({ task: t.id, mac: t.mac, type: t.type, job: t.jobId, from: 'scheduled', state: 'queued', startAt: t.startAt, lateMs: late }, `task #${t.id} ${t.type} ${t.mac}: scheduled -> queued (start time ${t.startAt ?? '?'})`);
      deps.events?.publish(taskStateEvent(t, 'scheduled', 'queued', null));
    }
    if (queued.length) deps.onTasks();
    for (const s of await dueSchedules(store.db, iso)) {
      try {
        await fire(s, n);
      } catch (err) {
        log.error({ schedule: s.id, err: errorMessage(err) }, `schedule #${s.id} could not fire`);
      }
    }
  }

  async function arm(): Promise<void> {
    if (closed || !started) return;
    const [a, b] = await Promise.all([nextStartAt(store.db), nextScheduleRunAt(store.db)]);
    const times = [a, b].filter((x): x is string => x !== null).map((x) => Date.parse(x));
    const earliest = times.length ? Math.min(...times) : Infinity;
    // Something that was due at the last pass is still there (a firing that failed): look again shortly, not in a loop.
    const delay = earliest <= lastPassAt ? RETRY_MS : Math.max(0, Math.min(maxSleep, earliest - now()));
    if (timer) clearTimeout(timer);
    if (closed) return;
    // Timers may fire a millisecond early against the wall clock: then the pass finds nothing and re-arms.
    timer = setTimeout(() => {
      timer = null;
      run();
    }, delay);
    timer.unref();
  }

  function run(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    running = pass()
      .catch((err: unknown) => log.error({ err: errorMessage(err) }, 'scheduler pass failed'))
      .then(() => arm())
      .catch((err: unknown) => log.error({ err: errorMessage(err) }, 'arming the scheduler failed'))
      .finally(() => {
        running = null;
        if (again && !closed) {
          again = false;
          void run();
        }
      });
    return running;
  }

  return {
    name: 'scheduler',
    poke() {
      if (!started || closed) return;
      void run();
    },
    runOnce: pass,
    async start() {
      started = true;
      startedAt = now();
      await run();
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await running;
    },
  };
}
