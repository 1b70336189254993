/**
 * The audit log: one row per change asked through the API (any status),
 * written by src/http/audit.ts before the answer leaves. Rows are only ever
 * added; the actor is a text ("user alice", "token ci of alice", "local
 * admin token"), so a row outlives its user.
 */
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  ip: string | null;
  method: string;
  /** The route pattern, e.g. /api/v1/hosts/:mac; null when no route matched. */
  route: string | null;
  url: string;
  status: number;
  /** What was asked (params, query, body) without secrets, or null. */
  summary: unknown;
}

export type NewAuditEntry = Omit<AuditEntry, 'id'>;

type Db = Kysely<Database>;

export async function appendAudit(db: Db, e: NewAuditEntry): Promise<number> {
  const r = await db
    .insertInto('audit_log')
    .values({ at: e.at, actor: e.actor.slice(0, 200), ip: e.ip?.slice(0, 64) ?? null, method: e.method.slice(0, 10), route: e.route?.slice(0, 300) ?? null, url: e.url.slice(0, 2048), status: e.status, summary: e.summary === null || e.summary === undefined ? null : JSON.stringify(e.summary) })
    .returning('id')
    .executeTakeFirstOrThrow();
  return r.id;
}

function parseSummary(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** Newest first: at most `limit` entries, older than entry `before` when given (paging by id). */
export async function listAudit(db: Db, opts: { limit: number; before?: number }): Promise<AuditEntry[]> {
  let q = db.selectFrom('audit_log').selectAll();
  if (opts.before !== undefined) q = q.where('id', '<', opts.before);
  const rows = await q.orderBy('id', 'desc').limit(opts.limit).execute();
  return rows.map((r) => ({ id: r.id, at: r.at, actor: r.actor, ip: r.ip, method: r.method, route: r.route, url: r.url, status: r.status, summary: parseSummary(r.summary) }));
}
