/**
 * Endpoint agents, their enrolment tokens, sessions, software packages and
 * the work handed to them (migration 20261211T1200_endpoint_agents). SQL
 * only: the rules of enrolment and hand-out are src/endpoints/service.ts's,
 * which calls these functions inside the transactions they name.
 *
 * Hand-out, at most once: queued work becomes `sent` (to one agent) in the
 * transaction that answers the poll. An agent lists what it holds (running
 * or not yet reported) on every poll; work `sent` to it that it does not
 * list and has no result was lost on the way (the answer never arrived, or
 * the agent stopped before it wrote its run marker) and is queued again, up
 * to MAX_DELIVERIES times. Work the agent started and could not finish is
 * reported `interrupted` by the agent itself and never run again.
 */
import type { Kysely, Transaction } from 'kysely';
import { FleetbootError } from '../lib/errors.js';
import type { AgentIdentity, AgentState, PackageManifest, WorkResult, WorkStatus } from '../model/endpoint.js';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

/** Deliveries of one piece of work before it is given up as lost. */
export const MAX_DELIVERIES = 3;

export type WorkState = 'queued' | 'sent' | WorkStatus | 'cancelled' | 'lost';
export const FINISHED_WORK_STATES: readonly WorkState[] = ['succeeded', 'failed', 'hash-mismatch', 'bad-signature', 'timeout', 'interrupted', 'refused', 'cancelled', 'lost'];

export interface Agent {
  id: string;
  publicKey: string;
  state: AgentState;
  /** The host it acts for (null while pending, or when the host was deleted). */
  host: { id: number; mac: string; name: string | null } | null;
  /** What it reported when it enrolled. */
  identity: AgentIdentity;
  lastIdentity: AgentIdentity | null;
  lastIp: string | null;
  enrolledAt: string;
  approvedAt: string | null;
  revokedAt: string | null;
  lastSeenAt: string | null;
}

export interface EnrolToken {
  id: number;
  /** The host the agent becomes (MAC), or null. */
  host: string | null;
  /** The group the agent's host joins, or null. */
  group: string | null;
  usesLeft: number;
  uses: number;
  createdAt: string;
  createdBy: string;
  expiresAt: string;
  revokedAt: string | null;
  /** The deploy task that made it (task deploy --enrol), or null (an administrator's). */
  taskId: number | null;
  /** It enrols only an agent that reports its host's MAC. */
  macBound: boolean;
}

export interface StoredPackage {
  id: number;
  name: string;
  revision: number;
  manifest: PackageManifest;
  signature: string;
  createdAt: string;
  createdBy: string;
}

export interface Work {
  id: number;
  hostId: number;
  mac: string;
  hostName: string | null;
  kind: string;
  payload: Record<string, unknown>;
  packageId: number | null;
  /** 'name' revision N of the package, or null. */
  packageName: string | null;
  packageRevision: number | null;
  taskId: number | null;
  state: WorkState;
  notBefore: string | null;
  createdAt: string;
  createdBy: string;
  agentId: string | null;
  deliveries: number;
  sentAt: string | null;
  finishedAt: string | null;
  exitCode: number | null;
  signal: string | null;
  durationMs: number | null;
  stdout: string | null;
  stderr: string | null;
  message: string | null;
  rebootRequested: boolean;
}

function parseJson<T>(text: string): T {
  return JSON.parse(text) as T;
}

// ---------------------------------------------------------------- agents

interface AgentRow {
  id: string;
  public_key: string;
  state: string;
  host_id: number | null;
  host_mac: string | null;
  host_name: string | null;
  identity: string;
  last_identity: string | null;
  last_ip: string | null;
  enrolled_at: string;
  approved_at: string | null;
  revoked_at: string | null;
  last_seen_at: string | null;
}

function agentState(s: string): AgentState {
  if (s === 'active' || s === 'pending' || s === 'revoked') return s;
  throw new FleetbootError('IO', `agents.state holds ${JSON.stringify(s)}: expected active, pending or revoked`);
}

