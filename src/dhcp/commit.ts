/**
 * Committing the lease engine's writes (src/dhcp/engine.ts) before its reply
 * leaves, and what happens when one loses to another server sharing the
 * store (model/lease.ts LeaseWrite):
 * - the first write of a decision decides (the claim of an OFFER or ACK,
 *   the end of a RELEASE, a DECLINE). When it loses, every address the
 *   decision touched is read back into the engine (refresh()) and the
 *   message is handled again: an OFFER goes to another address, a REQUEST
 *   for an address another client now holds is NAKed (RFC 2131 4.3.2), a
 *   RELEASE of a lease that is no longer the client's is ignored. After
 *   MAX_TRIES lost claims the message is ignored, counted in `gaveUp`;
 * - a later write (ending the client's previous lease) only tidies up: when
 *   it loses, its address is refreshed and the decision stands;
 * - a NAK that rests on another client's lease in the engine's index
 *   (EngineReply.check, servers sharing the store) is checked against the
 *   row first: a stale index is refreshed and the message handled again, so
 *   a client is not NAKed for a lease another server has since ended;
 * - a store error propagates (nothing is sent) after the touched addresses
 *   are refreshed when the store can still be read.
 *
 * - on the asynchronous store (servers sharing PostgreSQL), the client's own
 *   rows are read into the engine before its message is handled, so a
 *   client that another server gave an address keeps it here too.
 *
 * Two loops with the same steps: `handleSync` for a synchronous store
 * (SQLite: no promise and no await on the fast path) and `handleAsync`
 * (PostgreSQL). The caller must not handle two messages at once on one
 * engine with the asynchronous loop (src/net/dhcp-server.ts queues them).
 */
import type { DhcpPacket } from '../protocol/dhcp/packet.js';
import type { AsyncLeaseStore, LeaseWrite, SyncLeaseStore } from '../model/lease.js';
import type { EngineDecision, LeaseEngine } from './engine.js';

/** How many times one message is handled when its claim keeps losing. */
export const MAX_TRIES = 3;

export interface ClaimStats {
  /** Writes that lost to another server (each one refreshed the engine). */
  lostWrites: number;
  /** Messages ignored after MAX_TRIES lost claims. */
  gaveUp: number;
}

export function newClaimStats(): ClaimStats {
  return { lostWrites: 0, gaveUp: 0 };
}

type Arrival = { address: string; port: number };

function gaveUp(w: LeaseWrite, tries: number): EngineDecision {
  return { ignore: `the claim of ${w.lease.ip} lost to another server sharing the store ${tries} times in a row; not answered`, writes: [], contended: true };
}

export function handleSync(engine: LeaseEngine, store: SyncLeaseStore, req: DhcpPacket, arrival: Arrival, stats: ClaimStats): EngineDecision {
  for (let tries = 1; ; tries++) {
    const d = engine.handle(req, arrival);
    const w = d.writes;
    if (w.length === 0) {
      const check = checkOf(d, tries);
      if (check === undefined) return d;
      const row = store.row(check);
      if (!engine.stale(check, row)) return d;
      engine.refresh(check, row);
      continue;
    }
    let again = false;
    let i = 0;
    try {
      for (; i < w.length; i++) {
        const x = w[i] as LeaseWrite;
        if (again) engine.refresh(x.lease.ip, store.row(x.lease.ip));
        else if (!store.commit(x)) {
          stats.lostWrites++;
          engine.refresh(x.lease.ip, store.row(x.lease.ip));
          again = i === 0;
        }
      }
    } catch (err) {
      for (; i < w.length; i++) {
        const ip = (w[i] as LeaseWrite).lease.ip;
        try {
          engine.refresh(ip, store.row(ip));
        } catch {
          // The store cannot be read either: the engine keeps its guess until the next refresh.
        }
      }
      throw err;
    }
    if (!again) return d;
    if (tries >= MAX_TRIES) {
      stats.gaveUp++;
      return gaveUp(w[0] as LeaseWrite, tries);
    }
  }
}

/** The address a NAK rests on, to check, or undefined. */
function checkOf(d: EngineDecision, tries: number): string | undefined {
  return tries < MAX_TRIES && !('ignore' in d) ? d.check : undefined;
}

export async function handleAsync(engine: LeaseEngine, store: AsyncLeaseStore, req: DhcpPacket, arrival: Arrival, stats: ClaimStats): Promise<EngineDecision> {
  // What the other servers gave this client, first: its lease may be another server's (an
  // OFFER from A, then the client's next DISCOVER answered by B), and a claim of a fresh
  // address would not lose, so without this the client would change address between servers.
  const key = engine.clientKeyOf(req);
  if (key !== null) for (const row of await store.rowsOfClient(key)) if (engine.stale(row.ip, row)) engine.refresh(row.ip, row);
  for (let tries = 1; ; tries++) {
    const d = engine.handle(req, arrival);
    const w = d.writes;
    if (w.length === 0) {
      const check = checkOf(d, tries);
      if (check === undefined) return d;
      const row = await store.row(check);
      if (!engine.stale(check, row)) return d;
      engine.refresh(check, row);
      continue;
    }
    let again = false;
    let i = 0;
    try {
      for (; i < w.length; i++) {
        const x = w[i] as LeaseWrite;
        if (again) engine.refresh(x.lease.ip, await store.row(x.lease.ip));
        else if (!(await store.commit(x))) {
          stats.lostWrites++;
          engine.refresh(x.lease.ip, await store.row(x.lease.ip));
          again = i === 0;
        }
      }
    } catch (err) {
      for (; i < w.length; i++) {
        const ip = (w[i] as LeaseWrite).lease.ip;
        try {
          engine.refresh(ip, await store.row(ip));
        } catch {
          // As in handleSync.
        }
      }
      throw err;
    }
    if (!again) return d;
    if (tries >= MAX_TRIES) {
      stats.gaveUp++;
      return gaveUp(w[0] as LeaseWrite, tries);
    }
  }
}

/** engine.reclaim(), committed. Returns how many leases were expired (lost ones are refreshed instead). */
export function reclaimSync(engine: LeaseEngine, store: SyncLeaseStore, stats: ClaimStats): number {
  let n = 0;
  for (const w of engine.reclaim()) {
    if (store.commit(w)) n++;
    else {
      stats.lostWrites++;
      engine.refresh(w.lease.ip, store.row(w.lease.ip));
    }
  }
  return n;
}

export async function reclaimAsync(engine: LeaseEngine, store: AsyncLeaseStore, stats: ClaimStats): Promise<number> {
  let n = 0;
  for (const w of engine.reclaim()) {
    if (await store.commit(w)) n++;
    else {
      stats.lostWrites++;
      engine.refresh(w.lease.ip, await store.row(w.lease.ip));
    }
  }
  return n;
}
