/**
 * Logins and sessions: /api/v1/auth/... and /api/v1/sessions... (see ./common.ts).
 */
import type { FromSchema } from 'json-schema-to-ts';
import { ROLES } from '../../model/roles.js';
import { dateTime, errorResponses, nullableDateTime, nullableString } from './common.js';
import type { ApiType } from './index.js';

export const roleSchema = { type: 'string', enum: ROLES } as const;

export const sessionSchema = {
  $id: 'Session',
  type: 'object',
  description: 'A login session. Its id is the sha256 of the cookie\'s secret: it can be shown and revoked, but it opens nothing.',
  additionalProperties: false,
  required: ['id', 'user', 'createdAt', 'lastSeenAt', 'expiresAt', 'idleExpiresAt', 'ip', 'userAgent', 'revokedAt', 'current'],
  properties: {
    id: { type: 'string' },
    user: { type: 'string' },
    createdAt: dateTime,
    lastSeenAt: dateTime,
    expiresAt: { ...dateTime, description: 'The absolute timeout (auth.sessionMaxHours).' },
    idleExpiresAt: { ...dateTime, description: 'When it ends unless used before (auth.sessionIdleMinutes).' },
    ip: nullableString,
    userAgent: nullableString,
    revokedAt: nullableDateTime,
    current: { type: 'boolean', description: 'The session of this request.' },
  },
} as const;
export type Session = ApiType<'Session'>;

/** Who a user is, in the answers of login and /auth/me. */
const userBrief = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'role', 'mustChangePassword'],
  properties: { name: { type: 'string' }, role: roleSchema, mustChangePassword: { type: 'boolean' } },
} as const;

const login = {
  type: 'object',
  additionalProperties: false,
  required: ['user', 'csrfToken', 'expiresAt', 'idleMinutes'],
  properties: {
    user: userBrief,
    csrfToken: { type: 'string', description: 'Send it in the x-csrf-token header with every write made with the session cookie.' },
    expiresAt: dateTime,
    idleMinutes: { type: 'integer' },
  },
} as const;
export type LoginAnswer = FromSchema<typeof login>;

export const meSchema = {
  $id: 'Me',
  type: 'object',
  additionalProperties: false,
  required: ['role', 'via', 'actor', 'user'],
  properties: {
    role: roleSchema,
    via: { type: 'string', enum: ['local', 'token', 'session'], description: 'local: the local admin token (<dataDir>/api-token); token: an API token; session: a login.' },
    actor: { type: 'string', description: 'The name the audit log gives this caller.' },
    user: { anyOf: [userBrief, { type: 'null' }], description: 'null for the local admin token.' },
    token: {
      type: 'object',
      description: 'via token: which one.',
      additionalProperties: false,
      required: ['id', 'name', 'role', 'expiresAt'],
      properties: { id: { type: 'integer' }, name: { type: 'string' }, role: roleSchema, expiresAt: nullableDateTime },
    },
    csrfToken: { type: 'string', description: "via session: the session's CSRF token, for the x-csrf-token header of writes." },
    session: { $ref: 'Session#' },
  },
} as const;
export type Me = ApiType<'Me'>;

export const sessionListSchema = {
  $id: 'SessionList',
  type: 'object',
  additionalProperties: false,
  required: ['sessions'],
  properties: { sessions: { type: 'array', items: { $ref: 'Session#' } } },
} as const;
export type SessionList = ApiType<'SessionList'>;

export const revokedSessionSchema = {
  $id: 'RevokedSession',
  type: 'object',
  additionalProperties: false,
  required: ['revoked'],
  properties: { revoked: { $ref: 'Session#' } },
} as const;
export type RevokedSession = ApiType<'RevokedSession'>;

export const authApi = {
  login: {
    tags: ['auth'],
    summary: 'Log in',
    description:
      'Sets the session cookie (fleetboot_session: HttpOnly, SameSite=Lax). 401 for a wrong name or password (the same answer for both), ' +
      '429 with Retry-After after 5 failed attempts in a minute from the address or for the name.',
    body: {
      type: 'object',
      required: ['name', 'password'],
      additionalProperties: false,
      // Any name up to 64 characters: one that is not a valid user name is just unknown (the same 401).
      properties: { name: { type: 'string', minLength: 1, maxLength: 64 }, password: { type: 'string', minLength: 1, maxLength: 1024 } },
    },
    response: { 200: login, ...errorResponses },
  },
  logout: {
    tags: ['auth'],
    summary: 'Log out',
    description: 'Ends this session and clears the cookie. A request with an API token gets 400 (revoke tokens with DELETE /api/v1/tokens/{id}).',
    response: { 200: { type: 'object', additionalProperties: false, required: ['loggedOut'], properties: { loggedOut: { type: 'string' } } }, ...errorResponses },
  },
  me: {
    tags: ['auth'],
    summary: 'Who am I',
    description: "The caller's role and how it came (local admin token, API token or session); a session's CSRF token.",
    response: { 200: { $ref: 'Me#' }, ...errorResponses },
  },
  sessions: {
    tags: ['auth'],
    summary: 'List open sessions',
    description: "One's own; an admin sees everyone's, or one user's with `user`.",
    querystring: { type: 'object', additionalProperties: false, properties: { user: { type: 'string', maxLength: 64 } } },
    response: { 200: { $ref: 'SessionList#' }, ...errorResponses },
  },
  revokeSession: {
    tags: ['auth'],
    summary: 'Revoke a session',
    description: "One's own; an admin: anyone's. Revoking the current session clears its cookie.",
    params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9a-f]{64}$' } } },
    response: { 200: { $ref: 'RevokedSession#' }, ...errorResponses },
  },
} as const;
