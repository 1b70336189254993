/**
 * dhcp_leases.client_key: who holds the row, as the lease engine names its
 * clients (model/lease.ts leaseKey: 'hw:<mac>', 'id:<client id hex>', or
 * 'declined' for an address set aside after a DECLINE). Every lease write
 * is conditional on it (src/store/leases.ts), so servers sharing one
 * database never give one address to two clients (issue 15).
 * Frozen: never edit a migration that has shipped; add a new one.
 *
 * Existing rows get the key clientKey() computes: no identifier, or one that
 * is hardware type 1 + the MAC ('01' + the MAC's hex digits), is 'hw:' + MAC;
 * any other identifier is 'id:' + its hex. The same SQL runs on SQLite and
 * PostgreSQL (|| and replace() are in both).
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  // 'id:' + 512 hex digits at most (dhcp_leases.client_id is varchar(512)).
  await db.schema.alterTable('dhcp_leases').addColumn('client_key', 'varchar(520)', (c) => c.notNull().defaultTo('')).execute();
  await sql`UPDATE dhcp_leases SET client_key = CASE
      WHEN state = 'declined' THEN 'declined'
      WHEN client_id IS NULL OR client_id = '01' || replace(mac, ':', '') THEN 'hw:' || mac
      ELSE 'id:' || client_id END`.execute(db);
}
