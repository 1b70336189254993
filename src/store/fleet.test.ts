import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetbootError } from '../lib/errors.js';
import { withTempStore } from './temp-store.js';
import { getSession, sessionMembers } from './multicast.js';
import {
  addGroupMembers,
  cancelTask,
  claimScheduleRun,
  claimWakeRound,
  createGroup,
  createHost,
  createJob,
  createSchedule,
  createTask,
  deleteGroup,
  deleteHost,
  deleteSchedule,
  dueSchedules,
  getGroup,
  getJob,
  getSchedule,
  jobState,
  listGroups,
  listJobs,
  listRelays,
  nextScheduleRunAt,
  nextStartAt,
  noteRelay,
  promoteDueTasks,
  removeGroupMembers,
  retryTask,
  finishTask,
  wakeCandidates,
  type Store,
} from './index.js';

const withStore = (fn: (s: Store) => Promise<void>): Promise<void> => withTempStore('fleet', fn);

const code = (c: string, re?: RegExp) => (e: unknown) => e instanceof FleetbootError && e.code === c && (re === undefined || re.test(e.message));
const M = (n: number): string => `52:54:00:00:01:${n.toString(16).padStart(2, '0')}`;

test('groups: members are known hosts, added and removed all or none, and leave with their host', async () => {
  await withStore(async (s) => {
    for (const n of [1, 2, 3]) await createHost(s.db, { mac: M(n), name: `pc${n}` });
    await createHost(s.db, { mac: M(9), status: 'pending' });
    await createGroup(s.db, 'lab12');
    await assert.rejects(createGroup(s.db, 'lab12'), code('CONFLICT', /already exists/));
    await assert.rejects(createGroup(s.db, 'bad name'), code('INVALID_INPUT', /Invalid group name "bad name": expected/));
    await assert.rejects(addGroupMembers(s.db, 'lab12', [M(1), '52:54:00:00:01:77', '52:54:00:00:01:78']), code('NOT_FOUND', /No host with MAC 52:54:00:00:01:77, 52:54:00:00:01:78: .*fleetboot host add MAC/));
    assert.deepEqual((await getGroup(s.db, 'lab12'))?.members, [], 'nothing was added');
    await assert.rejects(addGroupMembers(s.db, 'lab12', [M(9)]), code('CONFLICT', /pending approval/));
    await assert.rejects(addGroupMembers(s.db, 'lab12', ['zz']), code('INVALID_INPUT', /Invalid MAC address "zz"/));
    await assert.rejects(addGroupMembers(s.db, 'nope', [M(1)]), code('NOT_FOUND', /No group named 'nope'/));
    const r = await addGroupMembers(s.db, 'lab12', [M(1), '52-54-00-00-01-02', M(1)]);
    assert.deepEqual(r.added, [M(1), M(2)]);
    const again = await addGroupMembers(s.db, 'lab12', [M(2), M(3)]);
    assert.deepEqual([again.added, again.already], [[M(3)], [M(2)]]);
    assert.deepEqual(again.group.members.map((m) => [m.mac, m.name]), [[M(1), 'pc1'], [M(2), 'pc2'], [M(3), 'pc3']]);
    await assert.rejects(removeGroupMembers(s.db, 'lab12', [M(1), M(9)]), code('NOT_FOUND', /52:54:00:00:01:09 is not a member of group 'lab12': nothing was removed/));
    assert.equal((await removeGroupMembers(s.db, 'lab12', [M(1)])).members.length, 2);
    await deleteHost(s.db, M(2));
    assert.deepEqual(await listGroups(s.db).then((l) => l.map((g) => [g.name, g.members])), [['lab12', 1]]);
    await deleteGroup(s.db, 'lab12');
    assert.equal(await getGroup(s.db, 'lab12'), null);
  });
});

