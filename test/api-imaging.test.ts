/**
 * The imaging REST API (/api/v1/images, /api/v1/tasks, GET /api/v1/hosts/:mac
 * with inventory and active task) through app.inject, on a real SQLite file
 * and image store in a temporary data directory.
 */
import { openTestStore } from '../src/store/temp-store.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../src/config/config.js';
import { silentLogger } from '../src/lib/log.js';
import { buildApp } from '../src/http/app.js';
import { watchAnswers, type AnswerWatch } from './api-answers.js';
import { apiCaller, type Json } from './api-helpers.js';
import { createHost, ensureApiToken, finishTask, openStore, putInventory, type Store } from '../src/store/index.js';
import { makeImage, sampleInventory } from './imaging-helpers.js';

let dir: string;
let store: Store;
let app: FastifyInstance;
let watch: AnswerWatch;
let token: string;
const auth = () => ({ authorization: `Bearer ${token}` });
const A = '52:54:00:aa:00:01';
const B = '52:54:00:aa:00:02';
const C = '52:54:00:aa:00:03';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetboot-api-imaging-'));
  const config = loadConfig({ overrides: { dataDir: dir, serverIp: '127.0.0.1', http: { port: 8123 } } });
  store = await openTestStore(config.dataDir);
  token = ensureApiToken(config.dataDir);
  app = buildApp({ store, config, serverIp: '127.0.0.1', logger: silentLogger, token });
  watch = watchAnswers(app);
  await app.ready();
  await createHost(store.db, { mac: A, name: 'ref-pc' });
  await createHost(store.db, { mac: B });
  await createHost(store.db, { mac: C });
});

