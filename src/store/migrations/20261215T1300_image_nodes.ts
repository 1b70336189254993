/**
 * images.nodes: the nodes an image's revisions are replicated to
 * (src/replication/service.ts). null: every node (the default, and what
 * existing images get); otherwise a JSON list of node names, set by
 * `fleetboot image set NAME --nodes a,b` (PATCH /api/v1/images/:name).
 * Frozen: never edit a migration that has shipped; add a new one.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('images').addColumn('nodes', 'text').execute();
}
