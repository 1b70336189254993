import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { EndpointAgent } from './agent.js';
import { enroll } from './enroll.js';
import { AgentError } from './errors.js';
import { memoryAgentLog, silentAgentLog } from './log.js';
import { main } from './main.js';
import { LinuxOs } from './os-linux.js';
import { StateDir } from './state.js';
import { FakeServer, makePki, type Pki } from './testdata/fake-server.js';

let pki: Pki;
let srv: FakeServer;
let url: string;
const dirs: string[] = [];

before(async () => {
  pki = makePki();
  dirs.push(pki.dir);
  srv = new FakeServer(pki.leafKey, pki.leafCert, pki.caPem);
  url = await srv.listen();
});
after(async () => {
  await srv.close();
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'fa-agent-'));
  dirs.push(d);
  return d;
}

function linux(hooks: { reboot?: string[]; hostname?: string[] } = {}): LinuxOs {
  return new LinuxOs({ agentVersion: '0.1.0', log: silentAgentLog, rebootCommand: hooks.reboot ?? ['true'], hostnameCommand: hooks.hostname ?? ['true'] });
}

async function enrolled(token: string | null = 'good-token-0123456789'): Promise<{ dir: string; state: StateDir; agentId: string }> {
  const dir = tmp();
  const state = new StateDir(join(dir, 'state'));
  const rec = await enroll({ server: url, caSha256: pki.caSha256, token, state, os: linux(), log: silentAgentLog });
  return { dir, state, agentId: rec.agentId };
}

test('run --once enrols with enrol.json, opens a session, does inventory, hostname, a package and a reboot, and reports each', async () => {
  const dir = tmp();
  const stateDir = join(dir, 'state');
  const state = new StateDir(stateDir);
  state.ensure();
  writeFileSync(state.path('enrol.json'), JSON.stringify({ server: url, caSha256: pki.caSha256, token: 'good-token-0123456789' }));
  const rebooted = join(dir, 'rebooted');
  const named = join(dir, 'hostname');
  const p = srv.package({ 'setup.sh': '#!/bin/sh\necho installing\nexit 194\n' }, ['setup.sh']);
  srv.anyWork = [
    { id: 101, kind: 'inventory' },
    { id: 102, kind: 'hostname', name: 'pc-017' },
    { id: 103, kind: 'package', package: p },
    { id: 104, kind: 'reboot', reason: 'kernel update', taskId: null },
  ];
  const lines: string[] = [];
  const code = await main(
    ['run', '--once', '--state-dir', stateDir, '--reboot-command', JSON.stringify(['sh', '-c', `echo x >> ${rebooted}`]), '--hostname-command', JSON.stringify(['sh', '-c', `printf %s "$1" > ${named}`, 'sh'])],
    { stdout: (t) => lines.push(t) },
  );
  assert.equal(code, 0, lines.join(''));
  const rec = state.readAgent();
  assert.ok(rec);
  assert.equal(rec.state, 'active');
  assert.equal(existsSync(state.path('enrol.json')), false, 'enrol.json is deleted after use');
  const inv = srv.results.get(101);
  assert.equal(inv?.status, 'succeeded');
  assert.ok(inv?.inventory && inv.inventory.cpu.threads >= 1);
  assert.equal(srv.results.get(102)?.status, 'succeeded');
  assert.equal(readFileSync(named, 'utf8'), 'pc-017');
  const pr = srv.results.get(103);
  assert.equal(pr?.status, 'succeeded');
  assert.equal(pr?.exitCode, 194);
  assert.equal(pr?.rebootRequested, true);
  assert.equal(pr?.stdout, 'installing\n');
  assert.equal(srv.results.get(104)?.message, 'rebooting: kernel update');
  assert.equal(readFileSync(rebooted, 'utf8'), 'x\nx\n', 'one reboot for the package, one for the reboot work');
  assert.deepEqual(readdirSync(state.runsDir), [], 'markers and run directories removed after the reports');
  // Each line is JSON with time, level, msg.
  for (const l of lines.join('').trim().split('\n')) {
    const o = JSON.parse(l) as Record<string, unknown>;
    assert.ok(typeof o['time'] === 'string' && typeof o['level'] === 'string' && typeof o['msg'] === 'string', l);
  }
});

test('run --once: a marker without a result is reported interrupted, listed as running, and not run again', async () => {
  const { dir, state, agentId } = await enrolled();
  const canary = join(dir, 'canary');
  const p = srv.package({ 'x.sh': `#!/bin/sh\ntouch ${canary}\n` }, ['./x.sh']);
  state.writeMarker({ workId: 42, item: { id: 42, kind: 'package', package: p }, startedAt: '2026-12-01T10:00:00.000Z', result: null });
  // The server still lists it (it has no result yet): the agent must not run it again.
  srv.queue(agentId, { id: 42, kind: 'package', package: p });
  const agent = new EndpointAgent({ state, os: linux(), log: silentAgentLog, once: true });
  await agent.once();
  agent.close();
  assert.equal(srv.results.get(42)?.status, 'interrupted');
  assert.equal(existsSync(canary), false);
  const poll = srv.requests.filter((r) => r.path === '/work').pop();
  assert.equal(poll?.query.get('running'), '42');
  assert.deepEqual(readdirSync(state.runsDir), []);
});

