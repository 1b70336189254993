import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { FleetbootError } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import { submitTaskRequest } from '../imaging/submit.js';
import { addGroupMembers, createGroup, createHost, createSchedule, createTask, getSchedule, getTask, listJobs, type Store } from '../store/index.js';
import { withTempStore } from '../store/temp-store.js';
import { createScheduler, nextCronRun } from './scheduler.js';

test('nextCronRun() gives the next time of 5- and 6-field expressions and says what it expected', () => {
  const after = new Date(2026, 11, 4, 23, 0); // a Friday, local time
  assert.equal(nextCronRun('0 22 * * 1-5', after)?.getTime(), new Date(2026, 11, 7, 22, 0).getTime(), 'Monday 22:00');
  assert.equal(nextCronRun('*/10 * * * * *', new Date(2026, 11, 4, 23, 0, 3))?.getTime(), new Date(2026, 11, 4, 23, 0, 10).getTime());
  for (const bad of ['nope', '61 * * * *', '* * *']) {
    assert.throws(() => nextCronRun(bad, after), (e: unknown) => e instanceof FleetbootError && e.code === 'INVALID_INPUT' && e.message.startsWith(`Invalid cron expression ${JSON.stringify(bad)}`) && /expected a cron expression of 5 fields/.test(e.message));
  }
});

const withStore = (fn: (s: Store, logs: Array<Record<string, unknown>>) => Promise<void>): Promise<void> => withTempStore('sched', (s) => fn(s, []));

/** A scheduler on `s` with a test clock; its log lines go to `logs`. */
function scheduler(s: Store, clock: { ms: number }, logs: Array<Record<string, unknown>>, counts: { submits: number; pokes: number }) {
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return createScheduler({
    store: s,
    log: createLogger('info', sink),
    now: () => clock.ms,
    submit: (request, scheduleId) => {
      counts.submits++;
      return submitTaskRequest(s, request, { now: new Date(clock.ms), scheduleId });
    },
    onTasks: () => void counts.pokes++,
  });
}

const A = '52:54:00:00:03:01';
const B = '52:54:00:00:03:02';

test('runOnce(): a scheduled task becomes queued at its start time, not before', async () => {
  await withStore(async (s, logs) => {
    await createHost(s.db, { mac: A });
    const clock = { ms: Date.parse('2026-12-02T10:00:00Z') };
    const t = await createTask(s.db, { type: 'inventory', mac: A, startAt: '2026-12-02T10:00:02.000Z' });
    const counts = { submits: 0, pokes: 0 };
    const sch = scheduler(s, clock, logs, counts);
    await sch.runOnce();
    assert.equal((await getTask(s.db, t.id))?.state, 'scheduled');
    clock.ms += 2000;
    await sch.runOnce();
    assert.equal((await getTask(s.db, t.id))?.state, 'queued');
    assert.equal(counts.pokes, 1);
    assert.ok(logs.some((l) => l.msg === `task #${t.id} inventory ${A}: scheduled -> queued (start time 2026-12-02T10:00:02.000Z)`));
  });
});

test('runOnce(): a missed schedule fires once (logged), two schedulers on one database fire a due time once', async () => {
  await withStore(async (s, logs) => {
    await createHost(s.db, { mac: A });
    await createHost(s.db, { mac: B });
    await createGroup(s.db, 'lab12');
    await addGroupMembers(s.db, 'lab12', [A, B]);
    const clock = { ms: Date.parse('2026-12-02T10:00:00Z') };
    // Due every minute since 10:00; the server "was down" until 10:05:30.
    const sc = await createSchedule(s.db, { name: 'minutely', cron: '* * * * *', request: { type: 'inventory', group: 'lab12' }, nextRunAt: '2026-12-02T10:00:00.000Z' });
    clock.ms = Date.parse('2026-12-02T10:05:30Z');
    const counts = { submits: 0, pokes: 0 };
    const one = scheduler(s, clock, logs, counts);
    const two = scheduler(s, clock, logs, counts);
    await Promise.all([one.runOnce(), two.runOnce()]);
    assert.equal(counts.submits, 1, 'fired once, not once per missed minute nor once per server');
    const jobs = await listJobs(s.db);
    assert.equal(jobs.length, 1);
    assert.equal(jobs[0]?.total, 2);
    const after = await getSchedule(s.db, 'minutely');
    assert.equal(after?.nextRunAt, new Date(Date.parse('2026-12-02T10:06:00Z')).toISOString());
    assert.equal(after?.lastJobId, jobs[0]?.id);
    assert.match(after?.lastResult ?? '', /^job #\d+: 2 inventory tasks for group lab12$/);
    assert.ok(logs.some((l) => l.level === 40 && /missed .*fires once now, not once per missed time/.test(String(l.msg))));
    // The next minute: the members still have their active tasks, so the firing creates nothing and says why.
    clock.ms = Date.parse('2026-12-02T10:06:00.010Z');
    await one.runOnce();
    assert.equal(counts.submits, 2);
    assert.match((await getSchedule(s.db, String(sc.id)))?.lastResult ?? '', /^failed: No task was created: 2 of the 2 members of group 'lab12' already have an active task/);
  });
});

test('runOnce(): a schedule for a list of MACs fires a job for those machines', async () => {
  await withStore(async (s, logs) => {
    await createHost(s.db, { mac: A });
    await createHost(s.db, { mac: B });
    const clock = { ms: Date.parse('2026-12-02T10:00:00Z') };
    const sc = await createSchedule(s.db, { name: 'pair', cron: '0 22 * * *', request: { type: 'inventory', macs: [B, A], wake: true }, nextRunAt: '2026-12-02T10:00:00.000Z' });
    const counts = { submits: 0, pokes: 0 };
    await scheduler(s, clock, logs, counts).runOnce();
    const [job] = await listJobs(s.db);
    assert.deepEqual([job?.group, job?.total, job?.scheduleId, job?.state], [null, 2, sc.id, 'active']);
    const after = await getSchedule(s.db, 'pair');
    assert.equal(after?.lastJobId, job?.id);
    assert.equal(after?.lastResult, `job #${job?.id}: 2 inventory tasks for ${B} ${A}`);
    assert.equal(counts.pokes, 1);
  });
});
