/**
 * Agent challenge nonces in the store, so that a nonce one server handed out
 * is accepted by another sharing the database (src/store/agent-nonces.ts).
 * Frozen: never edit a migration that has shipped; add a new one.
 *
 * - agent_nonces: the nonce (base64url text, the key) and when it stops
 *   being accepted (ISO-8601 text, indexed for the sweep). Taking a nonce
 *   deletes its row, so it is used once whichever server takes it.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('agent_nonces')
    .addColumn('nonce', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('expires_at', 'varchar(32)', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('agent_nonces_expires_at').on('agent_nonces').column('expires_at').execute();
}
