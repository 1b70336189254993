/**
 * Counts read when Prometheus scrapes GET /api/v1/metrics (src/metrics/):
 * one GROUP BY each, no row read out. Nothing here is written per packet.
 */
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export interface GroupCount {
  /** The grouped columns, as stored. */
  keys: Record<string, string>;
  count: number;
}

/** Tasks by state and type. */
export async function countTasksByState(db: Kysely<Database>): Promise<GroupCount[]> {
  const rows = await db.selectFrom('tasks').select(['state', 'type']).select((eb) => eb.fn.countAll<number>().as('n')).groupBy(['state', 'type']).execute();
  return rows.map((r) => ({ keys: { state: r.state, type: r.type }, count: Number(r.n) }));
}

/** Multicast sessions by state. */
export async function countMulticastSessionsByState(db: Kysely<Database>): Promise<GroupCount[]> {
  const rows = await db.selectFrom('multicast_sessions').select('state').select((eb) => eb.fn.countAll<number>().as('n')).groupBy('state').execute();
  return rows.map((r) => ({ keys: { state: r.state }, count: Number(r.n) }));
}
