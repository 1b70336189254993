/**
 * The JSON schemas of /api/v1 (this folder) are the one description of the
 * API: Fastify validates requests and serialises answers with them,
 * @fastify/swagger turns them into the OpenAPI document
 * (GET /api/v1/openapi.json, committed as docs/openapi.json), and
 * json-schema-to-ts turns them into the types the CLI and the console use.
 *
 * Pure: nothing here imports server code (only src/model/ constants and
 * types), so the CLI and web/ can import it; web/ imports types only
 * (esbuild drops `import type`).
 *
 * How they are written:
 * - Each module exports its resources' schemas, their types and the schema
 *   of each route (`hostsApi.list`: tags, summary, description, params,
 *   querystring, body, response), which the route passes to Fastify as is.
 * - A schema that routes answer with (or take) has an `$id` and is
 *   referenced as `{ $ref: 'Name#' }`: ./index.ts lists them, buildApp
 *   registers them (app.addSchema) and the document shows each once, under
 *   components.schemas. Their types are computed once, in ./index.ts
 *   (`export type Host = ApiType<'Host'>`); a route's own inline schema
 *   nests no `$ref` (src/http/type-provider.ts).
 * - Answers are closed (`additionalProperties: false`) and list in
 *   `required` every property always present: the serialiser drops what a
 *   schema does not declare and fails on a missing required one, so a
 *   schema is exactly what the client gets, and its type is exact too.
 *   A schema reached through anyOf (a task, or a job) is chosen by
 *   validating the value, so what a route answers with there must have
 *   only the declared properties (taskView() in routes/api-tasks.ts).
 * - Every route answers errors with ErrorBody (4xx and 5xx: spread
 *   errorResponses into its `response`).
 */
import type { FromSchema } from 'json-schema-to-ts';
import { NAME_PATTERN } from '../../model/validate.js';
import type { ApiType } from './index.js';

/** Every error of /api/v1: a stable code and a message that says what was expected and what was seen. */
export const errorBodySchema = {
  $id: 'ErrorBody',
  type: 'object',
  description: 'An error: `error` is a stable code (NOT_FOUND, CONFLICT, INVALID_INPUT, UNAUTHORIZED, FORBIDDEN, PASSWORD_CHANGE_REQUIRED, RATE_LIMITED, UNAVAILABLE, INTERNAL...), `message` says what was wrong.',
  additionalProperties: false,
  required: ['error', 'message'],
  properties: {
    error: { type: 'string' },
    message: { type: 'string' },
  },
} as const;
export type ErrorBody = ApiType<'ErrorBody'>;

export const errorRef = { $ref: 'ErrorBody#' } as const;

/** Spread into every route's `response`: what its errors look like. */
export const errorResponses = { '4xx': errorRef, '5xx': errorRef } as const;

export const nullableString = { type: ['string', 'null'] } as const;
export const nullableInt = { type: ['integer', 'null'] } as const;
export const nullableNumber = { type: ['number', 'null'] } as const;

/** A MAC address in any usual spelling (52:54:00:12:34:56, 52-54-00-12-34-56, 525400123456). */
export const macString = { type: 'string', minLength: 12, maxLength: 17 } as const;

/** The names of hosts, entries, groups, images, users, tokens, schedules. */
export const nameString = { type: 'string', pattern: NAME_PATTERN } as const;

/** A database id in a URL (path parameters are strings: the app does not coerce types). */
export const idString = { type: 'string', pattern: '^[1-9][0-9]{0,14}$' } as const;

/** `?limit=N` of the lists that take one: 1-9999. */
export const limitString = { type: 'string', pattern: '^[1-9][0-9]{0,3}$' } as const;

export const macParams = { type: 'object', required: ['mac'], properties: { mac: macString } } as const;
export const nameParams = { type: 'object', required: ['name'], properties: { name: nameString } } as const;
export const idParams = { type: 'object', required: ['id'], properties: { id: idString } } as const;

/** `{ deleted: "name" }`: what a DELETE of a named thing answers. */
export const deletedNameSchema = { type: 'object', additionalProperties: false, required: ['deleted'], properties: { deleted: { type: 'string' } } } as const;
export type DeletedName = FromSchema<typeof deletedNameSchema>;

/** A time the server wrote: ISO 8601 in UTC (2026-12-07T09:30:00.000Z). */
export const dateTime = { type: 'string', format: 'date-time' } as const;
export const nullableDateTime = { type: ['string', 'null'], format: 'date-time' } as const;
