/**
 * The API's description: every /api/v1 route declares a role and its
 * answers' schemas; the OpenAPI document made from them is the committed
 * docs/openapi.json (UPDATE_OPENAPI=1 rewrites it); /api/v1/openapi.json
 * needs credentials; /api/docs serves its own files and nothing else.
 */
import { openTestStore } from '../src/store/temp-store.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { loadConfig } from '../src/config/config.js';
import { silentLogger } from '../src/lib/log.js';
import { isRouteRole } from '../src/model/roles.js';
import { buildApp } from '../src/http/app.js';
import { watchAnswers, type AnswerWatch } from './api-answers.js';
import { DOCS_CSP } from '../src/http/routes/api-docs.js';
import { API_TAGS, sharedSchemas } from '../src/http/schemas/index.js';
import { ensureApiToken, openStore, type Store } from '../src/store/index.js';

const ROOT = new URL('..', import.meta.url).pathname;
const COMMITTED = join(ROOT, 'docs', 'openapi.json');

let dir: string;
let store: Store;
let app: FastifyInstance;
let watch: AnswerWatch;
let token: string;
const routes: RouteOptions[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetboot-api-openapi-'));
  const config = loadConfig({ overrides: { dataDir: dir, serverIp: '127.0.0.1', http: { port: 8126 } } });
  store = await openTestStore(config.dataDir);
  token = ensureApiToken(config.dataDir);
  app = buildApp({ store, config, serverIp: '127.0.0.1', logger: silentLogger, token });
  watch = watchAnswers(app);
  // buildApp adds its routes in plugins, which load at ready(): this hook sees every one.
  app.addHook('onRoute', (r: RouteOptions) => void routes.push(r));
  await app.ready();
});

