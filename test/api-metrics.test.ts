/**
 * GET /api/v1/metrics: the Prometheus text behind the API's authentication
 * (401 without credentials, a viewer may read it), with the exposition
 * format's Content-Type; 503 when the app runs without metrics.
 */
import { openTestStore } from '../src/store/temp-store.js';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.js';
import { silentLogger } from '../src/lib/log.js';
import { buildApp } from '../src/http/app.js';
import { createFleetbootMetrics } from '../src/metrics/fleetboot.js';
import { tftpBootEvent } from '../src/boot/boot-events.js';
import { ensureApiToken, openStore } from '../src/store/index.js';

const dir = mkdtempSync(join(tmpdir(), 'fleetboot-api-metrics-'));
const config = loadConfig({ overrides: { dataDir: dir, serverIp: '127.0.0.1', http: { port: 8127 } } });
const store = await openTestStore(config.dataDir);
const token = ensureApiToken(config.dataDir);
const metrics = createFleetbootMetrics({ store, version: 'test', bootEventsDropped: () => 0, dhcp: () => null });
const app = buildApp({ store, config, serverIp: '127.0.0.1', logger: silentLogger, token, metrics: () => metrics.render() });
const bare = buildApp({ store, config, serverIp: '127.0.0.1', logger: silentLogger, token });

after(async () => {
  await app.close();
  await bare.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('GET /api/v1/metrics needs credentials, and a viewer token reads the exposition text', async () => {
  const anonymous = await app.inject({ method: 'GET', url: '/api/v1/metrics' });
  assert.equal(anonymous.statusCode, 401);
  const admin = { authorization: `Bearer ${token}` };
  const user = await app.inject({ method: 'POST', url: '/api/v1/users', headers: admin, payload: { name: 'prometheus', role: 'viewer', password: 'a long enough password 1' } });
  assert.equal(user.statusCode, 201, user.body);
  const made = await app.inject({ method: 'POST', url: '/api/v1/tokens', headers: admin, payload: { user: 'prometheus', name: 'scrape', role: 'viewer' } });
  assert.equal(made.statusCode, 201, made.body);
  const secret = String(made.json().secret);
  metrics.bootStep(tftpBootEvent({ ip: '10.0.0.9', file: 'undionly.kpxe', outcome: 'done', bytes: 1234, reason: null }));
  const r = await app.inject({ method: 'GET', url: '/api/v1/metrics', headers: { authorization: `Bearer ${secret}` } });
  assert.equal(r.statusCode, 200, r.body);
  assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.match(r.body, /^# TYPE fleetboot_tftp_transfers_total counter$/m);
  assert.match(r.body, /^fleetboot_tftp_sent_bytes_total\{outcome="done"\} 1234$/m);
  assert.ok(!r.body.startsWith('"'), 'the text is sent as it is, not as a JSON string');
});

test('GET /api/v1/metrics answers 503 when the app runs without metrics', async () => {
  const r = await bare.inject({ method: 'GET', url: '/api/v1/metrics', headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.statusCode, 503);
  assert.equal(r.json().error, 'UNAVAILABLE');
});
