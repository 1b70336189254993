/**
 * An in-memory lease store for tests, with the same conditions as the SQL
 * in src/store/leases.ts (model/lease.ts LeaseWrite), and a way to make
 * writes lose as they would to another server sharing the store: `others`
 * holds rows "another server" wrote (commit() sees them first), and
 * `beforeCommit` runs before each write (to slip such a row in at the worst
 * moment). Not a test file itself.
 */
import { newClaimStats, handleSync, reclaimSync, type ClaimStats } from './commit.js';
import type { EngineDecision, LeaseEngine } from './engine.js';
import { leaseKey, type Lease, type LeaseWrite, type SyncLeaseStore } from '../model/lease.js';
import type { DhcpPacket } from '../protocol/dhcp/packet.js';

const held = (l: Lease): boolean => l.state === 'offered' || l.state === 'bound' || l.state === 'declined';

export class MemLeaseStore implements SyncLeaseStore {
  readonly sync = true;
  readonly rows = new Map<string, Lease>();
  /** Writes that took effect, and writes that lost. */
  saves = 0;
  lost = 0;
  beforeCommit: ((w: LeaseWrite) => void) | null = null;

  commit(w: LeaseWrite): boolean {
    this.beforeCommit?.(w);
    const l = w.lease;
    const cur = this.rows.get(l.ip);
    let next: Lease | null = null;
    switch (w.kind) {
      case 'claim':
        if (!cur || leaseKey(cur) === leaseKey(l) || !held(cur) || cur.expiresAt <= l.updatedAt) next = { ...l };
        break;
      case 'end':
        if (cur && leaseKey(cur) === w.owner && w.from.includes(cur.state)) next = { ...cur, state: l.state, expiresAt: l.expiresAt, updatedAt: l.updatedAt };
        break;
      case 'decline':
        if (cur && leaseKey(cur) === w.owner) next = { ...l };
        break;
      case 'reclaim':
        if (cur && held(cur) && cur.expiresAt <= l.updatedAt) next = { ...cur, mac: cur.state === 'declined' ? '' : cur.mac, state: 'expired', updatedAt: l.updatedAt };
        break;
    }
    if (next === null) {
      this.lost++;
      return false;
    }
    this.rows.set(l.ip, next);
    this.saves++;
    return true;
  }

  row(ip: string): Lease | null {
    const r = this.rows.get(ip);
    return r ? { ...r } : null;
  }

  load(): Lease[] {
    return [...this.rows.values()].map((r) => ({ ...r }));
  }

  /** Write a row as another server would (no condition). */
  put(l: Lease): void {
    this.rows.set(l.ip, { ...l });
  }
}

/** An engine and its store, driven as the DHCP service drives them (commit before answering). */
export interface Driven {
  readonly engine: LeaseEngine;
  readonly stats: ClaimStats;
  handle(req: DhcpPacket, from: { address: string; port: number }): EngineDecision;
  reclaim(): number;
}

export function driven(engine: LeaseEngine, store: SyncLeaseStore): Driven {
  const stats = newClaimStats();
  return {
    engine,
    stats,
    handle: (req, from) => handleSync(engine, store, req, from, stats),
    reclaim: () => reclaimSync(engine, store, stats),
  };
}