function agentFromRow(r: AgentRow): Agent {
  return {
    id: r.id,
    publicKey: r.public_key,
    state: agentState(r.state),
    host: r.host_id !== null && r.host_mac !== null ? { id: r.host_id, mac: r.host_mac, name: r.host_name } : null,
    identity: parseJson<AgentIdentity>(r.identity),
    lastIdentity: r.last_identity === null ? null : parseJson<AgentIdentity>(r.last_identity),
    lastIp: r.last_ip,
    enrolledAt: r.enrolled_at,
    approvedAt: r.approved_at,
    revokedAt: r.revoked_at,
    lastSeenAt: r.last_seen_at,
  };
}

function agentQuery(db: Db) {
  return db
    .selectFrom('agents')
    .leftJoin('hosts', 'hosts.id', 'agents.host_id')
    .select([
      'agents.id',
      'agents.public_key',
      'agents.state',
      'agents.host_id',
      'hosts.mac as host_mac',
      'hosts.name as host_name',
      'agents.identity',
      'agents.last_identity',
      'agents.last_ip',
      'agents.enrolled_at',
      'agents.approved_at',
      'agents.revoked_at',
      'agents.last_seen_at',
    ]);
}

export async function getAgent(db: Db, id: string): Promise<Agent | null> {
  const r = await agentQuery(db).where('agents.id', '=', id).executeTakeFirst();
  return r ? agentFromRow(r) : null;
}

export async function listAgents(db: Db, filter: { state?: AgentState; mac?: string } = {}): Promise<Agent[]> {
  let q = agentQuery(db);
  if (filter.state !== undefined) q = q.where('agents.state', '=', filter.state);
  if (filter.mac !== undefined) q = q.where('hosts.mac', '=', filter.mac);
  return (await q.orderBy('agents.enrolled_at').orderBy('agents.id').execute()).map(agentFromRow);
}

/** The active agent of a host, or null. */
export async function activeAgentOfHost(db: Db, hostId: number): Promise<Agent | null> {
  const r = await agentQuery(db).where('agents.host_id', '=', hostId).where('agents.state', '=', 'active').executeTakeFirst();
  return r ? agentFromRow(r) : null;
}

export async function insertAgent(db: Db, a: { id: string; publicKey: string; state: Exclude<AgentState, 'revoked'>; hostId: number | null; identity: AgentIdentity; ip: string | null; now: string; tokenId: number | null }): Promise<void> {
  await db
    .insertInto('agents')
    .values({
      id: a.id,
      public_key: a.publicKey,
      state: a.state,
      host_id: a.hostId,
      identity: JSON.stringify(a.identity),
      last_identity: JSON.stringify(a.identity),
      last_ip: a.ip,
      enrolled_at: a.now,
      approved_at: a.state === 'active' ? a.now : null,
      revoked_at: null,
      last_seen_at: a.now,
      token_id: a.tokenId,
    })
    .execute();
}

/** Make an agent active for a host (enrolment with a token, or approval). */
export async function activateAgent(db: Db, id: string, hostId: number, now: string, tokenId: number | null = null): Promise<void> {
  await db.updateTable('agents').set({ state: 'active', host_id: hostId, approved_at: now, revoked_at: null, ...(tokenId !== null ? { token_id: tokenId } : {}) }).where('id', '=', id).execute();
}

/** Revoke every active or pending agent of a host except `keep`; returns their ids. */
export async function revokeAgentsOfHost(db: Db, hostId: number, now: string, keep: string | null): Promise<string[]> {
  let q = db.selectFrom('agents').select('id').where('host_id', '=', hostId).where('state', '!=', 'revoked');
  if (keep !== null) q = q.where('id', '!=', keep);
  const ids = (await q.execute()).map((r) => r.id);
  for (const id of ids) await revokeAgent(db, id, now);
  return ids;
}

/** Revoke an agent. Its sessions stay until they expire, so that its next request is told REVOKED (every request checks the agent's state). */
export async function revokeAgent(db: Db, id: string, now: string): Promise<void> {
  await db.updateTable('agents').set({ state: 'revoked', revoked_at: now }).where('id', '=', id).execute();
}

export async function deleteAgent(db: Db, id: string): Promise<void> {
  await db.deleteFrom('agents').where('id', '=', id).execute();
}

