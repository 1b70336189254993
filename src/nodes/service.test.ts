import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../config/config.js';
import { FleetbootError } from '../lib/errors.js';
import { silentLogger } from '../lib/log.js';
import { getNode, listNodes, removeNode } from '../store/nodes.js';
import { readNodeSecret } from '../store/node-secret.js';
import { withTempStore } from '../store/temp-store.js';
import type { Store } from '../store/db.js';
import { verifyNodeCredential } from './auth.js';
import { createNodeService, resolveNodeName, servedSubnets, type NodeServiceDeps } from './service.js';

const T0 = new Date('2026-12-13T10:00:00.000Z');

function deps(s: Store, dir: string, clock: { t: Date }, over: { name?: string | null; heartbeatSeconds?: number; serverIp?: string; free?: number } = {}): NodeServiceDeps {
  const config = loadConfig({ overrides: { dataDir: dir, serverIp: over.serverIp ?? '10.0.0.2', node: { name: over.name === undefined ? 'pxe-a' : over.name, heartbeatSeconds: over.heartbeatSeconds ?? 10, subnets: ['10.9.0.0/16'] } } });
  return {
    store: s,
    config,
    serverIp: config.serverIp ?? '10.0.0.2',
    version: '9.9.9',
    log: silentLogger,
    urls: () => ({ httpUrl: 'http://10.0.0.2:8080', httpsUrl: null }),
    hostName: 'host-1',
    now: () => clock.t,
    space: async () => ({ capacityBytes: 1000, freeBytes: over.free ?? 600 }),
  };
}

test('resolveNodeName(): node.name, else the host name; a host name that is no node name is a CONFIG error naming the key', () => {
  const c = (name: string | null) => loadConfig({ overrides: { dataDir: '/tmp/x', node: { name } } });
  assert.equal(resolveNodeName(c('pxe-1'), 'ignored'), 'pxe-1');
  assert.equal(resolveNodeName(c(null), 'build-7.example.org'), 'build-7.example.org');
  assert.throws(() => resolveNodeName(c(null), '_weird'), (e: unknown) => e instanceof FleetbootError && e.code === 'CONFIG' && /set node\.name in the config or --node-name NAME/.test(e.message));
  assert.throws(() => loadConfig({ overrides: { dataDir: '/tmp/x', node: { name: 'a b' } } }), /'node\.name' must be a node name .*: current value is "a b"/);
  assert.throws(() => loadConfig({ overrides: { dataDir: '/tmp/x', node: { subnets: ['10.1.2.0'] } } }), /'node\.subnets\[0\]' must be a subnet/);
  assert.throws(() => loadConfig({ overrides: { dataDir: '/tmp/x', node: { heartbeatSeconds: 0 } } }), /'node\.heartbeatSeconds' must be an integer 1-3600: current value is 0/);
});

test('servedSubnets(): in server mode node.subnets when set, else the DHCP pools\' subnets; otherwise its segment plus node.subnets', () => {
  const pools = [{ start: '10.1.2.100', end: '10.1.2.200' } as never, { start: '10.1.3.10', end: '10.1.3.20', netmask: '255.255.255.128' } as never];
  const config = loadConfig({ overrides: { dataDir: '/tmp/x', dhcp: { mode: 'server', pools } } });
  assert.deepEqual(servedSubnets(config, '10.1.2.1'), ['10.1.2.0/24', '10.1.3.0/25']);
  // Pools shared by several servers say nothing about which is near: node.subnets does.
  const declared = loadConfig({ overrides: { dataDir: '/tmp/x', dhcp: { mode: 'server', pools }, node: { subnets: ['10.1.3.0/24', '172.16.0.0/12'] } } });
  assert.deepEqual(servedSubnets(declared, '10.1.2.1'), ['10.1.3.0/24', '172.16.0.0/12']);
  // Proxy mode: its own segment (none for loopback, which serves no machine), then node.subnets.
  const proxy = loadConfig({ overrides: { dataDir: '/tmp/x', node: { subnets: ['10.5.0.0/16'] } } });
  assert.deepEqual(servedSubnets(proxy, '127.0.0.1'), ['10.5.0.0/16']);
});

