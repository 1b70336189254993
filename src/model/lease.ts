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
