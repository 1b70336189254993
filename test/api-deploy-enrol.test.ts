/**
 * `task deploy --enrol`, the server's side, through app.inject on a real
 * SQLite file: the request is refused at creation when the server runs
 * without HTTPS; with HTTPS the boot environment's GET /agent/v1/task gets
 * { server, caSha256, token } in its spec; the token is one-use, bound to
 * the task's host and to its MAC (a refusal does not spend it), a second
 * GET makes a new one and revokes the first, only its sha256 is stored, and
 * the agent's completion puts where it was written into the task's message.
 * The imaging agent's side (the Linux root found and the file written) is
 * test/agent-enrol-loop.test.ts.
 */
import { openTestStore, testStoreOverrides } from '../src/store/temp-store.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../src/config/config.js';
import { silentLogger } from '../src/lib/log.js';
import { buildApp } from '../src/http/app.js';
import { watchAnswers, type AnswerWatch } from './api-answers.js';
import { apiCaller, type Json } from './api-helpers.js';
import { makeImage, IDENTITY } from './imaging-helpers.js';
import { createHost, ensureApiToken, openStore, type Store } from '../src/store/index.js';
import { enrollSigningBytes, ENROL_TOKEN_RE, type AgentIdentity } from '../src/model/endpoint.js';
import { makePki, type Pki } from '../src/endpoint-agent/testdata/fake-server.js';
import type { TaskSpec } from '../src/imaging/protocol.js';

let dir: string;
let store: Store;
let app: FastifyInstance;
let plainApp: FastifyInstance;
let watch: AnswerWatch;
let token: string;
let pki: Pki;
const call = apiCaller(() => app, () => token);
const callPlain = apiCaller(() => plainApp, () => token);

const M1 = '52:54:00:e7:00:01';
const M2 = '52:54:00:e7:00:02';
const SRC = '52:54:00:e7:00:0a';

before(async () => {
  pki = makePki();
  dir = mkdtempSync(join(tmpdir(), 'fleetboot-deploy-enrol-'));
  mkdirSync(join(dir, 'bootenv'));
  writeFileSync(join(dir, 'bootenv', 'vmlinuz'), 'kernel');
  writeFileSync(join(dir, 'bootenv', 'initrd.img'), 'initrd');
  const config = loadConfig({ overrides: { ...(await testStoreOverrides(dir)), dataDir: dir, serverIp: '10.9.8.7', http: { port: 8080 } } });
  store = await openTestStore(config.dataDir);
  token = ensureApiToken(config.dataDir);
  app = buildApp({
    store,
    config,
    serverIp: '10.9.8.7',
    logger: silentLogger,
    token,
    consoleDir: null,
    endpointOverPlainHttp: true,
    caPem: () => pki.caPem,
    runtime: () => ({ httpPort: 8080, httpsPort: 8443, tftpPort: null, dhcpPort: null, pxePort: null }),
  });
  watch = watchAnswers(app);
  await app.ready();
  // The same server without HTTPS.
  plainApp = buildApp({ store, config, serverIp: '10.9.8.7', logger: silentLogger, token, consoleDir: null });
  await plainApp.ready();
  for (const mac of [M1, M2, SRC]) await createHost(store.db, { mac });
  await makeImage(store, 'deb12', SRC);
});

after(async () => {
  await app.close();
  await plainApp.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(pki.dir, { recursive: true, force: true });
});

class FakeAgent {
  readonly priv: KeyObject;
  readonly pub: string;
  constructor(public identity: AgentIdentity) {
    const pair = generateKeyPairSync('ed25519');
    this.priv = pair.privateKey;
    this.pub = pair.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  }
  async enroll(tok: string): Promise<{ status: number; body: Json }> {
    const c = await app.inject({ method: 'POST', url: '/endpoint/v1/challenge' });
    const nonce = c.json<{ nonce: string }>().nonce;
    const signature = sign(null, enrollSigningBytes(nonce, this.pub), this.priv).toString('base64');
    const r = await app.inject({ method: 'POST', url: '/endpoint/v1/enroll', payload: { token: tok, publicKey: this.pub, nonce, signature, identity: this.identity } });
    return { status: r.statusCode, body: r.json<Json>() };
  }
}

const ident = (macs: string[]): AgentIdentity => ({ macs, smbiosUuid: null, smbiosSerial: null, hostname: 'deb12', os: 'Debian GNU/Linux 12 (bookworm)', agentVersion: '0.1.0' });

