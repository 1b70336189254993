/**
 * A machine's boot timeline and `why` through the REST API (app.inject, a
 * real SQLite file): the boot endpoints record their steps (the entry
 * script, the decision, the entry's files) through the server's recorder;
 * DHCP and TFTP steps as their services report them; the diagnosis of the
 * last attempt.
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
import { dhcpBootEvent, tftpBootEvent } from '../src/boot/boot-events.js';
import { createBootRecorder, type BootRecorder } from '../src/events/boot-recorder.js';
import { createEntry, createHost, ensureApiToken, openStore, type Store } from '../src/store/index.js';
import { apiCaller, type Json } from './api-helpers.js';

let dir: string;
let store: Store;
let app: FastifyInstance;
let watch: AnswerWatch;
let token: string;
let recorder: BootRecorder;
const call = apiCaller(() => app, () => token);
const HEALTHY = '52:54:00:71:00:01';
const STUCK = '52:54:00:71:00:02';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetboot-timeline-'));
  const config = loadConfig({ overrides: { dataDir: dir, serverIp: '10.1.2.3', http: { port: 8080 }, tftp: { dataPorts: { from: 30000, to: 30009 } } } });
  store = await openTestStore(config.dataDir);
  token = ensureApiToken(config.dataDir);
  mkdirSync(join(store.entriesDir, 'deb'), { recursive: true });
  writeFileSync(join(store.entriesDir, 'deb', 'vmlinuz'), 'kernel');
  await createEntry(store.db, { name: 'deb', kernel: 'vmlinuz', initrds: [], cmdline: '' });
  await createHost(store.db, { mac: HEALTHY, name: 'pc1', entry: 'deb' });
  recorder = createBootRecorder({ store, log: silentLogger, flushMs: 3_600_000 });
  app = buildApp({ store, config, serverIp: '10.1.2.3', logger: silentLogger, token, bootEvents: recorder });
  watch = watchAnswers(app);
  await app.ready();
});

after(async () => {
  assert.deepEqual(watch.lost, [], 'answers lost these properties to their response schemas: declare them (src/http/schemas/), or add them to HIDDEN (test/api-answers.ts)');
  await app.close();
  await recorder.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const fw = { clientClass: 'PXEClient', arch: 0, archSource: 'option-93', family: 'bios', httpBoot: false } as const;

test('a healthy boot: DHCP, TFTP, the entry script, the decision and the kernel are on its timeline in order; why says completed', async () => {
  const ip = '10.1.2.50';
  recorder.record(dhcpBootEvent({ mode: 'proxy', mac: HEALTHY, ciaddr: '0.0.0.0', step: 'DISCOVER -> OFFER', port: 'dhcp', file: 'undionly.kpxe', reason: 'BIOS PXE -> undionly.kpxe over TFTP', firmware: { ...fw, ipxe: false }, offeredIp: null }));
  // TFTP knows only the address: its MAC comes from the neighbour table (none here) or an earlier step with both.
  recorder.record(dhcpBootEvent({ mode: 'proxy', mac: HEALTHY, ciaddr: ip, step: 'REQUEST -> ACK', port: 'pxe', file: 'undionly.kpxe', reason: 'BIOS PXE', firmware: { ...fw, ipxe: false }, offeredIp: null }));
  recorder.record(tftpBootEvent({ ip, file: 'undionly.kpxe', outcome: 'done', bytes: 70_000, reason: null }));
  recorder.record(dhcpBootEvent({ mode: 'proxy', mac: HEALTHY, ciaddr: '0.0.0.0', step: 'DISCOVER -> OFFER', port: 'dhcp', file: 'http://10.1.2.3:8080/boot.ipxe', reason: 'iPXE -> script', firmware: { ...fw, ipxe: true }, offeredIp: null }));
  const from = { remoteAddress: ip };
  assert.equal((await app.inject({ method: 'GET', url: '/boot.ipxe', ...from })).statusCode, 200);
  assert.match((await app.inject({ method: 'GET', url: `/boot/decide?mac=${HEALTHY.replace(/:/g, '-')}`, ...from })).body, /kernel/);
  assert.equal((await app.inject({ method: 'GET', url: '/boot/entries/deb/vmlinuz', ...from })).statusCode, 200);
  await recorder.flush();
  const t = await call('GET', `/api/v1/hosts/${HEALTHY}/timeline`);
  assert.equal(t.status, 200);
  const events = t.body['events'] as Json[];
  assert.deepEqual(events.map((e) => e['kind']), ['dhcp', 'dhcp', 'tftp', 'dhcp', 'http', 'decision', 'http']);
  assert.match(String(events[5]?.['summary']), /^decision: boots entry deb/);
  assert.deepEqual(events[6]?.['detail'], { what: 'file', path: '/boot/entries/deb/vmlinuz', status: 200, bytes: 6 });
  const why = await call('GET', `/api/v1/hosts/${HEALTHY.replace(/:/g, '-').toUpperCase()}/why`);
  assert.equal(why.status, 200);
  assert.equal(why.body['completed'], true);
  assert.match(String(why.body['verdict']), /^completed: boots entry deb/);
});

test('a machine offered its boot file that never fetched it: why says so and names the TFTP ports', async () => {
  recorder.record(dhcpBootEvent({ mode: 'proxy', mac: STUCK, ciaddr: '0.0.0.0', step: 'DISCOVER -> OFFER', port: 'dhcp', file: 'undionly.kpxe', reason: 'BIOS PXE', firmware: { ...fw, ipxe: false }, offeredIp: null }));
  await recorder.flush();
  const why = await call('GET', `/api/v1/hosts/${STUCK}/why`);
  assert.equal(why.body['stage'], 'offered');
  assert.match(String(why.body['verdict']), /^offered undionly\.kpxe at .*, never fetched the boot file$/);
  assert.match(String(why.body['next']), /UDP 69 and the data ports 30000-30009/);
});

test('timeline and why: a bad MAC is a 400 that says what was expected; a machine never seen has an empty timeline', async () => {
  const bad = await call('GET', '/api/v1/hosts/zz:zz:zz:zz:zz:zz/why');
  assert.equal(bad.status, 400);
  assert.match(String(bad.body['message']), /expected six hex bytes/);
  assert.deepEqual((await call('GET', '/api/v1/hosts/52:54:00:71:00:99/timeline')).body['events'], []);
  assert.equal((await call('GET', '/api/v1/hosts/52:54:00:71:00:99/why')).body['stage'], 'none');
  assert.equal((await call('GET', `/api/v1/hosts/${HEALTHY}/timeline?limit=0`)).status, 400);
  assert.equal((await app.inject({ method: 'GET', url: `/api/v1/hosts/${HEALTHY}/timeline` })).statusCode, 401, 'the token is required');
});
