/**
 * Groups, jobs, scheduled and woken tasks, schedules and Wake-on-LAN through
 * the REST API (app.inject), on a real SQLite file, with a wake service
 * whose sender records the magic packets instead of sending them.
 */
import { openTestStore } from '../src/store/temp-store.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../src/config/config.js';
import { silentLogger } from '../src/lib/log.js';
import { buildApp } from '../src/http/app.js';
import { watchAnswers, type AnswerWatch } from './api-answers.js';
import { apiCaller, type Json } from './api-helpers.js';
import { createImagingService } from '../src/imaging/tasks.js';
import { decodeMagicPacket } from '../src/protocol/wol.js';
import { createHost, createEntry, ensureApiToken, noteRelay, openStore, type Store } from '../src/store/index.js';
import { createWakeService, type WakeService } from '../src/wake/service.js';
import { createMulticastService, type MulticastService } from '../src/multicast/service.js';
import { MULTICAST_ONE_REFUSED } from '../src/model/task-request.js';
import { wakeTargetSource } from '../src/server.js';
import { makeImage } from './imaging-helpers.js';

let dir: string;
let store: Store;
let app: FastifyInstance;
let watch: AnswerWatch;
let token: string;
let wake: WakeService;
let multicast: MulticastService;
let changes = 0;
const sent: Array<{ mac: string; to: string }> = [];
const A = '52:54:00:cc:00:01';
const B = '52:54:00:cc:00:02';
const C = '52:54:00:cc:00:03';
const P = '52:54:00:cc:00:09';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetboot-api-fleet-'));
  // Loopback server address: no limited broadcast; the directed broadcasts of a configured subnet and a relay heard.
  const config = loadConfig({ overrides: { dataDir: dir, serverIp: '127.0.0.1', http: { port: 8124 }, wake: { subnets: ['10.77.1.0/24'], repeats: 1 } } });
  store = await openTestStore(config.dataDir);
  token = ensureApiToken(config.dataDir);
  const imaging = createImagingService({ store, config, log: silentLogger });
  wake = createWakeService({
    store,
    config,
    log: silentLogger,
    sender: { send: async (p, address, port) => void sent.push({ mac: decodeMagicPacket(p).mac, to: `${address}:${port}` }), close: async () => undefined },
    targets: wakeTargetSource(config, '127.0.0.1', store),
    failTask: (t, reason) => imaging.finish(t, 'failed', reason),
    intervalMs: 3600_000,
  });
  // Never started: sessions are made and shown, no sender runs (no sockets).
  multicast = createMulticastService({ store, config, serverIp: '127.0.0.1', log: silentLogger });
  app = buildApp({ store, config, serverIp: '127.0.0.1', logger: silentLogger, token, imaging, wake, multicast, onTasksChanged: () => void changes++ });
  watch = watchAnswers(app);
  await app.ready();
  await createEntry(store.db, { name: 'deb', kernel: 'http://x/vmlinuz', initrds: [], cmdline: '' });
  await createHost(store.db, { mac: A, name: 'pc1', entry: 'deb' });
  await createHost(store.db, { mac: B, name: 'pc2' });
  await createHost(store.db, { mac: C });
  await createHost(store.db, { mac: P, status: 'pending' });
});

