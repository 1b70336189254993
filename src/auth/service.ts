/**
 * Who is asking: the credentials of an /api/v1 request become a Principal
 * (or a refusal saying why), and logins become sessions. No HTTP here
 * (src/http/auth.ts reads headers and cookies and answers); the clock is
 * injected so tests can move past the timeouts.
 *
 * Credentials, in the order they are tried:
 * - `Authorization: Bearer` with the local admin token (<dataDir>/api-token,
 *   compared in constant time: both sides hashed to 32 bytes first): role
 *   admin, no user. The CLI on the server's machine uses it.
 * - `Authorization: Bearer fbt_...`, a per-user API token, found by the
 *   sha256 of its secret; refused when revoked, expired or its owner is
 *   disabled; its role is its own capped by its owner's current role.
 * - The session cookie: found by the sha256 of its secret; refused when
 *   revoked, past its absolute expiry, idle longer than
 *   auth.sessionIdleMinutes, or its user is disabled. Its role is the
 *   user's current role.
 * A request with an Authorization header is judged by it alone (a wrong
 * token is not rescued by a cookie).
 *
 * Logins: a wrong name and a wrong password get the same answer, in about
 * the same time (an unknown name is checked against a dummy hash). Failed
 * attempts are counted per client address and per user name: the sixth
 * within a minute, right or wrong, is refused with the wait; attempts sent
 * at once count before their checks end. The counts are kept in memory
 * (src/lib/attempt-window.ts): a restart forgets them, and each server
 * process counts its own.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { FleetbootError } from '../lib/errors.js';
import { AttemptWindow } from '../lib/attempt-window.js';
import { DEFAULT_SCRYPT, hashPassword, needsRehash, verifyPassword, type ScryptParams } from '../lib/password-hash.js';
import { generatePassword, passwordProblem } from '../model/password.js';
import { lowerRole, type Role } from '../model/roles.js';
import {
  createApiToken,
  createSession,
  getApiToken,
  getUser,
  rehashPassword,
  sessionForAuth,
  tokenForAuth,
  touchApiToken,
  touchSession,
  userWithPasswordHash,
  type ApiToken,
  type Session,
  type Store,
  type User,
} from '../store/index.js';

/** Per-user API tokens start with this, so a leaked one is recognisable (secret scanners, logs). */
export const API_TOKEN_PREFIX = 'fbt_';
/** Failed logins allowed per client address, and per user name, in LOGIN_WINDOW_MS. */
export const LOGIN_FAILURES_ALLOWED = 5;
export const LOGIN_WINDOW_MS = 60_000;
/** last_seen_at and last_used_at are written at most this often (not on every request). */
const TOUCH_EVERY_MS = 60_000;

export const LOCAL_ADMIN_ACTOR = 'local admin token';

export type Principal =
  | { readonly kind: 'local'; readonly role: 'admin'; readonly actor: string; readonly user: null }
  | { readonly kind: 'token'; readonly role: Role; readonly actor: string; readonly user: User; readonly token: ApiToken }
  | { readonly kind: 'session'; readonly role: Role; readonly actor: string; readonly user: User; readonly session: Session; readonly csrfToken: string };

export type AuthAnswer = { ok: true; principal: Principal } | { ok: false; message: string };

export type LoginAnswer =
  | { ok: true; user: User; secret: string; session: Session; csrfToken: string }
  | { ok: false; reason: 'wrong' }
  | { ok: false; reason: 'throttled'; retryAfterSeconds: number; by: 'address' | 'user' };

export type PasswordCheck = { ok: true } | { ok: false; reason: 'wrong' } | { ok: false; reason: 'throttled'; retryAfterSeconds: number; by: 'address' | 'user' };

export interface AuthOptions {
  store: Store;
  /** The local admin token (<dataDir>/api-token). */
  localToken: string;
  sessionIdleMinutes: number;
  sessionMaxHours: number;
  /** Milliseconds since the epoch; tests pass their own. */
  now?: () => number;
  /** Tests may pass cheaper parameters; hashes say which they used. */
  scrypt?: Readonly<ScryptParams>;
}

export interface AuthService {
  /** `Authorization` header value -> principal, or why not. */
  authenticateBearer(header: string): Promise<AuthAnswer>;
  /** The session cookie's value -> principal, or why not. */
  authenticateSession(secret: string): Promise<AuthAnswer>;
  /**
   * Whether a principal let in earlier may still be: its session or token not
   * revoked, expired or idle too long, its user not disabled (a long-lived
   * request such as the event stream asks now and then). Unlike a request,
   * this does not count as activity: an open stream alone does not keep a
   * session from its idle timeout.
   */
  recheck(p: Principal): Promise<AuthAnswer>;
  login(name: string, password: string, from: { ip: string | null; userAgent: string | null }): Promise<LoginAnswer>;
  /** A password someone chose, checked against the policy (INVALID_INPUT saying why) and hashed. */
  hashChosenPassword(password: string): Promise<string>;
  /** A one-time password and its hash. */
  generatedPassword(): Promise<{ password: string; hash: string }>;
  /** Whether `password` is `name`'s current one (a change of one's own password), throttled and counted like a login. */
  checkCurrentPassword(name: string, password: string, ip: string | null): Promise<PasswordCheck>;
  /** Make a token for `owner`: its secret (shown once) and what is stored. */
  createToken(owner: User, name: string, role: Role, expiresAt: string | null): Promise<{ secret: string; token: ApiToken }>;
  now(): Date;
  readonly idleMs: number;
  readonly maxMs: number;
}

