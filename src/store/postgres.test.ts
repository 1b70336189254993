import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collationProblem, databaseUrlProblem, inspectPostgres, isPostgresUrl, redactUrl } from './postgres.js';
import { createTestDatabase, testPostgres } from './test-postgres.js';
import { openStore } from './db.js';
import { loadConfig } from '../config/config.js';
import { judgeStore } from '../doctor/judge.js';

test('store URLs: recognised, checked without echoing a password, redacted', () => {
  assert.equal(isPostgresUrl('postgres://h/db'), true);
  assert.equal(isPostgresUrl('postgresql://h/db'), true);
  assert.equal(isPostgresUrl('mysql://h/db'), false);
  assert.equal(databaseUrlProblem('postgres://fleet@db.example/fleetboot'), null);
  assert.equal(databaseUrlProblem('postgres:///fleetboot?host=/run/postgresql'), null);
  assert.match(databaseUrlProblem('postgres://db.example/') ?? '', /must name a database/);
  assert.match(databaseUrlProblem('postgres://db.example/a/b') ?? '', /not a single database name/);
  assert.match(databaseUrlProblem('sqlite:///x') ?? '', /must be a PostgreSQL URL/);
  assert.equal(redactUrl('postgres://fleet:s3cret@db.example:5433/fleetboot'), 'postgres://fleet:***@db.example:5433/fleetboot');
  assert.throws(
    () => loadConfig({ overrides: { store: { url: 'postgres://fleet:s3cret@db.example/' } } }),
    (e: unknown) => e instanceof Error && /'store\.url' must name a database/.test(e.message) && !e.message.includes('s3cret'),
  );
  assert.equal(loadConfig({ overrides: { store: { url: 'postgres://db.example/fb' } } }).store.url, 'postgres://db.example/fb');
  assert.equal(collationProblem('C'), null);
  assert.match(collationProblem('en_US.UTF-8') ?? '', /not "C"/);
});

test('a PostgreSQL that does not answer: openStore says which (password hidden); doctor fails the store check', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-pg-down-'));
  try {
    const url = `postgres://fleet:s3cret@/fb?host=${encodeURIComponent(dir)}&port=5999`;
    await assert.rejects(openStore(dir, { url }), (e: unknown) => e instanceof Error && /Cannot connect to the database postgres:\/\/fleet:\*\*\*@/.test(e.message) && !e.message.includes('s3cret'));
    const checks = judgeStore({ dialect: 'postgres', location: redactUrl(url), error: 'ECONNREFUSED', postgres: null });
    assert.equal(checks[0]?.status, 'fail');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("doctor's facts about a PostgreSQL store: version, round trip, collation, tables", async () => {
  const server = await testPostgres();
  const db = await createTestDatabase(server);
  const before = await inspectPostgres(db.url);
  assert.equal(before.collation, 'C');
  assert.equal(before.migrated, false);
  assert.match(before.serverVersion, /^\d+/);
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-pg-facts-'));
  const s = await openStore(dir, { url: db.url });
  await s.close();
  const after = await inspectPostgres(db.url);
  assert.equal(after.migrated, true);
  const checks = judgeStore({ dialect: 'postgres', location: redactUrl(db.url), error: null, postgres: after });
  assert.deepEqual(checks.map((c) => c.status), [after.roundTripMs > 20 ? 'warn' : 'ok']);
  assert.equal(judgeStore({ dialect: 'postgres', location: 'x', error: null, postgres: { ...after, collation: 'en_US.UTF-8' } }).find((c) => c.id === 'store:collation')?.status, 'warn');
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
});