test('createJob() makes one task per member in one transaction: all, or none with the busy members named', async () => {
  await withStore(async (s) => {
    for (const n of [1, 2, 3]) await createHost(s.db, { mac: M(n) });
    await createGroup(s.db, 'g');
    await assert.rejects(createJob(s.db, { request: { type: 'inventory', group: 'g' }, startAt: null }), code('CONFLICT', /has no members/));
    await addGroupMembers(s.db, 'g', [M(1), M(2), M(3)]);
    const busy1 = await createTask(s.db, { type: 'inventory', mac: M(1) });
    const busy3 = await createTask(s.db, { type: 'inventory', mac: M(3), startAt: new Date(Date.now() + 60_000).toISOString() });
    await assert.rejects(
      createJob(s.db, { request: { type: 'inventory', group: 'g' }, startAt: null }),
      code('CONFLICT', new RegExp(`No task was created: 2 of the 3 members of group 'g' already have an active task: 52:54:00:00:01:01 \\(task #${busy1.id}, inventory, queued\\), 52:54:00:00:01:03 \\(task #${busy3.id}, inventory, scheduled\\)`)),
    );
    assert.equal((await listJobs(s.db)).length, 0, 'no job row either');
    await assert.rejects(createJob(s.db, { request: { type: 'deploy', group: 'g', image: 'none' }, startAt: null }), code('CONFLICT'));
    await cancelTask(s.db, busy1.id);
    await cancelTask(s.db, busy3.id);
    // A deploy of an image that does not exist: the first member's check fails, nothing stays.
    await assert.rejects(createJob(s.db, { request: { type: 'deploy', group: 'g', image: 'none' }, startAt: null }), code('NOT_FOUND', /No image named 'none'/));
    assert.equal((await listJobs(s.db)).length, 0);
    const at = new Date(Date.now() + 3600_000).toISOString();
    const job = await createJob(s.db, { request: { type: 'inventory', group: 'g', wake: true }, startAt: at });
    assert.equal(job.total, 3);
    assert.equal(job.state, 'scheduled');
    assert.equal(job.startAt, at);
    assert.deepEqual(job.counts, { scheduled: 3 });
    assert.ok(job.tasks.every((t) => t.jobId === job.id && t.wake && t.startAt === at && t.state === 'scheduled'));
    assert.equal(job.multicastSessionId, null);
    assert.deepEqual(job.request, { type: 'inventory', group: 'g', wake: true });
    // A scheduled task is active: one per MAC, also for a single task.
    await assert.rejects(createTask(s.db, { type: 'inventory', mac: M(2) }), code('CONFLICT', /scheduled/));
    assert.equal(await nextStartAt(s.db), at);
    assert.deepEqual(await promoteDueTasks(s.db, new Date(Date.parse(at) - 1).toISOString()), []);
    const promoted = await promoteDueTasks(s.db, at);
    assert.deepEqual(promoted.map((t) => t.state), ['queued', 'queued', 'queued']);
    assert.equal((await getJob(s.db, job.id))?.state, 'active');
    assert.equal(await nextStartAt(s.db), null);
    const first = job.tasks[0];
    assert.ok(first);
    await finishTask(s.db, first.id, 'failed', 'x');
    const retried = await retryTask(s.db, first.id);
    assert.equal(retried.jobId, null, 'a retry is outside the job');
    assert.equal(retried.wake, true, 'a retry wakes its machine as the first did');
    const [list] = await listJobs(s.db);
    assert.equal(list?.counts.failed, 1);
  });
});

