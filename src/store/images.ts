/**
 * Images and their revisions. One `images` row per name points at its
 * current revision; every capture adds an `image_revisions` row (its own
 * directory under <dataDir>/images/, its manifest and the manifest's
 * sha256), 'ready' or 'pending' approval. Nothing here overwrites a
 * revision: rollback and approval only move the current pointer, and
 * pruning removes rows (the caller removes their directories). The files
 * are managed by src/imaging/image-store.ts; this module holds only the SQL.
 */
import type { Kysely, Selectable } from 'kysely';
import { GROUP_PREFIX, IMAGE_NODE_ENTRY_RULE, parseImageNodeEntry, type ImageNodes } from '../model/image-nodes.js';
import { parseManifest, type Manifest } from '../model/manifest.js';
import { ACTIVE_TASK_STATES } from '../model/task.js';
import { FleetbootError } from '../lib/errors.js';
import type { Database, ImageRevisionTable } from './schema.js';
import { lockFor } from './locks.js';
import { listNodes } from './nodes.js';
import { finishTask } from './tasks.js';

export type RevisionState = 'ready' | 'pending';

export interface ImageRevision {
  image: string;
  number: number;
  state: RevisionState;
  /** Is this the revision deploys use? */
  current: boolean;
  createdAt: string;
  approvedAt: string | null;
  sourceMac: string | null;
  taskId: number | null;
  /** Bytes stored (sum of the compressed streams). */
  sizeBytes: number;
  /** sha256 (hex) of manifest.json. */
  manifestSha256: string;
  diskBytes: number;
  tableType: 'dos' | 'gpt';
  partitions: number;
}

/** An image as lists show it: the current revision's facts (or the newest revision's while none is current). */
export interface ImageInfo {
  name: string;
  createdAt: string;
  /** The revision deploys use; null while none is ready. */
  revision: number | null;
  /** How many revisions are kept; pending ones among them. */
  revisionCount: number;
  pending: number;
  sizeBytes: number;
  diskBytes: number;
  tableType: 'dos' | 'gpt';
  partitions: number;
  sourceMac: string | null;
  taskId: number | null;
  manifestSha256: string;
  /** Capture tasks into this image are refused (setImageProtected). */
  protected: boolean;
  /** The nodes its revisions are replicated to: 'all', or these node names and `group:NAME`s (setImageNodes). */
  nodes: ImageNodes;
}

/** images.nodes -> ImageNodes (null, or anything that is not a list of names: 'all'). */
export function imageNodesOf(text: string | null): ImageNodes {
  if (text === null) return 'all';
  try {
    const v = JSON.parse(text) as unknown;
    if (Array.isArray(v) && v.every((x): x is string => typeof x === 'string')) return v;
  } catch {
    // fall through
  }
  return 'all';
}

/** One revision with what reading it needs. */
export interface RevisionRecord {
  revision: ImageRevision;
  manifest: Manifest;
  /** Directory name under <dataDir>/images/. */
  dir: string;
}

type Db = Kysely<Database>;
type RevisionRow = Selectable<ImageRevisionTable>;

function toRecord(r: RevisionRow, current: number | null): RevisionRecord {
  const manifest = parseManifest(JSON.parse(r.manifest));
  return {
    revision: {
      image: r.image,
      number: r.number,
      state: r.state === 'pending' ? 'pending' : 'ready',
      current: r.number === current,
      createdAt: r.created_at,
      approvedAt: r.approved_at,
      sourceMac: r.source_mac,
      taskId: r.task_id,
      sizeBytes: Number(r.size_bytes),
      manifestSha256: r.manifest_sha256,
      diskBytes: manifest.diskBytes,
      tableType: manifest.table.type,
      partitions: manifest.partitions.length,
    },
    manifest,
    dir: r.dir,
  };
}

async function currentOf(db: Db, name: string): Promise<{ current: number | null } | null> {
  const r = await db.selectFrom('images').select('current_revision').where('name', '=', name).executeTakeFirst();
  return r ? { current: r.current_revision } : null;
}

/** Every revision of image `name`, oldest first (empty when there is no such image). */
export async function listRevisions(db: Db, name: string): Promise<RevisionRecord[]> {
  const img = await currentOf(db, name);
  if (!img) return [];
  const rows = await db.selectFrom('image_revisions').selectAll().where('image', '=', name).orderBy('number').execute();
  return rows.map((r) => toRecord(r, img.current));
}

