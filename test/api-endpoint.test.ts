/**
 * The endpoint agents' protocol (/endpoint/v1) and its admin API
 * (/api/v1/agents, /api/v1/packages) through app.inject, on a real SQLite
 * file. The agent is played here with node:crypto (Ed25519), so every rule
 * of src/endpoints/service.ts is driven directly; the real agent program
 * against the real HTTPS server is test/endpoint-agent.lab.test.ts.
 */
import { openTestStore } from '../src/store/temp-store.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign, verify, createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../src/config/config.js';
import { silentLogger } from '../src/lib/log.js';
import { buildApp } from '../src/http/app.js';
import { watchAnswers, type AnswerWatch } from './api-answers.js';
import { apiCaller, type Json } from './api-helpers.js';
import { createHost, createGroup, ensureApiToken, openStore, type Store } from '../src/store/index.js';
import { createEndpointService, type EndpointService } from '../src/endpoints/service.js';
import { enrollSigningBytes, packageSigningBytes, type AgentIdentity, type PackageManifest, type WorkItem } from '../src/model/endpoint.js';
import { injectTransport, TestAgent } from './endpoint-helpers.js';

let dir: string;
let store: Store;
let app: FastifyInstance;
let plainApp: FastifyInstance;
let endpoints: EndpointService;
let watch: AnswerWatch;
let token: string;
const call = apiCaller(() => app, () => token);

const M1 = '52:54:00:ee:00:01';
const M2 = '52:54:00:ee:00:02';
const M3 = '52:54:00:ee:00:03';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetboot-api-endpoint-'));
  const config = loadConfig({ overrides: { dataDir: dir, serverIp: '127.0.0.1', http: { port: 8125 }, agents: { longPollSeconds: 5 } } });
  store = await openTestStore(config.dataDir);
  token = ensureApiToken(config.dataDir);
  endpoints = createEndpointService({ store, log: silentLogger, settings: config.agents });
  app = buildApp({ store, config, serverIp: '127.0.0.1', logger: silentLogger, token, endpoints, endpointOverPlainHttp: true, caPem: () => '-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n' });
  watch = watchAnswers(app);
  await app.ready();
  plainApp = buildApp({ store, config, serverIp: '127.0.0.1', logger: silentLogger, token, consoleDir: null });
  await plainApp.ready();
});

after(async () => {
  await app.close();
  await plainApp.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('no answer lost a property to its response schema', () => {
  assert.deepEqual(watch.lost, [], 'answers lost these properties to their response schemas: declare them (src/http/schemas/)');
});

/** A machine with its own key, over app.inject. */
class FakeAgent extends TestAgent {
  constructor(identity: AgentIdentity) {
    super(injectTransport(() => app), identity);
  }
}

const ident = (macs: string[], uuid: string | null = null): AgentIdentity => ({ macs, smbiosUuid: uuid, smbiosSerial: null, hostname: 'pc-1', os: 'Debian GNU/Linux 12 (bookworm)', agentVersion: '0.1.0' });

async function newToken(body: object = {}): Promise<string> {
  const r = await call('POST', '/api/v1/agents/tokens', body);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body['token'] as string;
}

test('an agent enrols with a token as the host with its MAC (made when none has it); reusing the token is refused', async () => {
  const tok = await newToken({ uses: 1 });
  const a = new FakeAgent(ident([M1]));
  const r = await a.enroll(tok);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body['state'], 'active');
  assert.equal(r.body['agentId'], a.id);
  assert.deepEqual(r.body['host'], { mac: M1, name: 'pc-1' });
  const again = await new FakeAgent(ident([M2])).enroll(tok);
  assert.equal(again.status, 401);
  assert.match(String(again.body['message']), /used already/);
  const s = await a.open();
  assert.equal(s.status, 200);
  assert.equal(s.body['state'], 'active');
  assert.equal(s.body['pollSeconds'], 60);
});

test('a token for a host binds the agent to that host, whatever MAC it reports; the host has one active agent', async () => {
  await createHost(store.db, { mac: M2, name: 'lab-2' });
  const first = new FakeAgent(ident([M2]));
  assert.equal((await first.enroll(await newToken({ host: M2 }))).status, 200);
  // A reinstall: a new key for the same host revokes the old one.
  const second = new FakeAgent(ident(['52:54:00:ee:00:22']));
  const r = await second.enroll(await newToken({ host: M2 }));
  assert.equal(r.status, 200);
  assert.deepEqual(r.body['host'], { mac: M2, name: 'lab-2' });
  const old = await first.open();
  assert.equal(old.status, 401);
  assert.equal(old.body['error'], 'REVOKED');
});

test('without a token an agent is pending, gets no work, and may not claim an existing host by its MAC; approval activates it', async () => {
  const a = new FakeAgent(ident([M1]));
  const r = await a.enroll(null);
  assert.equal(r.status, 200);
  assert.equal(r.body['state'], 'pending');
  assert.equal(r.body['host'], null);
  assert.equal((await a.open()).status, 200);
  const w = await a.work();
  assert.equal(w.status, 200);
  assert.equal(w.body['state'], 'pending');
  assert.deepEqual(w.work, []);
  const list = await call('GET', '/api/v1/agents?state=pending');
  assert.ok((list.body['agents'] as Json[]).some((x) => x['id'] === a.id));
  await createHost(store.db, { mac: M3, name: 'lab-3' });
  const ok = await call('POST', `/api/v1/agents/${a.id}/approve`, { host: M3 });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body['state'], 'active');
  assert.deepEqual(ok.body['host'], { mac: M3, name: 'lab-3' });
  assert.equal((await a.work()).body['state'], 'active');
});

