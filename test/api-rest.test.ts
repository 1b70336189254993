/**
 * The REST API through app.inject, on a real SQLite file in a temporary data directory.
 */
import { openTestStore } from '../src/store/temp-store.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../src/config/config.js';
import { silentLogger } from '../src/lib/log.js';
import { buildApp } from '../src/http/app.js';
import { watchAnswers, type AnswerWatch } from './api-answers.js';
import { ensureApiToken, openStore, type Store } from '../src/store/index.js';

let dir: string;
let store: Store;
let app: FastifyInstance;
let watch: AnswerWatch;
let token: string;
const auth = () => ({ authorization: `Bearer ${token}` });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetboot-api-'));
  const config = loadConfig({ overrides: { dataDir: dir, serverIp: '127.0.0.1', http: { port: 8123 } } });
  store = await openTestStore(config.dataDir);
  token = ensureApiToken(config.dataDir);
  app = buildApp({ store, config, serverIp: '127.0.0.1', logger: silentLogger, token });
  watch = watchAnswers(app);
  await app.ready();
});

after(async () => {
  assert.deepEqual(watch.lost, [], 'answers lost these properties to their response schemas: declare them (src/http/schemas/), or add them to HIDDEN (test/api-answers.ts)');
  await app.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('ensureApiToken() writes a 64-hex token with mode 0600 and reuses it', () => {
  assert.match(token, /^[0-9a-f]{64}$/);
  assert.equal(statSync(join(dir, 'api-token')).mode & 0o777, 0o600);
  assert.equal(ensureApiToken(dir), token);
  assert.equal(readFileSync(join(dir, 'api-token'), 'utf8').trim(), token);
});

test('/api/v1 refuses requests without the right token (401) and accepts the token', async () => {
  for (const headers of [{}, { authorization: 'Bearer nope' }, { authorization: `Basic ${token}` }, { authorization: `Bearer ${token}x` }, { authorization: `Bearer ${token.slice(0, 63)}` }]) {
    const r = await app.inject({ method: 'GET', url: '/api/v1/hosts', headers });
    assert.equal(r.statusCode, 401, JSON.stringify(headers));
    assert.equal(r.json().error, 'UNAUTHORIZED');
  }
  const r = await app.inject({ method: 'POST', url: '/api/v1/hosts', payload: { mac: '52:54:00:00:00:01' } });
  assert.equal(r.statusCode, 401);
  const ok = await app.inject({ method: 'GET', url: '/api/v1/hosts', headers: auth() });
  assert.equal(ok.statusCode, 200);
  assert.deepEqual(ok.json(), { hosts: [], total: 0, offset: 0, limit: null });
});

test('GET /api/v1/status reports version, server address and ports', async () => {
  const r = await app.inject({ method: 'GET', url: '/api/v1/status', headers: auth() });
  assert.equal(r.statusCode, 200);
  const s = r.json();
  assert.equal(s.name, 'fleetboot');
  assert.match(s.version, /^\d+\.\d+\.\d+/);
  assert.equal(s.serverIp, '127.0.0.1');
  assert.equal(s.baseUrl, 'http://127.0.0.1:8123');
  assert.equal(s.http.port, 8123);
  assert.equal(typeof s.counts.hosts, 'number');
});

test('POST /api/v1/entries validates the body: 400 with a message', async () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ kernel: 'http://x/k' }, /name/],
    [{ name: 'bad name', kernel: 'http://x/k' }, /name/],
    [{ name: '-x', kernel: 'http://x/k' }, /name/],
    [{ name: 'ok', kernel: 'http://x/k', extra: 1 }, /additional/],
    [{ name: 'ok', kernel: 'http://x/k', cmdline: 'quiet\nshell' }, /cmdline/],
    [{ name: 'ok', kernel: 'http://x/k', cmdline: 'a || shell' }, /separator/],
    [{ name: 'ok', kernel: 'http://x/k', cmdline: 'a ${ip}' }, /expand/],
    [{ name: 'ok', kernel: 'http://x/${ip}' }, /not allowed/],
    [{ name: 'ok', kernel: 'ftp://x/k' }, /neither/],
    [{ name: 'ok', kernel: '../../etc/passwd' }, /neither/],
    [{ name: 'ok', kernel: 'vmlinuz' }, /not been uploaded/],
    [{ name: 'ok', kernel: 'http://x/k', initrds: 'x' }, /initrds/],
    [{ name: 'ok', kernel: 42 }, /kernel/],
  ];
  for (const [payload, msg] of cases) {
    const r = await app.inject({ method: 'POST', url: '/api/v1/entries', headers: auth(), payload: payload as object });
    assert.equal(r.statusCode, 400, JSON.stringify(payload) + ' ' + r.body);
    assert.equal(r.json().error, 'INVALID_INPUT');
    assert.match(r.json().message, msg, JSON.stringify(payload));
  }
  const bad = await app.inject({ method: 'POST', url: '/api/v1/entries', headers: { ...auth(), 'content-type': 'application/json' }, payload: '{not json' });
  assert.equal(bad.statusCode, 400);
});