after(async () => {
  assert.deepEqual(watch.lost, [], 'answers lost these properties to their response schemas: declare them (src/http/schemas/), or add them to HIDDEN (test/api-answers.ts)');
  await multicast.close();
  await wake.close();
  await app.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const call = apiCaller(() => app, () => token);
const refused = async (method: 'GET' | 'POST' | 'DELETE', url: string, payload: object | undefined, status: number, re: RegExp): Promise<void> => {
  const r = await call(method, url, payload);
  assert.equal(r.status, status, `${method} ${url} ${JSON.stringify(payload)} -> ${JSON.stringify(r.body)}`);
  assert.match(String(r.body['message']), re, `${method} ${url}`);
};

test('the fleet routes refuse requests without the token (401)', async () => {
  for (const [method, url] of [['GET', '/api/v1/groups'], ['POST', '/api/v1/groups'], ['GET', '/api/v1/jobs'], ['POST', '/api/v1/jobs/1/cancel'], ['GET', '/api/v1/schedules'], ['POST', '/api/v1/wake'], ['GET', '/api/v1/wake/targets']] as const) {
    const r = await app.inject({ method, url });
    assert.equal(r.statusCode, 401, `${method} ${url}`);
  }
});

test('groups: add, members (known hosts only, all or none), show, remove', async () => {
  assert.equal((await call('POST', '/api/v1/groups', { name: 'lab12' })).status, 201);
  await refused('POST', '/api/v1/groups', { name: 'lab12' }, 409, /already exists/);
  await refused('POST', '/api/v1/groups', { name: 'bad name' }, 400, /body\/name must match pattern/);
  await refused('POST', '/api/v1/groups/lab12/members', { macs: [A, '52:54:00:cc:00:77'] }, 404, /No host with MAC 52:54:00:cc:00:77: a group member must be a known host; add it first \(fleetboot host add 52:54:00:cc:00:77/);
  await refused('POST', '/api/v1/groups/lab12/members', { macs: [P] }, 409, /pending approval/);
  await refused('POST', '/api/v1/groups/lab12/members', { macs: [] }, 400, /body\/macs must NOT have fewer than 1 items/);
  await refused('POST', '/api/v1/groups/nope/members', { macs: [A] }, 404, /No group named 'nope'/);
  const add = await call('POST', '/api/v1/groups/lab12/members', { macs: [A, B, C, A] });
  assert.equal(add.status, 200, JSON.stringify(add.body));
  assert.deepEqual(add.body['added'], [A, B, C]);
  const show = await call('GET', '/api/v1/groups/lab12');
  assert.deepEqual((show.body['members'] as Json[]).map((m) => [m['mac'], m['name']]), [[A, 'pc1'], [B, 'pc2'], [C, null]]);
  assert.deepEqual((await call('GET', '/api/v1/groups')).body, { groups: [{ name: 'lab12', members: 3, createdAt: show.body['createdAt'] }] });
  assert.equal((await call('POST', '/api/v1/groups', { name: 'tmp' })).status, 201);
  await call('POST', '/api/v1/groups/tmp/members', { macs: [A] });
  await refused('POST', '/api/v1/groups/tmp/members/remove', { macs: [B] }, 404, /52:54:00:cc:00:02 is not a member of group 'tmp': nothing was removed/);
  assert.deepEqual((await call('POST', '/api/v1/groups/tmp/members/remove', { macs: [A] })).body['members'], []);
  assert.deepEqual((await call('DELETE', '/api/v1/groups/tmp')).body, { deleted: 'tmp' });
  await refused('GET', '/api/v1/groups/tmp', undefined, 404, /No group named 'tmp'/);
});

test('POST /api/v1/tasks with a group: one task per member, shown as a job; all or none; capture refused', async () => {
  await refused('POST', '/api/v1/tasks', { type: 'capture', group: 'lab12', image: 'x' }, 400, /A capture takes one machine, not a group/);
  await refused('POST', '/api/v1/tasks', { type: 'inventory', mac: A, group: 'lab12' }, 400, /got "mac" and "group"/);
  await refused('POST', '/api/v1/tasks', { type: 'inventory', group: 'nope' }, 404, /No group named 'nope'/);
  const busy = await call('POST', '/api/v1/tasks', { type: 'inventory', mac: B });
  assert.equal(busy.status, 201);
  await refused('POST', '/api/v1/tasks', { type: 'inventory', group: 'lab12' }, 409, new RegExp(`No task was created: 1 of the 3 members of group 'lab12' already has an active task: 52:54:00:cc:00:02 \\(task #${String(busy.body['id'])}, inventory, queued\\)`));
  assert.deepEqual((await call('GET', '/api/v1/jobs')).body, { jobs: [] });
  await call('POST', `/api/v1/tasks/${String(busy.body['id'])}/cancel`);
  const before = changes;
  const r = await call('POST', '/api/v1/tasks', { type: 'inventory', group: 'lab12' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(changes, before + 1, 'the scheduler and the wake service were told');
  const job = r.body;
  assert.equal(job['group'], 'lab12');
  assert.equal(job['state'], 'active');
  assert.equal(job['total'], 3);
  assert.equal(job['multicastSessionId'], null);
  const tasks = job['tasks'] as Json[];
  assert.deepEqual(tasks.map((t) => [t['mac'], t['state'], t['jobId']]), [A, B, C].map((m) => [m, 'queued', job['id']]));
  // Progress of one member, as its agent would report it: the job shows it.
  await store.db.updateTable('tasks').set({ state: 'running', phase: 'inventory', bytes_done: 50, bytes_total: 100 }).where('id', '=', Number(tasks[0]?.['id'])).execute();
  const shown = await call('GET', `/api/v1/jobs/${String(job['id'])}`);
  assert.deepEqual(shown.body['counts'], { running: 1, queued: 2 });
  assert.equal(shown.body['percent'], 16.7);
  assert.deepEqual((shown.body['tasks'] as Json[]).map((t) => [t['state'], t['phase'], t['bytesDone']]), [['running', 'inventory', 50], ['queued', null, 0], ['queued', null, 0]]);
  const list = await call('GET', '/api/v1/jobs');
  assert.equal((list.body['jobs'] as Json[])[0]?.['id'], job['id']);
  const all = await call('GET', `/api/v1/tasks?mac=${A}&active=true`);
  assert.equal((all.body['tasks'] as Json[])[0]?.['jobId'], job['id']);
  const cancelled = await call('POST', `/api/v1/jobs/${String(job['id'])}/cancel`);
  assert.equal(cancelled.body['state'], 'cancelled');
  assert.deepEqual(cancelled.body['counts'], { cancelled: 3 });
  await refused('GET', '/api/v1/jobs/999', undefined, 404, /No job 999/);
});

test('deploy to a group names the image; a missing image creates nothing', async () => {
  await refused('POST', '/api/v1/tasks', { type: 'deploy', group: 'lab12', image: 'none' }, 404, /No image named 'none'/);
  const img = await makeImage(store, 'win11', C);
  assert.equal(img.info.name, 'win11');
  const r = await call('POST', '/api/v1/tasks', { type: 'deploy', group: 'lab12', image: 'win11', table: 'gpt', wake: true });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.deepEqual((r.body['tasks'] as Json[]).map((t) => [t['type'], t['image'], (t['options'] as Json)['table'], t['wake']]), [A, B, C].map(() => ['deploy', 'win11', 'gpt', true]));
  // The wake service wakes the queued members: one magic packet each to every target.
  sent.length = 0;
  await noteRelay(store.db, '10.88.0.1', new Date().toISOString());
  const swept = await wake.sweep();
  assert.equal(swept.woken.length, 3);
  assert.deepEqual(
    sent.map((s) => `${s.mac}>${s.to}`).sort(),
    [A, B, C].flatMap((m) => [`${m}>10.77.1.255:9`, `${m}>10.88.0.255:9`]).sort(),
  );
  await call('POST', `/api/v1/jobs/${String(r.body['id'])}/cancel`);
});

test('POST /api/v1/tasks with macs: one task per listed machine, shown as a job without a group; all or none', async () => {
  await refused('POST', '/api/v1/tasks', { type: 'inventory', macs: [A] }, 400, /body\/macs must NOT have fewer than 2 items/);
  await refused('POST', '/api/v1/tasks', { type: 'inventory', macs: [A, 7] }, 400, /body\/macs\/1 must be string/);
  await refused('POST', '/api/v1/tasks', { type: 'inventory', macs: [A, B, '52-54-00-CC-00-01'] }, 400, /"macs" names 52:54:00:cc:00:01 more than once: each machine gets one task/);
  await refused('POST', '/api/v1/tasks', { type: 'inventory', mac: A, macs: [B, C] }, 400, /got "mac" and "macs"/);
  await refused('POST', '/api/v1/tasks', { type: 'capture', macs: [A, B], image: 'x' }, 400, /A capture takes one machine, not several/);
  await refused('POST', '/api/v1/tasks', { type: 'inventory', macs: [A, '52:54:00:cc:00:77', '52:54:00:cc:00:78'] }, 404, /no host with MAC 52:54:00:cc:00:77, 52:54:00:cc:00:78; add them first/);
  await refused('POST', '/api/v1/tasks', { type: 'inventory', macs: [A, P] }, 409, /host 52:54:00:cc:00:09 is pending approval/);
  const busy = await call('POST', '/api/v1/tasks', { type: 'inventory', mac: C });
  await refused('POST', '/api/v1/tasks', { type: 'inventory', macs: [A, C] }, 409, new RegExp(`1 of the 2 machines named already has an active task: 52:54:00:cc:00:03 \\(task #${String(busy.body['id'])}, inventory, queued\\); cancel it or leave it out`));
  const jobsBefore = ((await call('GET', '/api/v1/jobs')).body['jobs'] as Json[]).length;
  await call('POST', `/api/v1/tasks/${String(busy.body['id'])}/cancel`);
  const r = await call('POST', '/api/v1/tasks', { type: 'inventory', macs: ['52-54-00-CC-00-03', A], wake: true });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body['group'], null);
  assert.equal(r.body['total'], 2);
  assert.deepEqual(r.body['request'], { type: 'inventory', macs: [C, A], wake: true });
  assert.deepEqual((r.body['tasks'] as Json[]).map((t) => [t['mac'], t['state'], t['jobId'], t['wake']]), [A, C].map((m) => [m, 'queued', r.body['id'], true]));
  const list = (await call('GET', '/api/v1/jobs')).body['jobs'] as Json[];
  assert.equal(list.length, jobsBefore + 1);
  assert.deepEqual([list[0]?.['id'], list[0]?.['group'], list[0]?.['total']], [r.body['id'], null, 2]);
  const shown = await call('GET', `/api/v1/jobs/${String(r.body['id'])}`);
  assert.deepEqual([shown.body['group'], (shown.body['request'] as Json)['macs']], [null, [C, A]]);
  assert.deepEqual((await call('POST', `/api/v1/jobs/${String(r.body['id'])}/cancel`)).body['counts'], { cancelled: 2 });
});

test('a multicast deploy to a list of MACs: one session for the listed machines, shown without a group; refused for one MAC', async () => {
  await refused('POST', '/api/v1/tasks', { type: 'deploy', mac: A, image: 'win11', multicast: true }, 400, /^A multicast session sends one image to several machines at once: a deploy to one machine goes by unicast/);
  assert.equal(MULTICAST_ONE_REFUSED.includes('drop multicast'), true);
  const r = await call('POST', '/api/v1/tasks', { type: 'deploy', macs: [B, A], image: 'win11', multicast: { maxWaitSeconds: 120, minReceivers: 1 } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body['group'], null);
  const sessionId = r.body['multicastSessionId'];
  assert.equal(typeof sessionId, 'number');
  const session = await call('GET', `/api/v1/multicast/${String(sessionId)}`);
  assert.equal(session.status, 200, JSON.stringify(session.body));
  assert.deepEqual([session.body['jobId'], session.body['state'], session.body['expected'], session.body['minReceivers'], session.body['maxWaitSeconds']], [r.body['id'], 'waiting', 2, 1, 120]);
  assert.deepEqual((session.body['members'] as Json[]).map((m) => [m['mac'], m['taskState']]), [[A, 'queued'], [B, 'queued']]);
  const sessions = (await call('GET', '/api/v1/multicast?active=true')).body['sessions'] as Json[];
  assert.deepEqual(sessions.map((x) => x['jobId']), [r.body['id']]);
  const all = await call('POST', '/api/v1/tasks', { type: 'deploy', macs: [C, '52:54:00:cc:00:02'], image: 'win11', multicast: true });
  assert.equal(all.status, 409, 'B is busy with the first session');
  assert.equal((await call('POST', `/api/v1/multicast/${String(sessionId)}/cancel`)).body['state'], 'cancelled');
  await call('POST', `/api/v1/jobs/${String(r.body['id'])}/cancel`);
});

test('--at: a task waits as scheduled (the boot decision ignores it); bad and past times are refused saying what was expected', async () => {
  await refused('POST', '/api/v1/tasks', { type: 'inventory', mac: A, at: 'tonight' }, 400, /Invalid time "tonight": expected HH:MM \(the next such time\), or an ISO 8601 date and time/);
  await refused('POST', '/api/v1/tasks', { type: 'inventory', mac: A, at: '2020-01-01T00:00:00Z' }, 400, /is in the past .*expected a time from now on/);
  const at = new Date(Date.now() + 3600_000).toISOString();
  const r = await call('POST', '/api/v1/tasks', { type: 'inventory', mac: A, at });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.deepEqual([r.body['state'], r.body['startAt']], ['scheduled', at]);
  await refused('POST', '/api/v1/tasks', { type: 'inventory', mac: A }, 409, /already has an active task \(#\d+, inventory, scheduled\)/);
  // PXE boot now: the host boots its entry as if there were no task.
  const boot = await app.inject({ method: 'GET', url: `/boot/decide?mac=${A}` });
  assert.match(boot.body, /vmlinuz/);
  assert.doesNotMatch(boot.body, /fleetboot\.token=/);
  const job = await call('POST', '/api/v1/tasks', { type: 'inventory', group: 'lab12', at: '23:59' });
  assert.equal(job.status, 409, 'A is busy with its scheduled task');
  await call('POST', `/api/v1/tasks/${String(r.body['id'])}/cancel`);
});

test('POST /api/v1/wake wakes MACs or a group; GET /api/v1/wake/targets says where packets go', async () => {
  sent.length = 0;
  const r = await call('POST', '/api/v1/wake', { group: 'lab12' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.deepEqual(r.body['macs'], [A, B, C]);
  assert.equal(r.body['sent'], 6);
  assert.deepEqual(sent.map((s) => s.mac).sort(), [A, A, B, B, C, C]);
  const one = await call('POST', '/api/v1/wake', { macs: ['52-54-00-DD-00-01'] });
  assert.deepEqual(one.body['macs'], ['52:54:00:dd:00:01']);
  await refused('POST', '/api/v1/wake', {}, 400, /"macs" \(a list of MACs\) or "group" \(a host group\), not neither/);
  await refused('POST', '/api/v1/wake', { macs: ['nope-nope-no'] }, 400, /Invalid MAC address "nope-nope-no"/);
  const t = await call('GET', '/api/v1/wake/targets');
  assert.deepEqual((t.body['targets'] as Json[]).map((x) => x['address']), ['10.77.1.255', '10.88.0.255']);
  assert.deepEqual((t.body['relays'] as Json[]).map((x) => x['giaddr']), ['10.88.0.1']);
});

test('schedules: a validated cron and request, shown with its next times, by id or name; a group in use stays', async () => {
  await refused('POST', '/api/v1/schedules', { cron: 'every night', request: { type: 'inventory', group: 'lab12' } }, 400, /Invalid cron expression "every night" .*expected a cron expression of 5 fields/);
  await refused('POST', '/api/v1/schedules', { cron: '0 22 * * *', request: { type: 'inventory', group: 'lab12', at: '22:00' } }, 400, /body\/request must NOT have additional properties/);
  await refused('POST', '/api/v1/schedules', { cron: '0 22 * * *', request: { type: 'capture', group: 'lab12', image: 'x' } }, 400, /A capture takes one machine/);
  await refused('POST', '/api/v1/schedules', { cron: '0 22 * * *', name: '12', request: { type: 'inventory', group: 'lab12' } }, 400, /must not be a number/);
  await refused('POST', '/api/v1/schedules', { cron: '0 22 * * *', request: { type: 'inventory', macs: [A, '52:54:00:cc:00:77'] } }, 404, /No host with MAC 52:54:00:cc:00:77/);
  const pair = await call('POST', '/api/v1/schedules', { cron: '0 23 * * *', request: { type: 'inventory', macs: [B, A] } });
  assert.equal(pair.status, 201, JSON.stringify(pair.body));
  assert.deepEqual(pair.body['request'], { type: 'inventory', macs: [B, A] });
  assert.equal((await call('DELETE', `/api/v1/schedules/${String(pair.body['id'])}`)).status, 200);
  const r = await call('POST', '/api/v1/schedules', { cron: '0 22 * * 1-5', name: 'nightly', request: { type: 'inventory', group: 'lab12', wake: true } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.deepEqual(r.body['request'], { type: 'inventory', group: 'lab12', wake: true });
  const upcoming = r.body['upcoming'] as string[];
  assert.equal(upcoming.length, 3);
  assert.ok(upcoming.every((u) => new Date(u).getHours() === 22 && new Date(u).getMinutes() === 0 && [1, 2, 3, 4, 5].includes(new Date(u).getDay())));
  assert.equal((await call('GET', '/api/v1/schedules/nightly')).body['id'], r.body['id']);
  assert.equal((await call('GET', `/api/v1/schedules/${String(r.body['id'])}`)).body['name'], 'nightly');
  assert.equal(((await call('GET', '/api/v1/schedules')).body['schedules'] as Json[]).length, 1);
  await refused('DELETE', '/api/v1/groups/lab12', undefined, 409, /Group 'lab12' is used by schedule #\d+ \(nightly\): remove it first/);
  assert.equal((await call('DELETE', '/api/v1/schedules/nightly')).status, 200);
  await refused('GET', '/api/v1/schedules/nightly', undefined, 404, /No schedule named 'nightly'/);
});
