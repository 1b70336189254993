/**
 * Which node runs a new multicast session (issue 15, "nearest node"): the
 * node serving the receivers' subnet, so the datagrams start on the
 * receivers' segment (multicast rarely crosses routers).
 *
 * A receiver's address is what the store knows of its machine, in this
 * order: its host's reserved address (hosts.ip), its DHCP lease (bound or
 * offered, the newest), the address its last task token was handed to
 * (tasks.token_ip: where it last booted from), its endpoint agent's last
 * address (agents.last_ip). A machine with none counts for nobody.
 *
 * The node: among the live nodes, each receiver votes for the one serving
 * its address (longest prefix; ties by name); the node with most votes
 * (ties by name) runs it when it holds a verified copy of the revision or
 * will hold one (its copy is 'missing' or 'copying': replication is at
 * it, and the sender waits for the verification, src/multicast/service.ts).
 * Otherwise, or when no receiver's subnet has a live node, the creating
 * node runs it, as before. Only SQL and a pure choice here.
 */
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import { liveNodes, longestMatch, type NodeRecord } from './nodes.js';

/** A Kysely handle or a transaction (a Transaction is a Kysely). */
type Db = Kysely<Database>;

export interface Placement {
  node: string;
  /** 'receivers': the node of the receivers' subnet; 'creator': the creating node (why in `note`). */
  reason: 'receivers' | 'creator';
  note: string;
}

/** The address the store knows for each MAC (see the header), or null. */
export async function receiverAddresses(db: Db, macs: readonly string[]): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  for (const mac of macs) {
    const host = await db.selectFrom('hosts').select(['id', 'ip']).where('mac', '=', mac).executeTakeFirst();
    let ip = host?.ip ?? null;
    if (ip === null) {
      const lease = await db.selectFrom('dhcp_leases').select('ip').where('mac', '=', mac).where('state', 'in', ['bound', 'offered']).orderBy('updated_at', 'desc').executeTakeFirst();
      ip = lease?.ip ?? null;
    }
    if (ip === null) {
      const t = await db.selectFrom('tasks').select('token_ip').where('mac', '=', mac).where('token_ip', 'is not', null).orderBy('id', 'desc').executeTakeFirst();
      ip = t?.token_ip ?? null;
    }
    if (ip === null && host) {
      const a = await db.selectFrom('agents').select('last_ip').where('host_id', '=', host.id).where('last_ip', 'is not', null).orderBy('last_seen_at', 'desc').executeTakeFirst();
      ip = a?.last_ip ?? null;
    }
    out.set(mac, ip);
  }
  return out;
}

/** The pure choice (see the header). `copies`: each node's copy state of the revision. */
export function placeSession(addresses: readonly (string | null)[], creator: string, live: readonly Pick<NodeRecord, 'name' | 'subnets'>[], copies: ReadonlyMap<string, string>): Placement {
  const votes = new Map<string, number>();
  for (const ip of addresses) {
    if (ip === null) continue;
    let best: string | null = null;
    let prefix = -1;
    for (const n of live) {
      const p = longestMatch(n.subnets, ip);
      if (p > prefix || (p === prefix && p >= 0 && best !== null && n.name < best)) {
        best = n.name;
        prefix = p;
      }
    }
    if (best !== null) votes.set(best, (votes.get(best) ?? 0) + 1);
  }
  const ranked = [...votes].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const top = ranked[0];
  if (!top) return { node: creator, reason: 'creator', note: 'no live node serves the receivers\' addresses' };
  const [name, n] = top;
  if (name === creator) return { node: creator, reason: 'receivers', note: `it serves ${n} of the receivers' addresses` };
  const state = copies.get(name);
  if (state === 'verified' || state === 'missing' || state === 'copying') return { node: name, reason: 'receivers', note: `it serves ${n} of the receivers' addresses${state === 'verified' ? '' : ` (its copy is ${state}: the sender waits for its verification)`}` };
  return { node: creator, reason: 'creator', note: `node ${name} serves the receivers' addresses but ${state === undefined ? 'holds no copy' : `its copy is ${state}`}` };
}

/** Where the session of `image` revision `revision` for the tasks of `macs` runs (see the header). */
export async function placeMulticastSession(db: Db, image: string, revision: number, macs: readonly string[], creator: string, now: Date = new Date()): Promise<Placement> {
  const addrs = await receiverAddresses(db, macs);
  const live = await liveNodes(db, now);
  const rows = await db.selectFrom('revision_copies').select(['node', 'state']).where('image', '=', image).where('number', '=', revision).execute();
  const copies = new Map(rows.map((r) => [r.node, r.state]));
  // A revision with no copy rows (made before copies existed) is on the creating node's disk only.
  if (rows.length === 0) return { node: creator, reason: 'creator', note: 'the revision has no recorded copies' };
  return placeSession([...addrs.values()], creator, live, copies);
}
