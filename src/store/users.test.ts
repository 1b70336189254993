/**
 * Users, sessions, API tokens and the audit log in a real SQLite file; the
 * migration's SQL on PostgreSQL (recorded, not run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DummyDriver, Kysely, MysqlAdapter, MysqlQueryCompiler, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import { FleetbootError } from '../lib/errors.js';
import {
  appendAudit,
  countUsers,
  createApiToken,
  createSession,
  createUser,
  deleteUser,
  getUser,
  listApiTokens,
  listAudit,
  listSessions,
  listUsers,
  revokeApiToken,
  revokeSession,
  sessionForAuth,
  setPasswordHash,
  tokenForAuth,
  touchSession,
  updateUser,
  userWithPasswordHash,
} from './index.js';
import { migrations } from './migrations/index.js';
import { withTempStore } from './temp-store.js';

const H = 'scrypt$1024$8$1$AAAAAAAAAAAAAAAAAAAAAA$' + 'A'.repeat(86);
const code = (err: unknown): string => (err instanceof FleetbootError ? err.code : String(err));

test('users: unique valid names, roles read back, the hash kept apart from the user', async () => {
  await withTempStore('users', async (s) => {
    assert.equal(await countUsers(s.db), 0);
    const a = await createUser(s.db, { name: 'alice', role: 'admin', passwordHash: H, mustChangePassword: true });
    assert.deepEqual([a.name, a.role, a.disabledAt, a.mustChangePassword], ['alice', 'admin', null, true]);
    assert.ok(!('passwordHash' in a));
    await assert.rejects(createUser(s.db, { name: 'alice', role: 'viewer', passwordHash: H, mustChangePassword: false }), (e) => code(e) === 'CONFLICT');
    await assert.rejects(createUser(s.db, { name: '../x', role: 'viewer', passwordHash: H, mustChangePassword: false }), /Invalid user name "\.\.\/x"/);
    await createUser(s.db, { name: 'bob', role: 'viewer', passwordHash: H, mustChangePassword: false });
    assert.deepEqual((await listUsers(s.db)).map((u) => `${u.name}:${u.role}`), ['alice:admin', 'bob:viewer']);
    assert.equal((await userWithPasswordHash(s.db, 'alice'))?.passwordHash, H);
    assert.equal(await userWithPasswordHash(s.db, 'nobody'), null);
    assert.equal(await userWithPasswordHash(s.db, 'not a name!'), null, 'an invalid name is just unknown');
    // A row with a role this version does not know is corrupt: refused by name, not guessed.
    await s.db.updateTable('users').set({ role: 'root' }).where('name', '=', 'bob').execute();
    await assert.rejects(getUser(s.db, 'bob'), /Unknown role "root"/);
  });
});

test('the last enabled admin cannot be deleted, demoted or disabled; another admin makes it possible', async () => {
  await withTempStore('last-admin', async (s) => {
    await createUser(s.db, { name: 'root1', role: 'admin', passwordHash: H, mustChangePassword: false });
    await createUser(s.db, { name: 'op', role: 'operator', passwordHash: H, mustChangePassword: false });
    for (const [what, run] of [
      ['delete', () => deleteUser(s.db, 'root1')],
      ['make operator of', () => updateUser(s.db, 'root1', { role: 'operator' })],
      ['disable', () => updateUser(s.db, 'root1', { disabled: true })],
    ] as const) {
      await assert.rejects(run(), new RegExp(`Cannot ${what} 'root1': it is the last enabled admin`));
    }
    assert.equal((await getUser(s.db, 'root1'))?.role, 'admin', 'nothing changed (the transaction rolled back)');
    assert.equal((await getUser(s.db, 'root1'))?.disabledAt, null);
    // Others may come and go while it stays.
    await updateUser(s.db, 'op', { role: 'viewer' });
    await deleteUser(s.db, 'op');
    // A disabled admin does not count as one.
    await createUser(s.db, { name: 'root2', role: 'admin', passwordHash: H, mustChangePassword: false });
    await updateUser(s.db, 'root2', { disabled: true });
    await assert.rejects(deleteUser(s.db, 'root1'), /last enabled admin/);
    await updateUser(s.db, 'root2', { disabled: false });
    await updateUser(s.db, 'root1', { role: 'viewer' });
    assert.equal((await getUser(s.db, 'root1'))?.role, 'viewer');
    await assert.rejects(deleteUser(s.db, 'root2'), /last enabled admin/);
    await assert.rejects(updateUser(s.db, 'nobody', { role: 'admin' }), (e) => code(e) === 'NOT_FOUND');
  });
});

test('sessions: by the hash of the secret, touched forward only, listed while open, revoked; they go with their user', async () => {
  await withTempStore('sessions', async (s) => {
    const u = await createUser(s.db, { name: 'carol', role: 'operator', passwordHash: H, mustChangePassword: false });
    const t0 = '2026-12-08T10:00:00.000Z';
    await createSession(s.db, { id: 'a'.repeat(64), userId: u.id, csrfToken: 'c1', createdAt: t0, expiresAt: '2026-12-08T22:00:00.000Z', ip: '10.0.0.9', userAgent: 'test' });
    await createSession(s.db, { id: 'b'.repeat(64), userId: u.id, csrfToken: 'c2', createdAt: t0, expiresAt: '2026-12-08T22:00:00.000Z', ip: null, userAgent: null });
    const found = await sessionForAuth(s.db, 'a'.repeat(64));
    assert.equal(found?.csrfToken, 'c1');
    assert.equal(found?.user.name, 'carol');
    assert.equal(found?.session.lastSeenAt, t0);
    assert.equal(await sessionForAuth(s.db, 'c'.repeat(64)), null);
    await touchSession(s.db, 'a'.repeat(64), '2026-12-08T10:20:00.000Z');
    await touchSession(s.db, 'a'.repeat(64), '2026-12-08T10:10:00.000Z');
    assert.equal((await sessionForAuth(s.db, 'a'.repeat(64)))?.session.lastSeenAt, '2026-12-08T10:20:00.000Z', 'never moved back');
    // At 10:25 with a 10-minute idle timeout only the touched one is open.
    const open = await listSessions(s.db, { now: '2026-12-08T10:25:00.000Z', idleSince: '2026-12-08T10:15:00.000Z' });
    assert.deepEqual(open.map((x) => x.id), ['a'.repeat(64)]);
    assert.deepEqual(await listSessions(s.db, { now: '2026-12-08T23:00:00.000Z', idleSince: '2026-12-08T00:00:00.000Z' }), [], 'past the absolute expiry');
    const r = await revokeSession(s.db, 'a'.repeat(64), '2026-12-08T10:30:00.000Z');
    assert.equal(r.revokedAt, '2026-12-08T10:30:00.000Z');
    assert.equal((await revokeSession(s.db, 'a'.repeat(64), '2026-12-08T11:00:00.000Z')).revokedAt, '2026-12-08T10:30:00.000Z', 'revoking twice keeps the first time');
    await assert.rejects(revokeSession(s.db, 'd'.repeat(64), t0), (e) => code(e) === 'NOT_FOUND');
    // A password change revokes every session but the one kept.
    await setPasswordHash(s.db, 'carol', H, { mustChange: false, keepSessionId: 'a'.repeat(64), at: '2026-12-08T12:00:00.000Z' });
    assert.equal((await sessionForAuth(s.db, 'b'.repeat(64)))?.session.revokedAt, '2026-12-08T12:00:00.000Z');
    // A login a day after they ended prunes them.
    await createSession(s.db, { id: 'e'.repeat(64), userId: u.id, csrfToken: 'c3', createdAt: '2026-12-10T10:00:00.000Z', expiresAt: '2026-12-10T22:00:00.000Z', ip: null, userAgent: null });
    assert.deepEqual(await s.db.selectFrom('sessions').select('id').orderBy('id').execute(), [{ id: 'e'.repeat(64) }]);
    await createUser(s.db, { name: 'admin', role: 'admin', passwordHash: H, mustChangePassword: false });
    await deleteUser(s.db, 'carol');
    assert.deepEqual(await s.db.selectFrom('sessions').select((e) => e.fn.countAll<number>().as('n')).executeTakeFirst(), { n: 0 }, 'gone with their user');
  });
});

test('disabling a user revokes its sessions; enabling it again does not bring them back', async () => {
  await withTempStore('disable', async (s) => {
    await createUser(s.db, { name: 'admin', role: 'admin', passwordHash: H, mustChangePassword: false });
    const u = await createUser(s.db, { name: 'dave', role: 'viewer', passwordHash: H, mustChangePassword: false });
    await createSession(s.db, { id: 'f'.repeat(64), userId: u.id, csrfToken: 'c', createdAt: '2026-12-08T10:00:00.000Z', expiresAt: '2026-12-08T22:00:00.000Z', ip: null, userAgent: null });
    const d = await updateUser(s.db, 'dave', { disabled: true }, '2026-12-08T11:00:00.000Z');
    assert.equal(d.disabledAt, '2026-12-08T11:00:00.000Z');
    assert.equal((await sessionForAuth(s.db, 'f'.repeat(64)))?.session.revokedAt, '2026-12-08T11:00:00.000Z');
    const e = await updateUser(s.db, 'dave', { disabled: false });
    assert.equal(e.disabledAt, null);
    assert.notEqual((await sessionForAuth(s.db, 'f'.repeat(64)))?.session.revokedAt, null);
  });
});

test("API tokens: role at most the owner's, names unique per user among unrevoked ones, found by hash, revoked, gone with their user", async () => {
  await withTempStore('tokens', async (s) => {
    const admin = await createUser(s.db, { name: 'admin', role: 'admin', passwordHash: H, mustChangePassword: false });
    const v = await createUser(s.db, { name: 'vic', role: 'viewer', passwordHash: H, mustChangePassword: false });
    const at = '2026-12-08T10:00:00.000Z';
    await assert.rejects(createApiToken(s.db, { userId: v.id, name: 'ci', role: 'operator', tokenHash: '1'.repeat(64), createdAt: at, expiresAt: null }), (e) => {
      assert.equal(code(e), 'FORBIDDEN');
      assert.match(String((e as Error).message), /A token of vic cannot have the role operator: vic is a viewer, and a token's role is at most its owner's/);
      return true;
    });
    const t = await createApiToken(s.db, { userId: v.id, name: 'ci', role: 'viewer', tokenHash: '1'.repeat(64), createdAt: at, expiresAt: '2027-01-01T00:00:00.000Z' });
    assert.deepEqual([t.user, t.name, t.role, t.expiresAt, t.revokedAt], ['vic', 'ci', 'viewer', '2027-01-01T00:00:00.000Z', null]);
    await assert.rejects(createApiToken(s.db, { userId: v.id, name: 'ci', role: 'viewer', tokenHash: '2'.repeat(64), createdAt: at, expiresAt: null }), /vic already has a token named 'ci'/);
    await createApiToken(s.db, { userId: admin.id, name: 'ci', role: 'operator', tokenHash: '3'.repeat(64), createdAt: at, expiresAt: null });
    assert.equal((await tokenForAuth(s.db, '1'.repeat(64)))?.user.name, 'vic');
    assert.equal(await tokenForAuth(s.db, '9'.repeat(64)), null);
    assert.deepEqual((await listApiTokens(s.db, { userId: v.id })).map((x) => x.name), ['ci']);
    assert.equal((await listApiTokens(s.db)).length, 2);
    await revokeApiToken(s.db, t.id, '2026-12-08T11:00:00.000Z');
    assert.equal((await tokenForAuth(s.db, '1'.repeat(64)))?.token.revokedAt, '2026-12-08T11:00:00.000Z');
    assert.deepEqual(await listApiTokens(s.db, { userId: v.id }), [], 'revoked ones are left out unless asked');
    assert.equal((await listApiTokens(s.db, { userId: v.id, includeRevoked: true })).length, 1);
    // The name is free again once the old token is revoked (a partial unique index).
    await createApiToken(s.db, { userId: v.id, name: 'ci', role: 'viewer', tokenHash: '4'.repeat(64), createdAt: at, expiresAt: null });
    await assert.rejects(s.db.insertInto('api_tokens').values({ user_id: v.id, name: 'ci', role: 'viewer', token_hash: '5'.repeat(64), created_at: 'x' }).execute(), /UNIQUE constraint failed|duplicate key value/);
    await assert.rejects(s.db.insertInto('api_tokens').values({ user_id: v.id, name: 'other', role: 'viewer', token_hash: '4'.repeat(64), created_at: 'x' }).execute(), /UNIQUE constraint failed: api_tokens.token_hash|duplicate key value violates unique constraint "api_tokens_token_hash/);
    await deleteUser(s.db, 'vic');
    assert.deepEqual(await s.db.selectFrom('api_tokens').select((e) => e.fn.countAll<number>().as('n')).where('user_id', '=', v.id).executeTakeFirst(), { n: 0 });
  });
});

test('audit log: appended, listed newest first with paging by id; the summary comes back as JSON', async () => {
  await withTempStore('audit', async (s) => {
    for (let i = 1; i <= 5; i++) {
      await appendAudit(s.db, { at: `2026-12-08T10:00:0${i}.000Z`, actor: 'local admin token', ip: '127.0.0.1', method: 'POST', route: '/api/v1/hosts', url: '/api/v1/hosts', status: 201, summary: { body: { mac: `m${i}` } } });
    }
    await appendAudit(s.db, { at: '2026-12-08T10:00:09.000Z', actor: 'anonymous', ip: null, method: 'DELETE', route: null, url: '/api/v1/nowhere', status: 404, summary: null });
    const page1 = await listAudit(s.db, { limit: 4 });
    assert.deepEqual(page1.map((e) => e.id), [6, 5, 4, 3]);
    assert.equal(page1[0]?.summary, null);
    assert.deepEqual(page1[1]?.summary, { body: { mac: 'm5' } });
    assert.deepEqual((await listAudit(s.db, { limit: 4, before: 3 })).map((e) => e.id), [2, 1]);
  });
});

/** A Kysely on `adapter` that runs nothing and records the SQL it is given. */
function recording(adapter: PostgresAdapter | MysqlAdapter): { db: Kysely<unknown>; sql: string[] } {
  const sql: string[] = [];
  const db = new Kysely<unknown>({
    dialect: {
      createAdapter: () => adapter,
      createDriver: () => new DummyDriver(),
      createIntrospector: (k) => new PostgresIntrospector(k),
      createQueryCompiler: () => (adapter instanceof PostgresAdapter ? new PostgresQueryCompiler() : new MysqlQueryCompiler()),
    },
    log: (e) => void sql.push(e.query.sql),
  });
  return { db, sql };
}

test('20261208T1200_users_sessions_audit on PostgreSQL: identity ids, a partial unique index; another dialect is refused by name', async () => {
  const m = migrations.find((x) => x.name === '20261208T1200_users_sessions_audit');
  assert.ok(m);
  const pg = recording(new PostgresAdapter());
  await m.up(pg.db);
  const all = pg.sql.join('\n');
  for (const table of ['users', 'api_tokens', 'audit_log']) assert.match(all, new RegExp(`create table "${table}" \\("id" integer generated by default as identity primary key`), table);
  assert.doesNotMatch(all, /autoincrement/i);
  assert.match(all, /create unique index "api_tokens_user_name_idx" on "api_tokens" \("user_id", "name"\) where "revoked_at" is null/);
  assert.match(all, /"user_id" integer not null references "users" \("id"\) on delete cascade/);
  const my = recording(new MysqlAdapter());
  await assert.rejects(m.up(my.db), /knows SQLite and PostgreSQL, not MysqlAdapter/);
  assert.deepEqual(my.sql, []);
});
