/**
 * Where a deploy reads its image streams (issue 15, "nearest node"): the
 * server that answers the agent's GET /agent/v1/task names a node in
 * `TaskSpec.streamsUrl`, and the agent sends its stream GETs there; every
 * other request (progress, slot, complete, captures' uploads) stays on the
 * control server of its kernel command line.
 *
 * Why a field and not a 307 redirect of each stream GET: the choice is made
 * once per task (one deploy reads one node, which the task's log line and
 * the nodes' access logs show), the agent's resume-with-Range loop keeps one
 * base URL instead of re-resolving a redirect on every resumed request, and
 * the agent can fall back to its control server on its own when the
 * streams node goes away mid-deploy (a redirecting control server that
 * lacks the copy would send it straight back to the dead node). An old
 * agent ignores the field and reads from its control server, as before.
 *
 * The choice, among nodes that hold a verified copy of the revision
 * (src/store/copies.ts) and are up (src/store/nodes.ts):
 *   1. the node serving the machine's subnet (longest prefix containing the
 *      agent's address, `nodeForSubnet`), when it holds one;
 *   2. else this node, when it holds one;
 *   3. else any live holder: those whose subnets contain the client first
 *      (longest prefix), then by name.
 * None: this node (the stream GETs are refused, 404, as before). A revision
 * with no copy rows (made before copies were recorded) is read from this
 * node. On SQLite (one server) nothing is chosen: the field is left out.
 *
 * The other node accepts the task token (it is looked up in the shared
 * store, bound to the machine's address, which does not change with the
 * node it reaches) and serves only a copy it holds verified
 * (image-store.ts `imageStreamPath`).
 */
import { listCopies } from '../store/copies.js';
import type { Store } from '../store/db.js';
import { liveNodes, longestMatch, type NodeRecord } from '../store/nodes.js';

/** What the choice needs about one node. */
export type SourceNode = Pick<NodeRecord, 'name' | 'subnets' | 'httpUrl' | 'httpsUrl'>;

export interface StreamsChoice {
  /** The node the agent reads from. */
  node: string;
  /** Why that one (for the log): 'subnet', 'self' or 'fallback'. */
  reason: 'subnet' | 'self' | 'fallback';
  /** Its base URL for the agent, or null when it is this node (the agent's control URL). */
  url: string | null;
}

/**
 * The pure choice (see the header). `live`: the nodes that are up (this one
 * included or not); `holders`: names of the nodes holding a verified copy.
 * Null: no live node holds one.
 */
export function chooseStreamsNode(clientIp: string, self: string, live: readonly SourceNode[], holders: ReadonlySet<string>): StreamsChoice | null {
  const urlOf = (n: SourceNode): string | null => (n.name === self ? null : (n.httpUrl ?? n.httpsUrl));
  let serving: SourceNode | null = null;
  let best = -1;
  for (const n of live) {
    const p = longestMatch(n.subnets, clientIp);
    if (p > best || (p === best && p >= 0 && serving !== null && n.name < serving.name)) {
      serving = n;
      best = p;
    }
  }
  if (serving && holders.has(serving.name) && (serving.name === self || urlOf(serving) !== null)) return { node: serving.name, reason: 'subnet', url: urlOf(serving) };
  if (holders.has(self)) return { node: self, reason: 'self', url: null };
  const others = live
    .filter((n) => n.name !== self && holders.has(n.name) && urlOf(n) !== null)
    .map((n) => ({ n, p: longestMatch(n.subnets, clientIp) }))
    .sort((a, b) => b.p - a.p || (a.n.name < b.n.name ? -1 : a.n.name > b.n.name ? 1 : 0));
  const pick = others[0]?.n;
  return pick ? { node: pick.name, reason: 'fallback', url: urlOf(pick) } : null;
}

/**
 * Where the deploy of `image` revision `revision` for the agent at
 * `clientIp` reads its streams, or null for "this node, as before" (one
 * server on SQLite, no node name, a revision without copy rows, or no live
 * node holding a verified copy).
 */
export async function streamsSourceFor(store: Store, self: string | null, image: string, revision: number, clientIp: string, now: Date = new Date()): Promise<StreamsChoice | null> {
  if (self === null || store.dialect === 'sqlite') return null;
  const copies = await listCopies(store.db, image);
  const rows = copies.filter((c) => c.number === revision);
  if (rows.length === 0) return null;
  const holders = new Set(rows.filter((c) => c.state === 'verified').map((c) => c.node));
  return chooseStreamsNode(clientIp, self, await liveNodes(store.db, now), holders);
}
