/**
 * Users, roles, sessions, API tokens, CSRF, the login throttle and the
 * audit log through the REST API (app.inject), on a real SQLite file, with
 * a test clock (sessions' timeouts, tokens' expiry, the throttle's minute)
 * and cheap scrypt parameters (the real ones: src/lib/password-hash.test.ts).
 */
import { openTestStore } from '../src/store/temp-store.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance, type RouteOptions } from 'fastify';
import { loadConfig, type FleetbootConfig } from '../src/config/config.js';
import { silentLogger } from '../src/lib/log.js';
import { DEFAULT_SCRYPT } from '../src/lib/password-hash.js';
import { buildApp } from '../src/http/app.js';
import { watchAnswers, type AnswerWatch } from './api-answers.js';
import { enforceRouteRoles } from '../src/http/auth.js';
import { createAuthService } from '../src/auth/service.js';
import { createHost, ensureApiToken, openStore, type Store } from '../src/store/index.js';
import { isRouteRole, type RouteRole } from '../src/model/roles.js';
import type { Json } from './api-helpers.js';

const T0 = Date.parse('2026-12-08T09:00:00.000Z');
const CHEAP = { ...DEFAULT_SCRYPT, N: 1024 };
const PW = 'a long enough password';
const HOST = 'fleetboot.test:8080';

let dir: string;
let store: Store;
let config: Readonly<FleetbootConfig>;
let app: FastifyInstance;
let watch: AnswerWatch;
let local: string;
let clock = T0;
/** Every route added to `app`, as the onRoute hook saw it. */
const routes: Array<{ method: string; url: string; role: unknown }> = [];

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
interface Call {
  bearer?: string;
  session?: Session;
  /** The CSRF token to send (default: the session's); null sends none. */
  csrf?: string | null;
  origin?: string;
  ip?: string;
  payload?: object;
}
interface Answer {
  status: number;
  body: Json;
  headers: Record<string, string | string[] | number | undefined>;
}
interface Session {
  cookie: string;
  csrf: string;
}

async function call(method: Method, url: string, c: Call = {}): Promise<Answer> {
  const headers: Record<string, string> = { host: HOST };
  if (c.bearer !== undefined) headers.authorization = `Bearer ${c.bearer}`;
  if (c.session) {
    headers.cookie = `other=1; ${c.session.cookie}`;
    const csrf = c.csrf === undefined ? c.session.csrf : c.csrf;
    if (csrf !== null) headers['x-csrf-token'] = csrf;
  }
  if (c.origin !== undefined) headers.origin = c.origin;
  const r = await app.inject({ method, url, headers, remoteAddress: c.ip ?? '127.0.0.1', ...(c.payload ? { payload: c.payload } : {}) });
  return { status: r.statusCode, body: r.body === '' ? {} : r.json<Json>(), headers: r.headers };
}

const asLocal = (method: Method, url: string, payload?: object): Promise<Answer> => call(method, url, { bearer: local, ...(payload ? { payload } : {}) });

function expect(r: Answer, status: number, what: string, message?: RegExp): Answer {
  assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
  if (message) assert.match(String(r.body['message']), message, what);
  return r;
}

async function login(name: string, password = PW, ip = '10.9.0.1'): Promise<Session> {
  const r = expect(await call('POST', '/api/v1/auth/login', { ip, payload: { name, password } }), 200, `login ${name}`);
  const set = String(r.headers['set-cookie']);
  const cookie = /^(fleetboot_session=[A-Za-z0-9_-]{43});/.exec(set)?.[1];
  assert.ok(cookie, set);
  return { cookie, csrf: String(r.body['csrfToken']) };
}

async function addUser(name: string, role: string, password = PW): Promise<void> {
  expect(await asLocal('POST', '/api/v1/users', { name, role, password }), 201, `add ${name}`);
}

async function makeToken(user: string, name: string, role: string, expiresInDays?: number | null): Promise<string> {
  const r = expect(await asLocal('POST', '/api/v1/tokens', { user, name, role, ...(expiresInDays !== undefined ? { expiresInDays } : {}) }), 201, `token ${name} of ${user}`);
  return String(r.body['secret']);
}

