/**
 * Reserved addresses of hosts through the REST API (app.inject, no socket),
 * and the hook that lets the DHCP server reload them: wired here as
 * src/server.ts wires it, to a real LeaseEngine.
 */
import { openTestStore } from '../src/store/temp-store.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadConfig, POOL_DEFAULTS, type FleetbootConfig } from '../src/config/config.js';
import { silentLogger } from '../src/lib/log.js';
import { buildApp } from '../src/http/app.js';
import { watchAnswers, type AnswerWatch } from './api-answers.js';
import { ensureApiToken, openStore, type Store } from '../src/store/index.js';
import { dhcpReservations } from '../src/server.js';
import { LeaseEngine } from '../src/dhcp/engine.js';
import { createPacket } from '../src/protocol/dhcp/packet.js';
import { MessageType, Opt } from '../src/protocol/dhcp/options.js';

let dir: string;
let store: Store;
let app: FastifyInstance;
let watch: AnswerWatch;
let token: string;
let config: Readonly<FleetbootConfig>;
let engine: LeaseEngine;
let changes = 0;
let reloading: Promise<void> = Promise.resolve();
const auth = () => ({ authorization: `Bearer ${token}` });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetboot-api-ip-'));
  config = loadConfig({
    overrides: {
      dataDir: dir,
      serverIp: '10.0.0.1',
      http: { port: 8123 },
      dhcp: { reservations: [{ mac: '52:54:00:00:00:99', ip: '10.0.0.99', hostname: 'cfg' }] },
    },
  });
  store = await openTestStore(config.dataDir);
  token = ensureApiToken(config.dataDir);
  engine = new LeaseEngine({
    serverIp: '10.0.0.1',
    pools: [{ ...POOL_DEFAULTS, start: '10.0.0.100', end: '10.0.0.110' }],
    boot: null,
    reservations: await dhcpReservations(config, store, silentLogger),
  });
  app = buildApp({
    store,
    config,
    serverIp: '10.0.0.1',
    logger: silentLogger,
    token,
    onHostsChanged: () => {
      changes++;
      // As src/server.ts does: the reload runs after the change, asynchronously.
      reloading = dhcpReservations(config, store, silentLogger).then((list) => void engine.setReservations(list));
    },
  });
  watch = watchAnswers(app);
  await app.ready();
});

