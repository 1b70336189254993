/**
 * DHCP leases (server mode): one row per address ever handed out.
 * Frozen: never edit a migration that has shipped; add a new one.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('dhcp_leases')
    .addColumn('ip', 'varchar(15)', (c) => c.primaryKey())
    .addColumn('mac', 'varchar(17)', (c) => c.notNull())
    .addColumn('client_id', 'varchar(512)')
    // offered | bound | released | expired | declined
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    // Milliseconds since the epoch (integer: compared, never displayed raw).
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('hostname', 'varchar(64)')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('dhcp_leases_mac_idx').on('dhcp_leases').column('mac').execute();
}
