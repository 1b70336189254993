/**
 * How the OpenAPI 3.1 document of /api/v1 is made from the routes
 * (@fastify/swagger's options; buildApp registers it before any route):
 * - only /api/v1 routes go in it (boot, TFTP, agent and /api/docs are hidden);
 * - each operation says which role it needs (in words and as `x-role`),
 *   and how to authenticate: a Bearer token, or the session cookie, plus
 *   the x-csrf-token header for writes (src/http/auth.ts); the login needs
 *   nothing;
 * - a route that takes raw bytes (`consumes: ['application/octet-stream']`,
 *   no body schema: Fastify must not parse it) is shown with a binary body;
 * - shared schemas are components named by their `$id`
 *   (#/components/schemas/Host).
 * The document is the same for every server (no server URL, no config):
 * docs/openapi.json is its committed copy.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import type { FastifySchema } from 'fastify';
import { isRouteRole, type RouteRole } from '../model/roles.js';
import { CSRF_HEADER, isApiUrl, isWrite, SESSION_COOKIE } from './auth.js';
import { API_TAGS } from './schemas/index.js';
import { fleetbootVersion } from './version.js';

const ROLE_TEXT: Record<RouteRole, string> = {
  public: 'No credentials needed.',
  viewer: 'Role: viewer (any user or API token).',
  operator: 'Role: operator (or admin).',
  admin: 'Role: admin.',
};

type Security = Array<Record<string, string[]>>;
/** Reads: a Bearer token or the session cookie; writes with the cookie also send the CSRF header. */
const READ_SECURITY: Security = [{ bearerAuth: [] }, { sessionCookie: [] }];
const WRITE_SECURITY: Security = [{ bearerAuth: [] }, { sessionCookie: [], csrfToken: [] }];

const DESCRIPTION = [
  "Fleetboot's management API: what the CLI and the console use.",
  '',
  'Authenticate with `Authorization: Bearer <token>` (the local admin token in `<dataDir>/api-token`, or an API token from POST /api/v1/tokens), ' +
    `or log in (POST /api/v1/auth/login) and send the \`${SESSION_COOKIE}\` cookie; a write with the cookie also sends the session's CSRF token in \`${CSRF_HEADER}\`.`,
  'Every route needs a role: viewer reads, operator also runs the fleet (tasks, hosts, groups, entries, images, schedules, multicast, Wake-on-LAN), admin also manages users and deletes.',
  'Errors are `{ "error": CODE, "message": "what was expected and what was seen" }` (ErrorBody). Every change is written to the audit log.',
].join('\n');

/** The binary body of a route that takes raw bytes, for the document only. */
const BINARY_BODY = { type: 'string', format: 'binary' } as const;

function methods(m: string | readonly string[]): string[] {
  return typeof m === 'string' ? [m] : [...m];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Each response @fastify/swagger calls "Default Response" (its schema has no description) gets the status's name: "OK", "Created". */
function nameResponses(doc: Record<string, unknown>): void {
  const paths = doc['paths'];
  if (!isObject(paths)) return;
  for (const item of Object.values(paths)) {
    if (!isObject(item)) continue;
    for (const op of Object.values(item)) {
      const responses = isObject(op) ? op['responses'] : undefined;
      if (!isObject(responses)) continue;
      for (const [code, r] of Object.entries(responses)) {
        if (isObject(r) && r['description'] === 'Default Response') r['description'] = STATUS_CODES[code] ?? 'Answer';
      }
    }
  }
}

export function openapiOptions(): FastifyDynamicSwaggerOptions {
  return {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Fleetboot', version: fleetbootVersion(), description: DESCRIPTION },
      tags: API_TAGS.map((t) => ({ ...t })),
      security: READ_SECURITY,
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'The local admin token (<dataDir>/api-token) or an API token (fbt_...).' },
          sessionCookie: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: 'The session cookie that POST /api/v1/auth/login sets (HttpOnly: the browser sends it by itself).' },
          csrfToken: { type: 'apiKey', in: 'header', name: CSRF_HEADER, description: 'Writes with the session cookie: the csrfToken of the login, or of GET /api/v1/auth/me.' },
        },
      },
    },
    refResolver: {
      // Shared schemas are named by their $id in components.schemas (the default is def-0, def-1...).
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json['$id'] === 'string' ? json['$id'] : `def-${i}`),
    },
    transformObject: (documentObject) => {
      const doc = 'openapiObject' in documentObject ? documentObject.openapiObject : documentObject.swaggerObject;
      nameResponses(doc);
      return doc;
    },
    transform: ({ schema, url, route }) => {
      if (!isApiUrl(url)) return { schema: { ...schema, hide: true }, url };
      const role: unknown = route.config?.role;
      const write = methods(route.method).some(isWrite);
      const out: FastifySchema & Record<string, unknown> = { ...schema };
      if (isRouteRole(role)) {
        out.description = schema.description ? `${schema.description}\n\n${ROLE_TEXT[role]}` : ROLE_TEXT[role];
        out['x-role'] = role;
        out.security = role === 'public' ? [] : write ? WRITE_SECURITY : READ_SECURITY;
      }
      if (schema.consumes?.includes('application/octet-stream') && schema.body === undefined) out.body = BINARY_BODY;
      return { schema: out, url };
    },
  };
}
