/**
 * Users of the API and the console: a name (NAME_PATTERN, unique), a role
 * (src/model/roles.ts), a password hash (src/lib/password-hash.ts: this
 * module stores it and never sees a password) and whether the user is
 * disabled. Plain functions over a Kysely handle; each change is one
 * transaction.
 *
 * There is always an enabled admin once there is one: deleting, demoting
 * or disabling the last one is refused (CONFLICT). The check runs after the
 * change, inside its transaction: on SQLite transactions are serialised
 * (one connection per process; across processes a transaction that read
 * before another's write fails with SQLITE_BUSY instead of writing), so two
 * such changes cannot both pass. PostgreSQL at READ COMMITTED will need the
 * admins' rows locked first (FOR UPDATE) when that dialect arrives.
 */
import type { Kysely } from 'kysely';
import { FleetbootError } from '../lib/errors.js';
import { roleOf, type Role } from '../model/roles.js';
import { isValidName } from '../model/validate.js';
import type { Database } from './schema.js';
import { lockFor } from './locks.js';

export interface User {
  id: number;
  name: string;
  role: Role;
  createdAt: string;
  updatedAt: string;
  /** null: enabled. */
  disabledAt: string | null;
  /** The password was generated (shown once): a session can do nothing but change it. */
  mustChangePassword: boolean;
}

export interface NewUser {
  name: string;
  role: Role;
  passwordHash: string;
  /** true for a generated password. */
  mustChangePassword: boolean;
}

export interface UserChanges {
  role?: Role;
  disabled?: boolean;
}

type Db = Kysely<Database>;

const NAME_EXPECTED = 'expected letters, digits, . _ - (up to 64, starting with a letter or digit)';

export function checkUserName(name: unknown): string {
  if (typeof name !== 'string' || !isValidName(name)) throw new FleetbootError('INVALID_INPUT', `Invalid user name ${JSON.stringify(name) ?? String(name)}: ${NAME_EXPECTED}`);
  return name;
}

interface UserRow {
  id: number;
  name: string;
  role: string;
  created_at: string;
  updated_at: string;
  disabled_at: string | null;
  must_change_password: number;
}

export function userFromRow(r: UserRow): User {
  return { id: r.id, name: r.name, role: roleOf(r.role), createdAt: r.created_at, updatedAt: r.updated_at, disabledAt: r.disabled_at, mustChangePassword: r.must_change_password === 1 };
}

const COLUMNS = ['id', 'name', 'role', 'created_at', 'updated_at', 'disabled_at', 'must_change_password'] as const;
/** The same columns, of users joined to another table (sessions, api_tokens). */
export const JOINED_USER_COLUMNS = [
  'users.role as user_role',
  'users.created_at as user_created_at',
  'users.updated_at as user_updated_at',
  'users.disabled_at as user_disabled_at',
  'users.must_change_password as user_must_change_password',
] as const;

/** A row with JOINED_USER_COLUMNS and the joined table's user_id and user_name (sessions, api_tokens). */
export interface JoinedUserRow {
  user_id: number;
  user_name: string;
  user_role: string;
  user_created_at: string;
  user_updated_at: string;
  user_disabled_at: string | null;
  user_must_change_password: number;
}

/** The user of a row selected with JOINED_USER_COLUMNS. */
export function joinedUserFromRow(r: JoinedUserRow): User {
  return userFromRow({
    id: r.user_id,
    name: r.user_name,
    role: r.user_role,
    created_at: r.user_created_at,
    updated_at: r.user_updated_at,
    disabled_at: r.user_disabled_at,
    must_change_password: r.user_must_change_password,
  });
}

export async function listUsers(db: Db): Promise<User[]> {
  return (await db.selectFrom('users').select(COLUMNS).orderBy('name').execute()).map(userFromRow);
}

export async function countUsers(db: Db): Promise<number> {
  const r = await db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
  return Number(r?.n ?? 0);
}

export async function getUser(db: Db, name: string): Promise<User | null> {
  const r = await db.selectFrom('users').select(COLUMNS).where('name', '=', checkUserName(name)).executeTakeFirst();
  return r ? userFromRow(r) : null;
}

async function mustGetUser(db: Db, name: string): Promise<User> {
  const u = await getUser(db, name);
  if (!u) throw new FleetbootError('NOT_FOUND', `No user named '${name}' (fleetboot user list)`);
  return u;
}

/** The user and the stored hash, for the login (null for an unknown name; a name that is not valid is unknown too). */
export async function userWithPasswordHash(db: Db, name: string): Promise<{ user: User; passwordHash: string } | null> {
  if (!isValidName(name)) return null;
  const r = await db.selectFrom('users').select([...COLUMNS, 'password_hash']).where('name', '=', name).executeTakeFirst();
  return r ? { user: userFromRow(r), passwordHash: r.password_hash } : null;
}

