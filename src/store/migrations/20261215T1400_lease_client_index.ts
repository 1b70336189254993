/**
 * An index on dhcp_leases.client_key: servers sharing one database read a
 * client's own rows before handling its message (src/dhcp/commit.ts
 * handleAsync, src/store/leases.ts SELECT_CLIENT); without it each DHCP
 * message scanned the whole table (a /16 pool: 65,000 rows).
 * Frozen: never edit a migration that has shipped; add a new one.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('dhcp_leases_client_key').on('dhcp_leases').column('client_key').execute();
}
