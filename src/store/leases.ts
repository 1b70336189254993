/**
 * DHCP leases (server mode). Two faces:
 * - `openLeaseStore(store)`: synchronous load/save with prepared statements
 *   on the driver handle, for the lease engine (src/dhcp/engine.ts), which
 *   commits every allocation before its OFFER/ACK is sent. In WAL mode a
 *   committed write survives a kill -9 of the process (synchronous=NORMAL
 *   only risks the last transactions on a power loss).
 * - `listLeases(db)`: the rows for the API and the CLI, through Kysely.
 */
import type { Kysely } from 'kysely';
import { leaseActive, type Lease, type LeaseInfo, type LeaseState } from '../model/lease.js';
import { sqliteOf, type Store } from './db.js';
import type { Database } from './schema.js';

const STATES: ReadonlySet<string> = new Set(['offered', 'bound', 'released', 'expired', 'declined']);

interface Row {
  ip: string;
  mac: string;
  client_id: string | null;
  state: string;
  expires_at: number;
  hostname: string | null;
  updated_at: number;
}

function toLease(r: Row): Lease {
  return {
    ip: r.ip,
    mac: r.mac,
    clientId: r.client_id,
    state: (STATES.has(r.state) ? r.state : 'expired') as LeaseState,
    expiresAt: Number(r.expires_at),
    hostname: r.hostname,
    updatedAt: Number(r.updated_at),
  };
}

export interface LeaseStoreHandle {
  load(): Lease[];
  save(lease: Readonly<Lease>): void;
}

export function openLeaseStore(store: Store): LeaseStoreHandle {
  const select = sqliteOf(store).prepare<[], Row>('SELECT ip, mac, client_id, state, expires_at, hostname, updated_at FROM dhcp_leases');
  const upsert = sqliteOf(store).prepare(
    `INSERT INTO dhcp_leases (ip, mac, client_id, state, expires_at, hostname, updated_at)
     VALUES (@ip, @mac, @clientId, @state, @expiresAt, @hostname, @updatedAt)
     ON CONFLICT(ip) DO UPDATE SET mac = excluded.mac, client_id = excluded.client_id, state = excluded.state,
       expires_at = excluded.expires_at, hostname = excluded.hostname, updated_at = excluded.updated_at`,
  );
  return {
    load: () => select.all().map(toLease),
    save(l) {
      upsert.run({ ip: l.ip, mac: l.mac, clientId: l.clientId, state: l.state, expiresAt: l.expiresAt, hostname: l.hostname, updatedAt: l.updatedAt });
    },
  };
}

export type { LeaseInfo } from '../model/lease.js';

/** Every lease row, by address (numerically), with `active` computed at `now`. */
export async function listLeases(db: Kysely<Database>, now: number = Date.now()): Promise<LeaseInfo[]> {
  const rows = await db.selectFrom('dhcp_leases').selectAll().execute();
  const key = (ip: string): number => ip.split('.').reduce((n, p) => n * 256 + Number(p), 0);
  return rows
    .map(toLease)
    .sort((a, b) => key(a.ip) - key(b.ip))
    .map((l) => ({
      ip: l.ip,
      mac: l.mac,
      clientId: l.clientId,
      hostname: l.hostname,
      state: l.state,
      expiresAt: new Date(l.expiresAt).toISOString(),
      updatedAt: new Date(l.updatedAt).toISOString(),
      active: leaseActive(l, now),
    }));
}

/** The MAC holding a live (offered or bound, not expired) lease on `ip`, or null. */
export async function leaseMacOf(db: Kysely<Database>, ip: string, now: number = Date.now()): Promise<string | null> {
  const r = await db.selectFrom('dhcp_leases').select('mac').where('ip', '=', ip).where('state', 'in', ['offered', 'bound']).where('expires_at', '>', now).executeTakeFirst();
  return r && r.mac !== '' ? r.mac : null;
}