test('a copy of the key used on another machine (other MACs, or another SMBIOS UUID) is refused with IDENTITY_CHANGED', async () => {
  const a = new FakeAgent(ident(['52:54:00:ee:01:01'], 'uuid-1'));
  assert.equal((await a.enroll(await newToken())).status, 200);
  const moved = await a.open(ident(['52:54:00:ee:01:99'], 'uuid-1'));
  assert.equal(moved.status, 401);
  assert.equal(moved.body['error'], 'IDENTITY_CHANGED');
  const cloned = await a.open(ident(['52:54:00:ee:01:01'], 'uuid-2'));
  assert.equal(cloned.body['error'], 'IDENTITY_CHANGED');
  assert.equal((await a.open()).status, 200);
});

test('signatures and nonces are checked: a wrong key, a reused nonce and an unknown agent are refused', async () => {
  const a = new FakeAgent(ident(['52:54:00:ee:02:01']));
  const nonce = await a.nonce();
  const other = generateKeyPairSync('ed25519').privateKey;
  const bad = await app.inject({ method: 'POST', url: '/endpoint/v1/enroll', payload: { token: null, publicKey: a.pub, nonce, signature: sign(null, enrollSigningBytes(nonce, a.pub), other).toString('base64'), identity: a.identity } });
  assert.equal(bad.statusCode, 401);
  assert.equal(bad.json<Json>()['error'], 'BAD_SIGNATURE');
  const reused = await app.inject({ method: 'POST', url: '/endpoint/v1/enroll', payload: { token: null, publicKey: a.pub, nonce, signature: sign(null, enrollSigningBytes(nonce, a.pub), a.priv).toString('base64'), identity: a.identity } });
  assert.equal(reused.json<Json>()['error'], 'BAD_NONCE');
  const unknown = await a.open();
  assert.equal(unknown.body['error'], 'UNKNOWN_AGENT');
  const junk = await app.inject({ method: 'POST', url: '/endpoint/v1/enroll', payload: { token: null, publicKey: 'x', nonce: 'short', signature: 'y', identity: {} } });
  assert.equal(junk.statusCode, 400);
  assert.match(junk.json<Json>()['message'] as string, /enroll\.publicKey must be|nonce/);
});

test('work is handed out once; a poll that does not list it queues it again; results are recorded; revocation answers 401 at the next request', async () => {
  const a = new FakeAgent(ident(['52:54:00:ee:03:01']));
  assert.equal((await a.enroll(await newToken())).status, 200);
  await a.open();
  const q = await call('POST', '/api/v1/agents/work', { kind: 'inventory', macs: ['52:54:00:ee:03:01'] });
  assert.equal(q.status, 201, JSON.stringify(q.body));
  const w1 = await a.work();
  assert.equal(w1.work.length, 1);
  const item = w1.work[0] as WorkItem;
  assert.equal(item.kind, 'inventory');
  // Held: not handed again.
  assert.deepEqual((await a.work(`?running=${item.id}`)).work, []);
  // Not held and not reported: the answer was lost, so it comes again.
  const w3 = await a.work();
  assert.deepEqual(w3.work.map((x) => x.id), [item.id]);
  const rep = await a.report(item.id, { message: 'inventory sent' });
  assert.equal(rep.status, 200, JSON.stringify(rep.body));
  const shown = await call('GET', `/api/v1/agents/work/${item.id}`);
  assert.equal(shown.body['state'], 'succeeded');
  assert.equal(shown.body['deliveries'], 2);
  // Another agent may not report it.
  const b = new FakeAgent(ident(['52:54:00:ee:03:02']));
  await b.enroll(await newToken());
  await b.open();
  assert.equal((await b.report(item.id)).status, 404);
  const rv = await call('POST', '/api/v1/agents/52:54:00:ee:03:01/revoke');
  assert.equal(rv.status, 200);
  assert.equal(rv.body['state'], 'revoked');
  const after = await a.work();
  assert.equal(after.status, 401);
  assert.equal(after.body['error'], 'REVOKED');
});