test('createJob() with a list of MACs: known hosts only, all or none, every unknown, pending and busy one named', async () => {
  await withStore(async (s) => {
    for (const n of [1, 2, 3, 4]) await createHost(s.db, { mac: M(n), name: `pc${n}` });
    await createHost(s.db, { mac: M(8), status: 'pending' });
    await createHost(s.db, { mac: M(9), status: 'pending' });
    const inventory = (macs: string[]) => createJob(s.db, { request: { type: 'inventory', macs }, startAt: null });
    await assert.rejects(inventory([M(1), '52:54:00:00:01:77', M(2), '52:54:00:00:01:78']), code('NOT_FOUND', /^No task was created: no host with MAC 52:54:00:00:01:77, 52:54:00:00:01:78; add them first \(fleetboot host add MAC \[--name NAME\]\) or leave them out$/));
    await assert.rejects(inventory([M(1), '52:54:00:00:01:77']), code('NOT_FOUND', /no host with MAC 52:54:00:00:01:77; add it first \(fleetboot host add 52:54:00:00:01:77 \[--name NAME\]\)/));
    await assert.rejects(inventory([M(1), M(8), M(9)]), code('CONFLICT', /hosts 52:54:00:00:01:08, 52:54:00:00:01:09 are pending approval/));
    await assert.rejects(inventory([M(1), '52-54-00-00-01-02', M(2)]), code('INVALID_INPUT', /"macs" names 52:54:00:00:01:02 more than once/));
    await assert.rejects(inventory([M(1)]), code('INVALID_INPUT', /for one machine use "mac"/));
    const busy2 = await createTask(s.db, { type: 'inventory', mac: M(2) });
    const busy4 = await createTask(s.db, { type: 'inventory', mac: M(4) });
    await assert.rejects(
      inventory([M(4), M(1), M(2), M(3)]),
      code('CONFLICT', new RegExp(`^No task was created: 2 of the 4 machines named already have an active task: 52:54:00:00:01:02 \\(task #${busy2.id}, inventory, queued\\), 52:54:00:00:01:04 \\(task #${busy4.id}, inventory, queued\\); cancel them or leave them out$`)),
    );
    await assert.rejects(inventory([M(1), M(2)]), code('CONFLICT', /1 of the 2 machines named already has an active task: .*; cancel it or leave it out$/));
    assert.equal((await listJobs(s.db)).length, 0, 'no job row');
    const single = await createTask(s.db, { type: 'inventory', mac: M(1) });
    assert.equal(single.state, 'queued', 'M(1) got no task from the refused jobs');
    for (const t of [busy2, busy4, single]) await cancelTask(s.db, t.id);
    const job = await createJob(s.db, { request: { type: 'inventory', macs: ['52-54-00-00-01-03', M(1), M(2)], wake: true }, startAt: null });
    assert.equal(job.group, null);
    assert.equal(job.total, 3);
    assert.deepEqual(job.request, { type: 'inventory', macs: [M(3), M(1), M(2)], wake: true }, 'stored normalised, in the order given');
    assert.deepEqual(job.tasks.map((t) => [t.mac, t.hostName, t.state, t.jobId, t.wake]), [1, 2, 3].map((n) => [M(n), `pc${n}`, 'queued', job.id, true]));
    const [listed] = await listJobs(s.db);
    assert.deepEqual([listed?.id, listed?.group, listed?.total], [job.id, null, 3]);
  });
});

