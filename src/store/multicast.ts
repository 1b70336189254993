/**
 * Multicast sessions in the store: made with their job (one transaction:
 * the job's tasks, the session, each task's receiver id and pinned
 * revision), read by the multicast service and the API, ended once.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely, Selectable, Transaction } from 'kysely';
import { FleetbootError } from '../lib/errors.js';
import type { Database, MulticastSessionState, MulticastSessionTable } from './schema.js';
import { lockFor } from './locks.js';
import { placeMulticastSession } from './multicast-placement.js';

type Db = Kysely<Database>;

export type { MulticastSessionState };

export const ACTIVE_SESSION_STATES: readonly MulticastSessionState[] = ['waiting', 'sending'];

export interface MulticastSession {
  id: number;
  /** The 64-bit session id of its datagrams (hex). */
  session: string;
  jobId: number | null;
  image: string;
  revision: number;
  address: string;
  port: number;
  state: MulticastSessionState;
  expected: number;
  minReceivers: number;
  maxWaitSeconds: number | null;
  error: string | null;
  /** The sender's figures when it ended (JSON object), or null. */
  stats: unknown;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** The node that runs it (null: made before nodes existed, or not claimed yet). */
  node: string | null;
}

export interface SessionMember {
  taskId: number;
  mac: string;
  /** Receiver id (hex). */
  receiver: string;
  taskState: string;
  /** The address the task's token was handed to: the only one its receiver id is admitted from. */
  tokenIp: string | null;
  bytesDone: number;
  bytesTotal: number | null;
  error: string | null;
}

function toSession(r: Selectable<MulticastSessionTable>): MulticastSession {
  let stats: unknown = null;
  if (r.stats !== null) {
    try {
      stats = JSON.parse(r.stats) as unknown;
    } catch {
      stats = null;
    }
  }
  return {
    id: r.id,
    session: r.session,
    jobId: r.job_id,
    image: r.image,
    revision: r.revision,
    address: r.address,
    port: r.port,
    state: r.state,
    expected: r.expected,
    minReceivers: r.min_receivers,
    maxWaitSeconds: r.max_wait_seconds,
    error: r.error,
    stats,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    node: r.node,
  };
}

/**
 * Picks a group address and port for a new session, given the pairs active
 * sessions hold (null: none free), and names the node creating it (absent
 * or null: none named, one server). The session then runs on the node of
 * its receivers' subnet when that node can send the revision, else on the
 * creating node (multicast-placement.ts).
 */
export type AllocateEndpoint = (used: ReadonlyArray<{ address: string; port: number }>) => { address: string; port: number; node?: string | null } | null;

export interface NewSession {
  jobId: number;
  image: string;
  /** null: the image's current revision now. */
  revision: number | null;
  taskIds: readonly number[];
  minReceivers: number;
  maxWaitSeconds: number | null;
  allocate: AllocateEndpoint;
}

function hex64(): string {
  return randomBytes(8).toString('hex');
}

/**
 * Inside the job's transaction: pin the revision (every member writes the
 * same one, by multicast or, falling back, by unicast), take an address and
 * port, and give each task its receiver id.
 */
