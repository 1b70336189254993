/**
 * Authentication and authorisation of /api/v1 (src/auth/service.ts judges
 * the credentials; this module reads them off the request and answers).
 *
 * Every route under /api/v1 declares who may call it in its options,
 * `config: { role: 'viewer' | 'operator' | 'admin' | 'public' }`
 * (src/model/roles.ts). The onRoute hook of `enforceRouteRoles` runs as
 * each route is added: it refuses a route without a declaration (the app
 * then fails to start, naming the method and URL) and puts the check in
 * front of that very route, wherever it was registered. So no /api/v1
 * route can be reached without its check.
 *
 * The check, before the body is read:
 * 1. 'public' routes (the login) take no credentials; a write from a
 *    foreign Origin is refused (login CSRF).
 * 2. Credentials: `Authorization: Bearer` (local admin token or a
 *    per-user API token), else the session cookie; 401 without or with
 *    bad ones (`www-authenticate: Bearer`).
 * 3. A cookie-authenticated write (not GET/HEAD/OPTIONS) must carry the
 *    session's CSRF token in `x-csrf-token`, and an `Origin` header, when
 *    present, must name the host the request was sent to; 403 saying
 *    which check failed. Bearer requests need neither: a browser never
 *    adds that header by itself.
 * 4. A session whose password was generated (shown once) may only read
 *    who it is, log out and change that password (routes with
 *    `config.beforePasswordChange`); 403 PASSWORD_CHANGE_REQUIRED else.
 * 5. The principal's role must include the route's; 403 naming both.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest, onRequestHookHandler, RouteOptions } from 'fastify';
import { aRole, isRouteRole, roleAtLeast, ROUTE_ROLES, type RouteRole } from '../model/roles.js';
import type { AuthService, Principal } from '../auth/service.js';
import type { ErrorBody } from './errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call this /api/v1 route (src/http/auth.ts). */
    role?: RouteRole;
    /** A session that must change its generated password may call it anyway. */
    beforePasswordChange?: boolean;
  }
  interface FastifyRequest {
    /** Who is asking (set by the /api/v1 check; null on public routes and elsewhere). */
    principal: Principal | null;
    /** Overrides the principal as the audit log's actor (the login: the name tried). */
    auditActor: string | null;
  }
}

export const API_PREFIX = '/api/v1';
export const SESSION_COOKIE = 'fleetboot_session';
export const CSRF_HEADER = 'x-csrf-token';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function isApiUrl(url: string): boolean {
  return url === API_PREFIX || url.startsWith(`${API_PREFIX}/`);
}

export function isWrite(method: string): boolean {
  return !SAFE_METHODS.has(method.toUpperCase());
}

/** The value of cookie `name` in a Cookie header, or null. */
export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** Set-Cookie for a new session: HttpOnly, SameSite=Lax, Path=/, Secure under TLS, gone when the session's absolute timeout is. */
export function sessionCookie(secret: string, opts: { maxAgeSeconds: number; secure: boolean }): string {
  return `${SESSION_COOKIE}=${secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${Math.max(0, Math.floor(opts.maxAgeSeconds))}${opts.secure ? '; Secure' : ''}`;
}