test('a long poll returns as soon as work is queued', async () => {
  const mac = '52:54:00:ee:04:01';
  const a = new FakeAgent(ident([mac]));
  await a.enroll(await newToken());
  await a.open();
  const t0 = Date.now();
  const polling = a.work('?wait=5');
  await new Promise((r) => setTimeout(r, 200));
  await call('POST', '/api/v1/agents/work', { kind: 'reboot', macs: [mac] });
  const w = await polling;
  const ms = Date.now() - t0;
  assert.equal(w.work[0]?.kind, 'reboot');
  assert.ok(ms < 2000, `the long poll answered after ${ms} ms`);
  // No work: it waits (here up to agents.longPollSeconds = 5, capped from 30).
  const t1 = Date.now();
  const empty = await a.work(`?wait=30&running=${w.work[0]?.id ?? ''}`);
  assert.deepEqual(empty.work, []);
  assert.ok(Date.now() - t1 >= 4500, 'an empty long poll waits');
});

test('an imaging task queued with reboot makes the agent reboot the machine into it', async () => {
  const mac = '52:54:00:ee:05:01';
  const a = new FakeAgent(ident([mac]));
  await a.enroll(await newToken());
  await a.open();
  const t = await call('POST', '/api/v1/tasks', { type: 'inventory', mac, reboot: true });
  assert.equal(t.status, 201, JSON.stringify(t.body));
  assert.equal(t.body['reboot'], true);
  const w = await a.work();
  const item = w.work[0];
  assert.equal(item?.kind, 'reboot');
  assert.equal(item?.kind === 'reboot' ? item.taskId : null, t.body['id']);
  // Once only.
  assert.deepEqual((await a.work(`?running=${item?.id ?? ''}`)).work, []);
});

test('packages: files by sha256, a signed manifest, handed to the host\'s agent, its files only to that agent, the run recorded', async () => {
  const bytes = Buffer.from('#!/bin/sh\necho hello; exit 3\n');
  const sha = createHash('sha256').update(bytes).digest('hex');
  const wrong = await app.inject({ method: 'PUT', url: `/api/v1/packages/files/${'0'.repeat(64)}`, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, payload: bytes });
  assert.equal(wrong.statusCode, 400);
  assert.match(wrong.json<Json>()['message'] as string, /sha256 is [0-9a-f]{64}, not 0{64}/);
  const put = await app.inject({ method: 'PUT', url: `/api/v1/packages/files/${sha}`, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, payload: bytes });
  assert.equal(put.statusCode, 200, put.body);
  assert.deepEqual(put.json(), { sha256: sha, size: bytes.length, existed: false });
  const missing = await call('POST', '/api/v1/packages', { name: 'hello', files: [{ name: 'x.sh', sha256: 'f'.repeat(64) }], argv: ['sh', 'x.sh'] });
  assert.equal(missing.status, 428);
  const add = await call('POST', '/api/v1/packages', { name: 'hello', files: [{ name: 'hello.sh', sha256: sha, executable: true }], argv: ['/bin/sh', 'hello.sh'], timeoutSeconds: 30, rebootCodes: [3010] });
  assert.equal(add.status, 201, JSON.stringify(add.body));
  assert.equal(add.body['revision'], 1);
  const add2 = await call('POST', '/api/v1/packages', { name: 'hello', files: [{ name: 'hello.sh', sha256: sha, executable: true }], argv: ['/bin/sh', 'hello.sh'] });
  assert.equal(add2.body['revision'], 2);

  const mac = '52:54:00:ee:06:01';
  await createGroup(store.db, 'pkg-lab');
  const a = new FakeAgent(ident([mac]));
  const s = await a.enroll(await newToken({ group: 'pkg-lab' }));
  assert.equal(s.status, 200);
  const session = await a.open();
  const deploy = await call('POST', '/api/v1/packages/hello/deploy', { group: 'pkg-lab' });
  assert.equal(deploy.status, 201, JSON.stringify(deploy.body));
  assert.equal((deploy.body['work'] as Json[]).length, 1);
  const w = await a.work();
  const item = w.work[0];
  assert.ok(item?.kind === 'package');
  const m: PackageManifest = item.package.manifest;
  assert.equal(m.revision, 2);
  const key = createPublicKey({ key: Buffer.from(session.body['packageKey'] as string, 'base64'), format: 'der', type: 'spki' });
  assert.ok(verify(null, packageSigningBytes(m), key, Buffer.from(item.package.signature, 'base64')), 'the manifest verifies with the package key');
  const file = await app.inject({ method: 'GET', url: `/endpoint/v1/files/${sha}`, headers: { authorization: `Bearer ${a.session}` } });
  assert.equal(file.statusCode, 200);
  assert.deepEqual(file.rawPayload, bytes);
  // Another agent was handed no package naming the file.
  const b = new FakeAgent(ident(['52:54:00:ee:06:02']));
  await b.enroll(await newToken());
  await b.open();
  assert.equal((await app.inject({ method: 'GET', url: `/endpoint/v1/files/${sha}`, headers: { authorization: `Bearer ${b.session}` } })).statusCode, 404);
  const rep = await a.report(item.id, { status: 'failed', exitCode: 3, stdout: 'hello\n', message: 'exit code 3' });
  assert.equal(rep.status, 200);
  const runs = await call('GET', `/api/v1/agents/work?mac=${mac}&kind=package`);
  const run = (runs.body['work'] as Json[])[0] as Json;
  assert.equal(run['state'], 'failed');
  assert.equal(run['exitCode'], 3);
  assert.equal(run['stdout'], 'hello\n');
  assert.deepEqual(run['package'], { name: 'hello', revision: 2 });
  // The file is no longer served once reported.
  assert.equal((await app.inject({ method: 'GET', url: `/endpoint/v1/files/${sha}`, headers: { authorization: `Bearer ${a.session}` } })).statusCode, 404);
  writeFileSync(join(dir, 'unused'), '');
});