export async function noteAgentSeen(db: Db, id: string, seen: { now: string; ip: string | null; identity?: AgentIdentity }): Promise<void> {
  await db
    .updateTable('agents')
    .set({ last_seen_at: seen.now, last_ip: seen.ip, ...(seen.identity ? { last_identity: JSON.stringify(seen.identity) } : {}) })
    .where('id', '=', id)
    .execute();
}

// ---------------------------------------------------------------- enrolment tokens

interface TokenRow {
  id: number;
  host_mac: string | null;
  group_name: string | null;
  uses_left: number;
  uses: number;
  created_at: string;
  created_by: string;
  expires_at: string;
  revoked_at: string | null;
  task_id: number | null;
  mac_bound: number;
}

function tokenQuery(db: Db) {
  return db
    .selectFrom('agent_enrol_tokens')
    .leftJoin('hosts', 'hosts.id', 'agent_enrol_tokens.host_id')
    .leftJoin('groups', 'groups.id', 'agent_enrol_tokens.group_id')
    .select([
      'agent_enrol_tokens.id',
      'hosts.mac as host_mac',
      'groups.name as group_name',
      'agent_enrol_tokens.uses_left',
      'agent_enrol_tokens.uses',
      'agent_enrol_tokens.created_at',
      'agent_enrol_tokens.created_by',
      'agent_enrol_tokens.expires_at',
      'agent_enrol_tokens.revoked_at',
      'agent_enrol_tokens.task_id',
      'agent_enrol_tokens.mac_bound',
    ]);
}

function tokenFromRow(r: TokenRow): EnrolToken {
  return { id: r.id, host: r.host_mac, group: r.group_name, usesLeft: r.uses_left, uses: r.uses, createdAt: r.created_at, createdBy: r.created_by, expiresAt: r.expires_at, revokedAt: r.revoked_at, taskId: r.task_id, macBound: r.mac_bound === 1 };
}

