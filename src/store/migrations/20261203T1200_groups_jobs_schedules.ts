/**
 * Host groups, jobs, scheduled and woken tasks, recurring schedules, relays.
 * Frozen: never edit a migration that has shipped; add a new one.
 *
 * - groups / group_members: a named set of hosts (a member is a host's MAC;
 *   removing the host or the group removes the membership).
 * - jobs: the tasks one request made for the members of a group (tasks.job_id);
 *   `request` is the request as submitted (JSON). multicast_session_id is
 *   room for the multicast deployment that may carry a job later (null).
 * - tasks.start_at: a task in the new state 'scheduled' becomes 'queued' then.
 * - tasks.wake (0/1), wake_rounds (0, 1, 2), woken_at: Wake-on-LAN
 *   bookkeeping of a queued task (the wake service's compare-and-swap).
 * - schedules: a cron expression and the task request it submits (JSON);
 *   next_run_at is the compare-and-swap that makes each due time fire once,
 *   even with two servers on one database.
 * - dhcp_relays: the relay agents (giaddr) the DHCP services have heard,
 *   whose subnets Wake-on-LAN reaches by directed broadcast.
 * - tasks_one_active_per_mac: a scheduled task is active too (one per MAC).
 */
import { sql, type Kysely } from 'kysely';
import { idColumn } from './dialect.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  const id = idColumn(db, '20261203T1200_groups_jobs_schedules');
  await db.schema
    .createTable('groups')
    .addColumn('id', 'integer', id)
    .addColumn('name', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('group_members')
    .addColumn('group_id', 'integer', (c) => c.notNull().references('groups.id').onDelete('cascade'))
    .addColumn('mac', 'varchar(17)', (c) => c.notNull().references('hosts.mac').onDelete('cascade'))
    .addColumn('added_at', 'varchar(32)', (c) => c.notNull())
    .addPrimaryKeyConstraint('group_members_pk', ['group_id', 'mac'])
    .execute();
  await db.schema.createIndex('group_members_mac_idx').on('group_members').column('mac').execute();

  await db.schema
    .createTable('jobs')
    .addColumn('id', 'integer', id)
    // capture | deploy | inventory
    .addColumn('type', 'varchar(16)', (c) => c.notNull())
    // The group's name when the job was made (the group may go later).
    .addColumn('group_name', 'varchar(64)', (c) => c.notNull())
    .addColumn('image', 'varchar(64)')
    // The task request as submitted (JSON).
    .addColumn('request', 'text', (c) => c.notNull())
    .addColumn('schedule_id', 'integer')
    // Room for a multicast session that deploys to the members together (not built yet).
    .addColumn('multicast_session_id', 'integer')
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .execute();

  await db.schema.alterTable('tasks').addColumn('job_id', 'integer', (c) => c.references('jobs.id').onDelete('set null')).execute();
  await db.schema.alterTable('tasks').addColumn('start_at', 'varchar(32)').execute();
  await db.schema.alterTable('tasks').addColumn('wake', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('tasks').addColumn('wake_rounds', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('tasks').addColumn('woken_at', 'varchar(32)').execute();
  await db.schema.createIndex('tasks_job_idx').on('tasks').column('job_id').execute();
  await db.schema.dropIndex('tasks_one_active_per_mac').execute();
  await db.schema
    .createIndex('tasks_one_active_per_mac')
    .on('tasks')
    .column('mac')
    .unique()
    .where(sql.ref('state'), 'in', sql`('scheduled', 'queued', 'booting', 'waiting', 'running')`)
    .execute();

  await db.schema
    .createTable('schedules')
    .addColumn('id', 'integer', id)
    // Unique when set; never all digits (it would read as an id).
    .addColumn('name', 'varchar(64)', (c) => c.unique())
    .addColumn('cron', 'varchar(128)', (c) => c.notNull())
    // The task request it submits (JSON), validated when stored.
    .addColumn('request', 'text', (c) => c.notNull())
    // From the request, so that a group or host in use can be found.
    .addColumn('group_name', 'varchar(64)')
    .addColumn('mac', 'varchar(17)')
    .addColumn('next_run_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('last_run_at', 'varchar(32)')
    .addColumn('last_result', 'text')
    .addColumn('last_job_id', 'integer')
    .addColumn('last_task_id', 'integer')
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('schedules_next_run_idx').on('schedules').column('next_run_at').execute();

  await db.schema
    .createTable('dhcp_relays')
    .addColumn('giaddr', 'varchar(15)', (c) => c.primaryKey())
    .addColumn('first_seen_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('last_seen_at', 'varchar(32)', (c) => c.notNull())
    .execute();
}