export function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** The local admin token check: constant-time whatever the lengths (both sides hashed first). */
export function localTokenCheck(token: string): (given: string) => boolean {
  if (token.length < 16) throw new RangeError('The API token must be at least 16 characters');
  const expected = createHash('sha256').update(token).digest();
  return (given) => timingSafeEqual(createHash('sha256').update(given).digest(), expected);
}

const LOCAL: Principal = { kind: 'local', role: 'admin', actor: LOCAL_ADMIN_ACTOR, user: null };

export function createAuthService(opts: AuthOptions): AuthService {
  const { store } = opts;
  const db = store.db;
  const now = opts.now ?? Date.now;
  const scryptParams = opts.scrypt ?? DEFAULT_SCRYPT;
  const idleMs = opts.sessionIdleMinutes * 60_000;
  const maxMs = opts.sessionMaxHours * 3600_000;
  const isLocal = localTokenCheck(opts.localToken);
  const byAddress = new AttemptWindow({ limit: LOGIN_FAILURES_ALLOWED, windowMs: LOGIN_WINDOW_MS, now });
  const byUser = new AttemptWindow({ limit: LOGIN_FAILURES_ALLOWED, windowMs: LOGIN_WINDOW_MS, now });
  const iso = (ms: number): string => new Date(ms).toISOString();
  // Made once, on the first login of an unknown name: checking against it costs what a real check costs.
  let dummyHash: Promise<string> | null = null;

  async function authenticateBearer(header: string): Promise<AuthAnswer> {
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    const given = m?.[1] ?? '';
    // Always compared, so a per-user token's lookup is not faster to refuse than the local one.
    const local = isLocal(given);
    if (m !== null && local) return { ok: true, principal: LOCAL };
    if (m === null || !given.startsWith(API_TOKEN_PREFIX)) {
      return { ok: false, message: 'Missing or wrong API token: send "Authorization: Bearer <token>" (the local admin token is in <dataDir>/api-token; per-user tokens: fleetboot token create)' };
    }
    const found = await tokenForAuth(db, sha256Hex(given));
    if (!found) return { ok: false, message: 'Unknown API token' };
    const { token, user } = found;
    const at = now();
    const problem = tokenProblem(token, user, at);
    if (problem !== null) return { ok: false, message: problem };
    if (token.lastUsedAt === null || Date.parse(token.lastUsedAt) + TOUCH_EVERY_MS <= at) await touchApiToken(db, token.id, iso(at));
    return { ok: true, principal: { kind: 'token', role: lowerRole(token.role, user.role), actor: `token ${token.name} of ${user.name}`, user, token } };
  }

  /** Why a token may not be used at `at`, or null. */
  function tokenProblem(token: ApiToken, user: User, at: number): string | null {
    if (token.revokedAt !== null) return `API token '${token.name}' of ${user.name} was revoked at ${token.revokedAt}`;
    if (token.expiresAt !== null && Date.parse(token.expiresAt) <= at) return `API token '${token.name}' of ${user.name} expired at ${token.expiresAt}`;
    if (user.disabledAt !== null) return `User ${user.name} is disabled: its API tokens are refused`;
    return null;
  }

  /** Why a session may not be used at `at`, or null. */
  function sessionProblem(session: Session, user: User, at: number): string | null {
    if (session.revokedAt !== null) return `This session was revoked at ${session.revokedAt}: log in again`;
    if (Date.parse(session.expiresAt) <= at) return `This session expired at ${session.expiresAt} (auth.sessionMaxHours ${opts.sessionMaxHours}): log in again`;
    if (Date.parse(session.lastSeenAt) + idleMs <= at) return `This session ended after ${opts.sessionIdleMinutes} minutes without a request (auth.sessionIdleMinutes): log in again`;
    if (user.disabledAt !== null) return `User ${user.name} is disabled`;
    return null;
  }

  const SESSION_ENDED = 'Your session has ended: log in again (POST /api/v1/auth/login)';

  async function authenticateSession(secret: string): Promise<AuthAnswer> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(secret)) return { ok: false, message: SESSION_ENDED };
    const found = await sessionForAuth(db, sha256Hex(secret));
    if (!found) return { ok: false, message: SESSION_ENDED };
    const { session, user, csrfToken } = found;
    const at = now();
    const problem = sessionProblem(session, user, at);
    if (problem !== null) return { ok: false, message: problem };
    let seen = session;
    if (Date.parse(session.lastSeenAt) + TOUCH_EVERY_MS <= at) {
      await touchSession(db, session.id, iso(at));
      seen = { ...session, lastSeenAt: iso(at) };
    }
    return { ok: true, principal: { kind: 'session', role: user.role, actor: `user ${user.name}`, user, session: seen, csrfToken } };
  }

  async function recheck(p: Principal): Promise<AuthAnswer> {
    if (p.kind === 'local') return { ok: true, principal: p };
    const at = now();
    if (p.kind === 'session') {
      const found = await sessionForAuth(db, p.session.id);
      if (!found) return { ok: false, message: SESSION_ENDED };
      const problem = sessionProblem(found.session, found.user, at);
      if (problem !== null) return { ok: false, message: problem };
      return { ok: true, principal: { kind: 'session', role: found.user.role, actor: `user ${found.user.name}`, user: found.user, session: found.session, csrfToken: found.csrfToken } };
    }
    const token = await getApiToken(db, p.token.id);
    const user = token ? await getUser(db, token.user) : null;
    if (!token || !user) return { ok: false, message: `API token '${p.token.name}' of ${p.token.user} no longer exists` };
    const problem = tokenProblem(token, user, at);
    if (problem !== null) return { ok: false, message: problem };
    return { ok: true, principal: { kind: 'token', role: lowerRole(token.role, user.role), actor: `token ${token.name} of ${user.name}`, user, token } };
  }

  /** The throttle's refusal, or null when another attempt may be made. */
  function throttled(name: string, ip: string | null): Extract<PasswordCheck, { reason: 'throttled' }> | null {
    for (const [by, w, key] of [['address', byAddress, ip ?? '?'], ['user', byUser, name]] as const) {
      const a = w.check(key);
      if (!a.allowed) return { ok: false, reason: 'throttled', retryAfterSeconds: a.retryAfterSeconds, by };
    }
    return null;
  }

  /**
   * Check a password. The attempt is counted against the address and the
   * name before the (slow) check, so that attempts sent all at once are
   * throttled too, and taken back when it succeeds (the name's count is
   * cleared then).
   */
  async function checked(name: string, password: string, ip: string | null): Promise<{ user: User; passwordHash: string } | null> {
    const address = ip ?? '?';
    byAddress.record(address);
    byUser.record(name);
    const found = await userWithPasswordHash(db, name);
    if (!found) {
      dummyHash ??= hashPassword(randomBytes(16).toString('hex'), scryptParams);
      await verifyPassword(password, await dummyHash);
    }
    const right = found !== null && (await verifyPassword(password, found.passwordHash));
    if (!found || !right || found.user.disabledAt !== null) return null;
    byAddress.forgive(address);
    byUser.clear(name);
    return found;
  }

  async function checkCurrentPassword(name: string, password: string, ip: string | null): Promise<PasswordCheck> {
    const refused = throttled(name, ip);
    if (refused) return refused;
    return (await checked(name, password, ip)) ? { ok: true } : { ok: false, reason: 'wrong' };
  }

  async function login(name: string, password: string, from: { ip: string | null; userAgent: string | null }): Promise<LoginAnswer> {
    const refused = throttled(name, from.ip);
    if (refused) return refused;
    const found = await checked(name, password, from.ip);
    if (!found) return { ok: false, reason: 'wrong' };
    const { user } = found;
    if (needsRehash(found.passwordHash, scryptParams)) await rehashPassword(db, user.id, found.passwordHash, await hashPassword(password, scryptParams));
    const secret = randomBytes(32).toString('base64url');
    const csrfToken = randomBytes(32).toString('base64url');
    const at = now();
    const id = sha256Hex(secret);
    const userAgent = from.userAgent === null ? null : from.userAgent.slice(0, 512);
    await createSession(db, { id, userId: user.id, csrfToken, createdAt: iso(at), expiresAt: iso(at + maxMs), ip: from.ip, userAgent });
    const session: Session = { id, userId: user.id, user: user.name, createdAt: iso(at), lastSeenAt: iso(at), expiresAt: iso(at + maxMs), ip: from.ip, userAgent, revokedAt: null };
    return { ok: true, user, secret, session, csrfToken };
  }

  async function hashChosenPassword(password: string): Promise<string> {
    const problem = passwordProblem(password);
    if (problem) throw new FleetbootError('INVALID_INPUT', `The password ${problem}`);
    return hashPassword(password, scryptParams);
  }

  async function generatedPassword(): Promise<{ password: string; hash: string }> {
    const password = generatePassword();
    return { password, hash: await hashPassword(password, scryptParams) };
  }

  async function createToken(owner: User, name: string, role: Role, expiresAt: string | null): Promise<{ secret: string; token: ApiToken }> {
    const secret = `${API_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const token = await createApiToken(db, { userId: owner.id, name, role, tokenHash: sha256Hex(secret), createdAt: iso(now()), expiresAt });
    return { secret, token };
  }

  return {
    authenticateBearer,
    authenticateSession,
    recheck,
    login,
    hashChosenPassword,
    generatedPassword,
    checkCurrentPassword,
    createToken,
    now: () => new Date(now()),
    idleMs,
    maxMs,
  };
}