export async function createEnrolToken(
  db: Db,
  t: { tokenHash: string; hostId: number | null; groupId: number | null; uses: number; createdAt: string; createdBy: string; expiresAt: string; taskId?: number | null; macBound?: boolean },
): Promise<EnrolToken> {
  const { id } = await db
    .insertInto('agent_enrol_tokens')
    .values({
      token_hash: t.tokenHash,
      host_id: t.hostId,
      group_id: t.groupId,
      uses_left: t.uses,
      uses: 0,
      created_at: t.createdAt,
      created_by: t.createdBy,
      expires_at: t.expiresAt,
      revoked_at: null,
      task_id: t.taskId ?? null,
      mac_bound: t.macBound === true ? 1 : 0,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const row = await tokenQuery(db).where('agent_enrol_tokens.id', '=', id).executeTakeFirstOrThrow();
  return tokenFromRow(row);
}

/** The token with this hash, with its host id and group id (for enrolment), or null. */
export async function enrolTokenByHash(db: Db, tokenHash: string): Promise<(EnrolToken & { hostId: number | null; groupId: number | null }) | null> {
  const r = await tokenQuery(db).select(['agent_enrol_tokens.host_id', 'agent_enrol_tokens.group_id']).where('agent_enrol_tokens.token_hash', '=', tokenHash).executeTakeFirst();
  return r ? { ...tokenFromRow(r), hostId: r.host_id, groupId: r.group_id } : null;
}

/** Spend one use of a token: a compare-and-swap on uses_left, so two enrolments cannot both take the last use. */
export async function spendEnrolToken(db: Db, id: number, usesLeft: number): Promise<boolean> {
  const r = await db
    .updateTable('agent_enrol_tokens')
    .set({ uses_left: usesLeft - 1, uses: (eb) => eb('uses', '+', 1) })
    .where('id', '=', id)
    .where('uses_left', '=', usesLeft)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export async function listEnrolTokens(db: Db): Promise<EnrolToken[]> {
  return (await tokenQuery(db).orderBy('agent_enrol_tokens.id').execute()).map(tokenFromRow);
}

/** Revoke the unused, unrevoked tokens a deploy task made (it is making a new one); their ids. */
export async function revokeTaskEnrolTokens(db: Db, taskId: number, now: string): Promise<number[]> {
  const rows = await db.selectFrom('agent_enrol_tokens').select('id').where('task_id', '=', taskId).where('revoked_at', 'is', null).where('uses', '=', 0).execute();
  const ids = rows.map((r) => r.id);
  if (ids.length) await db.updateTable('agent_enrol_tokens').set({ revoked_at: now }).where('id', 'in', ids).execute();
  return ids;
}

export async function revokeEnrolToken(db: Db, id: number, now: string): Promise<boolean> {
  const r = await db.updateTable('agent_enrol_tokens').set({ revoked_at: now }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

// ---------------------------------------------------------------- sessions

export async function createAgentSession(db: Db, s: { id: string; agentId: string; createdAt: string; expiresAt: string }): Promise<void> {
  await db.deleteFrom('agent_sessions').where('expires_at', '<', s.createdAt).execute();
  await db.insertInto('agent_sessions').values({ id: s.id, agent_id: s.agentId, created_at: s.createdAt, expires_at: s.expiresAt }).execute();
}

/** The session with this id (sha256 of its secret) and its agent, or null. */
export async function agentSession(db: Db, id: string): Promise<{ expiresAt: string; agent: Agent } | null> {
  const s = await db.selectFrom('agent_sessions').select(['agent_id', 'expires_at']).where('id', '=', id).executeTakeFirst();
  if (!s) return null;
  const agent = await getAgent(db, s.agent_id);
  return agent ? { expiresAt: s.expires_at, agent } : null;
}

// ---------------------------------------------------------------- packages

function packageFromRow(r: { id: number; name: string; revision: number; manifest: string; signature: string; created_at: string; created_by: string }): StoredPackage {
  return { id: r.id, name: r.name, revision: r.revision, manifest: parseJson<PackageManifest>(r.manifest), signature: r.signature, createdAt: r.created_at, createdBy: r.created_by };
}

/** The next revision number of a package (1 for a new name). */
export async function nextPackageRevision(db: Db, name: string): Promise<number> {
  const r = await db.selectFrom('packages').select((eb) => eb.fn.max('revision').as('max')).where('name', '=', name).executeTakeFirst();
  return Number(r?.max ?? 0) + 1;
}

export async function insertPackage(db: Db, p: { manifest: PackageManifest; manifestJson: string; signature: string; createdBy: string }): Promise<StoredPackage> {
  const { id } = await db
    .insertInto('packages')
    .values({ name: p.manifest.name, revision: p.manifest.revision, manifest: p.manifestJson, signature: p.signature, created_at: p.manifest.createdAt, created_by: p.createdBy })
    .returning('id')
    .executeTakeFirstOrThrow();
  return { id, name: p.manifest.name, revision: p.manifest.revision, manifest: p.manifest, signature: p.signature, createdAt: p.manifest.createdAt, createdBy: p.createdBy };
}

/** A package's revision (default: the newest), or null. */
export async function getPackage(db: Db, name: string, revision?: number): Promise<StoredPackage | null> {
  let q = db.selectFrom('packages').selectAll().where('name', '=', name);
  q = revision === undefined ? q.orderBy('revision', 'desc') : q.where('revision', '=', revision);
  const r = await q.limit(1).executeTakeFirst();
  return r ? packageFromRow(r) : null;
}

export async function getPackageById(db: Db, id: number): Promise<StoredPackage | null> {
  const r = await db.selectFrom('packages').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? packageFromRow(r) : null;
}

/** Every package's newest revision, by name. */
export async function listPackages(db: Db): Promise<StoredPackage[]> {
  const rows = await db.selectFrom('packages').selectAll().orderBy('name').orderBy('revision', 'desc').execute();
  const seen = new Set<string>();
  const out: StoredPackage[] = [];
  for (const r of rows) {
    if (seen.has(r.name)) continue;
    seen.add(r.name);
    out.push(packageFromRow(r));
  }
  return out;
}

/** Every sha256 that some package names (the files to keep). */
export async function packageFileHashes(db: Db): Promise<Set<string>> {
  const out = new Set<string>();
  for (const r of await db.selectFrom('packages').select('manifest').execute()) {
    for (const f of parseJson<PackageManifest>(r.manifest).files) out.add(f.sha256);
  }
  return out;
}

// ---------------------------------------------------------------- work

function workState(s: string): WorkState {
  const all: readonly string[] = ['queued', 'sent', ...FINISHED_WORK_STATES];
  if (all.includes(s)) return s as WorkState;
  throw new FleetbootError('IO', `agent_work.state holds ${JSON.stringify(s)}: expected one of ${all.join(', ')}`);
}

function workQuery(db: Db) {
  return db
    .selectFrom('agent_work')
    .innerJoin('hosts', 'hosts.id', 'agent_work.host_id')
    .leftJoin('packages', 'packages.id', 'agent_work.package_id')
    .selectAll('agent_work')
    .select(['hosts.mac as host_mac', 'hosts.name as host_name', 'packages.name as package_name', 'packages.revision as package_revision']);
}

type WorkRow = Awaited<ReturnType<ReturnType<typeof workQuery>['executeTakeFirstOrThrow']>>;

function workFromRow(r: WorkRow): Work {
  return {
    id: r.id,
    hostId: r.host_id,
    mac: r.host_mac,
    hostName: r.host_name,
    kind: r.kind,
    payload: parseJson<Record<string, unknown>>(r.payload),
    packageId: r.package_id,
    packageName: r.package_name,
    packageRevision: r.package_revision,
    taskId: r.task_id,
    state: workState(r.state),
    notBefore: r.not_before,
    createdAt: r.created_at,
    createdBy: r.created_by,
    agentId: r.agent_id,
    deliveries: r.deliveries,
    sentAt: r.sent_at,
    finishedAt: r.finished_at,
    exitCode: r.exit_code === null ? null : Number(r.exit_code),
    signal: r.signal,
    durationMs: r.duration_ms === null ? null : Number(r.duration_ms),
    stdout: r.stdout,
    stderr: r.stderr,
    message: r.message,
    rebootRequested: r.reboot_requested === 1,
  };
}

export interface NewWork {
  hostId: number;
  kind: string;
  payload: Record<string, unknown>;
  packageId?: number | null;
  taskId?: number | null;
  notBefore?: string | null;
  createdBy: string;
  now: string;
}

export async function insertWork(db: Db, w: NewWork): Promise<number> {
  const { id } = await db
    .insertInto('agent_work')
    .values({
      host_id: w.hostId,
      kind: w.kind,
      payload: JSON.stringify(w.payload),
      package_id: w.packageId ?? null,
      task_id: w.taskId ?? null,
      state: 'queued',
      not_before: w.notBefore ?? null,
      created_at: w.now,
      created_by: w.createdBy,
      agent_id: null,
      deliveries: 0,
      sent_at: null,
      finished_at: null,
      exit_code: null,
      signal: null,
      duration_ms: null,
      stdout: null,
      stderr: null,
      message: null,
      reboot_requested: 0,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return id;
}

export async function getWork(db: Db, id: number): Promise<Work | null> {
  const r = await workQuery(db).where('agent_work.id', '=', id).executeTakeFirst();
  return r ? workFromRow(r) : null;
}

export async function listWork(db: Db, filter: { hostId?: number; kind?: string; limit?: number } = {}): Promise<Work[]> {
  let q = workQuery(db);
  if (filter.hostId !== undefined) q = q.where('agent_work.host_id', '=', filter.hostId);
  if (filter.kind !== undefined) q = q.where('agent_work.kind', '=', filter.kind);
  return (await q.orderBy('agent_work.id', 'desc').limit(filter.limit ?? 500).execute()).map(workFromRow);
}

/**
 * Work `sent` to this agent for this host that the agent no longer holds
 * (not in `held`) and has no result: queued again, or `lost` after
 * MAX_DELIVERIES. Returns the ids given up.
 */
export async function reclaimWork(db: Db, agentId: string, held: ReadonlySet<number>, now: string): Promise<number[]> {
  const sent = await db.selectFrom('agent_work').select(['id', 'deliveries']).where('agent_id', '=', agentId).where('state', '=', 'sent').execute();
  const lost: number[] = [];
  for (const w of sent) {
    if (held.has(w.id)) continue;
    if (w.deliveries >= MAX_DELIVERIES) {
      await db.updateTable('agent_work').set({ state: 'lost', finished_at: now, message: `handed out ${w.deliveries} times and never reported: given up` }).where('id', '=', w.id).where('state', '=', 'sent').execute();
      lost.push(w.id);
    } else {
      await db.updateTable('agent_work').set({ state: 'queued', agent_id: null }).where('id', '=', w.id).where('state', '=', 'sent').execute();
    }
  }
  return lost;
}

/** Queued work of a host that is due (not_before passed), oldest first. */
export async function dueWork(db: Db, hostId: number, now: string, limit: number): Promise<Work[]> {
  const rows = await workQuery(db)
    .where('agent_work.host_id', '=', hostId)
    .where('agent_work.state', '=', 'queued')
    .where((eb) => eb.or([eb('agent_work.not_before', 'is', null), eb('agent_work.not_before', '<=', now)]))
    .orderBy('agent_work.id')
    .limit(limit)
    .execute();
  return rows.map(workFromRow);
}

/** Queued -> sent to `agentId` (a compare-and-swap: false when another poll took it). */
export async function markWorkSent(db: Db, id: number, agentId: string, now: string): Promise<boolean> {
  const r = await db
    .updateTable('agent_work')
    .set({ state: 'sent', agent_id: agentId, sent_at: now, deliveries: (eb) => eb('deliveries', '+', 1) })
    .where('id', '=', id)
    .where('state', '=', 'queued')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** The earliest not_before of a host's queued work still in the future, or null. */
export async function nextDueAt(db: Db, hostId: number, now: string): Promise<string | null> {
  const r = await db.selectFrom('agent_work').select((eb) => eb.fn.min('not_before').as('next')).where('host_id', '=', hostId).where('state', '=', 'queued').where('not_before', '>', now).executeTakeFirst();
  return r?.next ?? null;
}

/**
 * Record a result. Only work sent to this agent (or already finished by it:
 * a repeated report is answered the same) may be reported.
 * Returns 'recorded', 'repeat' or 'not-yours'.
 */
export async function finishWork(db: Db, id: number, agentId: string, result: WorkResult, now: string): Promise<'recorded' | 'repeat' | 'not-yours'> {
  const w = await db.selectFrom('agent_work').select(['state', 'agent_id']).where('id', '=', id).executeTakeFirst();
  if (!w || w.agent_id !== agentId) return 'not-yours';
  if (w.state !== 'sent') return (FINISHED_WORK_STATES as readonly string[]).includes(w.state) ? 'repeat' : 'not-yours';
  await db
    .updateTable('agent_work')
    .set({
      state: result.status,
      finished_at: now,
      exit_code: result.exitCode,
      signal: result.signal,
      duration_ms: result.durationMs,
      stdout: result.stdout,
      stderr: result.stderr,
      message: result.message,
      reboot_requested: result.rebootRequested ? 1 : 0,
    })
    .where('id', '=', id)
    .where('state', '=', 'sent')
    .execute();
  return 'recorded';
}

/** Whether a reboot for this task was queued already. */
export async function rebootQueuedForTask(db: Db, taskId: number): Promise<boolean> {
  const r = await db.selectFrom('agent_work').select('id').where('task_id', '=', taskId).where('kind', '=', 'reboot').executeTakeFirst();
  return r !== undefined;
}

/** Cancel queued work (not sent yet). */
export async function cancelWork(db: Db, id: number, now: string): Promise<boolean> {
  const r = await db.updateTable('agent_work').set({ state: 'cancelled', finished_at: now }).where('id', '=', id).where('state', '=', 'queued').executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

// ---------------------------------------------------------------- hosts, inside an enrolment

/** The hosts (id, mac, name) whose MAC is one of `macs`. */
export async function hostsByMacs(db: Db, macs: readonly string[]): Promise<Array<{ id: number; mac: string; name: string | null; status: string }>> {
  if (macs.length === 0) return [];
  return db.selectFrom('hosts').select(['id', 'mac', 'name', 'status']).where('mac', 'in', [...macs]).orderBy('id').execute();
}

export async function hostById(db: Db, id: number): Promise<{ id: number; mac: string; name: string | null; status: string } | null> {
  return (await db.selectFrom('hosts').select(['id', 'mac', 'name', 'status']).where('id', '=', id).executeTakeFirst()) ?? null;
}

/** A new approved host for an enrolled agent (name only when free). */
export async function insertHostForAgent(db: Db, h: { mac: string; name: string | null; now: string }): Promise<number> {
  const taken = h.name !== null && (await db.selectFrom('hosts').select('id').where('name', '=', h.name).executeTakeFirst()) !== undefined;
  const { id } = await db
    .insertInto('hosts')
    .values({ mac: h.mac, name: taken ? null : h.name, entry_id: null, ip: null, status: 'approved', created_at: h.now, updated_at: h.now })
    .returning('id')
    .executeTakeFirstOrThrow();
  return id;
}

/** Add a host to a group unless it is a member already. */
export async function addHostToGroup(db: Db, groupId: number, mac: string, now: string): Promise<void> {
  const there = await db.selectFrom('group_members').select('mac').where('group_id', '=', groupId).where('mac', '=', mac).executeTakeFirst();
  if (!there) await db.insertInto('group_members').values({ group_id: groupId, mac, added_at: now }).execute();
}

/** Approve a pending host (an agent with a token for it proves it is wanted). */
export async function approveHostById(db: Db, id: number, now: string): Promise<void> {
  await db.updateTable('hosts').set({ status: 'approved', updated_at: now }).where('id', '=', id).where('status', '=', 'pending').execute();
}

/** Queued or scheduled imaging tasks with reboot=1 for this MAC whose reboot was not queued yet. */
export async function rebootTasksOf(db: Db, mac: string): Promise<Array<{ id: number; type: string; image: string | null }>> {
  const tasks = await db.selectFrom('tasks').select(['id', 'type', 'image']).where('mac', '=', mac).where('reboot', '=', 1).where('state', '=', 'queued').orderBy('id').execute();
  const out: Array<{ id: number; type: string; image: string | null }> = [];
  for (const t of tasks) if (!(await rebootQueuedForTask(db, t.id))) out.push(t);
  return out;
}

/**
 * The last addresses known of these MACs: a host's reserved address, its
 * newest DHCP lease, or the last address its agent came from.
 */
export async function knownAddresses(db: Db, macs: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (macs.length === 0) return out;
  const list = [...macs];
  for (const r of await db.selectFrom('agents').innerJoin('hosts', 'hosts.id', 'agents.host_id').select(['hosts.mac', 'agents.last_ip']).where('hosts.mac', 'in', list).where('agents.last_ip', 'is not', null).orderBy('agents.last_seen_at').execute()) {
    if (r.last_ip !== null) out.set(r.mac, r.last_ip);
  }
  for (const r of await db.selectFrom('dhcp_leases').select(['mac', 'ip']).where('mac', 'in', list).orderBy('updated_at').execute()) out.set(r.mac, r.ip);
  for (const r of await db.selectFrom('hosts').select(['mac', 'ip']).where('mac', 'in', list).where('ip', 'is not', null).execute()) {
    if (r.ip !== null) out.set(r.mac, r.ip);
  }
  return out;
}

/** Active agents seen since `since` (ISO) with the address they came from. */
export async function recentAgents(db: Db, since: string): Promise<Array<{ id: string; hostId: number; mac: string; ip: string }>> {
  const rows = await db
    .selectFrom('agents')
    .innerJoin('hosts', 'hosts.id', 'agents.host_id')
    .select(['agents.id', 'agents.host_id', 'hosts.mac', 'agents.last_ip'])
    .where('agents.state', '=', 'active')
    .where('agents.last_seen_at', '>=', since)
    .where('agents.last_ip', 'is not', null)
    .execute();
  return rows.flatMap((r) => (r.host_id !== null && r.last_ip !== null ? [{ id: r.id, hostId: r.host_id, mac: r.mac, ip: r.last_ip }] : []));
}
