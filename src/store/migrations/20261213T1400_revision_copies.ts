/**
 * Revision copies: which node holds a verified copy of which image revision
 * (issue 15, verified replication; src/store/copies.ts, src/replication/).
 * Frozen: never edit a migration that has shipped; add a new one.
 *
 * - revision_copies: one row per (image, revision number, node name).
 *   state: 'missing' (wanted, nothing yet), 'copying' (bytes arriving),
 *   'verified' (every stream's and the manifest's sha256 matched on this
 *   node), 'corrupt' (a mismatch was found; pulled again later).
 *   bytes_done / bytes_total (bigint) for progress; error: the last failure
 *   (text, null when none); verified_at: when the copy last verified;
 *   updated_at: the last change. ISO-8601 text timestamps, as everywhere.
 *   Revisions made before this migration have no rows: a node serves them
 *   as before (single server), see src/imaging/image-store.ts.
 */
import type { Kysely } from 'kysely';
import { idColumn } from './dialect.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('revision_copies')
    .addColumn('id', 'integer', idColumn(db, '20261213T1400_revision_copies'))
    .addColumn('image', 'varchar(64)', (c) => c.notNull())
    .addColumn('number', 'integer', (c) => c.notNull())
    .addColumn('node', 'varchar(64)', (c) => c.notNull())
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('bytes_done', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('bytes_total', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('error', 'text')
    .addColumn('verified_at', 'varchar(32)')
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .addUniqueConstraint('revision_copies_image_number_node', ['image', 'number', 'node'])
    .execute();
  await db.schema.createIndex('revision_copies_node').on('revision_copies').column('node').execute();
}
