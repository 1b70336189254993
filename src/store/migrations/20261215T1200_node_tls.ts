/**
 * nodes.tls_sha256: the sha256 (hex, of the DER) of the certificate a node's
 * HTTPS serves, published at register and at every heartbeat (a renewed
 * certificate is published at the next beat). Other nodes pull image
 * streams over its https_url and accept the connection only when the
 * certificate they are shown has this sha256 (src/replication/peer.ts):
 * pinning, no CA needed. null: HTTPS is off on that node.
 * Frozen: never edit a migration that has shipped; add a new one.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('nodes').addColumn('tls_sha256', 'varchar(64)').execute();
}