/** PXE-boot `mac` (the decision hands the task's token to 127.0.0.1, app.inject's address), then the agent's GET /task. */
async function bootAndStart(mac: string): Promise<{ spec: TaskSpec; taskToken: string }> {
  const script = (await app.inject({ method: 'GET', url: `/boot/decide?mac=${mac.replace(/:/g, '-')}&platform=pcbios` })).body;
  const taskToken = /fleetboot\.token=([0-9a-f]+)/.exec(script)?.[1];
  assert.ok(taskToken, `no task token in the boot script:\n${script}`);
  return { spec: await getSpec(taskToken), taskToken };
}

async function getSpec(taskToken: string): Promise<TaskSpec> {
  const r = await app.inject({ method: 'GET', url: '/agent/v1/task', headers: { authorization: `Bearer ${taskToken}` } });
  assert.equal(r.statusCode, 200, r.body);
  return r.json<TaskSpec>();
}

async function tokens(): Promise<Json[]> {
  const r = await call('GET', '/api/v1/agents/tokens');
  assert.equal(r.status, 200);
  return r.body['tokens'] as Json[];
}

test('without HTTPS a deploy with enrol is refused at creation, saying why; enrol is for deploys only', async () => {
  const r = await callPlain('POST', '/api/v1/tasks', { type: 'deploy', mac: M1, image: 'deb12', enrol: true });
  assert.equal(r.status, 409, JSON.stringify(r.body));
  assert.match(String(r.body['message']), /enrols over HTTPS; this server runs without HTTPS \(https\.enabled is false\)\. Turn HTTPS on \(https\.enabled\), or deploy without enrol/);
  const s = await callPlain('POST', '/api/v1/schedules', { cron: '0 3 * * *', request: { type: 'deploy', group: 'nobody', image: 'deb12', enrol: true } });
  assert.equal(s.status, 409, JSON.stringify(s.body));
  const inv = await call('POST', '/api/v1/tasks', { type: 'inventory', mac: M1, enrol: true });
  assert.equal(inv.status, 400, JSON.stringify(inv.body));
  assert.match(String(inv.body['message']), /"enrol" applies to deploy tasks only/);
  const none = await call('GET', `/api/v1/tasks?mac=${M1}`);
  assert.deepEqual(none.body['tasks'], []);
});

