/**
 * Jobs for a list of hosts. Frozen: never edit a migration that has
 * shipped; add a new one.
 *
 * - jobs.group_name becomes nullable: a job made for a list of MACs
 *   (request.macs) has no group. Existing rows keep their group.
 *
 * PostgreSQL drops the NOT NULL in place. SQLite cannot: the table is
 * rebuilt (new table, copy, drop, rename), keeping every id and the
 * AUTOINCREMENT counter. Two SQLite details shape the rebuild:
 * - With foreign keys on (openStore turns them on, and PRAGMA foreign_keys
 *   cannot change inside the migration's transaction), DROP TABLE jobs
 *   first deletes every row, which fires tasks.job_id's and
 *   multicast_sessions.job_id's ON DELETE SET NULL. Those links are kept
 *   aside before the drop and written back after the rename.
 * - RENAME leaves the other tables' REFERENCES "jobs" as they are: they
 *   name the new table once it is called jobs.
 * jobs has no indexes (20261203T1200), so there are none to recreate.
 * Other dialects are refused by name rather than migrated by guess.
 */
import { sql, type Kysely } from 'kysely';
import { migrationDialect } from './dialect.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  if (migrationDialect(db, '20261207T1200_job_hosts') === 'postgres') {
    await db.schema.alterTable('jobs').alterColumn('group_name', (c) => c.dropNotNull()).execute();
    return;
  }
  await db.schema
    .createTable('jobs_v2')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    // capture | deploy | inventory
    .addColumn('type', 'varchar(16)', (c) => c.notNull())
    // The group's name when the job was made (the group may go later); null for a list of MACs.
    .addColumn('group_name', 'varchar(64)')
    .addColumn('image', 'varchar(64)')
    // The task request as submitted (JSON).
    .addColumn('request', 'text', (c) => c.notNull())
    .addColumn('schedule_id', 'integer')
    .addColumn('multicast_session_id', 'integer')
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .execute();
  const columns = sql.raw('id, type, group_name, image, request, schedule_id, multicast_session_id, created_at');
  await sql`insert into jobs_v2 (${columns}) select ${columns} from jobs`.execute(db);
  const seq = (await sql<{ seq: number }>`select seq from sqlite_sequence where name = 'jobs'`.execute(db)).rows[0]?.seq ?? 0;

  await sql`create temp table job_links_tasks as select id, job_id from tasks where job_id is not null`.execute(db);
  await sql`create temp table job_links_sessions as select id, job_id from multicast_sessions where job_id is not null`.execute(db);
  await db.schema.dropTable('jobs').execute();
  await db.schema.alterTable('jobs_v2').renameTo('jobs').execute();
  await sql`update tasks set job_id = (select l.job_id from job_links_tasks l where l.id = tasks.id) where id in (select id from job_links_tasks)`.execute(db);
  await sql`update multicast_sessions set job_id = (select l.job_id from job_links_sessions l where l.id = multicast_sessions.id) where id in (select id from job_links_sessions)`.execute(db);
  await sql`drop table temp.job_links_tasks`.execute(db);
  await sql`drop table temp.job_links_sessions`.execute(db);
  // The copy left the counter at the highest id copied (no row when none was): never hand out an id the old table had used.
  const top = (await sql<{ top: number }>`select coalesce(max(id), 0) as top from jobs`.execute(db)).rows[0]?.top ?? 0;
  await sql`delete from sqlite_sequence where name = 'jobs'`.execute(db);
  await sql`insert into sqlite_sequence (name, seq) values ('jobs', ${Math.max(seq, top)})`.execute(db);
}
