/**
 * Nodes in the store: every Fleetboot server sharing the database has a row
 * (src/nodes/service.ts registers it at start and beats its heartbeat).
 *
 * - Up or down is judged by whoever reads, from the row: a node is down
 *   when it stopped cleanly (stopped_at) or when its last heartbeat is older
 *   than DOWN_AFTER_BEATS of its own heartbeat intervals. The clocks of the
 *   nodes are trusted to agree to well under that (NTP).
 * - A name belongs to one credential: registering under a name whose row
 *   holds another credential is refused while that node is up (two servers
 *   would otherwise take turns being one node); a down node's name may be
 *   taken over (a reinstalled machine with a new data directory).
 * - Down nodes get no new work: `liveNodes` and `nodeForSubnet` leave them out.
 *
 * Writes are compare-and-swap (on the credential, and on the heartbeat
 * read), so two servers racing for one name cannot both win on SQLite or
 * PostgreSQL.
 */
import type { Kysely, Selectable } from 'kysely';
import { FleetbootError } from '../lib/errors.js';
import { IPV4_PATTERN, isValidName, NAME_RULE } from '../model/validate.js';
import type { Database, NodeTable } from './schema.js';

type Db = Kysely<Database>;

/** A node is down after this many heartbeat intervals without one. */
export const DOWN_AFTER_BEATS = 3;

export type NodeState = 'up' | 'down';

export interface NodeRecord {
  id: number;
  name: string;
  addresses: string[];
  subnets: string[];
  /** The groups it is in (its node.groups): images assigned to `group:NAME` are its too. */
  groups: string[];
  httpUrl: string | null;
  httpsUrl: string | null;
  /** sha256 (hex) of the certificate its HTTPS serves, which the other nodes pin; null: HTTPS is off. */
  tlsSha256: string | null;
  capacityBytes: number | null;
  freeBytes: number | null;
  version: string;
  startedAt: string;
  heartbeatAt: string;
  heartbeatSeconds: number;
  stoppedAt: string | null;
  /** Computed when read (see the header). */
  state: NodeState;
  /** Seconds since its last heartbeat, when read. */
  heartbeatAgeSeconds: number;
  createdAt: string;
}

/** What a node tells the store about itself at start. */
export interface NodeRegistration {
  name: string;
  addresses: readonly string[];
  subnets: readonly string[];
  /** Its node.groups (names as node names); absent: none. */
  groups?: readonly string[];
  httpUrl: string | null;
  httpsUrl: string | null;
  /** sha256 (hex, of the DER) of the certificate its HTTPS serves; null or absent: HTTPS is off. */
  tlsSha256?: string | null;
  capacityBytes: number | null;
  freeBytes: number | null;
  version: string;
  heartbeatSeconds: number;
  /** sha256 (hex) of its credential. */
  credentialHash: string;
}

const HASH_RE = /^[0-9a-f]{64}$/;
const DOTTED = new RegExp(IPV4_PATTERN);

