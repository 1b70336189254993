/**
 * Cluster-wide locks for the few read-then-write transactions that two
 * servers sharing one PostgreSQL could otherwise interleave (counting the
 * granted transfer slots, numbering an image's revisions, taking a free
 * multicast address, keeping the last admin). `lockFor(trx, name)` takes
 * PostgreSQL's transaction-scoped advisory lock on `name`, released at
 * COMMIT or ROLLBACK. On SQLite it does nothing: there a server is the
 * only writer, and Kysely's SQLite driver runs one transaction at a time.
 * Take at most one lock per transaction, first, so two transactions never
 * wait for each other in opposite orders.
 */
import { PostgresAdapter, sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

/** The first half of every Fleetboot advisory lock key ("Flbt"), so they do not collide with other users of the database. */
const NAMESPACE = 0x466c6274;

export type LockName = 'transfer-slots' | 'multicast-endpoints' | 'admins' | `image:${string}` | `package:${string}`;

export function isPostgres(db: Kysely<Database>): boolean {
  // getExecutor() is marked internal in Kysely; its Migrator reads the adapter the same way.
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

export async function lockFor(trx: Kysely<Database>, name: LockName): Promise<void> {
  if (!isPostgres(trx)) return;
  await sql`select pg_advisory_xact_lock(${NAMESPACE}::int4, hashtext(${name}))`.execute(trx);
}
