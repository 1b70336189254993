/**
 * Login sessions. A session's id is the sha256 (hex) of the secret in the
 * browser's cookie: a copy of the database opens no session. The idle and
 * absolute timeouts are the caller's policy (src/auth/service.ts): this
 * module stores the times and answers with them. Revoked sessions stay
 * until pruned (a day after they ended), so "revoked" can be told from
 * "unknown" for a while.
 */
import type { Kysely } from 'kysely';
import { FleetbootError } from '../lib/errors.js';
import type { Database } from './schema.js';
import { JOINED_USER_COLUMNS, joinedUserFromRow, type User } from './users.js';

export interface Session {
  /** sha256 (hex) of the cookie's secret. */
  id: string;
  userId: number;
  /** The user's name. */
  user: string;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  ip: string | null;
  userAgent: string | null;
  revokedAt: string | null;
}

export interface NewSession {
  id: string;
  userId: number;
  csrfToken: string;
  createdAt: string;
  expiresAt: string;
  ip: string | null;
  userAgent: string | null;
}

type Db = Kysely<Database>;

/** How long an ended (expired or revoked) session is kept before it is pruned. */
const KEEP_ENDED_MS = 24 * 3600_000;

const SESSION_COLUMNS = [
  'sessions.id',
  'sessions.user_id',
  'users.name as user_name',
  'sessions.created_at',
  'sessions.last_seen_at',
  'sessions.expires_at',
  'sessions.ip',
  'sessions.user_agent',
  'sessions.revoked_at',
] as const;

interface SessionRow {
  id: string;
  user_id: number;
  user_name: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  ip: string | null;
  user_agent: string | null;
  revoked_at: string | null;
}

function sessionFromRow(r: SessionRow): Session {
  return { id: r.id, userId: r.user_id, user: r.user_name, createdAt: r.created_at, lastSeenAt: r.last_seen_at, expiresAt: r.expires_at, ip: r.ip, userAgent: r.user_agent, revokedAt: r.revoked_at };
}

/** Store a new session, and prune the sessions that ended more than a day before it began. */
export async function createSession(db: Db, s: NewSession): Promise<void> {
  const cutoff = new Date(Date.parse(s.createdAt) - KEEP_ENDED_MS).toISOString();
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('sessions').where((eb) => eb.or([eb('expires_at', '<', cutoff), eb('revoked_at', '<', cutoff)])).execute();
    await trx
      .insertInto('sessions')
      .values({ id: s.id, user_id: s.userId, csrf_token: s.csrfToken, created_at: s.createdAt, last_seen_at: s.createdAt, expires_at: s.expiresAt, ip: s.ip, user_agent: s.userAgent, revoked_at: null })
      .execute();
  });
}

/** A session with its CSRF token and its user, by id (the hash), or null. */
export async function sessionForAuth(db: Db, id: string): Promise<{ session: Session; csrfToken: string; user: User } | null> {
  const r = await db
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .select([...SESSION_COLUMNS, 'sessions.csrf_token', ...JOINED_USER_COLUMNS])
    .where('sessions.id', '=', id)
    .executeTakeFirst();
  if (!r) return null;
  const user = joinedUserFromRow(r);
  return { session: sessionFromRow(r), csrfToken: r.csrf_token, user };
}

export async function getSession(db: Db, id: string): Promise<Session | null> {
  const r = await db.selectFrom('sessions').innerJoin('users', 'users.id', 'sessions.user_id').select(SESSION_COLUMNS).where('sessions.id', '=', id).executeTakeFirst();
  return r ? sessionFromRow(r) : null;
}

/** Move last_seen_at forward (never back). */
export async function touchSession(db: Db, id: string, at: string): Promise<void> {
  await db.updateTable('sessions').set({ last_seen_at: at }).where('id', '=', id).where('last_seen_at', '<', at).execute();
}

/**
 * The sessions still open at `now` (not revoked, before their absolute
 * expiry, seen after `idleSince`), newest first; of one user when `userId`
 * is given.
 */
export async function listSessions(db: Db, opts: { now: string; idleSince: string; userId?: number }): Promise<Session[]> {
  let q = db
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .select(SESSION_COLUMNS)
    .where('sessions.revoked_at', 'is', null)
    .where('sessions.expires_at', '>', opts.now)
    .where('sessions.last_seen_at', '>', opts.idleSince);
  if (opts.userId !== undefined) q = q.where('sessions.user_id', '=', opts.userId);
  return (await q.orderBy('sessions.created_at', 'desc').orderBy('sessions.id').execute()).map(sessionFromRow);
}

/** Revoke a session (NOT_FOUND for an unknown id); revoking a revoked one changes nothing. */
export async function revokeSession(db: Db, id: string, at: string): Promise<Session> {
  return db.transaction().execute(async (trx) => {
    await trx.updateTable('sessions').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).execute();
    const s = await getSession(trx, id);
    if (!s) throw new FleetbootError('NOT_FOUND', `No session ${id} (fleetboot session list)`);
    return s;
  });
}
