/**
 * Imaging: tasks (with the sha256 of their current boot token), images (a
 * name -> directory row with the manifest) and hardware inventories.
 * Frozen: never edit a migration that has shipped; add a new one.
 *
 * One active task per MAC is enforced by a partial unique index (SQLite and
 * PostgreSQL both have them), so two concurrent creates cannot both win.
 */
import { sql, type Kysely } from 'kysely';
import { idColumn } from './dialect.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  const id = idColumn(db, '20261123T1200_imaging');
  await db.schema
    .createTable('tasks')
    .addColumn('id', 'integer', id)
    // capture | deploy | inventory | register
    .addColumn('type', 'varchar(16)', (c) => c.notNull())
    .addColumn('mac', 'varchar(17)', (c) => c.notNull())
    .addColumn('image', 'varchar(64)')
    // queued | booting | waiting | running | done | failed | cancelled
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('phase', 'varchar(32)')
    .addColumn('bytes_done', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('bytes_total', 'bigint')
    .addColumn('rate_bps', 'bigint')
    .addColumn('eta_seconds', 'integer')
    .addColumn('partition', 'integer')
    .addColumn('message', 'text')
    .addColumn('error', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    // JSON: { disk, table }
    .addColumn('options', 'text', (c) => c.notNull())
    .addColumn('retry_of', 'integer', (c) => c.references('tasks.id').onDelete('set null'))
    // sha256 (hex) of the token handed out with the last boot; null before.
    .addColumn('token_sha256', 'varchar(64)')
    // Transfer slot: when the agent first asked, when it got one (null: not held).
    .addColumn('slot_requested_at', 'varchar(32)')
    .addColumn('slot_granted_at', 'varchar(32)')
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('started_at', 'varchar(32)')
    .addColumn('finished_at', 'varchar(32)')
    .addColumn('last_seen_at', 'varchar(32)')
    .execute();
  await db.schema.createIndex('tasks_mac_idx').on('tasks').column('mac').execute();
  await db.schema.createIndex('tasks_state_idx').on('tasks').column('state').execute();
  await db.schema.createIndex('tasks_token_idx').on('tasks').column('token_sha256').execute();
  await db.schema
    .createIndex('tasks_one_active_per_mac')
    .on('tasks')
    .column('mac')
    .unique()
    .where(sql.ref('state'), 'in', sql`('queued', 'booting', 'waiting', 'running')`)
    .execute();

  await db.schema
    .createTable('images')
    .addColumn('id', 'integer', id)
    .addColumn('name', 'varchar(64)', (c) => c.notNull().unique())
    // Directory name under <dataDir>/images/ (a UUID).
    .addColumn('dir', 'varchar(64)', (c) => c.notNull().unique())
    // The manifest as JSON text (manifest.json in the directory holds the same).
    .addColumn('manifest', 'text', (c) => c.notNull())
    // Sum of the stored stream files.
    .addColumn('size_bytes', 'bigint', (c) => c.notNull())
    .addColumn('source_mac', 'varchar(17)')
    .addColumn('task_id', 'integer')
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('inventories')
    .addColumn('mac', 'varchar(17)', (c) => c.primaryKey())
    .addColumn('inventory', 'text', (c) => c.notNull())
    .addColumn('collected_at', 'varchar(32)', (c) => c.notNull())
    .execute();
}