function infoOf(img: { name: string; created_at: string; protected: number; nodes: string | null }, records: readonly RevisionRecord[]): ImageInfo | null {
  const shown = records.find((r) => r.revision.current) ?? records[records.length - 1];
  if (!shown) return null;
  const v = shown.revision;
  return {
    name: img.name,
    createdAt: img.created_at,
    revision: v.current ? v.number : null,
    revisionCount: records.length,
    pending: records.filter((r) => r.revision.state === 'pending').length,
    sizeBytes: v.sizeBytes,
    diskBytes: v.diskBytes,
    tableType: v.tableType,
    partitions: v.partitions,
    sourceMac: v.sourceMac,
    taskId: v.taskId,
    manifestSha256: v.manifestSha256,
    protected: img.protected === 1,
    nodes: imageNodesOf(img.nodes),
  };
}

export async function listImages(db: Db): Promise<ImageInfo[]> {
  const out: ImageInfo[] = [];
  for (const img of await db.selectFrom('images').selectAll().orderBy('name').execute()) {
    const info = infoOf(img, await listRevisions(db, img.name));
    if (info) out.push(info);
  }
  return out;
}

/** The image with its revisions, or null. */
export async function getImageDetail(db: Db, name: string): Promise<{ info: ImageInfo; revisions: RevisionRecord[] } | null> {
  const img = await db.selectFrom('images').selectAll().where('name', '=', name).executeTakeFirst();
  if (!img) return null;
  const revisions = await listRevisions(db, name);
  const info = infoOf(img, revisions);
  return info ? { info, revisions } : null;
}

/** Revision `number` of image `name` (null: the current one), or null when there is none. */
export async function getRevision(db: Db, name: string, number: number | null = null): Promise<RevisionRecord | null> {
  const img = await currentOf(db, name);
  if (!img) return null;
  const n = number ?? img.current;
  if (n === null) return null;
  const r = await db.selectFrom('image_revisions').selectAll().where('image', '=', name).where('number', '=', n).executeTakeFirst();
  return r ? toRecord(r, img.current) : null;
}

/** The current revision's facts and manifest, or null when the image does not exist or has no ready revision. */
export async function getImage(db: Db, name: string): Promise<{ info: ImageInfo; manifest: Manifest } | null> {
  const d = await getImageDetail(db, name);
  if (!d || d.info.revision === null) return null;
  const cur = d.revisions.find((r) => r.revision.current);
  return cur ? { info: d.info, manifest: cur.manifest } : null;
}

/** Every directory a revision row points at. */
export async function imageDirs(db: Db): Promise<string[]> {
  return (await db.selectFrom('image_revisions').select('dir').execute()).map((r) => r.dir);
}

export interface NewRevision {
  dir: string;
  manifest: Manifest;
  manifestSha256: string;
  state: RevisionState;
  /** The capture task that ends as done in the same transaction (or nothing is stored). */
  finishTask?: number;
}

/**
 * Add revision N+1 of `manifest.name` (creating the image on its first
 * revision); a ready revision becomes current. One transaction with the
 * capture task's end: a task cancelled, failed or reaped meanwhile never
 * adds a revision. Returns the new revision's number.
 */
export async function addRevision(db: Db, r: NewRevision): Promise<number> {
  const name = r.manifest.name;
  const sizeBytes = r.manifest.partitions.reduce((s, p) => s + p.streamBytes, 0);
  return db.transaction().execute(async (trx) => {
    // Two servers storing captures of one image number them one after the other.
    await lockFor(trx, `image:${name}`);
    if (r.finishTask !== undefined && !(await finishTask(trx, r.finishTask, 'done'))) {
      throw new FleetbootError('CONFLICT', `Task #${r.finishTask} is no longer active: its capture is not stored`);
    }
    const now = new Date().toISOString();
    if (!(await currentOf(trx, name))) await trx.insertInto('images').values({ name, current_revision: null, created_at: now }).execute();
    const last = await trx.selectFrom('image_revisions').select((eb) => eb.fn.max('number').as('n')).where('image', '=', name).executeTakeFirst();
    const number = Number(last?.n ?? 0) + 1;
    await trx
      .insertInto('image_revisions')
      .values({
        image: name,
        number,
        state: r.state,
        dir: r.dir,
        manifest: JSON.stringify(r.manifest),
        manifest_sha256: r.manifestSha256,
        size_bytes: sizeBytes,
        source_mac: r.manifest.source.mac,
        task_id: r.manifest.source.taskId,
        created_at: r.manifest.createdAt,
        approved_at: r.state === 'ready' ? now : null,
      })
      .execute();
    if (r.state === 'ready') await trx.updateTable('images').set({ current_revision: number }).where('name', '=', name).execute();
    if (r.finishTask !== undefined) await trx.updateTable('tasks').set({ revision: number }).where('id', '=', r.finishTask).execute();
    return number;
  });
}

