/**
 * Per-user API tokens. The secret is shown once when the token is made and
 * only its sha256 (hex) is stored: a token is found by that hash (a
 * 256-bit random secret needs no slow hash). A token has a role no higher
 * than its owner's when it is made (checked here, in the same transaction
 * that reads the owner); when it is used, src/auth/service.ts caps it by
 * the owner's current role and refuses it when revoked, expired or its
 * owner is disabled.
 */
import type { Kysely } from 'kysely';
import { FleetbootError } from '../lib/errors.js';
import { aRole, roleAtLeast, roleOf, type Role } from '../model/roles.js';
import { isValidName } from '../model/validate.js';
import type { Database } from './schema.js';
import { JOINED_USER_COLUMNS, joinedUserFromRow, type User } from './users.js';

export interface ApiToken {
  id: number;
  userId: number;
  /** The owner's name. */
  user: string;
  name: string;
  role: Role;
  createdAt: string;
  /** null: never. */
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface NewApiToken {
  userId: number;
  name: string;
  role: Role;
  /** sha256 (hex) of the secret. */
  tokenHash: string;
  createdAt: string;
  expiresAt: string | null;
}

type Db = Kysely<Database>;

const COLUMNS = [
  'api_tokens.id',
  'api_tokens.user_id',
  'users.name as user_name',
  'api_tokens.name',
  'api_tokens.role',
  'api_tokens.created_at',
  'api_tokens.expires_at',
  'api_tokens.last_used_at',
  'api_tokens.revoked_at',
] as const;

interface TokenRow {
  id: number;
  user_id: number;
  user_name: string;
  name: string;
  role: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

function tokenFromRow(r: TokenRow): ApiToken {
  return { id: r.id, userId: r.user_id, user: r.user_name, name: r.name, role: roleOf(r.role), createdAt: r.created_at, expiresAt: r.expires_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at };
}

export function checkTokenName(name: unknown): string {
  if (typeof name !== 'string' || !isValidName(name)) {
    throw new FleetbootError('INVALID_INPUT', `Invalid token name ${JSON.stringify(name) ?? String(name)}: expected letters, digits, . _ - (up to 64, starting with a letter or digit)`);
  }
  return name;
}

/**
 * Store a new token. FORBIDDEN when its role is above its owner's;
 * CONFLICT when the owner has an unrevoked token of that name; NOT_FOUND
 * for an unknown owner.
 */
export async function createApiToken(db: Db, t: NewApiToken): Promise<ApiToken> {
  checkTokenName(t.name);
  return db.transaction().execute(async (trx) => {
    const owner = await trx.selectFrom('users').select(['name', 'role']).where('id', '=', t.userId).executeTakeFirst();
    if (!owner) throw new FleetbootError('NOT_FOUND', `No user with id ${t.userId}`);
    const ownerRole = roleOf(owner.role);
    if (!roleAtLeast(ownerRole, t.role)) {
      throw new FleetbootError('FORBIDDEN', `A token of ${owner.name} cannot have the role ${t.role}: ${owner.name} is ${aRole(ownerRole)}, and a token's role is at most its owner's`);
    }
    const taken = await trx.selectFrom('api_tokens').select('id').where('user_id', '=', t.userId).where('name', '=', t.name).where('revoked_at', 'is', null).executeTakeFirst();
    if (taken) throw new FleetbootError('CONFLICT', `${owner.name} already has a token named '${t.name}' (#${taken.id}): revoke it first or choose another name`);
    const r = await trx
      .insertInto('api_tokens')
      .values({ user_id: t.userId, name: t.name, role: t.role, token_hash: t.tokenHash, created_at: t.createdAt, expires_at: t.expiresAt, last_used_at: null, revoked_at: null })
      .returning('id')
      .executeTakeFirstOrThrow();
    const made = await getApiToken(trx, r.id);
    if (!made) throw new FleetbootError('NOT_FOUND', `Token #${r.id} vanished while it was made`);
    return made;
  });
}

export async function getApiToken(db: Db, id: number): Promise<ApiToken | null> {
  const r = await db.selectFrom('api_tokens').innerJoin('users', 'users.id', 'api_tokens.user_id').select(COLUMNS).where('api_tokens.id', '=', id).executeTakeFirst();
  return r ? tokenFromRow(r) : null;
}

/** A token with its owner, by the sha256 (hex) of its secret, or null. */
export async function tokenForAuth(db: Db, tokenHash: string): Promise<{ token: ApiToken; user: User } | null> {
  const r = await db
    .selectFrom('api_tokens')
    .innerJoin('users', 'users.id', 'api_tokens.user_id')
    .select([...COLUMNS, ...JOINED_USER_COLUMNS])
    .where('api_tokens.token_hash', '=', tokenHash)
    .executeTakeFirst();
  if (!r) return null;
  const user = joinedUserFromRow(r);
  return { token: tokenFromRow(r), user };
}

/** Tokens, newest first: a user's when `userId` is given; revoked ones only when asked. */
export async function listApiTokens(db: Db, opts: { userId?: number; includeRevoked?: boolean } = {}): Promise<ApiToken[]> {
  let q = db.selectFrom('api_tokens').innerJoin('users', 'users.id', 'api_tokens.user_id').select(COLUMNS);
  if (opts.userId !== undefined) q = q.where('api_tokens.user_id', '=', opts.userId);
  if (!opts.includeRevoked) q = q.where('api_tokens.revoked_at', 'is', null);
  return (await q.orderBy('api_tokens.id', 'desc').execute()).map(tokenFromRow);
}

/** Record a use (at most once a minute is the caller's business). */
export async function touchApiToken(db: Db, id: number, at: string): Promise<void> {
  await db.updateTable('api_tokens').set({ last_used_at: at }).where('id', '=', id).execute();
}

/** Revoke a token (NOT_FOUND for an unknown id); revoking a revoked one changes nothing. */
export async function revokeApiToken(db: Db, id: number, at: string): Promise<ApiToken> {
  return db.transaction().execute(async (trx) => {
    await trx.updateTable('api_tokens').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).execute();
    const t = await getApiToken(trx, id);
    if (!t) throw new FleetbootError('NOT_FOUND', `No API token #${id} (fleetboot token list)`);
    return t;
  });
}
