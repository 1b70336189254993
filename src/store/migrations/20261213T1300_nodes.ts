/**
 * Nodes: every Fleetboot server sharing this database registers itself
 * (src/store/nodes.ts, src/nodes/service.ts). Frozen: never edit a
 * migration that has shipped; add a new one.
 *
 * - nodes: name (unique: the host name unless node.name says otherwise);
 *   its addresses and the subnets it serves (JSON arrays of text); the
 *   http/https base URLs other nodes reach it at; the capacity and free
 *   space of its data directory's file system (bytes; bigint); its version;
 *   when it started, its last heartbeat and its heartbeat interval (a node
 *   is down after 3 missed beats, judged by the reader), when it stopped
 *   cleanly (null while it runs); and the sha256 (hex) of its credential,
 *   never the credential (the node keeps that 0600 in its data directory).
 * - multicast_sessions.node: the node that runs the session (the one that
 *   created it, or claimed it while it had none); null for sessions made
 *   before this migration.
 *
 * Timestamps are ISO-8601 text, as everywhere in this store. Ids are
 * AUTOINCREMENT integers on SQLite and identity columns on PostgreSQL;
 * another dialect is refused by name rather than migrated by guess.
 */
import type { ColumnDefinitionBuilder, Kysely } from 'kysely';
import { migrationDialect } from './dialect.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  const dialect = migrationDialect(db, '20261213T1300_nodes');
  const id = (c: ColumnDefinitionBuilder): ColumnDefinitionBuilder => (dialect === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement());

  await db.schema
    .createTable('nodes')
    .addColumn('id', 'integer', id)
    .addColumn('name', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('addresses', 'text', (c) => c.notNull())
    .addColumn('subnets', 'text', (c) => c.notNull())
    .addColumn('http_url', 'varchar(2048)')
    .addColumn('https_url', 'varchar(2048)')
    .addColumn('capacity_bytes', 'bigint')
    .addColumn('free_bytes', 'bigint')
    .addColumn('version', 'varchar(64)', (c) => c.notNull())
    .addColumn('started_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('heartbeat_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('heartbeat_seconds', 'integer', (c) => c.notNull())
    .addColumn('stopped_at', 'varchar(32)')
    .addColumn('credential_hash', 'varchar(64)', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .execute();

  await db.schema.alterTable('multicast_sessions').addColumn('node', 'varchar(64)').execute();
}