async function auditRows(limit = 20): Promise<Json[]> {
  return expect(await asLocal('GET', `/api/v1/audit?limit=${limit}`), 200, 'audit').body['entries'] as Json[];
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetboot-api-auth-'));
  config = loadConfig({ overrides: { dataDir: dir, serverIp: '127.0.0.1', http: { port: 8125 }, auth: { sessionIdleMinutes: 30, sessionMaxHours: 12 } } });
  store = await openTestStore(config.dataDir);
  local = ensureApiToken(config.dataDir);
  app = buildApp({ store, config, serverIp: '127.0.0.1', logger: silentLogger, token: local, auth: { now: () => clock, scrypt: CHEAP } });
  watch = watchAnswers(app);
  app.addHook('onRoute', (r: RouteOptions) => void routes.push({ method: String(r.method), url: r.url, role: r.config?.role }));
  await app.ready();
  await createHost(store.db, { mac: '52:54:00:aa:00:01', name: 'pc1' });
  await addUser('root', 'admin');
  await addUser('olga', 'operator');
  await addUser('vic', 'viewer');
});

after(async () => {
  assert.deepEqual(watch.lost, [], 'answers lost these properties to their response schemas: declare them (src/http/schemas/), or add them to HIDDEN (test/api-answers.ts)');
  await app.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('every /api/v1 route declares a role; GETs are viewer, deletes of hosts, entries, images and groups admin', () => {
  const api = routes.filter((r) => r.url.startsWith('/api/v1'));
  assert.ok(api.length > 60, `${api.length} routes seen`);
  const missing = api.filter((r) => !isRouteRole(r.role)).map((r) => `${r.method} ${r.url}`);
  assert.deepEqual(missing, []);
  const roleOf = (method: string, url: string): unknown => api.find((r) => r.method === method && r.url === url)?.role;
  for (const r of api.filter((x) => x.method === 'GET' || x.method === 'HEAD')) {
    // Users, the audit log and the enrolment tokens (who may enrol a machine) are the admin's.
    assert.equal(r.role, r.url.startsWith('/api/v1/users') || r.url === '/api/v1/audit' || r.url === '/api/v1/agents/tokens' ? 'admin' : 'viewer', `${r.method} ${r.url}`);
  }
  for (const url of ['/api/v1/hosts/:mac', '/api/v1/entries/:name', '/api/v1/images/:name', '/api/v1/groups/:name', '/api/v1/users/:name']) assert.equal(roleOf('DELETE', url), 'admin', url);
  for (const [method, url] of [['POST', '/api/v1/tasks'], ['POST', '/api/v1/hosts/:mac/approve'], ['POST', '/api/v1/groups'], ['POST', '/api/v1/entries'], ['POST', '/api/v1/images/:name/rollback'], ['POST', '/api/v1/wake'], ['DELETE', '/api/v1/schedules/:ref']] as const) {
    assert.equal(roleOf(method, url), 'operator', `${method} ${url}`);
  }
  assert.equal(roleOf('POST', '/api/v1/auth/login'), 'public');
  assert.deepEqual(api.filter((r) => r.role === 'public').map((r) => `${r.method} ${r.url}`), ['POST /api/v1/auth/login'], 'the login is the only public route');
});

test('an /api/v1 route without a role stops the start, naming it; one outside the API scope is checked all the same', async () => {
  const auth = createAuthService({ store, localToken: local, sessionIdleMinutes: 30, sessionMaxHours: 12 });
  for (const config of [undefined, { role: 'root' }]) {
    const bad = Fastify();
    bad.addHook('onRoute', enforceRouteRoles(auth));
    bad.register(async (s) => void s.post('/oops', config ? { config: config as { role: RouteRole } } : {}, async () => ({})), { prefix: '/api/v1' });
    await assert.rejects(async () => void (await bad.ready()), /Route POST \/api\/v1\/oops declares no role: every \/api\/v1 route must say who may call it, config: \{ role: 'public' \| 'viewer' \| 'operator' \| 'admin' \}/);
    await bad.close();
  }
  // The real app refuses one too (added straight to it, the throw comes at once).
  const app2 = buildApp({ store, config, serverIp: '127.0.0.1', logger: silentLogger, token: local });
  assert.throws(() => app2.get('/api/v1/forgotten', async () => ({ secret: true })), /Route GET \/api\/v1\/forgotten declares no role/);
  await app2.close();
  // A declared route added outside the /api/v1 plugin still gets the check.
  const app3 = buildApp({ store, config, serverIp: '127.0.0.1', logger: silentLogger, token: local });
  app3.post('/api/v1/elsewhere', { config: { role: 'admin' } }, async () => ({ done: true }));
  await app3.ready();
  assert.equal((await app3.inject({ method: 'POST', url: '/api/v1/elsewhere' })).statusCode, 401);
  assert.equal((await app3.inject({ method: 'POST', url: '/api/v1/elsewhere', headers: { authorization: `Bearer ${local}` } })).statusCode, 200);
  await app3.close();
});

test('every operator and admin route refuses a viewer (403), and every admin route an operator, before the handler runs', async () => {
  const viewer = await makeToken('vic', 'walk', 'viewer');
  const operator = await makeToken('olga', 'walk', 'operator');
  const concrete = (url: string): string => url.replace(/:[A-Za-z]+/g, '1');
  let checked = 0;
  for (const r of routes.filter((x) => x.url.startsWith('/api/v1') && (x.role === 'operator' || x.role === 'admin'))) {
    const method = r.method as Method;
    const payload = method === 'GET' || r.method === 'HEAD' ? {} : { payload: {} };
    // HEAD answers have no body to read the message from.
    const message = (re: RegExp): RegExp | undefined => (r.method === 'HEAD' ? undefined : re);
    const v = await call(method, concrete(r.url), { bearer: viewer, ...payload });
    expect(v, 403, `viewer ${r.method} ${r.url}`, message(new RegExp(`needs the ${r.role} role; token walk of vic is a viewer`)));
    if (r.role === 'admin') expect(await call(method, concrete(r.url), { bearer: operator, ...payload }), 403, `operator ${r.method} ${r.url}`, message(/needs the admin role; token walk of olga is an operator/));
    checked++;
  }
  assert.ok(checked > 30, `${checked} routes`);
  assert.ok((await asLocal('GET', '/api/v1/hosts/52:54:00:aa:00:01')).status === 200, 'the host is still there');
});

test('login: a wrong password or an unknown name fails alike and sets no cookie; the right one sets the session cookie', async () => {
  for (const payload of [{ name: 'vic', password: 'wrong password!' }, { name: 'nobody', password: PW }, { name: 'not a name!', password: PW }]) {
    const r = expect(await call('POST', '/api/v1/auth/login', { ip: '10.1.0.1', payload }), 401, JSON.stringify(payload), /^Wrong user name or password$/);
    assert.equal(r.headers['set-cookie'], undefined, 'no cookie');
  }
  const r = expect(await call('POST', '/api/v1/auth/login', { ip: '10.1.0.2', payload: { name: 'vic', password: PW } }), 200, 'login');
  const set = String(r.headers['set-cookie']);
  assert.match(set, /^fleetboot_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=43200$/, 'HttpOnly, SameSite=Lax, no Secure over plain HTTP');
  assert.deepEqual(r.body['user'], { name: 'vic', role: 'viewer', mustChangePassword: false });
  assert.match(String(r.body['csrfToken']), /^[A-Za-z0-9_-]{43}$/);
  assert.equal(r.body['expiresAt'], new Date(clock + 12 * 3600_000).toISOString());
  const session = { cookie: set.split(';')[0] as string, csrf: String(r.body['csrfToken']) };
  const me = expect(await call('GET', '/api/v1/auth/me', { session }), 200, 'me').body;
  assert.deepEqual([me['via'], me['role'], me['actor'], me['csrfToken']], ['session', 'viewer', 'user vic', session.csrf]);
  expect(await call('GET', '/api/v1/hosts', { session }), 200, 'a viewer reads');
  // Neither the cookie's secret nor the password is stored: only the secret's sha256.
  const secret = session.cookie.split('=')[1] as string;
  const rows = JSON.stringify(await store.db.selectFrom('sessions').selectAll().execute()) + JSON.stringify(await store.db.selectFrom('users').selectAll().execute());
  assert.ok(!rows.includes(secret) && !rows.includes(PW));
});

test('the 6th failed login in a minute is refused with the wait, per address and per user name, right password or not', async () => {
  // Per address: five different names from one address.
  for (let i = 0; i < 5; i++) expect(await call('POST', '/api/v1/auth/login', { ip: '10.2.0.1', payload: { name: `guess${i}`, password: 'wrong password!' } }), 401, `attempt ${i + 1}`);
  clock += 10_000;
  const sixth = expect(await call('POST', '/api/v1/auth/login', { ip: '10.2.0.1', payload: { name: 'vic', password: PW } }), 429, '6th from the address', /^Too many failed logins from 10\.2\.0\.1: try again in 50 seconds$/);
  assert.equal(sixth.headers['retry-after'], '50');
  assert.equal(sixth.headers['set-cookie'], undefined);
  // Per user name: five addresses, one name.
  for (let i = 0; i < 5; i++) expect(await call('POST', '/api/v1/auth/login', { ip: `10.3.0.${i + 1}`, payload: { name: 'olga', password: 'wrong password!' } }), 401, `olga ${i + 1}`);
  expect(await call('POST', '/api/v1/auth/login', { ip: '10.3.0.9', payload: { name: 'olga', password: PW } }), 429, '6th for the name', /^Too many failed logins for user "olga": try again in 60 seconds$/);
  expect(await call('POST', '/api/v1/auth/login', { ip: '10.3.0.9', payload: { name: 'vic', password: PW } }), 200, 'another user from that address');
  clock += 60_000;
  await login('olga', PW, '10.3.0.9');
  await login('vic', PW, '10.2.0.1');
  // Attempts sent all at once are counted before their (slow) checks end.
  const burst = await Promise.all(Array.from({ length: 12 }, (_, i) => call('POST', '/api/v1/auth/login', { ip: '10.2.9.9', payload: { name: `burst${i}`, password: 'wrong password!' } })));
  assert.deepEqual(burst.map((r) => r.status).sort(), [...Array(5).fill(401), ...Array(7).fill(429)]);
  // The audit log has the refused attempts, with the name tried.
  const rows = await auditRows(60);
  assert.ok(rows.some((e) => e['actor'] === 'login as "olga"' && e['status'] === 429 && e['ip'] === '10.3.0.9'), JSON.stringify(rows.slice(0, 3)));
  assert.ok(rows.some((e) => e['actor'] === 'login as "guess0"' && e['status'] === 401));
  const failed = rows.find((e) => e['actor'] === 'login as "guess0"');
  assert.deepEqual(failed?.['summary'], { body: { name: 'guess0', password: '[removed]' } });
});

test("a viewer's writes get 403; an operator runs the fleet but cannot delete a host or manage users; an admin can", async () => {
  const v = await login('vic');
  expect(await call('POST', '/api/v1/hosts', { session: v, payload: { mac: '52:54:00:aa:00:02' } }), 403, 'viewer write', /^POST \/api\/v1\/hosts needs the operator role; user vic is a viewer$/);
  expect(await call('GET', '/api/v1/users', { session: v }), 403, 'viewer users');
  const o = await login('olga', PW, '10.4.0.1');
  expect(await call('POST', '/api/v1/hosts', { session: o, payload: { mac: '52:54:00:aa:00:02' } }), 201, 'operator adds a host');
  expect(await call('DELETE', '/api/v1/hosts/52:54:00:aa:00:02', { session: o }), 403, 'operator deletes', /needs the admin role; user olga is an operator/);
  expect(await call('GET', '/api/v1/users', { session: o }), 403, 'operator lists users');
  expect(await call('POST', '/api/v1/users', { session: o, payload: { name: 'eve', role: 'admin', password: PW } }), 403, 'operator adds a user');
  const a = await login('root', PW, '10.4.0.2');
  const users = expect(await call('GET', '/api/v1/users', { session: a }), 200, 'admin lists users').body['users'] as Json[];
  assert.deepEqual(users.map((u) => `${u['name']}:${u['role']}`), ['olga:operator', 'root:admin', 'vic:viewer']);
  assert.ok(users.every((u) => !('passwordHash' in u) && !('password_hash' in u)));
  expect(await call('DELETE', '/api/v1/hosts/52:54:00:aa:00:02', { session: a }), 200, 'admin deletes');
  expect(await call('POST', '/api/v1/users', { session: a, payload: { name: 'eve', role: 'operator', password: 'short' } }), 400, 'policy', /The password must be at least 12 characters long: it has 5/);
  expect(await call('POST', '/api/v1/users', { session: a, payload: { name: 'eve', role: 'operator', password: PW } }), 201, 'admin adds a user');
  expect(await call('PATCH', '/api/v1/users/eve', { session: a, payload: { role: 'viewer' } }), 200, 'admin changes a role');
  expect(await call('DELETE', '/api/v1/users/eve', { session: a }), 200, 'admin deletes a user');
  // The last enabled admin stays.
  expect(await call('PATCH', '/api/v1/users/root', { session: a, payload: { role: 'operator' } }), 409, 'demote the last admin', /last enabled admin/);
  expect(await call('DELETE', '/api/v1/users/root', { session: a }), 409, 'delete the last admin', /last enabled admin/);
});

test('a cookie-authenticated write needs the CSRF token and, when an Origin is sent, this host; Bearer writes need neither', async () => {
  const o = await login('olga', PW, '10.5.0.1');
  const add = (c: Call, mac: string): Promise<Answer> => call('POST', '/api/v1/hosts', { ...c, payload: { mac } });
  expect(await add({ session: o, csrf: null }, '52:54:00:aa:01:01'), 403, 'no token', /^Missing CSRF token: .* in the x-csrf-token header$/);
  expect(await add({ session: o, csrf: 'x'.repeat(43) }, '52:54:00:aa:01:01'), 403, 'wrong token', /^Wrong CSRF token/);
  expect(await add({ session: o, origin: 'http://evil.example' }, '52:54:00:aa:01:01'), 403, 'foreign origin', /^Origin "http:\/\/evil\.example" is not this server \(fleetboot\.test:8080\): cross-site requests are refused$/);
  expect(await add({ session: o, origin: 'http://fleetboot.test:8081' }, '52:54:00:aa:01:01'), 403, 'another port is another origin');
  expect(await add({ session: o, origin: 'null' }, '52:54:00:aa:01:01'), 403, 'an opaque origin');
  assert.equal((await asLocal('GET', '/api/v1/hosts/52:54:00:aa:01:01')).status, 404, 'nothing was added');
  expect(await add({ session: o, origin: `http://${HOST}` }, '52:54:00:aa:01:01'), 201, 'same origin with the token');
  expect(await add({ session: o }, '52:54:00:aa:01:02'), 201, 'no Origin header, with the token');
  expect(await call('GET', '/api/v1/hosts', { session: o, csrf: null, origin: 'http://evil.example' }), 200, 'reads need no token');
  const t = await makeToken('olga', 'csrf-free', 'operator');
  expect(await add({ bearer: t, origin: 'http://evil.example' }, '52:54:00:aa:01:03'), 201, 'a Bearer write');
  // The login itself refuses a foreign Origin (login CSRF).
  expect(await call('POST', '/api/v1/auth/login', { ip: '10.5.0.2', origin: 'http://evil.example', payload: { name: 'olga', password: PW } }), 403, 'login from elsewhere', /cross-site/);
});

test('a token made for a viewer reads but cannot write, and is refused (401) once revoked', async () => {
  const made = expect(await asLocal('POST', '/api/v1/tokens', { user: 'vic', name: 'dashboard', role: 'viewer', expiresInDays: 30 }), 201, 'make').body;
  const secret = String(made['secret']);
  assert.match(secret, /^fbt_[A-Za-z0-9_-]{43}$/);
  const token = made['token'] as Json;
  assert.deepEqual([token['user'], token['name'], token['role'], token['expiresAt']], ['vic', 'dashboard', 'viewer', new Date(clock + 30 * 86_400_000).toISOString()]);
  assert.ok(!JSON.stringify(await store.db.selectFrom('api_tokens').selectAll().execute()).includes(secret), 'only the hash is stored');
  expect(await call('GET', '/api/v1/hosts', { bearer: secret }), 200, 'reads');
  expect(await call('POST', '/api/v1/hosts', { bearer: secret, payload: { mac: '52:54:00:aa:02:01' } }), 403, 'writes', /token dashboard of vic is a viewer/);
  const listed = expect(await asLocal('GET', '/api/v1/tokens?user=vic'), 200, 'list').body['tokens'] as Json[];
  assert.ok(listed.some((x) => x['name'] === 'dashboard' && x['lastUsedAt'] !== null));
  assert.ok(listed.every((x) => !('secret' in x) && !('tokenHash' in x)));
  expect(await asLocal('DELETE', `/api/v1/tokens/${String(token['id'])}`), 200, 'revoke');
  expect(await call('GET', '/api/v1/hosts', { bearer: secret }), 401, 'revoked', /^API token 'dashboard' of vic was revoked at /);
  expect(await call('GET', '/api/v1/hosts', { bearer: 'fbt_' + 'A'.repeat(43) }), 401, 'unknown', /^Unknown API token$/);
});

test("tokens: role above the owner's refused at creation; capped by the owner's current role; expired, disabled owner; no token makes tokens", async () => {
  expect(await asLocal('POST', '/api/v1/tokens', { user: 'vic', name: 'too-high', role: 'operator' }), 403, 'above the owner', /vic is a viewer, and a token's role is at most its owner's/);
  expect(await asLocal('POST', '/api/v1/tokens', { name: 'ownerless', role: 'viewer' }), 400, 'local token without user', /The local admin token has no user/);
  await addUser('otto', 'operator');
  const t = await makeToken('otto', 'ops', 'operator', 1);
  expect(await call('POST', '/api/v1/hosts', { bearer: t, payload: { mac: '52:54:00:aa:03:01' } }), 201, 'operator token writes');
  expect(await call('POST', '/api/v1/tokens', { bearer: t, payload: { name: 'child', role: 'viewer' } }), 403, 'a token making tokens', /An API token cannot make API tokens/);
  expect(await asLocal('PATCH', '/api/v1/users/otto', { role: 'viewer' }), 200, 'demote the owner');
  expect(await call('POST', '/api/v1/hosts', { bearer: t, payload: { mac: '52:54:00:aa:03:02' } }), 403, 'capped by the owner', /token ops of otto is a viewer/);
  expect(await asLocal('PATCH', '/api/v1/users/otto', { role: 'operator' }), 200, 'promote again');
  expect(await asLocal('PATCH', '/api/v1/users/otto', { disabled: true }), 200, 'disable the owner');
  expect(await call('GET', '/api/v1/hosts', { bearer: t }), 401, 'owner disabled', /User otto is disabled: its API tokens are refused/);
  expect(await asLocal('PATCH', '/api/v1/users/otto', { disabled: false }), 200, 'enable');
  expect(await call('GET', '/api/v1/hosts', { bearer: t }), 200, 'works again');
  clock += 86_400_000;
  expect(await call('GET', '/api/v1/hosts', { bearer: t }), 401, 'expired', /^API token 'ops' of otto expired at /);
  // A user manages its own tokens (a viewer too), not others'.
  const v = await login('vic', PW, '10.6.0.1');
  const own = expect(await call('POST', '/api/v1/tokens', { session: v, payload: { name: 'mine', role: 'viewer', expiresInDays: null } }), 201, 'own token').body;
  assert.equal((own['token'] as Json)['expiresAt'], null);
  expect(await call('POST', '/api/v1/tokens', { session: v, payload: { name: 'for-otto', role: 'viewer', user: 'otto' } }), 403, "another user's", /Only an admin may make a token for another user/);
  const mine = expect(await call('GET', '/api/v1/tokens', { session: v }), 200, 'own list').body['tokens'] as Json[];
  assert.ok(mine.length > 0 && mine.every((x) => x['user'] === 'vic'), JSON.stringify(mine));
  const ottos = expect(await asLocal('GET', '/api/v1/tokens?user=otto'), 200, 'otto').body['tokens'] as Json[];
  expect(await call('DELETE', `/api/v1/tokens/${String(ottos[0]?.['id'])}`, { session: v }), 403, "revoking another's", /only an admin may revoke another user's token/);
  expect(await call('DELETE', `/api/v1/tokens/${String((own['token'] as Json)['id'])}`, { session: v }), 200, 'revoking its own');
});

test('sessions end after the idle timeout and at the absolute one, when revoked, and at logout', async () => {
  const s1 = await login('vic', PW, '10.7.0.1');
  clock += 29 * 60_000;
  expect(await call('GET', '/api/v1/hosts', { session: s1 }), 200, 'after 29 idle minutes');
  clock += 29 * 60_000;
  expect(await call('GET', '/api/v1/hosts', { session: s1 }), 200, 'the request moved last-seen on');
  clock += 30 * 60_000;
  const idle = expect(await call('GET', '/api/v1/hosts', { session: s1 }), 401, 'idle', /ended after 30 minutes without a request \(auth\.sessionIdleMinutes\)/);
  assert.match(String(idle.headers['set-cookie']), /^fleetboot_session=; Path=\/; HttpOnly; SameSite=Lax; Max-Age=0$/, 'the dead cookie is cleared');

  const s2 = await login('vic', PW, '10.7.0.1');
  for (let h = 0; h < 12 * 3; h++) {
    clock += 20 * 60_000;
    const r = await call('GET', '/api/v1/auth/me', { session: s2 });
    if (h < 12 * 3 - 1) expect(r, 200, `busy, ${(h + 1) * 20} minutes in`);
    else expect(r, 401, 'absolute timeout', /This session expired at .* \(auth\.sessionMaxHours 12\): log in again/);
  }

  const s3 = await login('vic', PW, '10.7.0.1');
  const s4 = await login('vic', PW, '10.7.0.2');
  const mine = expect(await call('GET', '/api/v1/sessions', { session: s3 }), 200, 'own sessions').body['sessions'] as Json[];
  assert.equal(mine.length, 2);
  assert.equal(mine.filter((x) => x['current'] === true).length, 1);
  const other = mine.find((x) => x['current'] === false);
  assert.equal(other?.['ip'], '10.7.0.2');
  expect(await asLocal('DELETE', `/api/v1/sessions/${String(other?.['id'])}`), 200, 'revoke');
  expect(await call('GET', '/api/v1/hosts', { session: s4 }), 401, 'revoked', /This session was revoked at /);
  const o = await login('olga', PW, '10.7.0.3');
  const olgas = expect(await call('GET', '/api/v1/sessions', { session: o }), 200, 'olga').body['sessions'] as Json[];
  assert.ok(olgas.length === 1 && olgas.every((x) => x['user'] === 'olga'));
  const all = expect(await asLocal('GET', '/api/v1/sessions'), 200, 'all sessions').body['sessions'] as Json[];
  assert.deepEqual(all.map((x) => x['user']).sort(), ['olga', 'vic'], 'the local admin sees everyone');
  const vics = mine.find((x) => x['current'] === true);
  expect(await call('DELETE', `/api/v1/sessions/${String(vics?.['id'])}`, { session: o }), 403, "another user's session", /only an admin may revoke another user's session/);

  const out = expect(await call('POST', '/api/v1/auth/logout', { session: s3 }), 200, 'logout');
  assert.match(String(out.headers['set-cookie']), /Max-Age=0/);
  expect(await call('GET', '/api/v1/hosts', { session: s3 }), 401, 'after logout');
  expect(await call('POST', '/api/v1/auth/logout', { bearer: local }), 400, 'logout with a token', /Logging out ends a login session/);
});

test('a generated password is shown once and must be changed before anything else; changing it needs the current one', async () => {
  const made = expect(await asLocal('POST', '/api/v1/users', { name: 'newbie', role: 'operator' }), 201, 'add without password').body;
  const once = String(made['password']);
  assert.match(once, /^[a-z2-7]{20}$/);
  assert.equal((made['user'] as Json)['mustChangePassword'], true);
  const s = await login('newbie', once, '10.8.0.1');
  expect(await call('GET', '/api/v1/hosts', { session: s }), 403, 'before the change', /generated and shown once: choose your own first/);
  expect(await call('GET', '/api/v1/auth/me', { session: s }), 200, 'who am I');
  expect(await call('POST', '/api/v1/users/newbie/password', { session: s, payload: { password: 'my own password!' } }), 400, 'no current password', /needs your current one too/);
  expect(await call('POST', '/api/v1/users/newbie/password', { session: s, payload: { password: 'my own password!', currentPassword: 'not it at all' } }), 403, 'wrong current', /The current password is wrong/);
  expect(await call('POST', '/api/v1/users/newbie/password', { session: s, payload: { password: 'short', currentPassword: once } }), 400, 'policy', /at least 12 characters/);
  const changed = expect(await call('POST', '/api/v1/users/newbie/password', { session: s, payload: { password: 'my own password!', currentPassword: once } }), 200, 'change').body;
  assert.equal((changed['user'] as Json)['mustChangePassword'], false);
  assert.equal(changed['password'], undefined);
  expect(await call('GET', '/api/v1/hosts', { session: s }), 200, 'the session that changed it goes on');
  expect(await call('POST', '/api/v1/auth/login', { ip: '10.8.0.2', payload: { name: 'newbie', password: once } }), 401, 'the one-time password is gone');
  await login('newbie', 'my own password!', '10.8.0.3');
  // Someone else's password: an admin only; without one it is generated (and the user's sessions end).
  expect(await call('POST', '/api/v1/users/vic/password', { session: s, payload: { password: 'another password' } }), 403, 'operator sets another', /Only an admin may set another user's password/);
  const reset = expect(await asLocal('POST', '/api/v1/users/newbie/password'), 200, 'admin reset').body;
  assert.match(String(reset['password']), /^[a-z2-7]{20}$/);
  expect(await call('GET', '/api/v1/auth/me', { session: s }), 401, 'sessions end at a reset');
});

test('the local admin token still does everything, including users, tokens, sessions and the audit log', async () => {
  for (const [method, url, payload, status] of [
    ['GET', '/api/v1/auth/me', undefined, 200],
    ['POST', '/api/v1/hosts', { mac: '52:54:00:aa:04:01' }, 201],
    ['DELETE', '/api/v1/hosts/52:54:00:aa:04:01', undefined, 200],
    ['POST', '/api/v1/users', { name: 'temp', role: 'viewer', password: PW }, 201],
    ['PATCH', '/api/v1/users/temp', { disabled: true }, 200],
    ['DELETE', '/api/v1/users/temp', undefined, 200],
    ['GET', '/api/v1/tokens', undefined, 200],
    ['GET', '/api/v1/sessions', undefined, 200],
    ['GET', '/api/v1/audit', undefined, 200],
  ] as const) {
    expect(await asLocal(method, url, payload), status, `${method} ${url}`);
  }
  const me = expect(await asLocal('GET', '/api/v1/auth/me'), 200, 'me').body;
  assert.deepEqual(me, { role: 'admin', via: 'local', actor: 'local admin token', user: null });
  expect(await call('GET', '/api/v1/hosts', { bearer: `${local}x` }), 401, 'a wrong token', /Missing or wrong API token/);
  expect(await call('GET', '/api/v1/hosts'), 401, 'no credentials', /Not logged in/);
});

test('every write through the API is in the audit log: who, what, when, from where, without secrets; reads are not', async () => {
  const v = await login('vic', PW, '10.10.0.1');
  await call('POST', '/api/v1/hosts', { session: v, ip: '10.10.0.1', payload: { mac: '52:54:00:aa:05:01' } });
  await asLocal('PATCH', '/api/v1/hosts/52:54:00:aa:00:01', { name: 'renamed' });
  await asLocal('POST', '/api/v1/users/vic/password', { password: 'a brand new password' });
  const tok = await makeToken('olga', 'audited', 'operator');
  await call('POST', '/api/v1/groups', { bearer: tok, ip: '10.10.0.5', payload: { name: 'lab' } });
  await call('DELETE', '/api/v1/nowhere', { ip: '10.10.0.6' });
  await asLocal('GET', '/api/v1/hosts');
  const rows = await auditRows(8);
  const at = new Date(clock).toISOString();
  const pick = (e: Json | undefined) => e && [e['actor'], e['ip'], e['method'], e['route'], e['url'], e['status'], e['at']];
  assert.deepEqual(pick(rows[0]), ['anonymous', '10.10.0.6', 'DELETE', null, '/api/v1/nowhere', 404, at], 'no route: still a write asked');
  assert.deepEqual(pick(rows[1]), ['token audited of olga', '10.10.0.5', 'POST', '/api/v1/groups', '/api/v1/groups', 201, at]);
  assert.deepEqual(rows[1]?.['summary'], { body: { name: 'lab' } });
  assert.deepEqual(pick(rows[2]), ['local admin token', '127.0.0.1', 'POST', '/api/v1/tokens', '/api/v1/tokens', 201, at]);
  assert.deepEqual(pick(rows[3]), ['local admin token', '127.0.0.1', 'POST', '/api/v1/users/:name/password', '/api/v1/users/vic/password', 200, at]);
  assert.deepEqual(rows[3]?.['summary'], { params: { name: 'vic' }, body: { password: '[removed]' } });
  assert.deepEqual(pick(rows[4]), ['local admin token', '127.0.0.1', 'PATCH', '/api/v1/hosts/:mac', '/api/v1/hosts/52:54:00:aa:00:01', 200, at]);
  assert.deepEqual(rows[4]?.['summary'], { params: { mac: '52:54:00:aa:00:01' }, body: { name: 'renamed' } });
  assert.deepEqual(pick(rows[5]), ['user vic', '10.10.0.1', 'POST', '/api/v1/hosts', '/api/v1/hosts', 403, at], 'refused writes too');
  assert.equal(rows[6]?.['actor'], 'login as "vic"');
  assert.ok(!rows.some((e) => e['method'] === 'GET'), 'reads are not audited');
  const text = JSON.stringify(await store.db.selectFrom('audit_log').selectAll().execute());
  for (const secret of [PW, 'a brand new password', tok, local, v.csrf, v.cookie.split('=')[1] as string]) assert.ok(!text.includes(secret), 'no secret in the audit log');
  // Paging, and the role it takes.
  const page = expect(await asLocal('GET', '/api/v1/audit?limit=2'), 200, 'page').body;
  const older = expect(await asLocal('GET', `/api/v1/audit?limit=2&before=${String(page['nextBefore'])}`), 200, 'older').body['entries'] as Json[];
  assert.equal(older[0]?.['id'], (page['nextBefore'] as number) - 1);
  expect(await call('GET', '/api/v1/audit', { bearer: tok }), 403, 'operator reads the audit log', /needs the admin role/);
});