test('a report the server did not acknowledge stays in its marker and is sent after a restart', async () => {
  const { state, agentId } = await enrolled();
  srv.queue(agentId, { id: 51, kind: 'inventory' });
  for (let i = 0; i < 3; i++) srv.force.push({ route: 'POST /work/51/result', status: 503, error: 'BUSY', retryAfter: '0' });
  const a1 = new EndpointAgent({ state, os: linux(), log: silentAgentLog, once: true, backoff: { baseMs: 5, capMs: 20 } });
  await assert.rejects(a1.once(), /report of work 51 was not accepted/);
  a1.close();
  assert.equal(srv.results.has(51), false);
  const m = state.markers();
  assert.equal(m[0]?.result?.status, 'succeeded');
  const a2 = new EndpointAgent({ state, os: linux(), log: silentAgentLog, once: true });
  await a2.once();
  a2.close();
  assert.equal(srv.results.get(51)?.status, 'succeeded');
  assert.deepEqual(readdirSync(state.runsDir), []);
});

test('a state directory enrolled on another machine (cloned disk) is moved aside and the agent enrols again as pending', async () => {
  const { state, agentId } = await enrolled();
  const rec = state.readAgent();
  assert.ok(rec);
  state.writeAgent({ ...rec, identity: { ...rec.identity, macs: ['52:54:00:99:99:99'], smbiosUuid: 'another-machine' } });
  const log = memoryAgentLog();
  const agent = new EndpointAgent({ state, os: linux(), log, once: true });
  await agent.once();
  agent.close();
  const now = state.readAgent();
  assert.ok(now);
  assert.notEqual(now.agentId, agentId, 'a fresh key');
  assert.equal(now.state, 'pending');
  assert.ok(readdirSync(state.dir).some((n) => /^agent\.json\.\d{8}T\d{6}Z$/.test(n)), 'old agent.json kept with a time stamp');
  assert.ok(readdirSync(state.dir).some((n) => /^key\.pem\.\d{8}T\d{6}Z$/.test(n)));
  assert.ok(log.entries.some((e) => /enrolled on another machine/.test(e.msg)));
  assert.equal(srv.agents.get(now.agentId)?.token, null);
});

test('401 IDENTITY_CHANGED makes the agent enrol again, pending, with a fresh key', async () => {
  const { state, agentId } = await enrolled();
  srv.force.push({ route: 'GET /work', status: 401, error: 'IDENTITY_CHANGED' });
  const agent = new EndpointAgent({ state, os: linux(), log: silentAgentLog, once: true });
  await agent.once();
  agent.close();
  const now = state.readAgent();
  assert.ok(now && now.agentId !== agentId && now.state === 'pending');
});

test('401 REVOKED: run --once stops with AgentError REVOKED (exit 5) and does no work', async () => {
  const { state, agentId } = await enrolled();
  srv.queue(agentId, { id: 61, kind: 'inventory' });
  (srv.agents.get(agentId) as { state: string }).state = 'revoked';
  const agent = new EndpointAgent({ state, os: linux(), log: silentAgentLog, once: true });
  await assert.rejects(agent.once(), (e: unknown) => e instanceof AgentError && e.code === 'REVOKED' && e.exitCode === 5);
  agent.close();
  assert.equal(srv.results.has(61), false);
});

test('run: 503s are retried with backoff, then work is done; an expired session is renewed', async () => {
  const { state, agentId } = await enrolled();
  srv.force.push({ route: 'GET /work', status: 503, error: 'BUSY', retryAfter: '0' }, { route: 'GET /work', status: 503, error: 'BUSY' });
  srv.force.push({ route: 'POST /work/71/result', status: 401, error: 'SESSION_EXPIRED' });
  srv.queue(agentId, { id: 71, kind: 'inventory' });
  const ac = new AbortController();
  const log = memoryAgentLog();
  const agent = new EndpointAgent({ state, os: linux(), log, signal: ac.signal, random: () => 0, backoff: { baseMs: 10, capMs: 50 } });
  const done = agent.run();
  for (let i = 0; i < 100 && !srv.results.has(71); i++) await new Promise((r) => setTimeout(r, 50));
  ac.abort();
  await done;
  assert.equal(srv.results.get(71)?.status, 'succeeded');
  assert.equal(log.entries.filter((e) => e.msg === 'poll failed: retrying').length, 2);
  assert.ok(log.entries.some((e) => e.msg === 'session expired: opening a new one'));
});

test('run --long-poll asks with wait=longPollSeconds and again at once after each answer', async () => {
  const { state } = await enrolled();
  srv.longPollSeconds = 2;
  const before = srv.requests.length;
  const ac = new AbortController();
  const agent = new EndpointAgent({ state, os: linux(), log: silentAgentLog, signal: ac.signal, longPoll: true, random: () => 0 });
  const done = agent.run();
  await new Promise((r) => setTimeout(r, 500));
  ac.abort();
  await done;
  srv.longPollSeconds = 0;
  const polls = srv.requests.slice(before).filter((r) => r.path === '/work');
  assert.ok(polls.length >= 3, `${polls.length} polls`);
  assert.ok(polls.slice(1).every((p) => p.query.get('wait') === '2'));
});

test('run exits with code 3 and one clear message when not enrolled', async () => {
  const dir = tmp();
  await assert.rejects(main(['run', '--once', '--state-dir', join(dir, 's')], { stdout: () => {} }), (e: unknown) => e instanceof AgentError && e.exitCode === 3 && /not enrolled/.test(e.message));
});