test('entries: upload files, add, list, get, refuse duplicates and uploads into existing entries', async () => {
  const kernel = Buffer.alloc(100_000, 7);
  const up = await app.inject({
    method: 'PUT',
    url: '/api/v1/entries/deb/files/vmlinuz',
    headers: { ...auth(), 'content-type': 'application/octet-stream' },
    payload: kernel,
  });
  assert.equal(up.statusCode, 201, up.body);
  assert.equal(up.json().size, kernel.length);
  assert.match(up.json().sha256, /^[0-9a-f]{64}$/);
  const up2 = await app.inject({
    method: 'PUT',
    url: '/api/v1/entries/deb/files/initrd.gz',
    headers: { ...auth(), 'content-type': 'application/octet-stream' },
    payload: Buffer.from('initrd'),
  });
  assert.equal(up2.statusCode, 201);
  const badFile = await app.inject({ method: 'PUT', url: '/api/v1/entries/deb/files/..%2f..%2fx', headers: { ...auth(), 'content-type': 'application/octet-stream' }, payload: 'x' });
  assert.equal(badFile.statusCode, 400);

  const add = await app.inject({
    method: 'POST',
    url: '/api/v1/entries',
    headers: auth(),
    payload: { name: 'deb', kernel: 'vmlinuz', initrds: ['initrd.gz', 'https://cdn.example/fw.cpio'], cmdline: 'console=ttyS0 quiet' },
  });
  assert.equal(add.statusCode, 201, add.body);
  assert.deepEqual(add.json().initrds, ['initrd.gz', 'https://cdn.example/fw.cpio']);

  const dup = await app.inject({ method: 'POST', url: '/api/v1/entries', headers: auth(), payload: { name: 'deb', kernel: 'http://x/k' } });
  assert.equal(dup.statusCode, 409);
  const late = await app.inject({ method: 'PUT', url: '/api/v1/entries/deb/files/vmlinuz', headers: { ...auth(), 'content-type': 'application/octet-stream' }, payload: 'evil' });
  assert.equal(late.statusCode, 409);

  const list = await app.inject({ method: 'GET', url: '/api/v1/entries', headers: auth() });
  assert.deepEqual(
    list.json().entries.map((e: { name: string }) => e.name),
    ['deb'],
  );
  const one = await app.inject({ method: 'GET', url: '/api/v1/entries/deb', headers: auth() });
  assert.equal(one.json().cmdline, 'console=ttyS0 quiet');
  const missing = await app.inject({ method: 'GET', url: '/api/v1/entries/nope', headers: auth() });
  assert.equal(missing.statusCode, 404);
  assert.match(missing.json().message, /nope/);
});