/** CONFLICT when the name is taken. */
export async function createUser(db: Db, u: NewUser): Promise<User> {
  checkUserName(u.name);
  return db.transaction().execute(async (trx) => {
    if (await trx.selectFrom('users').select('id').where('name', '=', u.name).executeTakeFirst()) throw new FleetbootError('CONFLICT', `A user named '${u.name}' already exists`);
    const now = new Date().toISOString();
    const r = await trx
      .insertInto('users')
      .values({ name: u.name, role: u.role, password_hash: u.passwordHash, created_at: now, updated_at: now, disabled_at: null, must_change_password: u.mustChangePassword ? 1 : 0 })
      .returning(COLUMNS)
      .executeTakeFirstOrThrow();
    return userFromRow(r);
  });
}

/** CONFLICT when `before` was an enabled admin and none is left (run inside the changing transaction, after the change). */
async function keepAnAdmin(trx: Db, before: User, what: string): Promise<void> {
  if (before.role !== 'admin' || before.disabledAt !== null) return;
  const r = await trx.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).where('role', '=', 'admin').where('disabled_at', 'is', null).executeTakeFirst();
  if (Number(r?.n ?? 0) === 0) {
    throw new FleetbootError('CONFLICT', `Cannot ${what} '${before.name}': it is the last enabled admin. Make another user an admin first (fleetboot user role NAME admin)`);
  }
}

/**
 * Change a user's role or disable/enable it. Disabling revokes its sessions
 * (enabling again does not bring them back); its API tokens are refused
 * while it is disabled.
 */
export async function updateUser(db: Db, name: string, changes: UserChanges, at: string = new Date().toISOString()): Promise<User> {
  checkUserName(name);
  return db.transaction().execute(async (trx) => {
    // Two servers demoting two admins at once must not both see the other one left.
    await lockFor(trx, 'admins');
    const before = await mustGetUser(trx, name);
    const set: { updated_at: string; role?: Role; disabled_at?: string | null } = { updated_at: at };
    if (changes.role !== undefined) set.role = changes.role;
    if (changes.disabled === true && before.disabledAt === null) set.disabled_at = at;
    if (changes.disabled === false) set.disabled_at = null;
    await trx.updateTable('users').set(set).where('id', '=', before.id).execute();
    if (changes.role !== undefined && changes.role !== 'admin') await keepAnAdmin(trx, before, `make ${changes.role} of`);
    if (changes.disabled === true) {
      await keepAnAdmin(trx, before, 'disable');
      await trx.updateTable('sessions').set({ revoked_at: at }).where('user_id', '=', before.id).where('revoked_at', 'is', null).execute();
    }
    return mustGetUser(trx, name);
  });
}

/**
 * Store a new password hash (`mustChange`: it was generated, and must be
 * changed at the next login); every session of the user is revoked but
 * `keepSessionId` (the session that changed its own password stays).
 */
export async function setPasswordHash(db: Db, name: string, passwordHash: string, opts: { mustChange: boolean; keepSessionId?: string | null; at?: string }): Promise<User> {
  checkUserName(name);
  const at = opts.at ?? new Date().toISOString();
  return db.transaction().execute(async (trx) => {
    const r = await trx
      .updateTable('users')
      .set({ password_hash: passwordHash, must_change_password: opts.mustChange ? 1 : 0, updated_at: at })
      .where('name', '=', name)
      .returning(['id'])
      .executeTakeFirst();
    if (!r) throw new FleetbootError('NOT_FOUND', `No user named '${name}' (fleetboot user list)`);
    let q = trx.updateTable('sessions').set({ revoked_at: at }).where('user_id', '=', r.id).where('revoked_at', 'is', null);
    if (opts.keepSessionId) q = q.where('id', '!=', opts.keepSessionId);
    await q.execute();
    return mustGetUser(trx, name);
  });
}

/** Replace a hash made with older parameters by one of the same password (at a login); changes nothing else. */
export async function rehashPassword(db: Db, userId: number, oldHash: string, newHash: string): Promise<void> {
  await db.updateTable('users').set({ password_hash: newHash }).where('id', '=', userId).where('password_hash', '=', oldHash).execute();
}

/** Delete a user with its sessions and API tokens (the audit log keeps its name). */
export async function deleteUser(db: Db, name: string): Promise<User> {
  checkUserName(name);
  return db.transaction().execute(async (trx) => {
    // Two servers demoting two admins at once must not both see the other one left.
    await lockFor(trx, 'admins');
    const before = await mustGetUser(trx, name);
    await trx.deleteFrom('users').where('id', '=', before.id).execute();
    await keepAnAdmin(trx, before, 'delete');
    return before;
  });
}
