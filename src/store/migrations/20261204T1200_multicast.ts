/**
 * Multicast sessions (src/multicast/service.ts). Frozen: never edit a
 * migration that has shipped; add a new one.
 *
 * - multicast_sessions: one per multicast deploy job: its session id (the
 *   64 random bits every datagram carries, hex), the image revision, the
 *   group address and port it was given, its state (waiting, sending,
 *   finished, failed, cancelled), how many receivers it waits for and how
 *   long, and its figures when it ended (JSON).
 * - tasks.multicast_id / multicast_receiver: the session a deploy task
 *   receives from, and the task's receiver id in it (hex; only this task's
 *   agent is told it, and the sender admits it only from the task's address).
 */
import type { Kysely } from 'kysely';
import { idColumn } from './dialect.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  const id = idColumn(db, '20261204T1200_multicast');
  await db.schema
    .createTable('multicast_sessions')
    .addColumn('id', 'integer', id)
    .addColumn('session', 'varchar(16)', (c) => c.notNull().unique())
    .addColumn('job_id', 'integer', (c) => c.references('jobs.id').onDelete('set null'))
    .addColumn('image', 'varchar(64)', (c) => c.notNull())
    .addColumn('revision', 'integer', (c) => c.notNull())
    .addColumn('address', 'varchar(15)', (c) => c.notNull())
    .addColumn('port', 'integer', (c) => c.notNull())
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('expected', 'integer', (c) => c.notNull())
    .addColumn('min_receivers', 'integer', (c) => c.notNull())
    .addColumn('max_wait_seconds', 'integer')
    .addColumn('error', 'text')
    .addColumn('stats', 'text')
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('started_at', 'varchar(32)')
    .addColumn('finished_at', 'varchar(32)')
    .execute();
  await db.schema.createIndex('multicast_sessions_state_idx').on('multicast_sessions').column('state').execute();
  await db.schema.alterTable('tasks').addColumn('multicast_id', 'integer', (c) => c.references('multicast_sessions.id').onDelete('set null')).execute();
  await db.schema.alterTable('tasks').addColumn('multicast_receiver', 'varchar(16)').execute();
}