after(async () => {
  assert.deepEqual(watch.lost, [], 'answers lost these properties to their response schemas: declare them (src/http/schemas/), or add them to HIDDEN (test/api-answers.ts)');
  await app.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const apiRoutes = (): RouteOptions[] => routes.filter((r) => r.url === '/api/v1' || r.url.startsWith('/api/v1/'));
const name = (r: RouteOptions): string => `${String(r.method)} ${r.url}`;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

test('every /api/v1 route declares a role', () => {
  const api = apiRoutes();
  assert.ok(api.length > 60, `${api.length} routes seen`);
  assert.deepEqual(api.filter((r) => !isRouteRole(r.config?.role)).map(name), [], 'routes without config.role');
});

test('every /api/v1 route declares its answers: a schema per success status and ErrorBody for 4xx and 5xx, with a summary and a tag', () => {
  const problems: string[] = [];
  const tags = new Set<string>(API_TAGS.map((t) => t.name));
  for (const r of apiRoutes()) {
    const schema: unknown = r.schema;
    if (!isObject(schema)) {
      problems.push(`${name(r)}: no schema`);
      continue;
    }
    const response = schema['response'];
    if (!isObject(response)) {
      problems.push(`${name(r)}: no schema.response`);
      continue;
    }
    if (!Object.keys(response).some((code) => /^2\d\d$/.test(code))) problems.push(`${name(r)}: no 2xx answer in schema.response`);
    for (const code of ['4xx', '5xx']) {
      if (!isObject(response[code]) || response[code]['$ref'] !== 'ErrorBody#') problems.push(`${name(r)}: response ${code} is not { $ref: 'ErrorBody#' } (spread errorResponses)`);
    }
    if (typeof schema['summary'] !== 'string' || schema['summary'] === '') problems.push(`${name(r)}: no summary`);
    const routeTags = schema['tags'];
    if (!Array.isArray(routeTags) || routeTags.length === 0 || !routeTags.every((t) => typeof t === 'string' && tags.has(t))) problems.push(`${name(r)}: tags ${JSON.stringify(routeTags)} are not among API_TAGS`);
  }
  assert.deepEqual(problems, []);
});

test('the OpenAPI document is the committed docs/openapi.json (UPDATE_OPENAPI=1 rewrites it)', () => {
  const made = `${JSON.stringify(app.swagger(), null, 2)}\n`;
  if (process.env['UPDATE_OPENAPI'] === '1') {
    writeFileSync(COMMITTED, made);
    return;
  }
  let committed = '';
  try {
    committed = readFileSync(COMMITTED, 'utf8');
  } catch {
    committed = '';
  }
  if (committed === made) return;
  const a = committed.split('\n');
  const b = made.split('\n');
  const line = a.findIndex((l, i) => l !== b[i]);
  const where = committed === '' ? 'it is missing' : `first at line ${line + 1}: committed ${JSON.stringify(a[line] ?? '')}, made ${JSON.stringify(b[line] ?? '')}`;
  assert.fail(
    `docs/openapi.json differs from the document the routes make (${where}). ` +
      'If the change is meant, rewrite it with `UPDATE_OPENAPI=1 node --import tsx --test test/api-openapi.test.ts` and commit it.',
  );
});

test('the document: only /api/v1, every operation once per route, every $ref a component, every shared schema a component', () => {
  const doc: unknown = app.swagger();
  assert.ok(isObject(doc) && isObject(doc['paths']) && isObject(doc['components']));
  assert.equal(doc['openapi'], '3.1.0');
  const paths = doc['paths'];
  const components = doc['components'];
  assert.ok(isObject(components['schemas']) && isObject(components['securitySchemes']));
  const schemas = components['schemas'];
  assert.deepEqual(Object.keys(paths).filter((p) => !p.startsWith('/api/v1/')), [], 'paths outside /api/v1');
  const operations = Object.values(paths).flatMap((item) => (isObject(item) ? Object.keys(item) : []));
  assert.equal(operations.length, apiRoutes().filter((r) => r.method !== 'HEAD').length, 'one operation per /api/v1 route (HEAD aside)');
  for (const s of sharedSchemas) assert.ok(isObject(schemas[s.$id]), `components.schemas.${s.$id}`);
  const refs = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (isObject(v)) for (const [k, x] of Object.entries(v)) k === '$ref' && typeof x === 'string' ? refs.add(x) : walk(x);
  };
  walk(doc);
  const dangling = [...refs].filter((ref) => !(ref.startsWith('#/components/schemas/') && isObject(schemas[ref.slice('#/components/schemas/'.length)])));
  assert.deepEqual(dangling, []);
  assert.deepEqual(Object.keys(components['securitySchemes']).sort(), ['bearerAuth', 'csrfToken', 'sessionCookie']);
});

test('GET /api/v1/openapi.json needs credentials (401 without) and answers the document', async () => {
  const anonymous = await app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
  assert.equal(anonymous.statusCode, 401);
  assert.equal(anonymous.json().error, 'UNAUTHORIZED');
  const r = await app.inject({ method: 'GET', url: '/api/v1/openapi.json', headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.statusCode, 200);
  assert.deepEqual(r.json(), JSON.parse(JSON.stringify(app.swagger())));
});

test('/api/docs: the page and the files it loads answer, with their types and the CSP; no credentials needed', async () => {
  const page = await app.inject({ method: 'GET', url: '/api/docs' });
  assert.equal(page.statusCode, 200);
  assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(page.headers['content-security-policy'], DOCS_CSP);
  assert.equal(page.headers['x-content-type-options'], 'nosniff');
  assert.doesNotMatch(page.body, /<script>|<script [^>]*>[^<\s]/, 'no inline script');
  assert.doesNotMatch(page.body, /https?:\/\//, 'nothing from another server');
  // Every file the page loads is served, with its type.
  const loaded = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '');
  assert.deepEqual(loaded.sort(), ['/api/docs/docs-init.js', '/api/docs/favicon-16x16.png', '/api/docs/favicon-32x32.png', '/api/docs/swagger-ui-bundle.js', '/api/docs/swagger-ui.css']);
  const types: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', png: 'image/png' };
  for (const url of loaded) {
    const r = await app.inject({ method: 'GET', url });
    assert.equal(r.statusCode, 200, url);
    assert.equal(r.headers['content-type'], types[url.split('.').pop() ?? ''], url);
    assert.equal(r.headers['x-content-type-options'], 'nosniff', url);
    assert.ok(r.rawPayload.length > 0 && Number(r.headers['content-length']) === r.rawPayload.length, url);
  }
  const init = (await app.inject({ method: 'GET', url: '/api/docs/docs-init.js' })).body;
  assert.match(init, /url: '\/api\/v1\/openapi\.json'/);
  assert.match(init, /validatorUrl: null/);
  assert.match(init, /requestInterceptor/);
  assert.match(init, /x-csrf-token/);
});

test('/api/docs: other names of the package, unknown names and .. get 404', async () => {
  for (const url of [
    '/api/docs/index.html',
    '/api/docs/swagger-initializer.js',
    '/api/docs/swagger-ui-bundle.js.map',
    '/api/docs/package.json',
    '/api/docs/docs.html',
    '/api/docs/nothing.js',
    '/api/docs/..%2F..%2Fpackage.json',
    '/api/docs/%2e%2e%2fswagger-ui-dist%2fpackage.json',
    '/api/docs/../../package.json',
    '/api/docs/..',
  ]) {
    const r = await app.inject({ method: 'GET', url });
    assert.equal(r.statusCode, 404, url);
    assert.equal(r.json().error, 'NOT_FOUND', url);
  }
});