/** Make ready revision `number` current (rollback, roll forward). NOT_FOUND; CONFLICT for a pending one. */
export async function setCurrentRevision(db: Db, name: string, number: number): Promise<RevisionRecord> {
  return db.transaction().execute(async (trx) => {
    await lockFor(trx, `image:${name}`);
    const r = await getRevision(trx, name, number);
    if (!r) throw new FleetbootError('NOT_FOUND', `Image '${name}' has no revision ${number}`);
    if (r.revision.state !== 'ready') throw new FleetbootError('CONFLICT', `Revision ${number} of image '${name}' is pending approval: approve it (fleetboot image approve ${name} ${number})`);
    await trx.updateTable('images').set({ current_revision: number }).where('name', '=', name).execute();
    return { ...r, revision: { ...r.revision, current: true } };
  });
}

/** Approve pending revision `number`: it becomes ready and current. NOT_FOUND; CONFLICT when it is not pending. */
export async function approveRevision(db: Db, name: string, number: number): Promise<RevisionRecord> {
  return db.transaction().execute(async (trx) => {
    await lockFor(trx, `image:${name}`);
    const r = await getRevision(trx, name, number);
    if (!r) throw new FleetbootError('NOT_FOUND', `Image '${name}' has no revision ${number}`);
    if (r.revision.state !== 'pending') throw new FleetbootError('CONFLICT', `Revision ${number} of image '${name}' is not pending (it is ${r.revision.state})`);
    await trx.updateTable('image_revisions').set({ state: 'ready', approved_at: new Date().toISOString() }).where('image', '=', name).where('number', '=', number).execute();
    await trx.updateTable('images').set({ current_revision: number }).where('name', '=', name).execute();
    return { ...r, revision: { ...r.revision, state: 'ready', current: true } };
  });
}

/**
 * Protect image `name` against capture (capture tasks into it are refused
 * by insertTask) or lift that. NOT_FOUND; CONFLICT when protecting while a
 * capture task into it is active (cancel it or let it finish first).
 * Returns the image as lists show it.
 */
export async function setImageProtected(db: Db, name: string, on: boolean): Promise<ImageInfo> {
  return db.transaction().execute(async (trx) => {
    const img = await trx.selectFrom('images').select('id').where('name', '=', name).executeTakeFirst();
    if (!img) throw new FleetbootError('NOT_FOUND', `No image named '${name}'`);
    if (on) {
      const capture = await trx.selectFrom('tasks').select(['id', 'state']).where('image', '=', name).where('type', '=', 'capture').where('state', 'in', [...ACTIVE_TASK_STATES]).executeTakeFirst();
      if (capture) throw new FleetbootError('CONFLICT', `Image '${name}' is being captured by task #${capture.id} (${capture.state}): cancel it or let it finish before protecting the image`);
    }
    await trx.updateTable('images').set({ protected: on ? 1 : 0 }).where('id', '=', img.id).execute();
    const d = await getImageDetail(trx, name);
    if (!d) throw new FleetbootError('NOT_FOUND', `No image named '${name}'`);
    return d.info;
  });
}

/**
 * Set the nodes image `name`'s revisions are replicated to: 'all', or a
 * list of entries, each a registered node's name or `group:NAME` naming a
 * group some registered node is in (its node.groups). INVALID_INPUT for an
 * empty list, an entry of neither form, an entry twice, or a node or group
 * no registered node has (the message lists the known ones). NOT_FOUND.
 * Nodes no longer assigned keep what they hold (they stop pulling new
 * revisions). Stored sorted: node names, then groups. Returns the image as
 * lists show it.
 */
