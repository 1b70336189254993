import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { caCertificate, colonHex, EndpointClient, fetchPinnedCa, normaliseFingerprint, normaliseServer, RequestError } from './client.js';
import { enroll } from './enroll.js';
import { AgentError } from './errors.js';
import { silentAgentLog } from './log.js';
import { LinuxOs } from './os-linux.js';
import { StateDir } from './state.js';
import { FakeServer, makePki, type Pki } from './testdata/fake-server.js';

let pki: Pki;
let good: FakeServer;
let goodUrl: string;
let impostor: FakeServer;
let impostorUrl: string;
const dirs: string[] = [];

before(async () => {
  pki = makePki();
  dirs.push(pki.dir);
  good = new FakeServer(pki.leafKey, pki.leafCert, pki.caPem);
  goodUrl = await good.listen();
  // Another CA's server that even serves our CA at /ca: only the pinned CA's signature makes a server trusted.
  impostor = new FakeServer(pki.otherLeafKey, pki.otherLeafCert, pki.caPem);
  impostorUrl = await impostor.listen();
});
after(async () => {
  await good.close();
  await impostor.close();
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

test('normaliseFingerprint() accepts hex with or without colons, in any case', () => {
  const hex = 'ab'.repeat(32);
  assert.equal(normaliseFingerprint(hex.toUpperCase()), hex);
  assert.equal(normaliseFingerprint(colonHex(hex)), hex);
  assert.equal(normaliseFingerprint(colonHex(hex).toLowerCase()), hex);
  assert.throws(() => normaliseFingerprint('abcd'), (e: unknown) => e instanceof AgentError && e.code === 'USAGE');
});

test('normaliseServer() wants https and no query', () => {
  assert.equal(normaliseServer('https://fb.example:8443/'), 'https://fb.example:8443');
  assert.throws(() => normaliseServer('http://fb.example'), /https/);
  assert.throws(() => normaliseServer('https://fb.example/?x=1'), /no user, query/);
});

test('fetchPinnedCa() returns the CA when its SHA-256 matches, and names both fingerprints when not', async () => {
  const pem = await fetchPinnedCa(goodUrl, pki.caSha256);
  assert.equal(caCertificate(pem).sha256, pki.caSha256);
  await assert.rejects(fetchPinnedCa(goodUrl, pki.otherCaSha256), (e: unknown) => {
    assert.ok(e instanceof AgentError);
    assert.equal(e.code, 'CA_MISMATCH');
    assert.ok(e.message.includes(colonHex(pki.caSha256)), e.message);
    assert.ok(e.message.includes(colonHex(pki.otherCaSha256)), e.message);
    return true;
  });
});

test('the pinned client accepts a server certificate of the pinned CA and refuses one of another CA', async () => {
  const ok = new EndpointClient({ server: goodUrl, caPem: pki.caPem });
  const bad = new EndpointClient({ server: impostorUrl, caPem: pki.caPem });
  try {
    const answer = await ok.json('POST', '/challenge', { body: {} });
    assert.ok(typeof answer === 'object' && answer !== null && 'nonce' in answer);
    await assert.rejects(bad.json('POST', '/challenge', { body: {} }), (e: unknown) => {
      assert.ok(e instanceof RequestError);
      assert.equal(e.status, null);
      assert.match(e.message, /certificate/i);
      return true;
    });
    assert.equal(impostor.requests.filter((r) => r.path === '/challenge').length, 0, 'nothing reached the impostor');
  } finally {
    ok.close();
    bad.close();
  }
});

test('the pinned client trusts only the pinned CA: pinned to another CA, it refuses the good server', async () => {
  // Trusting only `ca`: a client pinned to the other CA refuses the good server too.
  const c = new EndpointClient({ server: goodUrl, caPem: pki.otherCaPem });
  try {
    await assert.rejects(c.json('POST', '/challenge', { body: {} }), RequestError);
  } finally {
    c.close();
  }
});

test('enroll() with a wrong --ca-sha256 is refused and leaves no key or enrolment', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fa-enroll-'));
  dirs.push(dir);
  const state = new StateDir(join(dir, 'state'));
  const os = new LinuxOs({ agentVersion: '0.1.0', log: silentAgentLog });
  await assert.rejects(enroll({ server: goodUrl, caSha256: colonHex(pki.otherCaSha256), token: null, state, os, log: silentAgentLog }), (e: unknown) => e instanceof AgentError && e.code === 'CA_MISMATCH' && e.exitCode === 4);
  assert.equal(existsSync(state.path('key.pem')), false);
  assert.equal(existsSync(state.path('agent.json')), false);
  assert.equal(existsSync(state.path('ca.pem')), false);
  const rec = await enroll({ server: goodUrl, caSha256: pki.caSha256.toUpperCase(), token: null, state, os, log: silentAgentLog });
  assert.equal(rec.state, 'pending');
  assert.equal(good.agents.get(rec.agentId)?.state, 'pending');
  assert.equal(state.readCa(), caCertificate(pki.caPem).pem);
});
