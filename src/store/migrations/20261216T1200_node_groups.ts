/**
 * nodes.groups: the groups a node is in (its config's node.groups), a JSON
 * list of names like nodes.subnets, published at register and at every
 * heartbeat. An image assigned to `group:NAME` (images.nodes, `fleetboot
 * image set NAME --nodes group:NAME,...`) is pulled by every node in that
 * group (src/replication/service.ts). Existing rows get '[]': no group
 * until the node starts again with node.groups set.
 * Frozen: never edit a migration that has shipped; add a new one.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('nodes')
    .addColumn('groups', 'text', (c) => c.notNull().defaultTo('[]'))
    .execute();
}
