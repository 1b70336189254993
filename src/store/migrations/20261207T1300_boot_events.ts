/**
 * Boot events (src/model/boot-event.ts): each step the server saw of a
 * machine's boot, for `fleetboot host timeline|why` and the console.
 * Frozen: never edit a migration that has shipped; add a new one.
 *
 * - boot_events: time, kind (dhcp, tftp, http, decision, task), the
 *   machine's MAC (null when it could not be told from the address), the
 *   client's address, a one-line summary and the details (JSON). Indexed
 *   by MAC then id (a machine's timeline, newest first) and by time
 *   (pruning). The recorder keeps the table bounded.
 */
import type { Kysely } from 'kysely';
import { idColumn } from './dialect.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  const id = idColumn(db, '20261207T1300_boot_events');
  await db.schema
    .createTable('boot_events')
    .addColumn('id', 'integer', id)
    .addColumn('at', 'varchar(32)', (c) => c.notNull())
    .addColumn('kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('mac', 'varchar(17)')
    .addColumn('ip', 'varchar(45)')
    .addColumn('summary', 'text', (c) => c.notNull())
    .addColumn('detail', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('boot_events_mac_idx').on('boot_events').columns(['mac', 'id']).execute();
  await db.schema.createIndex('boot_events_at_idx').on('boot_events').column('at').execute();
}
