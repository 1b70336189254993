/**
 * The API's own description:
 *   GET /api/v1/openapi.json   the OpenAPI 3.1 document (role viewer), made by
 *                              @fastify/swagger from the routes' schemas
 *                              (src/http/schemas/; buildApp registers it)
 *   GET /api/docs              the interactive reference: Swagger UI
 *   GET /api/docs/FILE         its files: swagger-ui-bundle.js, swagger-ui.css and
 *                              the favicons from the swagger-ui-dist package,
 *                              docs-init.js from src/http/api-docs/; any other
 *                              name is 404
 * The reference is static files (no credentials, like the boot files); what
 * it shows comes from /api/v1, which asks for them (docs-init.js logs in).
 * Served from this server, so it works offline; only the listed files, each
 * through openInside() (lib/safe-path.ts), with a Content-Security-Policy
 * that allows scripts, styles and requests from this server only.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { statusApi } from '../schemas/status.js';
import { openInside, sendFile } from '../send-file.js';
import type { ApiTypeProvider } from '../type-provider.js';
import { fleetbootPackageDir } from '../version.js';

export const DOCS_PATH = '/api/docs';

/**
 * data: images are swagger-ui.css's icons; inline styles are the style
 * attributes Swagger UI's components set. Scripts: this server's files only.
 */
export const DOCS_CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const JS = 'text/javascript; charset=utf-8';

/** Where swagger-ui-dist's files are (the package has no `exports`, so package.json resolves). */
export function swaggerUiDir(): string {
  return dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
}

/** GET /api/v1/openapi.json (registered under /api/v1: it has a role like every route there). */
export async function openapiRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  app.get('/openapi.json', { config: { role: 'viewer' }, schema: statusApi.openapi }, async () => ({ ...fastify.swagger() }));
}

/** GET /api/docs and its files. */
export async function docsRoutes(app: FastifyInstance): Promise<void> {
  const swaggerDir = swaggerUiDir();
  const packageDir = fleetbootPackageDir();
  if (packageDir === null) throw new Error("Cannot find Fleetboot's package.json (for src/http/api-docs/): is this a complete Fleetboot checkout?");
  const ownDir = join(packageDir, 'src', 'http', 'api-docs');
  /** The only names served: where each is, its type, and how long a browser may keep it. */
  const files = new Map<string, { dir: string; type: string; maxAge: number }>([
    ['', { dir: ownDir, type: 'text/html; charset=utf-8', maxAge: 0 }],
    ['docs-init.js', { dir: ownDir, type: JS, maxAge: 0 }],
    ['swagger-ui-bundle.js', { dir: swaggerDir, type: JS, maxAge: 3600 }],
    ['swagger-ui.css', { dir: swaggerDir, type: 'text/css; charset=utf-8', maxAge: 3600 }],
    ['favicon-32x32.png', { dir: swaggerDir, type: 'image/png', maxAge: 3600 }],
    ['favicon-16x16.png', { dir: swaggerDir, type: 'image/png', maxAge: 3600 }],
  ]);

  const serve = async (req: FastifyRequest, reply: FastifyReply, name: string): Promise<FastifyReply> => {
    const entry = files.get(name);
    const opened = entry ? await openInside(entry.dir, name === '' ? 'docs.html' : name) : null;
    if (!entry || !opened) return reply.code(404).send({ error: 'NOT_FOUND', message: `No file ${JSON.stringify(name.slice(0, 100))} in ${DOCS_PATH}` });
    reply
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', DOCS_CSP)
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', entry.maxAge > 0 ? `public, max-age=${entry.maxAge}` : 'no-cache');
    return sendFile(req, reply, opened, entry.type);
  };

  app.get(DOCS_PATH, async (req, reply) => serve(req, reply, ''));
  app.get<{ Params: { file: string } }>(`${DOCS_PATH}/:file`, async (req, reply) => serve(req, reply, req.params.file));
}
