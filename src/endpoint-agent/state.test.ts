import { strict as assert } from 'node:assert';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AgentError } from './errors.js';
import { publicKeyB64, StateDir, stamp, type AgentRecord } from './state.js';

const roots: string[] = [];
after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'fa-state-'));
  roots.push(d);
  return d;
}

const rec: AgentRecord = {
  server: 'https://127.0.0.1:8443',
  agentId: '0123456789abcdef0123456789abcdef',
  identity: { macs: ['52:54:00:00:00:01'], smbiosUuid: null, smbiosSerial: null, hostname: 'h', os: null, agentVersion: '0.1.0' },
  packageKey: 'AAAA',
  state: 'pending',
  enrolledAt: '2026-12-01T10:00:00.000Z',
};

test('StateDir.ensure() makes a 0700 directory with runs/, and refuses one open to others', () => {
  const dir = join(tmp(), 'agent');
  const s = new StateDir(dir);
  s.ensure();
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(join(dir, 'runs')).mode & 0o777, 0o700);
  chmodSync(dir, 0o755);
  assert.throws(() => s.ensure(), (e: unknown) => e instanceof AgentError && /mode 0755.*chmod 700/.test(e.message));
});

test('a key is written 0600, read back, and refused when others can read it', () => {
  const s = new StateDir(join(tmp(), 'agent'));
  s.ensure();
  const key = s.newKey();
  assert.equal(statSync(s.path('key.pem')).mode & 0o777, 0o600);
  const again = s.readKey();
  assert.ok(again);
  assert.equal(publicKeyB64(again), publicKeyB64(key));
  chmodSync(s.path('key.pem'), 0o644);
  assert.throws(() => s.readKey(), (e: unknown) => e instanceof AgentError && /key\.pem is open to other users \(mode 0644\): fix it with chmod 600/.test(e.message));
});

test('agent.json round-trips; moveAside renames it, the key and runs/ with a time stamp and keeps ca.pem', () => {
  const s = new StateDir(join(tmp(), 'agent'));
  s.ensure();
  s.writeAgent(rec);
  assert.deepEqual(s.readAgent(), rec);
  s.newKey();
  s.writeCa('ca');
  writeFileSync(join(s.runsDir, '7.json'), '{}');
  const now = new Date('2026-12-01T10:15:00.123Z');
  const moved = s.moveAside(now);
  assert.equal(stamp(now), '20261201T101500Z');
  assert.deepEqual(moved.map((p) => p.slice(s.dir.length + 1)).sort(), ['agent.json.20261201T101500Z', 'key.pem.20261201T101500Z', 'runs.20261201T101500Z']);
  assert.equal(s.readAgent(), null);
  assert.equal(s.readKey(), null);
  assert.equal(s.readCa(), 'ca');
  assert.deepEqual(readdirSync(s.runsDir), []);
  // Twice in the same second: nothing is overwritten.
  s.writeAgent(rec);
  assert.equal(s.moveAside(now)[0]?.endsWith('.20261201T101500Z-1'), true);
});

test('markers(): unreadable markers and run directories without a marker are removed', () => {
  const s = new StateDir(join(tmp(), 'agent'));
  s.ensure();
  s.writeMarker({ workId: 5, item: { id: 5, kind: 'inventory' }, startedAt: '2026-12-01T10:00:00.000Z', result: null });
  writeFileSync(join(s.runsDir, '6.json'), 'not json');
  mkdirSync(s.runDirOf(9));
  mkdirSync(s.runDirOf(5));
  const bad: string[] = [];
  const ms = s.markers((p) => bad.push(p));
  assert.deepEqual(ms.map((m) => m.workId), [5]);
  assert.equal(bad.length, 1);
  assert.equal(existsSync(s.runDirOf(9)), false);
  assert.equal(existsSync(s.runDirOf(5)), true);
  s.removeRun(5);
  assert.deepEqual(readdirSync(s.runsDir), []);
});

test('enrol.json is read and removed', () => {
  const s = new StateDir(join(tmp(), 'agent'));
  s.ensure();
  assert.equal(s.readEnrolFile(), null);
  writeFileSync(s.path('enrol.json'), JSON.stringify({ server: 'https://x', caSha256: 'ab', token: '' }));
  assert.deepEqual(s.readEnrolFile(), { server: 'https://x', caSha256: 'ab', token: null });
  s.removeEnrolFile();
  assert.equal(s.readEnrolFile(), null);
});