export async function createSessionIn(trx: Transaction<Database>, n: NewSession): Promise<MulticastSession> {
  const img = await trx.selectFrom('images').select(['current_revision']).where('name', '=', n.image).executeTakeFirst();
  const revision = n.revision ?? img?.current_revision ?? null;
  if (revision === null) throw new FleetbootError('CONFLICT', `Image '${n.image}' has no approved revision to send`);
  await lockFor(trx, 'multicast-endpoints');
  const used = await trx.selectFrom('multicast_sessions').select(['address', 'port']).where('state', 'in', [...ACTIVE_SESSION_STATES]).execute();
  const endpoint = n.allocate(used);
  if (endpoint === null) throw new FleetbootError('CONFLICT', `Every multicast address and port of the configuration is in use by a running session (${used.length}): wait for one to end, or widen multicast.addresses / multicast.ports`);
  // Named by a node (several servers): the node of the receivers' subnet runs it, when it can (multicast-placement.ts).
  let node = endpoint.node ?? null;
  if (node !== null && n.taskIds.length > 0) {
    const macs = await trx.selectFrom('tasks').select('mac').where('id', 'in', [...n.taskIds]).execute();
    node = (await placeMulticastSession(trx, n.image, revision, macs.map((m) => m.mac), node)).node;
  }
  const now = new Date().toISOString();
  const { id } = await trx
    .insertInto('multicast_sessions')
    .values({
      session: hex64(),
      job_id: n.jobId,
      image: n.image,
      revision,
      address: endpoint.address,
      port: endpoint.port,
      state: 'waiting',
      expected: n.taskIds.length,
      min_receivers: Math.min(n.minReceivers, n.taskIds.length),
      max_wait_seconds: n.maxWaitSeconds,
      error: null,
      stats: null,
      created_at: now,
      started_at: null,
      finished_at: null,
      node,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  for (const taskId of n.taskIds) {
    await trx.updateTable('tasks').set({ multicast_id: id, multicast_receiver: hex64(), revision, requested_revision: revision }).where('id', '=', taskId).execute();
  }
  await trx.updateTable('jobs').set({ multicast_session_id: id }).where('id', '=', n.jobId).execute();
  const row = await trx.selectFrom('multicast_sessions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  return toSession(row);
}

export async function getSession(db: Db, id: number): Promise<MulticastSession | null> {
  if (!Number.isSafeInteger(id) || id < 1) return null;
  const r = await db.selectFrom('multicast_sessions').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? toSession(r) : null;
}

/** Newest first. */
export async function listSessions(db: Db, filter: { active?: boolean; limit?: number } = {}): Promise<MulticastSession[]> {
  let q = db.selectFrom('multicast_sessions').selectAll().orderBy('id', 'desc');
  if (filter.active) q = q.where('state', 'in', [...ACTIVE_SESSION_STATES]);
  const rows = await q.limit(Math.max(1, Math.min(10_000, Math.floor(filter.limit ?? 100)))).execute();
  return rows.map(toSession);
}

export async function sessionMembers(db: Db, id: number): Promise<SessionMember[]> {
  const rows = await db
    .selectFrom('tasks')
    .select(['id', 'mac', 'multicast_receiver', 'state', 'token_ip', 'bytes_done', 'bytes_total', 'error'])
    .where('multicast_id', '=', id)
    .orderBy('mac')
    .execute();
  return rows.map((r) => ({
    taskId: r.id,
    mac: r.mac,
    receiver: r.multicast_receiver ?? '',
    taskState: r.state,
    tokenIp: r.token_ip,
    bytesDone: r.bytes_done,
    bytesTotal: r.bytes_total,
    error: r.error,
  }));
}

/** waiting -> sending (once). */
export async function markSessionSending(db: Db, id: number): Promise<boolean> {
  const r = await db.updateTable('multicast_sessions').set({ state: 'sending', started_at: new Date().toISOString() }).where('id', '=', id).where('state', '=', 'waiting').executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** An active session ends (once): finished, failed or cancelled, with its figures. */
export async function endSession(db: Db, id: number, state: 'finished' | 'failed' | 'cancelled', error: string | null, stats: unknown): Promise<boolean> {
  const r = await db
    .updateTable('multicast_sessions')
    .set({ state, error, stats: stats === null ? null : JSON.stringify(stats), finished_at: new Date().toISOString() })
    .where('id', '=', id)
    .where('state', 'in', [...ACTIVE_SESSION_STATES])
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/**
 * A session with no node becomes this node's (compare-and-swap: of several
 * nodes, one wins). True when it is now `node`'s.
 */
export async function claimSession(db: Db, id: number, node: string): Promise<boolean> {
  const r = await db.updateTable('multicast_sessions').set({ node }).where('id', '=', id).where('node', 'is', null).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/**
 * At a node's start: its active sessions, and the active ones no node holds
 * (made before nodes existed), end as failed, and become its own (their
 * senders died with the previous process). Returns the sessions ended.
 */
export async function failOrphanedSessions(db: Db, node: string, reason: string): Promise<MulticastSession[]> {
  const rows = await db
    .selectFrom('multicast_sessions')
    .selectAll()
    .where('state', 'in', [...ACTIVE_SESSION_STATES])
    .where((eb) => eb.or([eb('node', '=', node), eb('node', 'is', null)]))
    .orderBy('id')
    .execute();
  const ended: MulticastSession[] = [];
  for (const row of rows) {
    const r = await db
      .updateTable('multicast_sessions')
      .set({ state: 'failed', error: reason, node, finished_at: new Date().toISOString() })
      .where('id', '=', row.id)
      .where('state', 'in', [...ACTIVE_SESSION_STATES])
      .where((eb) => (row.node === null ? eb('node', 'is', null) : eb('node', '=', node)))
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 1) ended.push(toSession(row));
  }
  return ended;
}

/** An active session of `node` ends as failed (compare-and-swap on its node and state): its node is down. */
export async function failSessionOfNode(db: Db, id: number, node: string, reason: string): Promise<boolean> {
  const r = await db
    .updateTable('multicast_sessions')
    .set({ state: 'failed', error: reason, finished_at: new Date().toISOString() })
    .where('id', '=', id)
    .where('node', '=', node)
    .where('state', 'in', [...ACTIVE_SESSION_STATES])
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}