/** Set-Cookie that removes the session cookie. */
export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0${secure ? '; Secure' : ''}`;
}

/** Whether the request came over TLS (the server's own; there is no trusted proxy). */
export function overTls(req: FastifyRequest): boolean {
  return req.protocol === 'https';
}

/** What is wrong with the Origin header of a write, or null (none sent, or the request's own host). */
export function originProblem(req: FastifyRequest): string | null {
  const origin = req.headers.origin;
  if (origin === undefined) return null;
  const host = (req.headers.host ?? '').toLowerCase();
  let originHost: string | null = null;
  try {
    originHost = new URL(origin).host.toLowerCase();
  } catch {
    originHost = null;
  }
  // new URL('http://h:80').host drops the default port, and so may a Host header.
  const strip = (h: string): string => h.replace(/:(80|443)$/, '');
  if (originHost !== null && originHost !== '' && strip(originHost) === strip(host)) return null;
  return `Origin ${JSON.stringify(origin.slice(0, 200))} is not this server (${host || 'no Host header'}): cross-site requests are refused`;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function refuse(reply: FastifyReply, status: 401 | 403, body: ErrorBody): Promise<void> {
  if (status === 401) reply.header('www-authenticate', 'Bearer realm="fleetboot"');
  await reply.code(status).send(body);
}

/** The check put in front of every /api/v1 route (see the header). */
export function apiAuthHook(auth: AuthService): onRequestHookHandler {
  return async function apiAuth(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { role, beforePasswordChange } = req.routeOptions.config;
    const write = isWrite(req.method);
    if (role === undefined) {
      // enforceRouteRoles() makes this unreachable; refuse rather than guess.
      await refuse(reply, 403, { error: 'FORBIDDEN', message: `${req.method} ${req.routeOptions.url ?? req.url} declares no role` });
      return;
    }
    if (role === 'public') {
      const problem = write ? originProblem(req) : null;
      if (problem) await refuse(reply, 403, { error: 'FORBIDDEN', message: problem });
      return;
    }

    const authorization = req.headers.authorization;
    const cookie = authorization === undefined ? readCookie(req.headers.cookie, SESSION_COOKIE) : null;
    if (authorization === undefined && cookie === null) {
      await refuse(reply, 401, {
        error: 'UNAUTHORIZED',
        message: 'Not logged in: log in (POST /api/v1/auth/login) or send "Authorization: Bearer <token>" (the local admin token is in <dataDir>/api-token)',
      });
      return;
    }
    const answer = authorization !== undefined ? await auth.authenticateBearer(authorization) : await auth.authenticateSession(cookie ?? '');
    if (!answer.ok) {
      if (cookie !== null) reply.header('set-cookie', clearedSessionCookie(overTls(req)));
      await refuse(reply, 401, { error: 'UNAUTHORIZED', message: answer.message });
      return;
    }
    const p = answer.principal;
    req.principal = p;

    if (p.kind === 'session' && write) {
      const given = req.headers[CSRF_HEADER];
      if (typeof given !== 'string' || !sameSecret(given, p.csrfToken)) {
        await refuse(reply, 403, {
          error: 'FORBIDDEN',
          message: `${given === undefined ? 'Missing' : 'Wrong'} CSRF token: a write with the session cookie must send the csrfToken of the login (or of GET /api/v1/auth/me) in the ${CSRF_HEADER} header`,
        });
        return;
      }
      const problem = originProblem(req);
      if (problem) {
        await refuse(reply, 403, { error: 'FORBIDDEN', message: problem });
        return;
      }
    }
    if (p.kind === 'session' && p.user.mustChangePassword && beforePasswordChange !== true) {
      await refuse(reply, 403, {
        error: 'PASSWORD_CHANGE_REQUIRED',
        message: `The password of ${p.user.name} was generated and shown once: choose your own first (POST /api/v1/users/${p.user.name}/password { currentPassword, password })`,
      });
      return;
    }
    if (!roleAtLeast(p.role, role)) {
      const who = p.kind === 'local' ? 'the local admin token' : p.actor;
      await refuse(reply, 403, { error: 'FORBIDDEN', message: `${req.method} ${req.routeOptions.url ?? req.url} needs the ${role} role; ${who} is ${aRole(p.role)}` });
      return;
    }
  };
}

function addOnRequest(route: RouteOptions, hook: onRequestHookHandler): void {
  const existing = route.onRequest;
  route.onRequest = existing === undefined ? [hook] : Array.isArray(existing) ? [hook, ...existing] : [hook, existing];
}

/**
 * The onRoute hook (add it before any route): every /api/v1 route must
 * declare a role, and gets the check in front of it. A route without one
 * throws, so the app does not start.
 */
export function enforceRouteRoles(auth: AuthService): (route: RouteOptions) => void {
  const hook = apiAuthHook(auth);
  return (route) => {
    if (!isApiUrl(route.url)) return;
    const role: unknown = route.config?.role;
    if (!isRouteRole(role)) {
      const method = Array.isArray(route.method) ? route.method.join(',') : route.method;
      throw new TypeError(
        `Route ${method} ${route.url} declares no role: every ${API_PREFIX} route must say who may call it, config: { role: ${ROUTE_ROLES.map((r) => `'${r}'`).join(' | ')} }${role === undefined ? '' : ` (got ${JSON.stringify(role)})`}`,
      );
    }
    addOnRequest(route, hook);
  };
}

/** The principal of a request past the check (a programmer error elsewhere). */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new TypeError(`${req.method} ${req.url}: no principal (a public route asked for one)`);
  return req.principal;
}