after(async () => {
  assert.deepEqual(watch.lost, [], 'answers lost these properties to their response schemas: declare them (src/http/schemas/), or add them to HIDDEN (test/api-answers.ts)');
  await app.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const call = apiCaller(() => app, () => token);

test('the imaging routes refuse requests without the token (401)', async () => {
  const routes: Array<[string, string]> = [
    ['GET', '/api/v1/images'],
    ['GET', '/api/v1/images/x'],
    ['DELETE', '/api/v1/images/x'],
    ['GET', '/api/v1/tasks'],
    ['GET', '/api/v1/tasks/1'],
    ['POST', '/api/v1/tasks'],
    ['POST', '/api/v1/tasks/1/cancel'],
    ['POST', '/api/v1/tasks/1/retry'],
  ];
  for (const [method, url] of routes) {
    for (const headers of [{}, { authorization: 'Bearer wrong-token-wrong-token' }]) {
      const r = await app.inject({ method: method as 'GET', url, headers, ...(method === 'POST' && url.endsWith('tasks') ? { payload: { type: 'inventory', mac: A } } : {}) });
      assert.equal(r.statusCode, 401, `${method} ${url}`);
      assert.equal(r.json().error, 'UNAUTHORIZED');
    }
  }
  // Nothing was queued by the refused POSTs.
  assert.deepEqual((await call('GET', '/api/v1/tasks')).body, { tasks: [] });
});

test('POST /api/v1/tasks validates the body: 400 with a message saying what is wrong', async () => {
  const cases: Array<[unknown, RegExp]> = [
    [{}, /required property 'type'/],
    // mac, macs (a list of MACs) or group (a host group): one of them.
    [{ type: 'inventory' }, /names one machine \("mac"\), a list of machines \("macs"\) or a host group \("group"\): got none of them/],
    [{ type: 'register', mac: A }, /body\/type must be equal to one of the allowed values/],
    [{ type: 'wipe', mac: A }, /body\/type/],
    [{ type: 'inventory', mac: A, extra: 1 }, /additional properties/],
    [{ type: 'inventory', mac: 42 }, /body\/mac must be string/],
    [{ type: 'inventory', mac: 'not-a-mac-address' }, /Invalid MAC address "not-a-mac-address"/],
    [{ type: 'capture', mac: A }, /A capture task needs an image name/],
    [{ type: 'deploy', mac: A, image: null }, /A deploy task needs an image name/],
    [{ type: 'capture', mac: A, image: 'bad name' }, /body\/image must match pattern/],
    [{ type: 'capture', mac: A, image: '../etc' }, /body\/image must match pattern/],
    [{ type: 'capture', mac: A, image: 7 }, /body\/image must be string,null/],
    [{ type: 'inventory', mac: A, image: 'img' }, /An inventory task takes no image/],
    [{ type: 'inventory', mac: A, disk: '/dev/sda' }, /An inventory task takes no disk/],
    [{ type: 'capture', mac: A, image: 'img', disk: 'sda' }, /body\/disk must match pattern/],
    [{ type: 'capture', mac: A, image: 'img', disk: '/dev/sda; reboot' }, /body\/disk must match pattern/],
    [{ type: 'capture', mac: A, image: 'img', disk: '/dev/../etc/passwd' }, /body\/disk must match pattern/],
    [{ type: 'capture', mac: A, image: 'img', table: 'gpt' }, /"table" applies to deploy tasks only, not to capture/],
    [{ type: 'deploy', mac: A, image: 'img', table: 'zfs' }, /body\/table must be equal to one of the allowed values/],
  ];
  for (const [payload, msg] of cases) {
    const r = await call('POST', '/api/v1/tasks', payload as object);
    assert.equal(r.status, 400, `${JSON.stringify(payload)} -> ${JSON.stringify(r.body)}`);
    assert.equal(r.body['error'], 'INVALID_INPUT');
    assert.match(String(r.body['message']), msg, JSON.stringify(payload));
  }
  const notJson = await app.inject({ method: 'POST', url: '/api/v1/tasks', headers: { ...auth(), 'content-type': 'application/json' }, payload: '{"type":' });
  assert.equal(notJson.statusCode, 400);
  assert.deepEqual((await call('GET', '/api/v1/tasks')).body, { tasks: [] });
});

test('task ids and list filters are validated (400), unknown ids and hosts are 404', async () => {
  for (const url of ['/api/v1/tasks/abc', '/api/v1/tasks/0', '/api/v1/tasks/-1', '/api/v1/tasks/1.5', '/api/v1/tasks/99999999999999999']) {
    const r = await call('GET', url);
    assert.equal(r.status, 400, url);
    assert.match(String(r.body['message']), /params\/id must match pattern/, url);
  }
  for (const [url, msg] of [
    ['/api/v1/tasks?active=yes', /querystring\/active must be equal to one of the allowed values/],
    ['/api/v1/tasks?limit=0', /querystring\/limit must match pattern/],
    ['/api/v1/tasks?limit=ten', /querystring\/limit must match pattern/],
    ['/api/v1/tasks?mac=zz:zz:zz:zz:zz:zz', /Invalid MAC address "zz:zz:zz:zz:zz:zz"/],
    ['/api/v1/tasks?state=finished', /querystring\/state must be equal to one of the allowed values/],
    ['/api/v1/tasks?colour=red', /additional properties/],
  ] as const) {
    const r = await call('GET', url);
    assert.equal(r.status, 400, url);
    assert.match(String(r.body['message']), msg, url);
  }
  for (const [method, url] of [
    ['GET', '/api/v1/tasks/424242'],
    ['POST', '/api/v1/tasks/424242/cancel'],
    ['POST', '/api/v1/tasks/424242/retry'],
  ] as const) {
    const r = await call(method, url);
    assert.equal(r.status, 404, url);
    assert.equal(r.body['error'], 'NOT_FOUND');
    assert.match(String(r.body['message']), /No task #?424242/);
  }
  const noHost = await call('POST', '/api/v1/tasks', { type: 'inventory', mac: '52:54:00:ff:ff:ff' });
  assert.equal(noHost.status, 404);
  assert.match(String(noHost.body['message']), /No host with MAC 52:54:00:ff:ff:ff/);
  const noImage = await call('POST', '/api/v1/tasks', { type: 'deploy', mac: A, image: 'never-captured' });
  assert.equal(noImage.status, 404);
  assert.match(String(noImage.body['message']), /No image named 'never-captured'/);
});

test('tasks: create, list with filters, show, one active task per MAC (409), cancel, retry', async () => {
  const created = await call('POST', '/api/v1/tasks', { type: 'inventory', mac: '52-54-00-AA-00-02' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const t = created.body;
  assert.equal(t['type'], 'inventory');
  assert.equal(t['mac'], B);
  assert.equal(t['state'], 'queued');
  assert.equal(t['image'], null);
  assert.equal(t['bytesDone'], 0);
  assert.equal(t['retryOf'], null);
  assert.deepEqual(t['options'], { disk: null, table: 'keep' });
  const id = t['id'] as number;

  const capture = await call('POST', '/api/v1/tasks', { type: 'capture', mac: A, image: 'golden', disk: '/dev/vda' });
  assert.equal(capture.status, 201);
  assert.equal(capture.body['hostName'], 'ref-pc');
  assert.deepEqual(capture.body['options'], { disk: '/dev/vda', table: 'keep' });
  const captureId = capture.body['id'] as number;

  // One active task per MAC.
  const again = await call('POST', '/api/v1/tasks', { type: 'capture', mac: B, image: 'other' });
  assert.equal(again.status, 409);
  assert.equal(again.body['error'], 'CONFLICT');
  assert.match(String(again.body['message']), new RegExp(`already has an active task \\(#${id}`));

  const show = await call('GET', `/api/v1/tasks/${id}`);
  assert.equal(show.status, 200);
  assert.deepEqual(show.body, t);

  const all = await call('GET', '/api/v1/tasks');
  assert.deepEqual(
    (all.body['tasks'] as Json[]).map((x) => x['id']),
    [captureId, id],
    'newest first',
  );
  const byMac = await call('GET', `/api/v1/tasks?mac=${encodeURIComponent('5254.00aa.0001')}`);
  assert.deepEqual((byMac.body['tasks'] as Json[]).map((x) => x['id']), [captureId]);
  const limited = await call('GET', '/api/v1/tasks?limit=1');
  assert.deepEqual((limited.body['tasks'] as Json[]).map((x) => x['id']), [captureId]);

  // The host shows its active task.
  const hostB = await call('GET', `/api/v1/hosts/${B}`);
  assert.equal((hostB.body['activeTask'] as Json)['id'], id);

  // A queued task cannot be retried; it can be cancelled, once.
  const earlyRetry = await call('POST', `/api/v1/tasks/${id}/retry`);
  assert.equal(earlyRetry.status, 409);
  assert.match(String(earlyRetry.body['message']), /only a failed or cancelled task can be retried/);
  const cancelled = await call('POST', `/api/v1/tasks/${id}/cancel`);
  assert.equal(cancelled.status, 200);
  assert.equal(cancelled.body['state'], 'cancelled');
  assert.equal(typeof cancelled.body['finishedAt'], 'string');
  const twice = await call('POST', `/api/v1/tasks/${id}/cancel`);
  assert.equal(twice.status, 409);
  assert.match(String(twice.body['message']), /already cancelled/);

  const active = await call('GET', '/api/v1/tasks?active=true');
  assert.deepEqual((active.body['tasks'] as Json[]).map((x) => x['id']), [captureId]);
  const finished = await call('GET', '/api/v1/tasks?active=false');
  assert.deepEqual((finished.body['tasks'] as Json[]).map((x) => x['id']), [id]);
  assert.equal((await call('GET', `/api/v1/hosts/${B}`)).body['activeTask'], null);

  const retried = await call('POST', `/api/v1/tasks/${id}/retry`);
  assert.equal(retried.status, 201);
  assert.equal(retried.body['retryOf'], id);
  assert.equal(retried.body['state'], 'queued');
  assert.equal(retried.body['type'], 'inventory');
  assert.notEqual(retried.body['id'], id);
  // A second retry of the same task would make a second active task for B.
  const retried2 = await call('POST', `/api/v1/tasks/${id}/retry`);
  assert.equal(retried2.status, 409);

  // Clean up for the next tests.
  await call('POST', `/api/v1/tasks/${retried.body['id'] as number}/cancel`);
  await call('POST', `/api/v1/tasks/${captureId}/cancel`);
});

test('images: list, show (info + manifest), rm refused while a deploy uses it (409), then removed', async () => {
  assert.deepEqual((await call('GET', '/api/v1/images')).body, { images: [] });
  const { info, taskId, manifestSha256 } = await makeImage(store, 'golden', A);
  assert.equal(info.name, 'golden');

  const list = await call('GET', '/api/v1/images');
  assert.equal(list.status, 200);
  const images = list.body['images'] as Json[];
  assert.equal(images.length, 1);
  assert.deepEqual(images[0], {
    name: 'golden',
    createdAt: info.createdAt,
    sizeBytes: 300_000 + 'a small fat partition stream'.length,
    diskBytes: 2 * 1024 ** 3,
    tableType: 'dos',
    partitions: 2,
    sourceMac: A,
    taskId,
    revision: 1,
    revisionCount: 1,
    pending: 0,
    manifestSha256,
    protected: false,
    nodes: 'all',
  });

  const show = await call('GET', '/api/v1/images/golden');
  assert.equal(show.status, 200);
  assert.equal(show.body['name'], 'golden');
  const manifest = show.body['manifest'] as Json;
  assert.equal(manifest['format'], 'fleetboot-image');
  assert.equal(manifest['name'], 'golden');
  assert.deepEqual(manifest['source'], { mac: A, taskId, disk: '/dev/sda', diskModel: 'QEMU HARDDISK' });
  const parts = manifest['partitions'] as Json[];
  assert.deepEqual(
    parts.map((p) => [p['number'], p['filesystem'], p['tool'], p['file'], p['streamBytes']]),
    [
      [1, 'ext4', 'partclone.ext4', 'p1.pcl.zst', 300_000],
      [2, null, 'raw', 'p2.raw.zst', 28],
    ],
  );
  assert.match(String(parts[0]?.['sha256']), /^[0-9a-f]{64}$/);

  for (const url of ['/api/v1/images/nope', '/api/v1/images/bad%20name']) {
    const r = await call('GET', url);
    assert.equal(r.status, url.endsWith('nope') ? 404 : 400, url);
  }
  assert.match(String((await call('GET', '/api/v1/images/nope')).body['message']), /No image named 'nope'/);

  // A deploy of it is accepted, and holds it.
  const deploy = await call('POST', '/api/v1/tasks', { type: 'deploy', mac: C, image: 'golden', table: 'gpt', disk: '/dev/nvme0n1' });
  assert.equal(deploy.status, 201, JSON.stringify(deploy.body));
  assert.deepEqual(deploy.body['options'], { disk: '/dev/nvme0n1', table: 'gpt' });
  const busy = await call('DELETE', '/api/v1/images/golden');
  assert.equal(busy.status, 409);
  assert.equal(busy.body['error'], 'CONFLICT');
  assert.match(String(busy.body['message']), new RegExp(`in use by task #${deploy.body['id'] as number}`));
  await finishTask(store.db, deploy.body['id'] as number, 'done');

  const imagesDir = join(dir, 'images');
  const dirsBefore = readdirSync(imagesDir).filter((n) => n !== '.incoming');
  assert.equal(dirsBefore.length, 1);
  const del = await call('DELETE', '/api/v1/images/golden');
  assert.equal(del.status, 200);
  assert.deepEqual(del.body, { deleted: 'golden' });
  assert.equal(existsSync(join(imagesDir, dirsBefore[0] as string)), false, 'the image directory is removed');
  assert.equal((await call('GET', '/api/v1/images/golden')).status, 404);
  const again = await call('DELETE', '/api/v1/images/golden');
  assert.equal(again.status, 404);
  assert.match(String(again.body['message']), /No image named 'golden'/);
});

test('GET /api/v1/hosts/:mac adds inventory and activeTask, keeping the host fields', async () => {
  const before = await call('GET', `/api/v1/hosts/${A}`);
  assert.equal(before.status, 200);
  assert.equal(before.body['mac'], A);
  assert.equal(before.body['name'], 'ref-pc');
  for (const k of ['entry', 'ip', 'createdAt', 'updatedAt']) assert.ok(k in before.body, k);
  assert.equal(before.body['inventory'], null);
  assert.equal(before.body['activeTask'], null);

  const inv = sampleInventory(A);
  await putInventory(store.db, A, inv);
  const q = await call('POST', '/api/v1/tasks', { type: 'inventory', mac: A });
  assert.equal(q.status, 201);
  const after = await call('GET', `/api/v1/hosts/${A.toUpperCase().replace(/:/g, '-')}`);
  assert.equal(after.status, 200);
  assert.deepEqual(after.body['inventory'], inv);
  const at = after.body['activeTask'] as Json;
  assert.equal(at['id'], q.body['id']);
  assert.equal(at['state'], 'queued');
  assert.equal(at['hostName'], 'ref-pc');
  await call('POST', `/api/v1/tasks/${q.body['id'] as number}/cancel`);

  // The host list has no inventory (only the host fields and its groups).
  const list = await call('GET', '/api/v1/hosts');
  assert.deepEqual(Object.keys((list.body['hosts'] as Json[])[0] ?? {}).sort(), ['createdAt', 'entry', 'groups', 'ip', 'mac', 'name', 'status', 'updatedAt']);
  assert.equal((await call('GET', '/api/v1/hosts/52:54:00:ff:ff:fe')).status, 404);
});

test('PATCH /api/v1/images/:name protects an image against capture: captures refused (409), deploys go on; refused while a capture is active', async () => {
  await makeImage(store, 'locked', B);
  const url = '/api/v1/images/locked';
  assert.equal((await call('PATCH', url, {})).status, 400, 'protected is required');
  assert.equal((await call('PATCH', url, { protected: 'yes' })).status, 400);
  assert.equal((await call('PATCH', '/api/v1/images/nope', { protected: true })).status, 404);
  // The nodes it is replicated to: 'all' or registered node names and group:NAME (src/store/images.ts setImageNodes).
  assert.equal((await call('PATCH', url, { nodes: [] })).status, 400);
  const unknownNode = await call('PATCH', url, { nodes: ['node-z'] });
  assert.equal(unknownNode.status, 400);
  assert.match(String(unknownNode.body['message']), /no node is registered as 'node-z' \(known nodes: /);
  for (const malformed of ['group:', 'group:a b', 'Group:lab', 'a:b']) {
    const r = await call('PATCH', url, { nodes: [malformed] });
    assert.equal(r.status, 400, malformed);
    assert.match(String(r.body['message']), /must match pattern/, malformed);
  }
  const unknownGroup = await call('PATCH', url, { nodes: ['group:lab'] });
  assert.equal(unknownGroup.status, 400);
  assert.match(String(unknownGroup.body['message']), /^Image 'locked': no registered node is in group 'lab' \(known groups: none; a node's groups are its node\.groups/);
  assert.equal((await call('PATCH', url, { nodes: 'all' })).body['nodes'], 'all');

  // An active capture into it: protecting is refused, naming the task.
  const cap = await call('POST', '/api/v1/tasks', { type: 'capture', mac: B, image: 'locked' });
  assert.equal(cap.status, 201, JSON.stringify(cap.body));
  const busy = await call('PATCH', url, { protected: true });
  assert.equal(busy.status, 409);
  assert.match(String(busy.body['message']), new RegExp(`being captured by task #${cap.body['id'] as number}`));
  await call('POST', `/api/v1/tasks/${cap.body['id'] as number}/cancel`);

  const on = await call('PATCH', url, { protected: true });
  assert.equal(on.status, 200, JSON.stringify(on.body));
  assert.equal(on.body['name'], 'locked');
  assert.equal(on.body['protected'], true);
  assert.equal((await call('GET', url)).body['protected'], true);
  assert.equal(((await call('GET', '/api/v1/images')).body['images'] as Json[]).find((i) => i['name'] === 'locked')?.['protected'], true);

  const refused = await call('POST', '/api/v1/tasks', { type: 'capture', mac: B, image: 'locked' });
  assert.equal(refused.status, 409);
  assert.match(String(refused.body['message']), /Image 'locked' is protected against capture/);
  // A capture into another (new) name, and a deploy of the protected image, are accepted.
  const other = await call('POST', '/api/v1/tasks', { type: 'capture', mac: B, image: 'locked-copy' });
  assert.equal(other.status, 201, JSON.stringify(other.body));
  await call('POST', `/api/v1/tasks/${other.body['id'] as number}/cancel`);
  const deploy = await call('POST', '/api/v1/tasks', { type: 'deploy', mac: B, image: 'locked' });
  assert.equal(deploy.status, 201, JSON.stringify(deploy.body));
  await call('POST', `/api/v1/tasks/${deploy.body['id'] as number}/cancel`);

  const off = await call('PATCH', url, { protected: false });
  assert.equal(off.status, 200);
  assert.equal(off.body['protected'], false);
  const again = await call('POST', '/api/v1/tasks', { type: 'capture', mac: B, image: 'locked' });
  assert.equal(again.status, 201, JSON.stringify(again.body));
  await call('POST', `/api/v1/tasks/${again.body['id'] as number}/cancel`);
});