after(async () => {
  assert.deepEqual(watch.lost, [], 'answers lost these properties to their response schemas: declare them (src/http/schemas/), or add them to HIDDEN (test/api-answers.ts)');
  await app.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The engine's offer (its lease writes are not committed anywhere), after any reservation reload. */
async function offerFor(n: number): Promise<string> {
  await reloading;
  const chaddr = Buffer.alloc(16);
  Buffer.from([0x52, 0x54, 0, 0, 0, n]).copy(chaddr);
  const d = engine.handle(createPacket({ xid: n, chaddr, options: [{ code: Opt.MESSAGE_TYPE, data: Buffer.from([MessageType.DISCOVER]) }] }), { address: '0.0.0.0', port: 68 });
  assert.ok(!('ignore' in d), 'ignore' in d ? d.ignore : '');
  return d.reply.yiaddr;
}

test('POST/PATCH /api/v1/hosts: ip validated (400), unique (409), reserve, change, unreserve', async () => {
  const add = await app.inject({ method: 'POST', url: '/api/v1/hosts', headers: auth(), payload: { mac: '52:54:00:00:00:01', name: 'pc1', ip: '10.0.0.21' } });
  assert.equal(add.statusCode, 201, add.body);
  assert.equal(add.json().ip, '10.0.0.21');
  const plain = await app.inject({ method: 'POST', url: '/api/v1/hosts', headers: auth(), payload: { mac: '52:54:00:00:00:02' } });
  assert.equal(plain.json().ip, null);

  for (const ip of ['10.0.0.256', '10.0.0', 'host', '127.0.0.1', '0.0.0.0', '239.1.1.1', 42]) {
    const r = await app.inject({ method: 'POST', url: '/api/v1/hosts', headers: auth(), payload: { mac: '52:54:00:00:00:03', ip } });
    assert.equal(r.statusCode, 400, `${String(ip)}: ${r.body}`);
    assert.equal(typeof r.json().message, 'string');
    const p = await app.inject({ method: 'PATCH', url: '/api/v1/hosts/52:54:00:00:00:02', headers: auth(), payload: { ip } });
    assert.equal(p.statusCode, 400, `${String(ip)}: ${p.body}`);
  }
  const dupAdd = await app.inject({ method: 'POST', url: '/api/v1/hosts', headers: auth(), payload: { mac: '52:54:00:00:00:03', ip: '10.0.0.21' } });
  assert.equal(dupAdd.statusCode, 409);
  assert.match(dupAdd.json().message, /52:54:00:00:00:01/);
  const dupPatch = await app.inject({ method: 'PATCH', url: '/api/v1/hosts/52:54:00:00:00:02', headers: auth(), payload: { ip: '10.0.0.21' } });
  assert.equal(dupPatch.statusCode, 409);
  const cfg = await app.inject({ method: 'PATCH', url: '/api/v1/hosts/52:54:00:00:00:02', headers: auth(), payload: { ip: '10.0.0.99' } });
  assert.equal(cfg.statusCode, 409, 'an address of dhcp.reservations in the config is taken');
  assert.match(cfg.json().message, /dhcp\.reservations/);

  const reserve = await app.inject({ method: 'PATCH', url: '/api/v1/hosts/525400000002', headers: auth(), payload: { ip: '10.0.0.22' } });
  assert.equal(reserve.statusCode, 200, reserve.body);
  assert.equal(reserve.json().ip, '10.0.0.22');
  const list = await app.inject({ method: 'GET', url: '/api/v1/hosts', headers: auth() });
  assert.deepEqual(
    list.json().hosts.map((h: { mac: string; ip: string | null }) => [h.mac, h.ip]),
    [
      ['52:54:00:00:00:01', '10.0.0.21'],
      ['52:54:00:00:00:02', '10.0.0.22'],
    ],
  );
  const unreserve = await app.inject({ method: 'PATCH', url: '/api/v1/hosts/52:54:00:00:00:02', headers: auth(), payload: { ip: null } });
  assert.equal(unreserve.json().ip, null);
  assert.equal((await app.inject({ method: 'GET', url: '/api/v1/hosts/52:54:00:00:00:02', headers: auth() })).json().ip, null);
});

test('host changes through the API call onHostsChanged; the DHCP engine then honours the new reservations', async () => {
  // The config's reservation is in force from the start.
  assert.equal(await offerFor(0x99), '10.0.0.99');
  const before = changes;
  const add = await app.inject({ method: 'POST', url: '/api/v1/hosts', headers: auth(), payload: { mac: '52:54:00:00:00:10', name: 'pc10', ip: '10.0.0.30' } });
  assert.equal(add.statusCode, 201, add.body);
  assert.equal(changes, before + 1);
  assert.equal(await offerFor(0x10), '10.0.0.30');
  await app.inject({ method: 'PATCH', url: '/api/v1/hosts/52:54:00:00:00:10', headers: auth(), payload: { ip: '10.0.0.31' } });
  assert.equal(await offerFor(0x10), '10.0.0.31');
  await app.inject({ method: 'DELETE', url: '/api/v1/hosts/52:54:00:00:00:10', headers: auth() });
  assert.equal(changes, before + 3);
  assert.notEqual(await offerFor(0x10), '10.0.0.31');
  // A refused change does not call the hook.
  await app.inject({ method: 'POST', url: '/api/v1/hosts', headers: auth(), payload: { mac: '52:54:00:00:00:11', ip: 'nope' } });
  assert.equal(changes, before + 3);
});
