import { test } from 'node:test';
import { sqliteOf } from '../db.js';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DummyDriver, Kysely, MysqlAdapter, MysqlQueryCompiler, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import { addGroupMembers, createGroup, createHost, getJob, openStore } from '../index.js';
import { migrations } from './index.js';

const M = (n: number): string => `52:54:00:00:04:${n.toString(16).padStart(2, '0')}`;

test('20261207T1200_job_hosts: existing jobs, their tasks and sessions survive; group_name is nullable after', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-job-hosts-'));
  try {
    const old = await openStore(dir, { migrations: migrations.filter((m) => m.name < '20261207T1200') });
    for (const n of [1, 2, 3]) await createHost(old.db, { mac: M(n) });
    await createGroup(old.db, 'lab12');
    await addGroupMembers(old.db, 'lab12', [M(1), M(2)]);
    // Jobs and their tasks as the code of that time wrote them (SQL: today's createJob() writes today's columns).
    const oldJob = (request: object, state: string, wake: number): { id: number } => {
      const id = Number(sqliteOf(old).prepare("INSERT INTO jobs (type, group_name, request, created_at) VALUES ('inventory', 'lab12', ?, 'x')").run(JSON.stringify(request)).lastInsertRowid);
      for (const mac of [M(1), M(2)]) {
        sqliteOf(old)
          .prepare("INSERT INTO tasks (type, mac, state, options, created_at, updated_at, job_id, wake) VALUES ('inventory', ?, ?, '{\"disk\":null,\"table\":\"keep\"}', 'x', 'x', ?, ?)")
          .run(mac, state, id, wake);
      }
      return { id };
    };
    const first = oldJob({ type: 'inventory', group: 'lab12' }, 'cancelled', 0);
    const second = oldJob({ type: 'inventory', group: 'lab12', wake: true }, 'queued', 1);
    // A session that carries the second job (made by hand: no image is needed to check the link).
    sqliteOf(old)
      .prepare("INSERT INTO multicast_sessions (session, job_id, image, revision, address, port, state, expected, min_receivers, created_at) VALUES ('00000000000000aa', ?, 'win11', 1, '239.255.42.1', 9000, 'waiting', 2, 2, 'x')")
      .run(second.id);
    sqliteOf(old).prepare('UPDATE jobs SET multicast_session_id = 1 WHERE id = ?').run(second.id);
    // A job that was made and deleted: its id must not come back.
    sqliteOf(old).prepare("INSERT INTO jobs (id, type, group_name, request, created_at) VALUES (50, 'inventory', 'gone', '{}', 'x')").run();
    sqliteOf(old).prepare('DELETE FROM jobs WHERE id = 50').run();
    assert.throws(() => sqliteOf(old).prepare("INSERT INTO jobs (type, group_name, request, created_at) VALUES ('inventory', NULL, '{}', 'x')").run(), /NOT NULL constraint failed: jobs.group_name/);
    const jobsBefore = sqliteOf(old).prepare('SELECT * FROM jobs ORDER BY id').all();
    const tasksBefore = sqliteOf(old).prepare('SELECT id, job_id FROM tasks ORDER BY id').all();
    await old.close();

    const s = await openStore(dir);
    try {
      assert.deepEqual(sqliteOf(s).prepare('SELECT * FROM jobs ORDER BY id').all(), jobsBefore, 'every job row, as it was');
      assert.deepEqual(sqliteOf(s).prepare('SELECT id, job_id FROM tasks ORDER BY id').all(), tasksBefore, "each task still names its job (DROP TABLE's ON DELETE SET NULL was undone)");
      assert.deepEqual(sqliteOf(s).prepare('SELECT job_id FROM multicast_sessions').all(), [{ job_id: second.id }]);
      assert.deepEqual(sqliteOf(s).prepare('PRAGMA foreign_key_check').all(), []);
      assert.deepEqual(
        (sqliteOf(s).prepare("SELECT name, [notnull] AS nn FROM pragma_table_info('jobs') WHERE name IN ('group_name', 'type') ORDER BY name").all() as Array<{ name: string; nn: number }>).map((c) => [c.name, c.nn]),
        [['group_name', 0], ['type', 1]],
      );
      for (const table of ['tasks', 'multicast_sessions']) {
        const fk = sqliteOf(s).prepare(`SELECT "table", on_delete FROM pragma_foreign_key_list('${table}') WHERE "from" = 'job_id'`).all();
        assert.deepEqual(fk, [{ table: 'jobs', on_delete: 'SET NULL' }], table);
      }
      assert.deepEqual(sqliteOf(s).prepare("SELECT name FROM sqlite_schema WHERE name LIKE 'job%' OR sql LIKE '%jobs_v2%' OR name LIKE 'job_links%'").all(), [{ name: 'jobs' }], 'no table left behind');
      const back = await getJob(s.db, second.id);
      assert.deepEqual([back?.group, back?.total, back?.multicastSessionId, back?.request], ['lab12', 2, 1, { type: 'inventory', group: 'lab12', wake: true }]);
      // The foreign keys still hold and still act.
      assert.throws(() => sqliteOf(s).prepare('UPDATE tasks SET job_id = 999 WHERE job_id = ?').run(first.id), /FOREIGN KEY constraint failed/);
      const made = sqliteOf(s).prepare(`INSERT INTO jobs (type, group_name, request, created_at) VALUES ('inventory', NULL, '{"type":"inventory","macs":["${M(1)}","${M(3)}"]}', 'x')`).run();
      assert.equal(Number(made.lastInsertRowid), 51, 'a job without a group, numbered after every id the old table used');
      sqliteOf(s).prepare('DELETE FROM jobs WHERE id = ?').run(first.id);
      assert.deepEqual(sqliteOf(s).prepare('SELECT count(*) AS n FROM tasks WHERE job_id IS NULL').get(), { n: 2 }, 'ON DELETE SET NULL');
    } finally {
      await s.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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

test('20261207T1200_job_hosts on PostgreSQL drops the NOT NULL in place; another dialect is refused by name', async () => {
  const job = migrations.find((m) => m.name === '20261207T1200_job_hosts');
  assert.ok(job);
  const pg = recording(new PostgresAdapter());
  await job.up(pg.db);
  assert.deepEqual(pg.sql, ['alter table "jobs" alter column "group_name" drop not null']);
  const my = recording(new MysqlAdapter());
  await assert.rejects(job.up(my.db), /knows SQLite and PostgreSQL, not MysqlAdapter/);
  assert.deepEqual(my.sql, []);
});
