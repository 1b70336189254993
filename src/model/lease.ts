/** A DHCP lease as the lease engine (src/dhcp/engine.ts) and the store (src/store/leases.ts) see it. */
export type LeaseState = 'offered' | 'bound' | 'released' | 'expired' | 'declined';

export interface Lease {
  ip: string;
  /** Lower-case colon form; '' for a declined address. */
  mac: string;
  /** Option 61 as hex, or null. */
  clientId: string | null;
  state: LeaseState;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  hostname: string | null;
  updatedAt: number;
}

/**
 * Who a lease belongs to: the client identifier (option 61) when there is
 * one, else the MAC. An identifier that is just hardware type 1 + the MAC
 * (what iPXE, udhcpc and dhclient send) names the same client as no
 * identifier from that MAC (what edk2's PXE sends): one machine booting
 * firmware PXE -> iPXE -> Linux is one client, not two leases (found by
 * test/lab/server-mode.e2e.test.ts; dnsmasq treats them alike too).
 * Stored as dhcp_leases.client_key (migration 20261213T1200_lease_claims
 * computes the same thing in SQL for older rows).
 */
export function clientKey(mac: string, clientIdHex: string | null): string {
  if (clientIdHex === null || clientIdHex === `01${mac.replace(/:/g, '')}`) return `hw:${mac}`;
  return `id:${clientIdHex}`;
}

/** The owner of an address set aside after a DECLINE: no client's key starts like this. */
export const DECLINED_KEY = 'declined';

/** The key of a lease row: its client's, or DECLINED_KEY for a declined address. */
export function leaseKey(l: Pick<Lease, 'state' | 'mac' | 'clientId'>): string {
  return l.state === 'declined' ? DECLINED_KEY : clientKey(l.mac, l.clientId);
}

/**
 * One conditional write of a lease row, as the lease engine asks for it
 * (src/dhcp/engine.ts) and the store commits it (src/store/leases.ts). Each
 * reports whether it took effect; one that did not means another server
 * sharing the database changed the row first. `lease` is the row as it is
 * after the write.
 * - claim: insert the row, or take it over when it is already this
 *   client's (leaseKey(lease)), or not held (released, expired), or past
 *   its end. An OFFER or ACK.
 * - end: set the row to `lease` (state expired or released) only while it
 *   is still `owner`'s and in one of `from`.
 * - decline: set the row to `lease` (declined) only while it is `owner`'s.
 * - reclaim: mark the row expired only while it is held (offered, bound,
 *   declined) and past its end at lease.updatedAt.
 */
export type LeaseWrite =
  | { kind: 'claim'; lease: Lease }
  | { kind: 'end'; lease: Lease; owner: string; from: readonly [LeaseState, LeaseState] }
  | { kind: 'decline'; lease: Lease; owner: string }
  | { kind: 'reclaim'; lease: Lease };

/**
 * Where the lease engine's writes go. Synchronous (SQLite: prepared
 * statements, nothing awaited on the DHCP fast path) or asynchronous
 * (PostgreSQL through Kysely); the DHCP service picks its loop by `sync`.
 * `row()` reads one address's row, to refresh the engine after a lost write.
 */
export type LeaseStore = SyncLeaseStore | AsyncLeaseStore;
export interface SyncLeaseStore {
  readonly sync: true;
  commit(w: LeaseWrite): boolean;
  row(ip: string): Lease | null;
  load(): Lease[];
}
export interface AsyncLeaseStore {
  readonly sync: false;
  commit(w: LeaseWrite): Promise<boolean>;
  row(ip: string): Promise<Lease | null>;
  /** Every row whose client key is `key` (what another server sharing the store gave that client). */
  rowsOfClient(key: string): Promise<Lease[]>;
  load(): Promise<Lease[]>;
}

/** Held at `now` (ms): offered, bound or declined (set aside), and not past its expiry. */
export function leaseActive(l: Pick<Lease, 'state' | 'expiresAt'>, now: number): boolean {
  return (l.state === 'offered' || l.state === 'bound' || l.state === 'declined') && l.expiresAt > now;
}

/** A lease as the API lists it (GET /api/v1/dhcp/leases) and the event stream sends it. */
export interface LeaseInfo {
  ip: string;
  /** '' for an address set aside after a DECLINE. */
  mac: string;
  clientId: string | null;
  hostname: string | null;
  /** bound: granted; released, expired: given back; offered: held for an answer; declined: set aside. */
  state: LeaseState;
  /** ISO-8601. */
  expiresAt: string;
  updatedAt: string;
  /** Held right now (offered, bound or declined, and not past expiresAt). */
  active: boolean;
}