test('the node service registers at start, beats with the free space, re-registers when removed, and is down at once after close()', async () => {
  await withTempStore('node-service', async (s, dir) => {
    const clock = { t: T0 };
    const svc = createNodeService(deps(s, dir, clock));
    assert.equal(svc.name, 'pxe-a');
    const self = await svc.start();
    assert.equal(self.state, 'up');
    assert.deepEqual(self.addresses, ['10.0.0.2']);
    assert.deepEqual(self.subnets, ['10.9.0.0/16']);
    assert.equal(self.version, '9.9.9');
    assert.equal(self.httpUrl, 'http://10.0.0.2:8080');
    assert.equal(self.freeBytes, 600);
    // Its authorization is accepted by the shared store's check; the secret is in the data directory.
    const secret = readNodeSecret(dir, 'pxe-a');
    assert.ok(secret);
    assert.equal(svc.authorization(), `Node pxe-a:${secret}`);
    assert.equal((await verifyNodeCredential(s.db, svc.authorization(), T0)).name, 'pxe-a');

    clock.t = new Date(T0.getTime() + 25_000);
    assert.equal(await svc.beat(), true);
    assert.equal((await svc.self())?.heartbeatAt, clock.t.toISOString());

    await removeNode(s.db, 'pxe-a', { force: true, now: clock.t });
    assert.equal(await svc.beat(), true);
    assert.equal((await getNode(s.db, 'pxe-a', clock.t))?.state, 'up', 'registered again');

    await svc.close();
    assert.equal((await getNode(s.db, 'pxe-a', clock.t))?.state, 'down');
    assert.equal(await svc.beat(), false, 'no beat after close');
  });
});

test('a second server under a name that a running node holds refuses to start, saying what to do; under its own name it shows up beside it', async () => {
  await withTempStore('node-clash', async (s, dir) => {
    const clock = { t: T0 };
    const a = createNodeService(deps(s, dir, clock));
    await a.start();
    // Another data directory's secret for the same name: a different credential.
    const other = `${dir}/other`;
    const b = createNodeService({ ...deps(s, other, clock), config: loadConfig({ overrides: { dataDir: other, serverIp: '10.0.0.3', node: { name: 'pxe-a' } } }), serverIp: '10.0.0.3' });
    await assert.rejects(b.start(), (e: unknown) => e instanceof FleetbootError && e.code === 'CONFIG' && /^The node name 'pxe-a' belongs to another running Fleetboot server \(10\.0\.0\.2;.*--node-name NAME/.test(e.message));
    const c = createNodeService(deps(s, dir, clock, { name: 'pxe-c' }));
    await c.start();
    assert.deepEqual((await listNodes(s.db, clock.t)).map((n) => [n.name, n.state]), [['pxe-a', 'up'], ['pxe-c', 'up']]);
    // The host name when node.name is null.
    const d = createNodeService(deps(s, dir, clock, { name: null }));
    assert.equal(d.name, 'host-1');
    await Promise.all([a.close(), c.close(), b.close(), d.close()]);
  });
});

test('the node publishes the sha256 of the certificate its HTTPS serves at start and at each beat (a renewed one at the next beat)', async () => {
  await withTempStore('node-tls', async (s, dir) => {
    const clock = { t: T0 };
    let cert: string | null = 'a'.repeat(64);
    const svc = createNodeService({ ...deps(s, dir, clock), tlsSha256: () => cert });
    assert.equal((await svc.start()).tlsSha256, 'a'.repeat(64));
    cert = 'b'.repeat(64);
    clock.t = new Date(T0.getTime() + 10_000);
    assert.equal(await svc.beat(), true);
    assert.equal((await getNode(s.db, 'pxe-a', clock.t))?.tlsSha256, 'b'.repeat(64));
    // HTTPS off: nothing to pin.
    cert = null;
    assert.equal(await svc.beat(), true);
    assert.equal((await getNode(s.db, 'pxe-a', clock.t))?.tlsSha256, null);
    await svc.close();
  });
});