test('a deploy with enrol hands the agent { server, caSha256, token }: a one-use token for its host, MAC-bound; a new GET revokes the earlier token', async () => {
  const created = await call('POST', '/api/v1/tasks', { type: 'deploy', mac: M1, image: 'deb12', enrol: true });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const task = created.body as Json;
  assert.equal(task['enrol'], true);
  const taskId = task['id'] as number;

  const { spec, taskToken } = await bootAndStart(M1);
  assert.equal(spec.type, 'deploy');
  assert.ok(spec.enrol, 'the spec carries no enrol');
  assert.equal(spec.enrol.server, 'https://10.9.8.7:8443');
  assert.equal(spec.enrol.caSha256, pki.caSha256);
  assert.match(spec.enrol.token, ENROL_TOKEN_RE);
  const first = spec.enrol.token;

  let list = await tokens();
  assert.equal(list.length, 1);
  assert.deepEqual(
    { host: list[0]?.['host'], usesLeft: list[0]?.['usesLeft'], taskId: list[0]?.['taskId'], macBound: list[0]?.['macBound'], createdBy: list[0]?.['createdBy'], revokedAt: list[0]?.['revokedAt'] },
    { host: M1, usesLeft: 1, taskId, macBound: true, createdBy: `task #${taskId}`, revokedAt: null },
  );
  const hours = (Date.parse(String(list[0]?.['expiresAt'])) - Date.now()) / 3_600_000;
  assert.ok(hours > 5.9 && hours <= 6, `valid for ${hours} h, expected 6`);
  // Only the sha256 is stored: the secret appears nowhere in the database file.
  const sha = createHash('sha256').update(first).digest('hex');
  const stored = await store.db.selectFrom('agent_enrol_tokens').select('token_hash').execute();
  assert.deepEqual(stored.map((r) => r.token_hash), [sha]);
  if (store.dialect === 'sqlite') assert.equal(readFileSync(join(dir, 'fleetboot.db')).includes(Buffer.from(first)), false, 'the token secret is in the database file');

  // The agent asks again (a lost answer, a restart): a new token, the first one revoked.
  const again = await getSpec(taskToken);
  const second = again.enrol?.token ?? '';
  assert.match(second, ENROL_TOKEN_RE);
  assert.notEqual(second, first);
  list = await tokens();
  assert.equal(list.length, 2);
  assert.notEqual(list[0]?.['revokedAt'], null, 'the first token was not revoked');
  assert.equal(list[1]?.['revokedAt'], null);
  const old = await new FakeAgent(ident([M1])).enroll(first);
  assert.equal(old.status, 401, JSON.stringify(old.body));
  assert.match(String(old.body['message']), /revoked/);

  // Another machine (not reporting M1) is refused, and the token is not spent.
  const other = await new FakeAgent(ident([M2])).enroll(second);
  assert.equal(other.status, 401, JSON.stringify(other.body));
  assert.equal(other.body['message'], `This enrolment token (written by deploy task #${taskId}) enrols only the machine with MAC ${M1}; this agent reports ${M2}`);
  assert.equal((await tokens())[1]?.['usesLeft'], 1);

  // The deployed machine enrols as its host, with no admin step; once.
  const mine = new FakeAgent(ident([M1, '52:54:00:e7:00:99']));
  const ok = await mine.enroll(second);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body['state'], 'active');
  assert.deepEqual(ok.body['host'], { mac: M1, name: null });
  const twice = await new FakeAgent(ident([M1])).enroll(second);
  assert.equal(twice.status, 401);
  assert.match(String(twice.body['message']), /used already/);
  const agents = await call('GET', `/api/v1/agents?mac=${M1}`);
  assert.deepEqual((agents.body['agents'] as Json[]).map((a) => [a['id'], a['state']]), [[(ok.body['agentId'] as string), 'active']]);

  // The agent reports where it wrote the file: the task's message.
  const h = { authorization: `Bearer ${taskToken}` };
  const id = await app.inject({ method: 'POST', url: '/agent/v1/task/identity', headers: h, payload: IDENTITY });
  assert.equal(id.statusCode, 200, id.body);
  const bad = await app.inject({ method: 'POST', url: '/agent/v1/task/complete', headers: h, payload: { type: 'deploy', verified: true, enrol: { written: 7, message: 'x' } } });
  assert.equal(bad.statusCode, 400, bad.body);
  const done = await app.inject({ method: 'POST', url: '/agent/v1/task/complete', headers: h, payload: { type: 'deploy', verified: true, enrol: { written: '/dev/vda1', message: 'enrolment token written to /dev/vda1 (ext4, /var/lib/fleetboot-agent/enrol.json)' } } });
  assert.equal(done.statusCode, 200, done.body);
  const t = await call('GET', `/api/v1/tasks/${taskId}`);
  assert.equal(t.body['state'], 'done');
  assert.equal(t.body['message'], 'enrolment token written to /dev/vda1 (ext4, /var/lib/fleetboot-agent/enrol.json)');
});

test('a deploy without enrol gets enrol: null and makes no token', async () => {
  const before = (await tokens()).length;
  const created = await call('POST', '/api/v1/tasks', { type: 'deploy', mac: M2, image: 'deb12' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal(created.body['enrol'], false);
  const { spec } = await bootAndStart(M2);
  assert.equal(spec.enrol, null);
  assert.equal((await tokens()).length, before);
  const c = await call('POST', `/api/v1/tasks/${String(created.body['id'])}/cancel`);
  assert.equal(c.status, 200, JSON.stringify(c.body));
});

test('a deploy with enrol that starts while HTTPS is off fails before anything is written', async () => {
  const created = await call('POST', '/api/v1/tasks', { type: 'deploy', mac: M2, image: 'deb12', enrol: true });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  // The machine boots while the server runs without HTTPS (restarted with https.enabled false).
  const script = (await plainApp.inject({ method: 'GET', url: `/boot/decide?mac=${M2.replace(/:/g, '-')}&platform=pcbios` })).body;
  const taskToken = /fleetboot\.token=([0-9a-f]+)/.exec(script)?.[1] ?? '';
  const r = await plainApp.inject({ method: 'GET', url: '/agent/v1/task', headers: { authorization: `Bearer ${taskToken}` } });
  assert.equal(r.statusCode, 409, r.body);
  const t = await call('GET', `/api/v1/tasks/${String(created.body['id'])}`);
  assert.equal(t.body['state'], 'failed');
  assert.match(String(t.body['error']), /asked to enrol the machine's endpoint agent, but this server runs without HTTPS .*nothing was written/);
});

test('no answer lost a property to its response schema', () => {
  assert.deepEqual(watch.lost, [], 'answers lost these properties to their response schemas: declare them (src/http/schemas/)');
});
