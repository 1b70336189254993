/**
 * images.protected (0/1): a protected image refuses capture tasks into it,
 * so a reference image cannot gain a revision captured from the wrong
 * machine by mistake; deploys, rollback and approval are unaffected.
 * Existing images start unprotected.
 * Frozen: never edit a migration that has shipped; add a new one.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('images').addColumn('protected', 'integer', (c) => c.notNull().defaultTo(0)).execute();
}
