import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../lib/log.js';
import { openTestStore } from '../store/temp-store.js';
import { markNodeStopped, registerNode } from '../store/nodes.js';
import { createNodeDirectory, entryProblem, servingNodeAmong, type DirectoryEntry } from './directory.js';

const A: DirectoryEntry = { name: 'node-a', address: '10.1.0.1', httpBaseUrl: 'http://10.1.0.1:8080', subnets: ['10.1.0.0/24', '10.0.0.0/8'] };
const B: DirectoryEntry = { name: 'node-b', address: '10.2.0.1', httpBaseUrl: 'http://10.2.0.1:8080', subnets: ['10.2.0.0/24'] };
const C: DirectoryEntry = { name: 'node-c', address: '10.3.0.1', httpBaseUrl: 'http://10.3.0.1:8080', subnets: ['10.2.0.0/24', '10.3.0.0/16'] };

test('servingNodeAmong(): the most specific live node; null when this node is among the best or nobody serves the address', () => {
  const all = [A, B, C];
  assert.deepEqual(servingNodeAmong(all, 'node-a', '10.2.0.7'), { name: 'node-b', address: '10.2.0.1', httpBaseUrl: 'http://10.2.0.1:8080' }, 'B and C tie on /24: the first by name');
  assert.equal(servingNodeAmong(all, 'node-a', '10.1.0.7'), null, 'A serves its own /24');
  assert.equal(servingNodeAmong(all, 'node-b', '10.2.0.7'), null, 'B among the best: B serves (never sent back)');
  assert.equal(servingNodeAmong(all, 'node-c', '10.2.0.7'), null, 'C ties with B: C serves its own');
  assert.equal(servingNodeAmong(all, 'node-b', '10.3.4.5')?.name, 'node-c', '/16 beats A\'s /8');
  assert.equal(servingNodeAmong(all, 'node-b', '10.9.9.9')?.name, 'node-a', 'only A\'s /8 holds it');
  assert.equal(servingNodeAmong(all, 'node-a', '192.168.1.1'), null, 'nobody serves it');
  assert.equal(servingNodeAmong([B], 'node-a', '10.2.0.7')?.name, 'node-b', 'this node not in the snapshot: B');
  assert.equal(servingNodeAmong(all, 'node-a', 'not-an-ip'), null);
  // The rule is the same everywhere: whoever A sends a machine to keeps it.
  for (const ip of ['10.2.0.7', '10.3.4.5', '10.9.9.9', '10.1.0.7']) {
    for (const self of all) {
      const to = servingNodeAmong(all, self.name, ip);
      if (to !== null) assert.equal(servingNodeAmong(all, to.name, ip), null, `${self.name} -> ${to.name} for ${ip} and back`);
    }
  }
});

test('entryProblem(): a node is pointed at only with an IPv4 address and an HTTP URL safe in iPXE scripts', () => {
  assert.equal(entryProblem({ addresses: ['10.2.0.1'], httpUrl: 'http://10.2.0.1:8080' }), null);
  assert.match(entryProblem({ addresses: [], httpUrl: 'http://10.2.0.1:8080' }) ?? '', /no IPv4 address/);
  assert.match(entryProblem({ addresses: ['10.2.0.1'], httpUrl: null }) ?? '', /no HTTP URL/);
  assert.match(entryProblem({ addresses: ['10.2.0.1'], httpUrl: 'http://x/${net0/mac}' }) ?? '', /not allowed/);
});

test('createNodeDirectory(): reads the live nodes from the store (PostgreSQL; nothing on SQLite); a stopped node is dropped at the next refresh', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-directory-'));
  const store = await openTestStore(dir);
  const hash = (c: string) => c.repeat(64);
  const reg = (name: string, address: string, subnets: string[], httpUrl: string | null, c: string) =>
    registerNode(store.db, { name, addresses: [address], subnets, httpUrl, httpsUrl: null, capacityBytes: null, freeBytes: null, version: 't', heartbeatSeconds: 10, credentialHash: hash(c) });
  try {
    await reg('node-a', '10.1.0.1', ['10.1.0.0/24'], 'http://10.1.0.1:8080', 'a');
    await reg('node-b', '10.2.0.1', ['10.2.0.0/24'], 'http://10.2.0.1:8080/', 'b');
    await reg('node-c', '10.3.0.1', ['10.3.0.0/24'], 'http://10.3.0.1/${x}', 'c');
    const d = createNodeDirectory({ store, self: 'node-a', log: silentLogger, refreshSeconds: 0 });
    await d.start();
    if (store.dialect === 'sqlite') {
      assert.equal(d.servingNode('10.2.0.7'), null, 'SQLite: one server, nothing to point at');
      assert.deepEqual(d.entries(), []);
      return;
    }
    assert.deepEqual(d.servingNode('10.2.0.7'), { name: 'node-b', address: '10.2.0.1', httpBaseUrl: 'http://10.2.0.1:8080' });
    assert.equal(d.servingNode('10.1.0.7'), null);
    assert.equal(d.servingNode('10.3.0.7'), null, 'C\'s URL cannot go into a script: left out');
    assert.deepEqual(d.entries().map((e) => e.name), ['node-a', 'node-b']);
    assert.ok(await markNodeStopped(store.db, 'node-b', hash('b')));
    assert.equal(d.servingNode('10.2.0.7')?.name, 'node-b', 'the snapshot holds until the next read');
    await d.refresh();
    assert.equal(d.servingNode('10.2.0.7'), null, 'B is down: this node serves');
    d.close();
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