export async function setImageNodes(db: Db, name: string, nodes: ImageNodes): Promise<ImageInfo> {
  let stored: string | null = null;
  if (nodes !== 'all') {
    if (nodes.length === 0) throw new FleetbootError('INVALID_INPUT', `Image '${name}': a list of nodes is expected (node names and group:NAME, or 'all' for every node): got an empty list`);
    const named = { node: new Set<string>(), group: new Set<string>() };
    for (const entry of nodes) {
      const e = parseImageNodeEntry(entry);
      if (e === null) throw new FleetbootError('INVALID_INPUT', `Image '${name}': each entry must be ${IMAGE_NODE_ENTRY_RULE}: got ${JSON.stringify(entry)}`);
      if (named[e.kind].has(e.name)) throw new FleetbootError('INVALID_INPUT', `Image '${name}': ${e.kind} '${e.name}' is named twice`);
      named[e.kind].add(e.name);
    }
    const registered = await listNodes(db);
    const knownNodes = registered.map((n) => n.name);
    const knownGroups = [...new Set(registered.flatMap((n) => n.groups))].sort();
    const unknownNodes = [...named.node].filter((n) => !knownNodes.includes(n));
    const unknownGroups = [...named.group].filter((g) => !knownGroups.includes(g));
    const listed = (names: string[]): string => names.map((n) => `'${n}'`).join(', ');
    const known = (names: string[]): string => (names.length ? names.join(', ') : 'none');
    const problems = [
      ...(unknownNodes.length ? [`no node is registered as ${listed(unknownNodes)} (known nodes: ${known(knownNodes)}; a node is known once it has started against this database, see fleetboot node list)`] : []),
      ...(unknownGroups.length ? [`no registered node is in group ${listed(unknownGroups)} (known groups: ${known(knownGroups)}; a node's groups are its node.groups, published when it starts, see fleetboot node list)`] : []),
    ];
    if (problems.length > 0) throw new FleetbootError('INVALID_INPUT', `Image '${name}': ${problems.join('; ')}`);
    stored = JSON.stringify([...[...named.node].sort(), ...[...named.group].sort().map((g) => `${GROUP_PREFIX}${g}`)]);
  }
  const r = await db.updateTable('images').set({ nodes: stored }).where('name', '=', name).executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) throw new FleetbootError('NOT_FOUND', `No image named '${name}'`);
  const d = await getImageDetail(db, name);
  if (!d) throw new FleetbootError('NOT_FOUND', `No image named '${name}'`);
  return d.info;
}

/**
 * Remove the ready revisions of `name` beyond the newest `keep`, and the
 * pending ones beyond the newest `keep` (counted apart, so captures waiting
 * for approval never push out the revisions there are to roll back to);
 * never the current one nor one an active deploy task writes. Returns the
 * removed revisions' directories (the caller deletes them once this is
 * durable).
 */
export async function pruneRevisions(db: Db, name: string, keep: number): Promise<{ number: number; dir: string }[]> {
  return db.transaction().execute(async (trx) => {
    await lockFor(trx, `image:${name}`);
    const img = await currentOf(trx, name);
    if (!img) return [];
    const rows = await trx.selectFrom('image_revisions').select(['number', 'dir', 'state']).where('image', '=', name).orderBy('number', 'desc').execute();
    const inUse = new Set(
      (await trx.selectFrom('tasks').select('revision').where('image', '=', name).where('type', '=', 'deploy').where('state', 'in', [...ACTIVE_TASK_STATES]).execute()).map((t) => t.revision),
    );
    const beyond = (state: string) => rows.filter((r) => r.state === state).slice(keep);
    const drop = [...beyond('ready'), ...beyond('pending')].filter((r) => r.number !== img.current && !inUse.has(r.number)).sort((a, b) => b.number - a.number);
    for (const r of drop) {
      await trx.deleteFrom('image_revisions').where('image', '=', name).where('number', '=', r.number).execute();
      await trx.deleteFrom('revision_copies').where('image', '=', name).where('number', '=', r.number).execute();
    }
    return drop.map((r) => ({ number: r.number, dir: r.dir }));
  });
}

/** Delete the image and all its revisions; returns their directories, or null when there was no such image. */
export async function deleteImageRows(db: Db, name: string): Promise<string[] | null> {
  return db.transaction().execute(async (trx) => {
    const r = await trx.deleteFrom('images').where('name', '=', name).returning('id').executeTakeFirst();
    if (!r) return null;
    const dirs = await trx.deleteFrom('image_revisions').where('image', '=', name).returning('dir').execute();
    await trx.deleteFrom('revision_copies').where('image', '=', name).execute();
    return dirs.map((d) => d.dir);
  });
}
