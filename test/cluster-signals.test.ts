/**
 * Several servers on one PostgreSQL (issue 15): what one does in memory
 * reaches the others through LISTEN/NOTIFY (src/store/cluster.ts).
 * Checked on PostgreSQL (the test command's second pass): an SSE
 * subscriber on A sees a task created and cancelled through B; a host
 * reserved through A is in B's DHCP engine (server mode) within a second; an agent's long poll
 * held by A returns when work is queued through B; a nonce from A is
 * accepted once by B; the listening connection comes back after its
 * backend is terminated and says so. On SQLite: the signals do nothing and
 * a nonce is still taken once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { sign } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../src/config/config.js';
import { createLogger, silentLogger } from '../src/lib/log.js';
import { Writable } from 'node:stream';
import { freeUdpPortPair } from './dhcp-helpers.js';
import { SseParser } from '../src/lib/sse.js';
import { sessionSigningBytes } from '../src/model/endpoint.js';
import { startFleetboot, type RunningFleetboot } from '../src/server.js';
import { buildApp } from '../src/http/app.js';
import { createEndpointService } from '../src/endpoints/service.js';
import { createClusterSignals, type ClusterSignals } from '../src/store/cluster.js';
import { ensureApiToken, openStore, type Store } from '../src/store/index.js';
import { openTestStore, testDatabaseUrl, testStoreDialect } from '../src/store/temp-store.js';
import { identityOf, injectTransport, TestAgent, type Json } from './endpoint-helpers.js';
import { waitUntil } from './cli-helpers.js';

const onPostgres = testStoreDialect() === 'postgres';
const pgOnly = onPostgres ? {} : { skip: 'PostgreSQL only (the test command runs this file again on PostgreSQL)' };

async function startNode(dir: string, url: string | null, name: string, onHostsChanged?: (from: 'here' | 'cluster') => void, dhcpServer?: { port: number; lines: Array<Record<string, unknown>> }): Promise<RunningFleetboot> {
  mkdirSync(join(dir, 'bootenv'), { recursive: true });
  writeFileSync(join(dir, 'bootenv', 'vmlinuz'), 'kernel');
  writeFileSync(join(dir, 'bootenv', 'initrd.img'), 'initrd');
  // The DHCP server's pools through a config file (as an operator writes them).
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(dhcpServer ? { dhcp: { mode: 'server', bindAddress: '127.0.0.1', port: dhcpServer.port, pxePort: dhcpServer.port + 1, probeAtStart: false, pools: [{ start: '127.0.0.100', end: '127.0.0.199', netmask: '255.255.255.0' }] } } : { dhcp: { mode: 'off' } }));
  const config = loadConfig({
    cwd: dir,
    file,
    overrides: { ...(url ? { store: { url } } : {}), node: { name }, dataDir: dir, serverIp: '127.0.0.1', http: { host: '127.0.0.1', port: 0 }, https: { enabled: false }, tftp: { enabled: false } },
  });
  const lines = dhcpServer?.lines;
  const logger = lines
    ? createLogger('info', new Writable({
        write(chunk: Buffer, _enc, cb) {
          for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
          cb();
        },
      }))
    : silentLogger;
  return startFleetboot(config, { logger, ipxeDir: join(dir, 'no-ipxe'), ...(onHostsChanged ? { onHostsChanged } : {}) });
}

async function api(fb: RunningFleetboot, method: string, path: string, body?: object): Promise<{ status: number; body: Json }> {
  const r = await fetch(`${fb.url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${fb.token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { status: r.status, body: (await r.json()) as Json };
}

/** The data of the events of an open /api/v1/events stream, as they arrive. */
function openEvents(fb: RunningFleetboot): Promise<{ seen: Array<{ event: string; id: string; data: Json }>; close(): void }> {
  return new Promise((resolve, reject) => {
    const seen: Array<{ event: string; id: string; data: Json }> = [];
    const parser = new SseParser();
    const req = request(`${fb.url}/api/v1/events`, { headers: { accept: 'text/event-stream', authorization: `Bearer ${fb.token}` } }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        for (const m of parser.push(chunk)) seen.push({ event: m.event, id: m.id ?? '', data: JSON.parse(m.data) as Json });
      });
      res.on('error', () => {});
      resolve({ seen, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

test('two servers on one PostgreSQL: an event stream on A sees B\'s task and its state changes; a host reserved through A reloads B\'s reservations', pgOnly, async () => {
  const dirA = mkdtempSync(join(tmpdir(), 'fleetboot-cluster-a-'));
  const dirB = mkdtempSync(join(tmpdir(), 'fleetboot-cluster-b-'));
  const url = await testDatabaseUrl(dirA);
  const hostsOnB: Array<'here' | 'cluster'> = [];
  const a = await startNode(dirA, url, 'node-a');
  // B runs the DHCP server (no packet is sent): its engine's reservations are logged at each reload.
  const linesB: Array<Record<string, unknown>> = [];
  const b = await startNode(dirB, url, 'node-b', (from) => hostsOnB.push(from), { port: await freeUdpPortPair(), lines: linesB });
  try {
    const s = await openEvents(a);
    await waitUntil(() => s.seen.some((m) => m.event === 'ready'), 'the stream is ready', 5000);
    const mac = '52:54:00:c1:00:01';
    const t0 = Date.now();
    assert.equal((await api(a, 'POST', '/hosts', { mac, name: 'pc1', ip: '10.9.0.5' })).status, 201);
    const reloadedOnB = (): Record<string, unknown> | undefined => linesB.find((l) => l['msg'] === 'DHCP reservations reloaded after a host change on another server');
    await waitUntil(() => reloadedOnB() !== undefined, 'B\'s DHCP engine reloads its reservations', 1000);
    assert.ok(Date.now() - t0 < 1000, `B's engine had the host after ${Date.now() - t0} ms`);
    assert.equal(reloadedOnB()?.['reservations'], 1, 'B\'s engine holds the reservation made through A');
    assert.ok(hostsOnB.includes('cluster'));
    // What B would load: the shared hosts table has the reservation.
    const storeB = await openStore(dirB, { url });
    try {
      const row = await storeB.db.selectFrom('hosts').select(['mac', 'ip']).where('mac', '=', mac).executeTakeFirst();
      assert.deepEqual(row, { mac, ip: '10.9.0.5' });
    } finally {
      await storeB.close();
    }
    // A's own host.changed is not marked; nothing echoes back from B.
    await waitUntil(() => s.seen.some((m) => m.data['kind'] === 'host.changed'), 'A streams its own host.changed', 2000);

    const created = await api(b, 'POST', '/tasks', { type: 'inventory', mac });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const taskId = Number(created.body['id']);
    const isState = (st: string) => (m: { data: Json }): boolean => m.data['kind'] === 'task.state' && m.data['taskId'] === taskId && m.data['state'] === st;
    await waitUntil(() => s.seen.some(isState('queued')), 'A streams the task queued through B', 2000);
    assert.equal((await api(b, 'POST', `/tasks/${taskId}/cancel`)).status, 200);
    await waitUntil(() => s.seen.some(isState('cancelled')), 'A streams the cancel through B', 2000);
    const queued = s.seen.find(isState('queued'));
    assert.equal(queued?.data['node'], 'node-b', 'an event from B is marked with its node');
    // Ids are A's own sequence, so Last-Event-ID resumes against A.
    assert.match(queued?.id ?? '', /^[0-9a-z]+-\d+$/);
    assert.equal(queued?.id.split('-')[0], s.seen[0]?.id.split('-')[0]);
    // No duplicates: each of B's events arrives once on A.
    assert.equal(s.seen.filter(isState('queued')).length, 1);
    assert.ok(!s.seen.some((m) => m.data['kind'] === 'host.changed' && m.data['node'] !== undefined), 'A\'s own event came back from B');
    s.close();
  } finally {
    await b.close();
    await a.close();
    rmSync(dirA, { recursive: true, force: true });
    rmSync(dirB, { recursive: true, force: true });
  }
});

interface AgentSide {
  store: Store;
  app: FastifyInstance;
  token: string;
  signals: ClusterSignals;
}

async function agentSide(dir: string, url: string | null): Promise<AgentSide> {
  const config = loadConfig({ overrides: { dataDir: dir, serverIp: '127.0.0.1', agents: { longPollSeconds: 5 } } });
  const store = url ? await openStore(dir, { url }) : await openTestStore(dir);
  const signals = createClusterSignals({ store, url, log: silentLogger });
  await signals.ready();
  const endpoints = createEndpointService({ store, log: silentLogger, settings: config.agents, cluster: signals });
  const app = buildApp({ store, config, serverIp: '127.0.0.1', logger: silentLogger, token: ensureApiToken(dir), endpoints, endpointOverPlainHttp: true, consoleDir: null });
  await app.ready();
  return { store, app, token: ensureApiToken(dir), signals };
}

async function closeSide(s: AgentSide): Promise<void> {
  await s.app.close();
  await s.signals.close();
  await s.store.close();
}

async function call(s: AgentSide, method: 'GET' | 'POST', url: string, payload?: object): Promise<{ status: number; body: Json }> {
  const r = await s.app.inject({ method, url, headers: { authorization: `Bearer ${s.token}` }, ...(payload ? { payload } : {}) });
  return { status: r.statusCode, body: r.json<Json>() };
}

test('two servers on one PostgreSQL: a long poll held by A returns when work is queued through B; a nonce from A is taken once by B', pgOnly, async () => {
  const dirA = mkdtempSync(join(tmpdir(), 'fleetboot-cluster-ea-'));
  const dirB = mkdtempSync(join(tmpdir(), 'fleetboot-cluster-eb-'));
  const url = await testDatabaseUrl(dirA);
  const A = await agentSide(dirA, url);
  const B = await agentSide(dirB, url);
  try {
    const mac = '52:54:00:c1:01:01';
    const agent = new TestAgent(injectTransport(() => A.app), identityOf([mac]));
    const tok = await call(A, 'POST', '/api/v1/agents/tokens', { ttlSeconds: 600, uses: 1 });
    assert.equal(tok.status, 201, JSON.stringify(tok.body));
    assert.equal((await agent.enroll(String(tok.body['token']))).status, 200);

    // A nonce from A opens a session on B, once.
    const nonce = await agent.nonce();
    const body = { agentId: agent.id, nonce, signature: sign(null, sessionSigningBytes(nonce, agent.id), agent.priv).toString('base64'), identity: agent.identity };
    const first = await B.app.inject({ method: 'POST', url: '/endpoint/v1/session', payload: body });
    assert.equal(first.statusCode, 200, first.body);
    const again = await B.app.inject({ method: 'POST', url: '/endpoint/v1/session', payload: body });
    assert.equal(again.statusCode, 401);
    assert.equal(again.json<Json>()['error'], 'BAD_NONCE');
    const onA = await A.app.inject({ method: 'POST', url: '/endpoint/v1/session', payload: body });
    assert.equal(onA.json<Json>()['error'], 'BAD_NONCE');
    // Two servers taking one nonce at once: one succeeds.
    const n2 = await agent.nonce();
    const body2 = { ...body, nonce: n2, signature: sign(null, sessionSigningBytes(n2, agent.id), agent.priv).toString('base64') };
    const both = await Promise.all([A, B].map((s) => s.app.inject({ method: 'POST', url: '/endpoint/v1/session', payload: body2 })));
    assert.deepEqual(both.map((r) => r.statusCode).sort(), [200, 401]);

    // The long poll is held by A; the work is queued through B.
    assert.equal((await agent.open()).status, 200);
    const t0 = Date.now();
    const polling = agent.work('?wait=5');
    await new Promise((r) => setTimeout(r, 300));
    const q = await call(B, 'POST', '/api/v1/agents/work', { kind: 'inventory', macs: [mac] });
    assert.equal(q.status, 201, JSON.stringify(q.body));
    const w = await polling;
    const ms = Date.now() - t0;
    assert.equal(w.work[0]?.kind, 'inventory');
    assert.ok(ms < 2000, `the long poll on A answered ${ms} ms after it began (work queued through B at 300 ms)`);
  } finally {
    await closeSide(B);
    await closeSide(A);
    rmSync(dirA, { recursive: true, force: true });
    rmSync(dirB, { recursive: true, force: true });
  }
});

test('the listening connection comes back after its backend is terminated, says so, and hears signals again', pgOnly, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-cluster-re-'));
  const url = await testDatabaseUrl(dir);
  const store = await openStore(dir, { url });
  const a = createClusterSignals({ store, url, applicationName: 'fleetboot test listen a', retryMs: 50 });
  const b = createClusterSignals({ store, url, applicationName: 'fleetboot test listen b' });
  try {
    await Promise.all([a.ready(), b.ready()]);
    const heard: string[] = [];
    let resynced = 0;
    a.on('fleetboot_hosts', (p) => heard.push(p));
    a.onResynced(() => resynced++);
    // Its own signals are not delivered back.
    a.on('fleetboot_schedule', (p) => heard.push(`own ${p}`));
    assert.equal(await a.notify('fleetboot_schedule', 'x'), true);
    assert.equal(await b.notify('fleetboot_hosts', 'one'), true);
    await waitUntil(() => heard.includes('one'), 'a hears b', 2000);
    const before = a.listenPid;
    assert.ok(before !== null);
    const killed = await sql<{ ok: boolean }>`select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = 'fleetboot test listen a'`.execute(store.db);
    assert.deepEqual(killed.rows.map((r) => r.ok), [true]);
    await waitUntil(() => resynced === 1, 'a reconnects and says resynced', 5000);
    assert.notEqual(a.listenPid, before);
    assert.equal(await b.notify('fleetboot_hosts', 'two'), true);
    await waitUntil(() => heard.includes('two'), 'a hears b again', 2000);
    assert.ok(!heard.some((h) => h.startsWith('own')), 'a heard its own signal');
    // Too big for NOTIFY: dropped, not thrown.
    assert.equal(await b.notify('fleetboot_hosts', 'x'.repeat(8000)), false);
  } finally {
    await a.close();
    await b.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('on SQLite the signals do nothing and a nonce is taken once', { skip: onPostgres ? 'SQLite only' : false }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-cluster-lite-'));
  const side = await agentSide(dir, null);
  try {
    assert.equal(side.signals.shared, false);
    assert.equal(await side.signals.notify('fleetboot_hosts', 'x'), false);
    const mac = '52:54:00:c1:02:01';
    const agent = new TestAgent(injectTransport(() => side.app), identityOf([mac]));
    const tok = await call(side, 'POST', '/api/v1/agents/tokens', { ttlSeconds: 600, uses: 1 });
    assert.equal((await agent.enroll(String(tok.body['token']))).status, 200);
    const nonce = await agent.nonce();
    const body = { agentId: agent.id, nonce, signature: sign(null, sessionSigningBytes(nonce, agent.id), agent.priv).toString('base64'), identity: agent.identity };
    assert.equal((await side.app.inject({ method: 'POST', url: '/endpoint/v1/session', payload: body })).statusCode, 200);
    assert.equal((await side.app.inject({ method: 'POST', url: '/endpoint/v1/session', payload: body })).json<Json>()['error'], 'BAD_NONCE');
  } finally {
    await closeSide(side);
    rmSync(dir, { recursive: true, force: true });
  }
});