test('the agent protocol refuses plain HTTP (the server serves it over HTTPS only)', async () => {
  const r = await plainApp.inject({ method: 'POST', url: '/endpoint/v1/challenge' });
  assert.equal(r.statusCode, 403);
  assert.equal(r.json<Json>()['error'], 'HTTPS_REQUIRED');
});

test('enrolment tokens: listed without their secret, revoked tokens refused, a host token has one use', async () => {
  const many = await call('POST', '/api/v1/agents/tokens', { host: M1, uses: 2 });
  assert.equal(many.status, 400);
  const made = await call('POST', '/api/v1/agents/tokens', { ttlSeconds: 600 });
  const info = made.body['info'] as Json;
  const list = await call('GET', '/api/v1/agents/tokens');
  assert.ok(!JSON.stringify(list.body).includes(made.body['token'] as string), 'no secret in the list');
  const del = await call('DELETE', `/api/v1/agents/tokens/${String(info['id'])}`);
  assert.equal(del.status, 200);
  assert.ok(del.body['revokedAt']);
  const r = await new FakeAgent(ident(['52:54:00:ee:07:01'])).enroll(made.body['token'] as string);
  assert.equal(r.status, 401);
  assert.match(String(r.body['message']), /revoked/);
});

test('a wake asks an agent online on the machine\'s segment (its last known address) to send the packets too', async () => {
  const relayMac = '52:54:00:ee:08:01';
  const a = new FakeAgent(ident([relayMac]));
  await a.enroll(await newToken());
  assert.equal((await a.open(a.identity, '10.77.8.5')).status, 200);
  await createHost(store.db, { mac: '52:54:00:ee:08:02', ip: '10.77.8.9' });
  await createHost(store.db, { mac: '52:54:00:ee:08:03', ip: '10.77.9.9' });
  const asked = await endpoints.wakeThroughAgents(['52:54:00:ee:08:02', '52:54:00:ee:08:03', '52:54:00:ee:08:04'], { port: 9, prefixLength: 24, createdBy: 'test' });
  assert.equal(asked, 1);
  const w = await a.work();
  assert.deepEqual(w.work.map((x) => (x.kind === 'wake' ? x.macs : null)), [['52:54:00:ee:08:02']], 'only the machine on its /24');
});

test('requests made before a key is proven are limited per address (429 with Retry-After)', async () => {
  let limited: { statusCode: number; headers: Record<string, unknown> } | null = null;
  for (let i = 0; i < 100 && limited === null; i++) {
    const r = await app.inject({ method: 'POST', url: '/endpoint/v1/challenge', remoteAddress: '10.99.0.1' });
    if (r.statusCode === 429) limited = r;
  }
  assert.ok(limited, 'a flood of challenges from one address is stopped');
  assert.match(String(limited.headers['retry-after']), /^[1-9][0-9]*$/);
  // Another address is not.
  assert.equal((await app.inject({ method: 'POST', url: '/endpoint/v1/challenge', remoteAddress: '10.99.0.2' })).statusCode, 200);
});
