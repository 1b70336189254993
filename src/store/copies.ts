/**
 * Revision copies: each node's copy of each image revision (issue 15,
 * verified replication). One row per (image, revision number, node):
 *
 * - 'missing'  wanted on that node, nothing there yet;
 * - 'copying'  bytes arriving (bytes_done of bytes_total);
 * - 'verified' every stream's sha256 and the manifest's sha256 matched the
 *              shared store's on that node (verified_at says when);
 * - 'corrupt'  a mismatch was found (error says which); pulled again later.
 *
 * A node serves a revision only from a copy it holds verified (see
 * `servableOn`). Revisions older than this table have no rows at all: they
 * are served as before, by the server that holds them (single server).
 * Only SQL here; src/replication/service.ts moves the bytes.
 */
import type { Kysely, Selectable } from 'kysely';
import type { Database, RevisionCopyTable } from './schema.js';
import { isAssigned } from '../model/image-nodes.js';
import { imageNodesOf } from './images.js';
import { liveNodes } from './nodes.js';

type Db = Kysely<Database>;

export const COPY_STATES = ['missing', 'copying', 'verified', 'corrupt'] as const;
export type CopyState = (typeof COPY_STATES)[number];

export interface RevisionCopy {
  image: string;
  number: number;
  node: string;
  state: CopyState;
  bytesDone: number;
  bytesTotal: number;
  error: string | null;
  verifiedAt: string | null;
  updatedAt: string;
}

function toCopy(r: Selectable<RevisionCopyTable>): RevisionCopy {
  const state = (COPY_STATES as readonly string[]).includes(r.state) ? (r.state as CopyState) : 'corrupt';
  return {
    image: r.image,
    number: r.number,
    node: r.node,
    state,
    bytesDone: Number(r.bytes_done),
    bytesTotal: Number(r.bytes_total),
    error: r.error,
    verifiedAt: r.verified_at,
    updatedAt: r.updated_at,
  };
}

export interface CopyUpdate {
  state: CopyState;
  bytesDone?: number;
  bytesTotal?: number;
  error?: string | null;
}

/**
 * Set node `node`'s copy of revision `number` of `image` (insert or
 * update). 'verified' stamps verified_at and clears the error; other
 * states keep verified_at as it was (when it last verified).
 */
export async function setCopy(db: Db, image: string, number: number, node: string, u: CopyUpdate, now: Date = new Date()): Promise<void> {
  const at = now.toISOString();
  const values = {
    state: u.state,
    bytes_done: u.bytesDone ?? 0,
    bytes_total: u.bytesTotal ?? 0,
    error: u.state === 'verified' ? null : (u.error ?? null),
    updated_at: at,
  };
  const set = {
    state: u.state,
    ...(u.bytesDone !== undefined ? { bytes_done: u.bytesDone } : {}),
    ...(u.bytesTotal !== undefined ? { bytes_total: u.bytesTotal } : {}),
    error: values.error,
    updated_at: at,
    ...(u.state === 'verified' ? { verified_at: at } : {}),
  };
  await db
    .insertInto('revision_copies')
    .values({ image, number, node, ...values, verified_at: u.state === 'verified' ? at : null })
    .onConflict((oc) => oc.columns(['image', 'number', 'node']).doUpdateSet(set))
    .execute();
}

/** Progress of a copy in state 'copying' (bytes only; the state is left alone). */
export async function setCopyProgress(db: Db, image: string, number: number, node: string, bytesDone: number, now: Date = new Date()): Promise<void> {
  await db.updateTable('revision_copies').set({ bytes_done: bytesDone, updated_at: now.toISOString() }).where('image', '=', image).where('number', '=', number).where('node', '=', node).execute();
}

export async function getCopy(db: Db, image: string, number: number, node: string): Promise<RevisionCopy | null> {
  const r = await db.selectFrom('revision_copies').selectAll().where('image', '=', image).where('number', '=', number).where('node', '=', node).executeTakeFirst();
  return r ? toCopy(r) : null;
}

/** Every node's copy of every revision of `image` (or of all images), by image, revision, node. */
export async function listCopies(db: Db, image?: string): Promise<RevisionCopy[]> {
  let q = db.selectFrom('revision_copies').selectAll();
  if (image !== undefined) q = q.where('image', '=', image);
  return (await q.orderBy('image').orderBy('number').orderBy('node').execute()).map(toCopy);
}

