/**
 * Nodes through the API and the CLI: two servers (two stores, two apps with
 * their node services) on ONE SQLite data directory both show up in
 * GET /api/v1/nodes and `fleetboot node list`; show, rm (refused for a live
 * node without force, and for the node answering), input validation and
 * roles; /api/v1/status names the node. Their groups (node.groups) in the
 * list, and `fleetboot image set --nodes group:NAME,...` checked against them.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../src/config/config.js';
import { buildApp } from '../src/http/app.js';
import { silentLogger } from '../src/lib/log.js';
import { createNodeService, type NodeService } from '../src/nodes/service.js';
import { createHost, ensureApiToken, openStore, type Store } from '../src/store/index.js';
import { testDatabaseUrl } from '../src/store/temp-store.js';
import { apiCaller, type Json } from './api-helpers.js';
import { cli, fails, ok, spawnServe, waitUntil } from './cli-helpers.js';
import { makeImage } from './imaging-helpers.js';

const CHEAP = { N: 1024, r: 8, p: 1, keyLength: 32, saltLength: 16 };

let dir = '';
const servers: Array<{ store: Store; app: FastifyInstance; node: NodeService; url: string }> = [];
let token = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetboot-api-nodes-'));
  token = ensureApiToken(dir);
  // One SQLite file in `dir`, or one PostgreSQL database in the test command's PostgreSQL pass.
  const dbUrl = await testDatabaseUrl(dir);
  for (const [name, ip] of [['pxe-a', '127.0.0.1'], ['pxe-b', '127.0.0.2']] as const) {
    const config = loadConfig({ overrides: { dataDir: dir, serverIp: ip, http: { port: 0 }, node: { name, subnets: [name === 'pxe-a' ? '10.1.0.0/16' : '10.2.0.0/16'], groups: name === 'pxe-a' ? [] : ['building-a', 'lab'] } } });
    const store = await openStore(dir, { url: dbUrl });
    let url = '';
    const node = createNodeService({ store, config, serverIp: ip, version: '0.1.0-test', log: silentLogger, urls: () => ({ httpUrl: url, httpsUrl: null }) });
    const app = buildApp({ store, config, serverIp: ip, logger: silentLogger, token, nodeName: node.name, consoleDir: null, auth: { scrypt: CHEAP } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`;
    await node.start();
    servers.push({ store, app, node, url });
  }
});

after(async () => {
  for (const s of servers) {
    await s.node.close();
    await s.app.close();
    await s.store.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

const callOn = (i: number) =>
  apiCaller(
    () => (servers[i] as { app: FastifyInstance }).app,
    () => token,
  );

test('GET /api/v1/nodes on either server lists both nodes (one SQLite data directory), each marking itself', async () => {
  for (const [i, me] of [[0, 'pxe-a'], [1, 'pxe-b']] as const) {
    const r = await callOn(i)('GET', '/api/v1/nodes');
    assert.equal(r.status, 200);
    assert.equal(r.body['self'], me);
    const nodes = r.body['nodes'] as Json[];
    assert.deepEqual(nodes.map((n) => [n['name'], n['state'], n['self']]), [['pxe-a', 'up', me === 'pxe-a'], ['pxe-b', 'up', me === 'pxe-b']]);
    assert.deepEqual(nodes[1]?.['subnets'], ['10.2.0.0/16']);
    assert.deepEqual(nodes[1]?.['addresses'], ['127.0.0.2']);
    assert.deepEqual(nodes.map((n) => n['groups']), [[], ['building-a', 'lab']]);
    assert.equal(typeof nodes[0]?.['freeBytes'], 'number');
    assert.equal(nodes[0]?.['httpUrl'], servers[0]?.url);
    assert.ok(!JSON.stringify(nodes).includes('credential'), 'no credential, not even its hash');
  }
  const st = await callOn(1)('GET', '/api/v1/status');
  assert.equal(st.body['node'], 'pxe-b');
});

test('GET /api/v1/nodes/:name shows one; 404 unknown; 400 for a name that is none', async () => {
  const call = callOn(0);
  const r = await call('GET', '/api/v1/nodes/pxe-b');
  assert.equal(r.status, 200);
  assert.equal(r.body['name'], 'pxe-b');
  assert.equal(r.body['heartbeatSeconds'], 10);
  assert.equal(r.body['self'], false);
  const missing = await call('GET', '/api/v1/nodes/pxe-z');
  assert.deepEqual([missing.status, missing.body['message']], [404, "No node named 'pxe-z'"]);
  const bad = await call('GET', '/api/v1/nodes/-bad');
  assert.equal(bad.status, 400);
  assert.match(String(bad.body['message']), /name/);
});

test('DELETE /api/v1/nodes/:name: admin only; never the answering node; a live one only with force; a stopped one at once', async () => {
  const call = callOn(0);
  const self = await call('DELETE', '/api/v1/nodes/pxe-a');
  assert.equal(self.status, 409);
  assert.match(String(self.body['message']), /^Node 'pxe-a' is the server answering this request/);
  const live = await call('DELETE', '/api/v1/nodes/pxe-b');
  assert.equal(live.status, 409);
  assert.match(String(live.body['message']), /^Node 'pxe-b' is up \(last heartbeat \d+ s ago\): stop it first/);
  const badForce = await call('DELETE', '/api/v1/nodes/pxe-b?force=yes');
  assert.equal(badForce.status, 400);
  // A viewer reads, and cannot remove.
  assert.equal((await call('POST', '/api/v1/users', { name: 'vic', role: 'viewer', password: 'a viewer password' })).status, 201);
  const made = await call('POST', '/api/v1/tokens', { user: 'vic', name: 'dash', role: 'viewer' });
  const viewer = String(made.body['secret']);
  const app = (servers[0] as { app: FastifyInstance }).app;
  const asViewer = async (method: 'GET' | 'DELETE', url: string) => (await app.inject({ method, url, headers: { authorization: `Bearer ${viewer}` } })).statusCode;
  assert.equal(await asViewer('GET', '/api/v1/nodes'), 200);
  assert.equal(await asViewer('DELETE', '/api/v1/nodes/pxe-b?force=true'), 403);
  // Forced: gone until its next heartbeat registers it again.
  const forced = await call('DELETE', '/api/v1/nodes/pxe-b?force=true');
  assert.deepEqual([forced.status, forced.body], [200, { deleted: 'pxe-b' }]);
  assert.equal((await call('GET', '/api/v1/nodes/pxe-b')).status, 404);
  assert.equal(await servers[1]?.node.beat(), true);
  const back = await call('GET', '/api/v1/nodes/pxe-b');
  assert.equal(back.status, 200);
  assert.deepEqual(back.body['groups'], ['building-a', 'lab'], 'registered again with its groups');
});

test('fleetboot image set --nodes group:NAME,...: groups the nodes publish are taken, others refused naming the known ones', async () => {
  const store = (servers[0] as { store: Store }).store;
  await createHost(store.db, { mac: '52:54:00:00:0a:01', name: 'ref-groups' });
  await makeImage(store, 'grouped', '52:54:00:00:0a:01');
  const a = ['--server', servers[0]?.url ?? '', '--token', token];
  const [set, unknown, malformed] = await Promise.all([
    cli([...a, 'image', 'set', 'grouped', '--nodes', 'group:lab,pxe-a']),
    cli([...a, 'image', 'set', 'grouped', '--nodes', 'group:nope']),
    cli([...a, 'image', 'set', 'grouped', '--nodes', 'group:']),
  ]);
  assert.equal(ok(set, 'image set --nodes group:lab,pxe-a').stdout, 'Image grouped: replicated to nodes pxe-a, group:lab; not protected\n');
  fails(unknown, 'an unknown group', /Image 'grouped': no registered node is in group 'nope' \(known groups: building-a, lab; a node's groups are its node\.groups/);
  fails(malformed, 'group: without a name', /Invalid --nodes "group:": expected 'all' or entries separated by commas, each a node name or group:NAME/);
  const shown = await callOn(1)('GET', '/api/v1/images/grouped');
  assert.deepEqual(shown.body['nodes'], ['pxe-a', 'group:lab']);
  // The API's schema refuses a malformed entry before the store sees it.
  assert.equal((await callOn(0)('PATCH', '/api/v1/images/grouped', { nodes: ['group:a b'] })).status, 400);
});

test('fleetboot node list|show|rm against the two servers, with and without --json', async () => {
  const a = ['--server', servers[0]?.url ?? '', '--token', token];
  const b = ['--server', servers[1]?.url ?? '', '--token', token];
  const [listA, listB, json, show, showJson, unknown, bad, rmSelf, rmLive] = await Promise.all([
    cli([...a, 'node', 'list']),
    cli([...b, 'node', 'ls']),
    cli([...a, 'node', 'list', '--json']),
    cli([...a, 'node', 'show', 'pxe-b']),
    cli([...a, 'node', 'show', 'pxe-b', '--json']),
    cli([...a, 'node', 'show', 'pxe-z']),
    cli([...a, 'node', 'show', 'a b']),
    cli([...a, 'node', 'rm', 'pxe-a']),
    cli([...a, 'node', 'rm', 'pxe-b']),
  ]);
  assert.match(ok(listA, 'node list').stdout, /^NAME\s+STATE\s+ADDRESSES\s+SUBNETS\s+GROUPS\s+FREE\s+HEARTBEAT\s+VERSION\npxe-a \*\s+up\s+127\.0\.0\.1\s+10\.1\.0\.0\/16\s+-\s+.* of .*\s+\d+ s ago\s+0\.1\.0-test\npxe-b\s+up\s+127\.0\.0\.2\s+10\.2\.0\.0\/16\s+building-a lab\s+/);
  assert.match(ok(listB, 'node ls').stdout, /\npxe-a\s+up[^\n]*\npxe-b \*\s+up/);
  const parsed = JSON.parse(ok(json, 'node list --json').stdout) as { self: string; nodes: Array<{ name: string }> };
  assert.equal(parsed.self, 'pxe-a');
  assert.deepEqual(parsed.nodes.map((n) => n.name), ['pxe-a', 'pxe-b']);
  const sh = ok(show, 'node show').stdout;
  assert.match(sh, /^name\s+pxe-b\n/);
  assert.match(sh, /^state\s+up$/m);
  assert.match(sh, /^subnets\s+10\.2\.0\.0\/16$/m);
  assert.match(sh, /^groups\s+building-a lab$/m);
  assert.match(sh, /^heartbeat\s+\d+ s ago \(every 10 s; down after 3 missed\)$/m);
  assert.equal((JSON.parse(ok(showJson, 'node show --json').stdout) as { name: string }).name, 'pxe-b');
  fails(unknown, 'show unknown', /No node named 'pxe-z' \(HTTP 404\)/);
  fails(bad, 'show a bad name', /A node name is 1-64 letters, digits, '\.', '_' or '-', starting with a letter or digit: current value is "a b"/);
  fails(rmSelf, 'rm self', /Node 'pxe-a' is the server answering this request/);
  fails(rmLive, 'rm live', /Node 'pxe-b' is up .*force/);

  // pxe-b stops cleanly: down at once, and removable without --force.
  await servers[1]?.node.close();
  const down = ok(await cli([...a, 'node', 'list']), 'list after stop').stdout;
  assert.match(down, /\npxe-b\s+down\s+.*stopped \d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);
  assert.match(ok(await cli([...a, 'node', 'rm', 'pxe-b']), 'rm down').stdout, /^Removed node pxe-b\n$/);
  assert.match(ok(await cli([...a, 'node', 'list']), 'list after rm').stdout, /^NAME[^\n]*\npxe-a \*[^\n]*\n$/);
});

test('two `fleetboot serve` on one data directory under two node names: each lists both; a stopped one is down', async () => {
  const d = mkdtempSync(join(tmpdir(), 'fleetboot-serve-nodes-'));
  const url = await testDatabaseUrl(d);
  const db = url === null ? [] : ['--database', url];
  const first = spawnServe(d, ['--dhcp', 'off', '--no-tftp', '--node-name', 'serve-a', ...db]);
  let second: ReturnType<typeof spawnServe> | null = null;
  try {
    await waitUntil(() => existsSync(join(d, 'server.json')), 'server.json of serve-a', 30_000, first.server).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${first.log()}`);
    });
    const urlA = (JSON.parse(readFileSync(join(d, 'server.json'), 'utf8')) as { url: string }).url;
    second = spawnServe(d, ['--dhcp', 'off', '--no-tftp', '--node-name', 'serve-b', ...db]);
    const b = second;
    await waitUntil(() => /fleetboot started/.test(b.log()), 'serve-b started', 30_000, b.server);
    const urlB = (JSON.parse(readFileSync(join(d, 'server.json'), 'utf8')) as { url: string }).url;
    assert.notEqual(urlA, urlB);
    const t = ['--token', readFileSync(join(d, 'api-token'), 'utf8').trim()];
    const [la, lb] = await Promise.all([cli(['--server', urlA, ...t, 'node', 'list']), cli(['--server', urlB, ...t, 'node', 'list'])]);
    assert.match(ok(la, 'list on a').stdout, /\nserve-a \*\s+up\s+127\.0\.0\.1\s[^\n]*\nserve-b\s+up\s/);
    assert.match(ok(lb, 'list on b').stdout, /\nserve-a\s+up\s[^\n]*\nserve-b \*\s+up\s/);
    const exited = new Promise((r) => b.server.once('exit', r));
    b.server.kill('SIGTERM');
    await exited;
    assert.match(ok(await cli(['--server', urlA, ...t, 'node', 'show', 'serve-b']), 'show b').stdout, /^state\s+down$/m);
  } finally {
    for (const s of [first, second]) if (s && s.server.exitCode === null) s.server.kill('SIGKILL');
    rmSync(d, { recursive: true, force: true });
  }
});