test('createJob() with a list of MACs and multicast: one session for the listed machines\' tasks, waiting for all of them by default', async () => {
  await withStore(async (s) => {
    for (const n of [1, 2, 3]) await createHost(s.db, { mac: M(n) });
    await s.db.insertInto('images').values({ name: 'win11', current_revision: 4, created_at: new Date().toISOString() }).execute();
    const allocate = (used: ReadonlyArray<{ address: string; port: number }>) => ({ address: '239.255.42.1', port: 9000 + used.length });
    const job = await createJob(s.db, { request: { type: 'deploy', macs: [M(2), M(1), M(3)], image: 'win11', multicast: {} }, startAt: null, allocateMulticast: allocate });
    assert.equal(job.group, null);
    assert.ok(job.multicastSessionId !== null);
    const session = await getSession(s.db, job.multicastSessionId);
    assert.deepEqual(
      [session?.jobId, session?.image, session?.revision, session?.expected, session?.minReceivers, session?.maxWaitSeconds, session?.state, session?.port],
      [job.id, 'win11', 4, 3, 3, null, 'waiting', 9000],
    );
    const members = await sessionMembers(s.db, job.multicastSessionId);
    assert.deepEqual(members.map((m) => [m.mac, m.taskId]), job.tasks.map((t) => [t.mac, t.id]), "the session's members are the job's tasks");
    assert.ok(job.tasks.every((t) => t.multicastId === job.multicastSessionId && t.revision === 4), 'each task pinned to the session and its revision');
    await s.db.updateTable('tasks').set({ state: 'cancelled' }).where('job_id', '=', job.id).execute();
    const waits = await createJob(s.db, { request: { type: 'deploy', macs: [M(1), M(2)], image: 'win11', multicast: { minReceivers: 1, maxWaitSeconds: 300 } }, startAt: null, allocateMulticast: allocate });
    const second = await getSession(s.db, waits.multicastSessionId ?? 0);
    assert.deepEqual([second?.expected, second?.minReceivers, second?.maxWaitSeconds, second?.port], [2, 1, 300, 9001]);
    await assert.rejects(
      createJob(s.db, { request: { type: 'deploy', mac: M(3), image: 'win11', multicast: {} }, startAt: null, allocateMulticast: allocate }),
      code('INVALID_INPUT', /a deploy to one machine goes by unicast/),
    );
  });
});

test('jobState() reads a job from its tasks', () => {
  assert.equal(jobState(['scheduled', 'scheduled', 'done']), 'scheduled');
  assert.equal(jobState(['scheduled', 'queued']), 'active');
  assert.equal(jobState(['done', 'done']), 'done');
  assert.equal(jobState(['done', 'failed', 'cancelled']), 'failed');
  assert.equal(jobState(['done', 'cancelled']), 'cancelled');
});

test('wake rounds and scheduled promotions are compare-and-swaps: a second claimant loses', async () => {
  await withStore(async (s) => {
    await createHost(s.db, { mac: M(1) });
    const t = await createTask(s.db, { type: 'inventory', mac: M(1), wake: true });
    assert.deepEqual(await wakeCandidates(s.db), [{ id: t.id, mac: M(1), wakeRounds: 0, wokenAt: null }]);
    const now = new Date().toISOString();
    assert.equal(await claimWakeRound(s.db, t.id, 0, now), true);
    assert.equal(await claimWakeRound(s.db, t.id, 0, now), false, 'round 1 was taken');
    assert.equal(await claimWakeRound(s.db, t.id, 1, now), true);
    await cancelTask(s.db, t.id);
    assert.equal(await claimWakeRound(s.db, t.id, 2, now), false, 'not once it is over');
    assert.deepEqual(await wakeCandidates(s.db), []);
  });
});

