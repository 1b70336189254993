/**
 * Per-user API tokens: /api/v1/tokens... (see ./common.ts).
 */
import { ROLES } from '../../model/roles.js';
import { roleSchema } from './auth.js';
import { dateTime, errorResponses, nameString, nullableDateTime } from './common.js';
import type { ApiType } from './index.js';

export const DEFAULT_TOKEN_DAYS = 90;
export const MAX_TOKEN_DAYS = 3650;

export const apiTokenSchema = {
  $id: 'ApiToken',
  type: 'object',
  description: "A user's API token (never its secret: the server keeps only its sha256). Its role is at most its owner's.",
  additionalProperties: false,
  required: ['id', 'user', 'name', 'role', 'createdAt', 'expiresAt', 'lastUsedAt', 'revokedAt'],
  properties: {
    id: { type: 'integer' },
    user: { type: 'string', description: "The owner's name." },
    name: { type: 'string' },
    role: roleSchema,
    createdAt: dateTime,
    expiresAt: { ...nullableDateTime, description: 'null: never.' },
    lastUsedAt: nullableDateTime,
    revokedAt: nullableDateTime,
  },
} as const;
export type ApiToken = ApiType<'ApiToken'>;

export const apiTokenListSchema = {
  $id: 'ApiTokenList',
  type: 'object',
  additionalProperties: false,
  required: ['tokens'],
  properties: { tokens: { type: 'array', items: { $ref: 'ApiToken#' } } },
} as const;
export type ApiTokenList = ApiType<'ApiTokenList'>;

export const createdApiTokenSchema = {
  $id: 'CreatedApiToken',
  type: 'object',
  additionalProperties: false,
  required: ['token', 'secret'],
  properties: { token: { $ref: 'ApiToken#' }, secret: { type: 'string', description: 'fbt_...: send it as "Authorization: Bearer <secret>". Answered this once.' } },
} as const;
export type CreatedApiToken = ApiType<'CreatedApiToken'>;

export const revokedApiTokenSchema = {
  $id: 'RevokedApiToken',
  type: 'object',
  additionalProperties: false,
  required: ['revoked'],
  properties: { revoked: { $ref: 'ApiToken#' } },
} as const;
export type RevokedApiToken = ApiType<'RevokedApiToken'>;

export const tokensApi = {
  list: {
    tags: ['tokens'],
    summary: 'List API tokens',
    description: "One's own; an admin sees everyone's, or one user's with `user`. `revoked=true` includes revoked ones.",
    querystring: { type: 'object', additionalProperties: false, properties: { user: nameString, revoked: { type: 'string', enum: ['true', 'false'] } } },
    response: { 200: { $ref: 'ApiTokenList#' }, ...errorResponses },
  },
  create: {
    tags: ['tokens'],
    summary: 'Make an API token',
    description:
      `The secret is in this answer only. \`role\`: at most the owner's (403 above it). \`user\`: the owner (default: oneself; another user: admin only; required with the local admin token). ` +
      `\`expiresInDays\`: 1-${MAX_TOKEN_DAYS}, null = never, default ${DEFAULT_TOKEN_DAYS}. An API token cannot make tokens: log in, or use the local admin token.`,
    body: {
      type: 'object',
      required: ['name', 'role'],
      additionalProperties: false,
      properties: {
        name: nameString,
        role: { type: 'string', enum: ROLES },
        user: nameString,
        expiresInDays: { anyOf: [{ type: 'integer', minimum: 1, maximum: MAX_TOKEN_DAYS }, { type: 'null' }] },
      },
    },
    response: { 201: { $ref: 'CreatedApiToken#' }, ...errorResponses },
  },
  revoke: {
    tags: ['tokens'],
    summary: 'Revoke an API token',
    description: "One's own; an admin: anyone's.",
    params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[1-9][0-9]{0,9}$' } } },
    response: { 200: { $ref: 'RevokedApiToken#' }, ...errorResponses },
  },
} as const;