/** The copies node `node` holds in `state`. */
export async function copiesOnNode(db: Db, node: string, state?: CopyState): Promise<RevisionCopy[]> {
  let q = db.selectFrom('revision_copies').selectAll().where('node', '=', node);
  if (state !== undefined) q = q.where('state', '=', state);
  return (await q.orderBy('image').orderBy('number').execute()).map(toCopy);
}

/** The names of the nodes holding a verified copy of the revision. */
export async function verifiedHolders(db: Db, image: string, number: number): Promise<string[]> {
  const rows = await db.selectFrom('revision_copies').select('node').where('image', '=', image).where('number', '=', number).where('state', '=', 'verified').orderBy('node').execute();
  return rows.map((r) => r.node);
}

/**
 * May node `node` serve revision `number` of `image` from its disk? Yes
 * when it holds a verified copy; also yes when the revision has no copy
 * rows at all (made before copies were recorded: single-server behaviour);
 * no otherwise (another node holds it, or this node's copy is missing,
 * copying or corrupt).
 */
export async function servableOn(db: Db, image: string, number: number, node: string): Promise<boolean> {
  const rows = await db.selectFrom('revision_copies').select(['node', 'state']).where('image', '=', image).where('number', '=', number).execute();
  if (rows.length === 0) return true;
  return rows.some((r) => r.node === node && r.state === 'verified');
}

/** Remove a node's row for a revision (its copy went away). */
export async function deleteCopy(db: Db, image: string, number: number, node: string): Promise<void> {
  await db.deleteFrom('revision_copies').where('image', '=', image).where('number', '=', number).where('node', '=', node).execute();
}

/** One assigned revision a node that is up lacks a verified copy of (replication lag, `fleetboot doctor`). */
export interface LagItem {
  node: string;
  image: string;
  number: number;
  /** Its copy there: missing (no row, or 'missing'), copying, or corrupt. */
  state: Exclude<CopyState, 'verified'>;
  /** Since when it has been lacking: when the revision became ready, or when the node first registered if later. */
  since: string;
  /** How many other nodes hold it verified (0: nobody can pull it). */
  holders: number;
  error: string | null;
}

/**
 * Replication lag: for every node that is up, the ready revisions assigned
 * to it (images.nodes names it or one of its groups: isAssigned in
 * src/model/image-nodes.ts) that it holds no verified copy of. Revisions without any copy row (stored before copies were recorded,
 * no node known to hold them yet) are left out, as the pullers leave them.
 * Oldest first.
 */
export async function replicationLag(db: Db, now: Date = new Date()): Promise<LagItem[]> {
  const nodes = await liveNodes(db, now);
  if (nodes.length === 0) return [];
  const images = new Map((await db.selectFrom('images').select(['name', 'nodes']).execute()).map((i) => [i.name, imageNodesOf(i.nodes)]));
  const revs = await db.selectFrom('image_revisions').select(['image', 'number', 'created_at', 'approved_at']).where('state', '=', 'ready').execute();
  const copies = await listCopies(db);
  const byRev = new Map<string, RevisionCopy[]>();
  for (const c of copies) {
    const k = `${c.image}/${c.number}`;
    byRev.set(k, [...(byRev.get(k) ?? []), c]);
  }
  const out: LagItem[] = [];
  for (const r of revs) {
    const rows = byRev.get(`${r.image}/${r.number}`);
    if (!rows) continue;
    const assigned = images.get(r.image) ?? 'all';
    const ready = r.approved_at ?? r.created_at;
    for (const n of nodes) {
      if (!isAssigned(assigned, n)) continue;
      const mine = rows.find((c) => c.node === n.name);
      if (mine?.state === 'verified') continue;
      out.push({
        node: n.name,
        image: r.image,
        number: r.number,
        state: mine ? (mine.state as Exclude<CopyState, 'verified'>) : 'missing',
        since: ready > n.createdAt ? ready : n.createdAt,
        holders: rows.filter((c) => c.state === 'verified' && c.node !== n.name).length,
        error: mine?.error ?? null,
      });
    }
  }
  return out.sort((a, b) => (a.since < b.since ? -1 : a.since > b.since ? 1 : 0));
}
