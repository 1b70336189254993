/**
 * The audit log: /api/v1/audit (see ./common.ts).
 */
import { dateTime, errorResponses, limitString, nullableInt, nullableString } from './common.js';
import type { ApiType } from './index.js';

export const auditEntrySchema = {
  $id: 'AuditEntry',
  type: 'object',
  description: 'One request that could change something: who, when, from where, what was asked (without secrets) and the answer status.',
  additionalProperties: false,
  required: ['id', 'at', 'actor', 'ip', 'method', 'route', 'url', 'status', 'summary'],
  properties: {
    id: { type: 'integer' },
    at: dateTime,
    actor: { type: 'string' },
    ip: nullableString,
    method: { type: 'string' },
    route: { ...nullableString, description: 'The route pattern (/api/v1/hosts/:mac); null when none matched.' },
    url: { type: 'string' },
    status: { type: 'integer' },
    summary: { description: 'The params, query and JSON body asked, secrets replaced by "[removed]"; null when empty.' },
  },
} as const;
export type AuditEntry = ApiType<'AuditEntry'>;

export const auditPageSchema = {
  $id: 'AuditPage',
  type: 'object',
  additionalProperties: false,
  required: ['entries', 'nextBefore'],
  properties: {
    entries: { type: 'array', items: { $ref: 'AuditEntry#' } },
    nextBefore: { ...nullableInt, description: 'Pass it as `before` for the next page; null when there is nothing older.' },
  },
} as const;
export type AuditPage = ApiType<'AuditPage'>;

export const auditApi = {
  list: {
    tags: ['audit'],
    summary: 'Read the audit log',
    description: 'Newest first; `limit` 1-1000 (default 100), `before` pages.',
    querystring: { type: 'object', additionalProperties: false, properties: { limit: limitString, before: { type: 'string', pattern: '^[1-9][0-9]{0,12}$' } } },
    response: { 200: { $ref: 'AuditPage#' }, ...errorResponses },
  },
} as const;
