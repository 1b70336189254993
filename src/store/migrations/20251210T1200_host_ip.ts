/**
 * Hosts get an optional reserved IPv4 address (DHCP server mode): a
 * nullable column, unique through an index (SQLite cannot add a UNIQUE
 * column with ALTER TABLE; a unique index allows any number of NULLs in
 * SQLite and PostgreSQL alike).
 * Frozen: never edit a migration that has shipped; add a new one.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('hosts').addColumn('ip', 'varchar(15)').execute();
  await db.schema.createIndex('hosts_ip_unique').on('hosts').column('ip').unique().execute();
}
