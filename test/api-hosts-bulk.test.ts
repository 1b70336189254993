/**
 * The host list's search and paging, the bulk host endpoints (import,
 * entry for many) and the console's files, through app.inject on a real
 * SQLite file.
 */
import { openTestStore } from '../src/store/temp-store.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../src/config/config.js';
import { silentLogger } from '../src/lib/log.js';
import { buildApp } from '../src/http/app.js';
import { watchAnswers, type AnswerWatch } from './api-answers.js';
import { createEntry, ensureApiToken, openStore, type Store } from '../src/store/index.js';
import { apiCaller, type Json } from './api-helpers.js';

let dir: string;
let store: Store;
let app: FastifyInstance;
let watch: AnswerWatch;
let token: string;
const call = apiCaller(() => app, () => token);
const mac = (i: number): string => `52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetboot-bulk-'));
  const config = loadConfig({ overrides: { dataDir: dir, serverIp: '127.0.0.1', http: { port: 8123 } } });
  store = await openTestStore(config.dataDir);
  token = ensureApiToken(config.dataDir);
  mkdirSync(join(store.entriesDir, 'deb'), { recursive: true });
  writeFileSync(join(store.entriesDir, 'deb', 'vmlinuz'), 'kernel');
  await createEntry(store.db, { name: 'deb', kernel: 'vmlinuz', initrds: [], cmdline: '' });
  const web = join(dir, 'web');
  mkdirSync(join(web, 'assets'), { recursive: true });
  writeFileSync(join(web, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(join(web, 'assets', 'main-ABC.js'), 'export {};');
  app = buildApp({ store, config, serverIp: '127.0.0.1', logger: silentLogger, token, consoleDir: web });
  watch = watchAnswers(app);
  await app.ready();
});

after(async () => {
  assert.deepEqual(watch.lost, [], 'answers lost these properties to their response schemas: declare them (src/http/schemas/), or add them to HIDDEN (test/api-answers.ts)');
  await app.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('POST /api/v1/hosts/import adds hosts and groups, all or none; GET /api/v1/hosts searches, sorts and pages them', async () => {
  const hosts = Array.from({ length: 120 }, (_, i) => ({ mac: mac(i), name: `pc-${String(i).padStart(3, '0')}`, ...(i < 3 ? { groups: ['lab'] } : {}) }));
  const bad = await call('POST', '/api/v1/hosts/import', { hosts: [...hosts, { mac: 'nope' }] });
  assert.equal(bad.status, 400);
  assert.match(String(bad.body['message']), /row 121: MAC "nope" is not six hex bytes/);
  assert.equal((await call('POST', '/api/v1/hosts/import', { hosts: [{ mac: mac(1), colour: 'red' }] })).status, 400);
  const ok = await call('POST', '/api/v1/hosts/import', { hosts });
  assert.equal(ok.status, 201);
  assert.deepEqual(ok.body, { added: 120, skipped: [], groupsCreated: ['lab'] });
  const again = await call('POST', '/api/v1/hosts/import', { hosts: hosts.slice(0, 2) });
  assert.equal(again.status, 409);

  const page = await call('GET', '/api/v1/hosts?limit=50&offset=100&sort=name&order=desc');
  assert.equal(page.status, 200);
  assert.equal(page.body['total'], 120);
  assert.equal(page.body['offset'], 100);
  assert.equal(page.body['limit'], 50);
  assert.deepEqual((page.body['hosts'] as Json[]).map((h) => h['name']).slice(0, 2), ['pc-019', 'pc-018']);
  const found = await call('GET', `/api/v1/hosts?q=${encodeURIComponent('00-00-05')}`);
  assert.deepEqual((found.body['hosts'] as Json[]).map((h) => h['mac']), [mac(5)]);
  const lab = await call('GET', '/api/v1/hosts?group=lab');
  assert.deepEqual((lab.body['hosts'] as Json[]).map((h) => h['groups']), [['lab'], ['lab'], ['lab']]);
  for (const q of ['limit=0', 'limit=1001', 'offset=-1', 'sort=ip', 'order=up', 'group=bad name']) {
    const r = await call('GET', `/api/v1/hosts?${q.replace(' ', '%20')}`);
    assert.equal(r.status, 400, q);
    assert.match(String(r.body['message']), /querystring/, q);
  }
});

test('POST /api/v1/hosts/entry assigns one entry to many hosts, all or none', async () => {
  const r = await call('POST', '/api/v1/hosts/entry', { macs: [mac(1), mac(2)], entry: 'deb' });
  assert.equal(r.status, 200);
  assert.deepEqual((r.body['hosts'] as Json[]).map((h) => h['entry']), ['deb', 'deb']);
  const missing = await call('POST', '/api/v1/hosts/entry', { macs: [mac(3), '52:54:00:ff:ff:ff'], entry: null });
  assert.equal(missing.status, 404);
  assert.match(String(missing.body['message']), /52:54:00:ff:ff:ff/);
  assert.equal((await call('GET', `/api/v1/hosts/${mac(3)}`)).body['entry'], null);
  assert.equal((await call('POST', '/api/v1/hosts/entry', { macs: [mac(3)], entry: 'nope' })).status, 400);
  const cleared = await call('POST', '/api/v1/hosts/entry', { macs: [mac(1)], entry: null });
  assert.equal((cleared.body['hosts'] as Json[])[0]?.['entry'], null);
});

test('the console: / redirects to /ui/, client routes get index.html, assets are immutable, every answer has the CSP; no way out of the root', async () => {
  const root = await app.inject({ method: 'GET', url: '/' });
  assert.equal(root.statusCode, 302);
  assert.equal(root.headers.location, '/ui/');
  for (const url of ['/ui', '/ui/', '/ui/hosts?q=1', '/ui/hosts/52:54:00:00:00:01']) {
    const r = await app.inject({ method: 'GET', url });
    assert.equal(r.statusCode, 200, url);
    assert.match(String(r.headers['content-type']), /^text\/html/);
    assert.match(String(r.headers['content-security-policy']), /script-src 'self'; .*frame-ancestors 'none'/);
    assert.equal(r.headers['cache-control'], 'no-cache');
  }
  const js = await app.inject({ method: 'GET', url: '/ui/assets/main-ABC.js' });
  assert.equal(js.statusCode, 200);
  assert.match(String(js.headers['content-type']), /^text\/javascript/);
  assert.match(String(js.headers['cache-control']), /immutable/);
  for (const url of ['/ui/assets/..%2Findex.html', '/ui/assets/missing.js', '/ui/assets/a%00b', '/ui/assets/..%2F..%2Fapi-token']) {
    assert.equal((await app.inject({ method: 'GET', url })).statusCode, 404, url);
  }
  // '..' as a whole segment is resolved before routing: it is the console's page, never a file beside the assets.
  const dots = await app.inject({ method: 'GET', url: '/ui/assets/%2e%2e' });
  assert.ok(dots.statusCode === 404 || dots.body === '<!doctype html><title>t</title>', `${dots.statusCode} ${dots.body.slice(0, 80)}`);
});
