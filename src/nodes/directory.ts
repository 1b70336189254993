/**
 * The node directory (issue 15 "nearest node"): which live node serves a
 * booting machine's subnet, answered synchronously from memory so that the
 * DHCP fast path (src/dhcp/commit.ts on SQLite) never awaits per packet.
 *
 * - A snapshot of the live nodes (src/store/nodes.ts liveNodes) is read at
 *   start, every `refreshSeconds` (the heartbeat interval), and whenever
 *   `refresh()` is called (the wiring calls it on the cluster signal that
 *   a node started or stopped). A failed read keeps the last snapshot.
 * - The rule (`servingNodeAmong`, pure, the same on every node): the live
 *   nodes whose subnets contain the address, longest prefix first. When
 *   this node is among the best, it serves (null); else the first of them
 *   by name. So node A sends a machine to B only when B's subnet is more
 *   specific than any of A's, and B, reading the same rows, never sends it
 *   back to A. Snapshots taken at different moments could still disagree
 *   for a heartbeat: the boot scripts forward a machine at most once (the
 *   `via=` marker, src/http/routes/boot.ts), so a disagreement costs one
 *   hop, never a loop.
 * - A node is only pointed at when it can be: a dotted-quad address and an
 *   HTTP base URL that is safe in an iPXE script (ipxeUrlProblem). Others
 *   are left out of the snapshot (logged once per URL seen).
 * - On SQLite (one server) the directory is empty and always says null.
 */
import { ipxeUrlProblem } from '../boot/ipxe.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { ServingNode } from '../model/node.js';
import { IPV4_PATTERN } from '../model/validate.js';
import type { Store } from '../store/db.js';
import { liveNodes, longestMatch, type NodeRecord } from '../store/nodes.js';

const DOTTED = new RegExp(IPV4_PATTERN);

/** A live node as the directory keeps it: what to point at, and the subnets it serves. */
export interface DirectoryEntry extends ServingNode {
  readonly subnets: readonly string[];
}

/**
 * The node serving `ip` among `entries` (live nodes), seen from node `self`
 * (see the header): null when `self` is among the most specific, or no node
 * serves the address.
 */
export function servingNodeAmong(entries: readonly DirectoryEntry[], self: string, ip: string): ServingNode | null {
  let best: DirectoryEntry | null = null;
  let bestPrefix = -1;
  let selfPrefix = -1;
  for (const e of entries) {
    const p = longestMatch(e.subnets, ip);
    if (e.name === self) {
      selfPrefix = p;
      continue;
    }
    if (p > bestPrefix || (p === bestPrefix && best !== null && e.name < best.name)) {
      best = e;
      bestPrefix = p;
    }
  }
  if (best === null || bestPrefix < 0 || selfPrefix >= bestPrefix) return null;
  return { name: best.name, address: best.address, httpBaseUrl: best.httpBaseUrl };
}

/** Why a live node cannot be pointed at, or null (see the header). */
export function entryProblem(n: Pick<NodeRecord, 'addresses' | 'httpUrl'>): string | null {
  const address = n.addresses[0];
  if (address === undefined || !DOTTED.test(address)) return `has no IPv4 address (${JSON.stringify(n.addresses)})`;
  if (n.httpUrl === null) return 'has no HTTP URL';
  const p = ipxeUrlProblem(n.httpUrl);
  return p === null ? null : `HTTP URL ${JSON.stringify(n.httpUrl)} ${p}`;
}

/** The directory entry of a live node, or null when it cannot be pointed at. */
export function toEntry(n: NodeRecord): DirectoryEntry | null {
  if (entryProblem(n) !== null) return null;
  return { name: n.name, address: n.addresses[0] as string, httpBaseUrl: (n.httpUrl as string).replace(/\/+$/, ''), subnets: n.subnets };
}

export interface NodeDirectoryOptions {
  store: Store;
  /** This node's name. */
  self: string;
  log: Logger;
  /** Seconds between reads (the heartbeat interval); 0: only on refresh(). */
  refreshSeconds: number;
  now?: () => Date;
}

export interface NodeDirectory {
  /** The node serving `ip` (a machine's address, or a relay's giaddr), or null: this node serves it. Synchronous. */
  servingNode(ip: string): ServingNode | null;
  /** The live nodes of the last read (tests, logs). */
  entries(): readonly DirectoryEntry[];
  /** Read the live nodes now (coalesced with a read in flight). */
  refresh(): Promise<void>;
  /** The first read, then one every refreshSeconds (nothing on SQLite). */
  start(): Promise<void>;
  close(): void;
}

export function createNodeDirectory(o: NodeDirectoryOptions): NodeDirectory {
  const log = o.log.child({ subsystem: 'nodes' });
  const now = o.now ?? (() => new Date());
  const shared = o.store.dialect === 'postgres';
  let entries: readonly DirectoryEntry[] = [];
  let reading: Promise<void> | null = null;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  const warned = new Set<string>();

  async function read(): Promise<void> {
    const next: DirectoryEntry[] = [];
    for (const n of await liveNodes(o.store.db, now())) {
      // This node is always kept: what it serves decides whether it sends anyone away.
      const e = n.name === o.self ? { name: n.name, address: n.addresses[0] ?? '', httpBaseUrl: n.httpUrl ?? '', subnets: n.subnets } : toEntry(n);
      if (e !== null) {
        next.push(e);
        continue;
      }
      const why = `${n.name} ${entryProblem(n) ?? ''}`;
      if (!warned.has(why)) {
        warned.add(why);
        log.warn({ node: n.name }, `node ${why}: machines on its subnets are served by the node they reach`);
      }
    }
    const before = entries.map((e) => e.name).join(',');
    entries = next;
    const after = next.map((e) => e.name).join(',');
    if (before !== after) log.debug({ nodes: next.map((e) => e.name) }, 'node directory: live nodes changed');
  }

  function refresh(): Promise<void> {
    if (!shared || closed) return Promise.resolve();
    reading ??= read()
      .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'node directory: reading the live nodes failed; the last snapshot stays'))
      .finally(() => {
        reading = null;
      });
    return reading;
  }

  return {
    servingNode: (ip) => (entries.length === 0 ? null : servingNodeAmong(entries, o.self, ip)),
    entries: () => entries,
    refresh,
    async start() {
      if (!shared) return;
      await refresh();
      if (o.refreshSeconds > 0) {
        timer = setInterval(() => void refresh(), o.refreshSeconds * 1000);
        timer.unref();
      }
    },
    close() {
      closed = true;
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}
