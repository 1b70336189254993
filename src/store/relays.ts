/**
 * DHCP relay agents heard by the DHCP services (the giaddr of relayed
 * requests): their subnets are where Wake-on-LAN sends directed broadcasts
 * (src/wake/targets.ts). Kept across restarts, so that machines behind a
 * relay can be woken before any of them has booted since the start.
 */
import type { Kysely } from 'kysely';
import { isReservableIPv4 } from '../model/validate.js';
import type { Database } from './schema.js';

type Db = Kysely<Database>;

export interface Relay {
  giaddr: string;
  firstSeenAt: string;
  lastSeenAt: string;
}

/** Record (or refresh) a relay; an address that cannot be a relay's (0/8, 127/8, 224 and up) is ignored. */
export async function noteRelay(db: Db, giaddr: string, nowIso: string): Promise<boolean> {
  if (!isReservableIPv4(giaddr)) return false;
  await db
    .insertInto('dhcp_relays')
    .values({ giaddr, first_seen_at: nowIso, last_seen_at: nowIso })
    .onConflict((oc) => oc.column('giaddr').doUpdateSet({ last_seen_at: nowIso }))
    .execute();
  return true;
}

/** Most recently heard first. */
export async function listRelays(db: Db, limit = 1000): Promise<Relay[]> {
  const rows = await db.selectFrom('dhcp_relays').selectAll().orderBy('last_seen_at', 'desc').limit(limit).execute();
  return rows.map((r) => ({ giaddr: r.giaddr, firstSeenAt: r.first_seen_at, lastSeenAt: r.last_seen_at }));
}