test('schedules: stored as a validated request, claimed once per due time, refuse to lose their group', async () => {
  await withStore(async (s) => {
    await createHost(s.db, { mac: M(1) });
    await createHost(s.db, { mac: M(2) });
    await createGroup(s.db, 'g');
    const due = '2026-12-02T22:00:00.000Z';
    await assert.rejects(createSchedule(s.db, { name: null, cron: '0 22 * * *', request: { type: 'inventory', group: 'g', at: '22:00' }, nextRunAt: due }), code('INVALID_INPUT', /takes no start time/));
    await assert.rejects(createSchedule(s.db, { name: '42', cron: '0 22 * * *', request: { type: 'inventory', group: 'g' }, nextRunAt: due }), code('INVALID_INPUT', /must not be a number/));
    await assert.rejects(createSchedule(s.db, { name: null, cron: '0 22 * * *', request: { type: 'inventory', group: 'nope' }, nextRunAt: due }), code('NOT_FOUND', /No group named 'nope'/));
    await assert.rejects(createSchedule(s.db, { name: null, cron: '0 22 * * *', request: { type: 'inventory', mac: M(7) }, nextRunAt: due }), code('NOT_FOUND', /No host with MAC/));
    await assert.rejects(createSchedule(s.db, { name: null, cron: '0 22 * * *', request: { type: 'inventory', macs: [M(7), M(1), M(8)] }, nextRunAt: due }), code('NOT_FOUND', /^No host with MAC 52:54:00:00:01:07, 52:54:00:00:01:08 \(fleetboot host add MAC\)$/));
    await assert.rejects(createSchedule(s.db, { name: null, cron: '0 22 * * *', request: { type: 'inventory', macs: [M(1), M(1)] }, nextRunAt: due }), code('INVALID_INPUT', /more than once/));
    const pair = await createSchedule(s.db, { name: 'pair', cron: '0 23 * * *', request: { type: 'inventory', macs: ['52-54-00-00-01-02', M(1)] }, nextRunAt: due });
    assert.deepEqual(pair.request, { type: 'inventory', macs: [M(2), M(1)] });
    assert.deepEqual(await s.db.selectFrom('schedules').select(['group_name', 'mac']).where('id', '=', pair.id).executeTakeFirst(), { group_name: null, mac: null });
    await deleteSchedule(s.db, 'pair');
    const sc = await createSchedule(s.db, { name: 'nightly', cron: '0 22 * * 1-5', request: { type: 'inventory', group: 'g', wake: true }, nextRunAt: due });
    await assert.rejects(createSchedule(s.db, { name: 'nightly', cron: '0 22 * * *', request: { type: 'inventory', mac: M(1) }, nextRunAt: due }), code('CONFLICT'));
    assert.deepEqual(sc.request, { type: 'inventory', group: 'g', wake: true });
    assert.equal((await getSchedule(s.db, 'nightly'))?.id, sc.id);
    assert.equal((await getSchedule(s.db, String(sc.id)))?.name, 'nightly');
    assert.equal(await nextScheduleRunAt(s.db), due);
    assert.deepEqual(await dueSchedules(s.db, '2026-12-02T21:59:59.999Z'), []);
    assert.equal((await dueSchedules(s.db, due)).length, 1);
    const next = '2026-12-03T22:00:00.000Z';
    assert.equal(await claimScheduleRun(s.db, sc.id, due, next, due), true);
    assert.equal(await claimScheduleRun(s.db, sc.id, due, next, due), false, 'a second server loses the same due time');
    await assert.rejects(deleteGroup(s.db, 'g'), code('CONFLICT', /used by schedule #\d+ \(nightly\)/));
    await deleteSchedule(s.db, 'nightly');
    await assert.rejects(deleteSchedule(s.db, 'nightly'), code('NOT_FOUND', /No schedule named 'nightly'/));
    await deleteGroup(s.db, 'g');
  });
});

test('noteRelay() keeps each relay once, refreshed, and ignores addresses no relay has', async () => {
  await withStore(async (s) => {
    assert.equal(await noteRelay(s.db, '10.1.2.1', '2026-01-01T00:00:00.000Z'), true);
    await noteRelay(s.db, '10.1.3.1', '2026-01-01T00:00:01.000Z');
    await noteRelay(s.db, '10.1.2.1', '2026-01-01T00:00:02.000Z');
    assert.equal(await noteRelay(s.db, '127.0.0.1', '2026-01-01T00:00:03.000Z'), false);
    assert.equal(await noteRelay(s.db, '0.0.0.0', '2026-01-01T00:00:03.000Z'), false);
    assert.deepEqual(await listRelays(s.db), [
      { giaddr: '10.1.2.1', firstSeenAt: '2026-01-01T00:00:00.000Z', lastSeenAt: '2026-01-01T00:00:02.000Z' },
      { giaddr: '10.1.3.1', firstSeenAt: '2026-01-01T00:00:01.000Z', lastSeenAt: '2026-01-01T00:00:01.000Z' },
    ]);
  });
});