function jsonList(s: string): string[] {
  try {
    const v = JSON.parse(s) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

function bytes(v: number | string | null): number | null {
  if (v === null) return null;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : null;
}

function ageMs(row: Pick<Selectable<NodeTable>, 'heartbeat_at'>, now: Date): number {
  const t = Date.parse(row.heartbeat_at);
  return Number.isFinite(t) ? now.getTime() - t : Number.POSITIVE_INFINITY;
}

/** up, or down: stopped cleanly, or no heartbeat for DOWN_AFTER_BEATS intervals (see the header). */
export function nodeStateOf(row: Pick<Selectable<NodeTable>, 'heartbeat_at' | 'heartbeat_seconds' | 'stopped_at'>, now: Date): NodeState {
  if (row.stopped_at !== null) return 'down';
  return ageMs(row, now) > DOWN_AFTER_BEATS * row.heartbeat_seconds * 1000 ? 'down' : 'up';
}

function toNode(r: Selectable<NodeTable>, now: Date): NodeRecord {
  const age = ageMs(r, now);
  return {
    id: r.id,
    name: r.name,
    addresses: jsonList(r.addresses),
    subnets: jsonList(r.subnets),
    groups: jsonList(r.groups),
    httpUrl: r.http_url,
    httpsUrl: r.https_url,
    tlsSha256: r.tls_sha256,
    capacityBytes: bytes(r.capacity_bytes),
    freeBytes: bytes(r.free_bytes),
    version: r.version,
    startedAt: r.started_at,
    heartbeatAt: r.heartbeat_at,
    heartbeatSeconds: r.heartbeat_seconds,
    stoppedAt: r.stopped_at,
    state: nodeStateOf(r, now),
    heartbeatAgeSeconds: Number.isFinite(age) ? Math.max(0, Math.round(age / 1000)) : -1,
    createdAt: r.created_at,
  };
}

function checkRegistration(reg: NodeRegistration): void {
  if (!isValidName(reg.name)) throw new FleetbootError('INVALID_INPUT', `A node name is ${NAME_RULE}: got ${JSON.stringify(reg.name)} (set node.name or --node-name)`);
  checkGroups(reg.groups ?? []);
  if (!HASH_RE.test(reg.credentialHash)) throw new TypeError('registerNode(): credentialHash must be 64 hex digits');
  if (reg.tlsSha256 != null && !HASH_RE.test(reg.tlsSha256)) throw new TypeError(`registerNode(): tlsSha256 must be 64 lower-case hex digits or null: got ${JSON.stringify(reg.tlsSha256)}`);
  if (!Number.isInteger(reg.heartbeatSeconds) || reg.heartbeatSeconds < 1) throw new TypeError(`registerNode(): heartbeatSeconds must be a positive integer: got ${reg.heartbeatSeconds}`);
}

/** Group names follow node names' syntax (the config checks node.groups the same way first). */
function checkGroups(groups: readonly string[]): void {
  const bad = groups.find((g) => !isValidName(g));
  if (bad !== undefined) throw new FleetbootError('INVALID_INPUT', `A node group name is ${NAME_RULE}: got ${JSON.stringify(bad)} (set node.groups)`);
}

/** The whole message of a refused registration: which node holds the name, and what to do. */
function nameTakenMessage(name: string, row: Selectable<NodeTable>, now: Date): string {
  const age = Math.max(0, Math.round(ageMs(row, now) / 1000));
  const addrs = jsonList(row.addresses).join(', ') || 'no address';
  const downIn = DOWN_AFTER_BEATS * row.heartbeat_seconds;
  return (
    `The node name '${name}' belongs to another running Fleetboot server (${addrs}; started ${row.started_at}, last heartbeat ${age} s ago) with another credential. ` +
    `Give this server a name of its own (node.name in the config, or --node-name NAME), or stop the other one: a node is down ${downIn} s after its last heartbeat, and its name can then be taken over`
  );
}

export interface Registered {
  node: NodeRecord;
  /** The name was held by a down node with another credential (now replaced): its row before. */
  tookOverFrom: NodeRecord | null;
}

/**
 * Register (or re-register after a restart) a node: a new row, or the row of
 * that name when it holds the same credential or its node is down. CONFLICT
 * (with the whole story) when a node that is up holds the name with another
 * credential.
 */
export async function registerNode(db: Db, reg: NodeRegistration, now: Date = new Date()): Promise<Registered> {
  checkRegistration(reg);
  const at = now.toISOString();
  const values = {
    addresses: JSON.stringify(reg.addresses),
    subnets: JSON.stringify(reg.subnets),
    groups: JSON.stringify(reg.groups ?? []),
    http_url: reg.httpUrl,
    https_url: reg.httpsUrl,
    tls_sha256: reg.tlsSha256 ?? null,
    capacity_bytes: reg.capacityBytes,
    free_bytes: reg.freeBytes,
    version: reg.version,
    started_at: at,
    heartbeat_at: at,
    heartbeat_seconds: reg.heartbeatSeconds,
    stopped_at: null,
    credential_hash: reg.credentialHash,
  };
  // A few rounds: another server may insert or change the row between our read and our write.
  for (let round = 0; round < 5; round++) {
    const row = await db.selectFrom('nodes').selectAll().where('name', '=', reg.name).executeTakeFirst();
    if (!row) {
      const ins = await db
        .insertInto('nodes')
        .values({ name: reg.name, ...values, created_at: at })
        .onConflict((oc) => oc.column('name').doNothing())
        .returning('id')
        .executeTakeFirst();
      if (ins) return { node: await getNodeOrThrow(db, reg.name, now), tookOverFrom: null };
      continue;
    }
    const same = row.credential_hash === reg.credentialHash;
    if (!same && nodeStateOf(row, now) === 'up') throw new FleetbootError('CONFLICT', nameTakenMessage(reg.name, row, now));
    const upd = await db
      .updateTable('nodes')
      .set(values)
      .where('name', '=', reg.name)
      .where('credential_hash', '=', row.credential_hash)
      .where('heartbeat_at', '=', row.heartbeat_at)
      .executeTakeFirst();
    if (Number(upd.numUpdatedRows) === 1) return { node: await getNodeOrThrow(db, reg.name, now), tookOverFrom: same ? null : toNode(row, now) };
  }
  throw new FleetbootError('CONFLICT', `The row of node '${reg.name}' kept changing while this server registered (another server starting under the same name?): try again, or give this server another name (node.name)`);
}

async function getNodeOrThrow(db: Db, name: string, now: Date): Promise<NodeRecord> {
  const n = await getNode(db, name, now);
  if (!n) throw new FleetbootError('CONFLICT', `Node '${name}' was removed while it registered`);
  return n;
}

/** What a heartbeat refreshes besides its time. */
export interface HeartbeatUpdate {
  capacityBytes?: number | null;
  freeBytes?: number | null;
  addresses?: readonly string[];
  subnets?: readonly string[];
  /** Its node.groups (names as node names). */
  groups?: readonly string[];
  /** The certificate HTTPS serves now (it changes when renewed). */
  tlsSha256?: string | null;
}

/**
 * A heartbeat: only for the credential that registered (false: the row is
 * gone, removed by an administrator, or another server took the name over
 * while this one was down).
 */
export async function heartbeatNode(db: Db, name: string, credentialHash: string, update: HeartbeatUpdate = {}, now: Date = new Date()): Promise<boolean> {
  if (update.groups !== undefined) checkGroups(update.groups);
  const r = await db
    .updateTable('nodes')
    .set({
      heartbeat_at: now.toISOString(),
      stopped_at: null,
      ...(update.capacityBytes !== undefined ? { capacity_bytes: update.capacityBytes } : {}),
      ...(update.freeBytes !== undefined ? { free_bytes: update.freeBytes } : {}),
      ...(update.addresses !== undefined ? { addresses: JSON.stringify(update.addresses) } : {}),
      ...(update.subnets !== undefined ? { subnets: JSON.stringify(update.subnets) } : {}),
      ...(update.groups !== undefined ? { groups: JSON.stringify(update.groups) } : {}),
      ...(update.tlsSha256 !== undefined ? { tls_sha256: update.tlsSha256 } : {}),
    })
    .where('name', '=', name)
    .where('credential_hash', '=', credentialHash)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** A clean stop: the node is down at once (its row stays, for `node list`). */
export async function markNodeStopped(db: Db, name: string, credentialHash: string, now: Date = new Date()): Promise<boolean> {
  const r = await db.updateTable('nodes').set({ stopped_at: now.toISOString() }).where('name', '=', name).where('credential_hash', '=', credentialHash).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Every node, by name. */
export async function listNodes(db: Db, now: Date = new Date()): Promise<NodeRecord[]> {
  const rows = await db.selectFrom('nodes').selectAll().orderBy('name').execute();
  return rows.map((r) => toNode(r, now));
}

export async function getNode(db: Db, name: string, now: Date = new Date()): Promise<NodeRecord | null> {
  if (!isValidName(name)) return null;
  const r = await db.selectFrom('nodes').selectAll().where('name', '=', name).executeTakeFirst();
  return r ? toNode(r, now) : null;
}

/** For the credential check (src/nodes/auth.ts): the node and the hash it registered with. */
export async function nodeWithCredential(db: Db, name: string, now: Date = new Date()): Promise<{ node: NodeRecord; credentialHash: string } | null> {
  if (!isValidName(name)) return null;
  const r = await db.selectFrom('nodes').selectAll().where('name', '=', name).executeTakeFirst();
  return r ? { node: toNode(r, now), credentialHash: r.credential_hash } : null;
}

/** The nodes that are up (the ones that may be given new work), by name. */
export async function liveNodes(db: Db, now: Date = new Date()): Promise<NodeRecord[]> {
  return (await listNodes(db, now)).filter((n) => n.state === 'up');
}

function ipv4ToInt(ip: string): number | null {
  if (!DOTTED.test(ip)) return null;
  return ip.split('.').reduce((acc, o) => ((acc << 8) | Number(o)) >>> 0, 0);
}

/** "10.1.2.0/24" -> [network, prefix], or null. */
function parseSubnet(s: string): [number, number] | null {
  const m = /^([0-9.]+)\/([0-9]{1,2})$/.exec(s);
  const net = m ? ipv4ToInt(m[1] as string) : null;
  const prefix = m ? Number(m[2]) : NaN;
  if (net === null || !(prefix >= 0 && prefix <= 32)) return null;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [(net & mask) >>> 0, prefix];
}

/** The longest prefix among `subnets` that contains `ip`, or -1. */
export function longestMatch(subnets: readonly string[], ip: string): number {
  const a = ipv4ToInt(ip);
  if (a === null) return -1;
  let best = -1;
  for (const s of subnets) {
    const p = parseSubnet(s);
    if (!p) continue;
    const mask = p[1] === 0 ? 0 : (0xffffffff << (32 - p[1])) >>> 0;
    if (((a & mask) >>> 0) === p[0] && p[1] > best) best = p[1];
  }
  return best;
}

/**
 * The node that serves `ip` (a machine's address, or a relay's giaddr): the
 * live node with the most specific subnet containing it (ties: by name), or
 * null when no live node serves it. Down nodes are skipped.
 */
export async function nodeForSubnet(db: Db, ip: string, now: Date = new Date()): Promise<NodeRecord | null> {
  if (ipv4ToInt(ip) === null) throw new FleetbootError('INVALID_INPUT', `An IPv4 address is expected (dotted quad): got ${JSON.stringify(ip)}`);
  let best: NodeRecord | null = null;
  let bestPrefix = -1;
  for (const n of await liveNodes(db, now)) {
    const p = longestMatch(n.subnets, ip);
    if (p > bestPrefix) {
      best = n;
      bestPrefix = p;
    }
  }
  return best;
}

/**
 * Remove a node's row. NOT_FOUND when there is none; CONFLICT while it is
 * up, unless `force` (it then registers again at its next heartbeat if it
 * still runs). Multicast sessions it ran keep their rows (node stays as text).
 */
export async function removeNode(db: Db, name: string, opts: { force?: boolean; now?: Date } = {}): Promise<NodeRecord> {
  const now = opts.now ?? new Date();
  const n = await getNode(db, name, now);
  if (!n) throw new FleetbootError('NOT_FOUND', `No node named '${name}'`);
  if (n.state === 'up' && opts.force !== true) {
    throw new FleetbootError(
      'CONFLICT',
      `Node '${name}' is up (last heartbeat ${n.heartbeatAgeSeconds} s ago): stop it first (it is down ${DOWN_AFTER_BEATS * n.heartbeatSeconds} s after its last heartbeat, at once after a clean stop), or remove it anyway with force (a running node registers again at its next heartbeat)`,
    );
  }
  await db.deleteFrom('nodes').where('name', '=', name).where('id', '=', n.id).execute();
  return n;
}