test('hosts: add with any MAC spelling, assign, unassign, rename, delete', async () => {
  await app.inject({ method: 'POST', url: '/api/v1/entries', headers: auth(), payload: { name: 'net', kernel: 'http://boot.example/k' } });
  const add = await app.inject({ method: 'POST', url: '/api/v1/hosts', headers: auth(), payload: { mac: '52-54-00-AA-BB-01', name: 'web1' } });
  assert.equal(add.statusCode, 201, add.body);
  assert.equal(add.json().mac, '52:54:00:aa:bb:01');
  assert.equal(add.json().entry, null);
  const dup = await app.inject({ method: 'POST', url: '/api/v1/hosts', headers: auth(), payload: { mac: '525400aabb01' } });
  assert.equal(dup.statusCode, 409);
  const badMac = await app.inject({ method: 'POST', url: '/api/v1/hosts', headers: auth(), payload: { mac: 'zz:zz:zz:zz:zz:zz' } });
  assert.equal(badMac.statusCode, 400);
  assert.match(badMac.json().message, /MAC/);
  const badEntry = await app.inject({ method: 'POST', url: '/api/v1/hosts', headers: auth(), payload: { mac: '52:54:00:aa:bb:02', entry: 'ghost' } });
  assert.equal(badEntry.statusCode, 400);

  const assign = await app.inject({ method: 'PATCH', url: '/api/v1/hosts/52:54:00:AA:BB:01', headers: auth(), payload: { entry: 'net' } });
  assert.equal(assign.statusCode, 200, assign.body);
  assert.equal(assign.json().entry, 'net');
  assert.equal(assign.json().name, 'web1');
  const rename = await app.inject({ method: 'PATCH', url: '/api/v1/hosts/525400aabb01', headers: auth(), payload: { name: 'web-1b' } });
  assert.equal(rename.json().name, 'web-1b');
  assert.equal(rename.json().entry, 'net');
  const badName = await app.inject({ method: 'PATCH', url: '/api/v1/hosts/525400aabb01', headers: auth(), payload: { name: 'x\nshell' } });
  assert.equal(badName.statusCode, 400);
  const empty = await app.inject({ method: 'PATCH', url: '/api/v1/hosts/52:54:00:aa:bb:01', headers: auth(), payload: {} });
  assert.equal(empty.statusCode, 400);

  // An entry in use cannot be deleted without force.
  const del = await app.inject({ method: 'DELETE', url: '/api/v1/entries/net', headers: auth() });
  assert.equal(del.statusCode, 409);
  assert.match(del.json().message, /52:54:00:aa:bb:01/);

  const unassign = await app.inject({ method: 'PATCH', url: '/api/v1/hosts/52:54:00:aa:bb:01', headers: auth(), payload: { entry: null } });
  assert.equal(unassign.json().entry, null);
  await app.inject({ method: 'PATCH', url: '/api/v1/hosts/52:54:00:aa:bb:01', headers: auth(), payload: { entry: 'net' } });
  const forced = await app.inject({ method: 'DELETE', url: '/api/v1/entries/net?force=true', headers: auth() });
  assert.equal(forced.statusCode, 200);
  assert.deepEqual(forced.json().unassigned, ['52:54:00:aa:bb:01']);
  const after = await app.inject({ method: 'GET', url: '/api/v1/hosts/525400aabb01', headers: auth() });
  assert.equal(after.json().entry, null);

  const gone = await app.inject({ method: 'DELETE', url: '/api/v1/hosts/52:54:00:aa:bb:01', headers: auth() });
  assert.equal(gone.statusCode, 200);
  const again = await app.inject({ method: 'DELETE', url: '/api/v1/hosts/52:54:00:aa:bb:01', headers: auth() });
  assert.equal(again.statusCode, 404);
});

test('PUT /api/v1/entries/:name/files/:file streams uploads larger than the JSON body limit', async () => {
  const big = Buffer.alloc(3 * 1024 * 1024, 0x5a);
  const r = await app.inject({ method: 'PUT', url: '/api/v1/entries/big/files/rootfs.img', headers: { ...auth(), 'content-type': 'application/octet-stream' }, payload: big });
  assert.equal(r.statusCode, 201, r.body);
  assert.equal(r.json().size, big.length);
  assert.equal(statSync(join(dir, 'entries', 'big', 'rootfs.img')).size, big.length);
  const wrongType = await app.inject({ method: 'PUT', url: '/api/v1/entries/big/files/x', headers: { ...auth(), 'content-type': 'text/plain' }, payload: 'x' });
  assert.equal(wrongType.statusCode, 415);
});

test('DELETE /api/v1/entries/:name removes the entry files', async () => {
  await app.inject({ method: 'PUT', url: '/api/v1/entries/tmp/files/k', headers: { ...auth(), 'content-type': 'application/octet-stream' }, payload: 'k' });
  await app.inject({ method: 'POST', url: '/api/v1/entries', headers: auth(), payload: { name: 'tmp', kernel: 'k' } });
  assert.ok(existsSync(join(dir, 'entries', 'tmp', 'k')));
  const r = await app.inject({ method: 'DELETE', url: '/api/v1/entries/tmp', headers: auth() });
  assert.equal(r.statusCode, 200);
  assert.ok(!existsSync(join(dir, 'entries', 'tmp')));
});

test('unknown routes are 404 JSON', async () => {
  const r = await app.inject({ method: 'GET', url: '/api/v1/nothing', headers: auth() });
  assert.equal(r.statusCode, 404);
  assert.equal(r.json().error, 'NOT_FOUND');
});

test('a failing database gives 500 without internals (API) and a message script (boot)', async () => {
  const dir2 = mkdtempSync(join(tmpdir(), 'fleetboot-api-'));
  const config = loadConfig({ overrides: { dataDir: dir2, serverIp: '127.0.0.1' } });
  const broken = await openStore(dir2);
  const app2 = buildApp({ store: broken, config, serverIp: '127.0.0.1', logger: silentLogger, token });
  try {
    await broken.close();
    const r = await app2.inject({ method: 'GET', url: '/api/v1/hosts', headers: auth() });
    assert.equal(r.statusCode, 500);
    assert.deepEqual(r.json(), { error: 'INTERNAL', message: 'Internal server error' });
    const b = await app2.inject({ method: 'GET', url: '/boot/decide?mac=52-54-00-12-34-56' });
    assert.equal(b.statusCode, 200);
    assert.match(b.body, /^#!ipxe\n/);
    assert.match(b.body, /server error/);
  } finally {
    await app2.close();
    rmSync(dir2, { recursive: true, force: true });
  }
});
