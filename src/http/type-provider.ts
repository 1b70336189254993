/**
 * The type provider of /api/v1 routes: `app.withTypeProvider<ApiTypeProvider>()`
 * types params, query strings and bodies from the route's schemas, and
 * checks what a handler answers against its response schemas (each status
 * code's: the shared ErrorBody of 4xx and 5xx included).
 *
 * A schema `{ $ref: 'Name#' }` is the type of the shared schema Name,
 * computed once in src/http/schemas/index.ts (ApiTypes); an `anyOf` of such
 * is the union of their types; any other schema goes through FromSchema
 * without references (so a route's own inline schema must not nest a
 * `$ref`: make what it wraps a shared schema). Resolving references in
 * every route instead tripled tsc's check time.
 */
import type { FastifyTypeProvider } from 'fastify';
import type { FromSchema, JSONSchema } from 'json-schema-to-ts';
import type { ApiTypes } from './schemas/index.js';

type Resolve<S> = S extends { readonly $ref: `${infer Id}#` }
  ? Id extends keyof ApiTypes
    ? ApiTypes[Id]
    : never
  : S extends { readonly anyOf: readonly (infer Option)[] }
    ? Resolve<Option>
    : S extends JSONSchema
      ? FromSchema<S>
      : unknown;

export interface ApiTypeProvider extends FastifyTypeProvider {
  validator: Resolve<this['schema']>;
  serializer: Resolve<this['schema']>;
}
