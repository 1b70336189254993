/**
 * Initial schema: boot entries (with ordered initrds) and hosts.
 * Frozen: never edit a migration that has shipped; add a new one.
 * Migrations take `Kysely<unknown>` and import nothing of the application.
 */
import type { Kysely } from 'kysely';
import { idColumn } from './dialect.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  const id = idColumn(db, '20251123T1200_initial');
  await db.schema
    .createTable('boot_entries')
    .addColumn('id', 'integer', id)
    .addColumn('name', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('kernel', 'text', (c) => c.notNull())
    .addColumn('cmdline', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('boot_entry_initrds')
    .addColumn('entry_id', 'integer', (c) => c.notNull().references('boot_entries.id').onDelete('cascade'))
    .addColumn('position', 'integer', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('boot_entry_initrds_pk', ['entry_id', 'position'])
    .execute();

  await db.schema
    .createTable('hosts')
    .addColumn('id', 'integer', id)
    .addColumn('mac', 'varchar(17)', (c) => c.notNull().unique())
    .addColumn('name', 'varchar(64)')
    // RESTRICT: an entry that hosts use cannot be deleted behind their back;
    // the repository unassigns them first when asked to (force).
    .addColumn('entry_id', 'integer', (c) => c.references('boot_entries.id').onDelete('restrict'))
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .execute();

  await db.schema.createIndex('hosts_entry_id_idx').on('hosts').column('entry_id').execute();
}
