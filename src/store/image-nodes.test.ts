/**
 * An image's replication assignment with node groups (issue 15): what
 * setImageNodes accepts and stores, and the replication lag it implies
 * (replicationLag, what `fleetboot doctor` judges). On SQLite and PostgreSQL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetbootError } from '../lib/errors.js';
import { replicationLag, setCopy } from './copies.js';
import { addRevision, getImageDetail, setImageNodes } from './images.js';
import { hashNodeSecret } from './node-secret.js';
import { registerNode } from './nodes.js';
import { withTempStore } from './temp-store.js';
import { sampleManifest } from './test-fixtures.js';
import type { Store } from './db.js';

const NOW = new Date('2026-12-16T12:00:00.000Z');

/** Three nodes: pxe-a and pxe-b in building-a (pxe-b also in lab), pxe-c in no group; 'golden' revision 1 verified on pxe-a. */
async function setup(s: Store): Promise<void> {
  const nodes: Array<[string, string[]]> = [
    ['pxe-a', ['building-a']],
    ['pxe-b', ['building-a', 'lab']],
    ['pxe-c', []],
  ];
  for (const [i, [name, groups]] of nodes.entries()) {
    await registerNode(
      s.db,
      { name, addresses: [`10.0.0.${i + 2}`], subnets: [], groups, httpUrl: null, httpsUrl: null, capacityBytes: null, freeBytes: null, version: '0.1.0', heartbeatSeconds: 3600, credentialHash: hashNodeSecret(String(i).repeat(64)) },
      NOW,
    );
  }
  const n = await addRevision(s.db, { dir: '00000000-0000-4000-8000-0000000000a1', manifest: sampleManifest('golden'), manifestSha256: 'a'.repeat(64), state: 'ready' });
  await setCopy(s.db, 'golden', n, 'pxe-a', { state: 'verified' });
}

const invalid = (re: RegExp) => (e: unknown) => e instanceof FleetbootError && e.code === 'INVALID_INPUT' && re.test(e.message);
const lagging = async (s: Store): Promise<string[]> => (await replicationLag(s.db, NOW)).filter((l) => l.image === 'golden').map((l) => l.node);

test('setImageNodes() takes node names and group:NAME, stores node names then groups, sorted; the lag follows the groups', async () => {
  await withTempStore('image-nodes', async (s) => {
    await setup(s);
    assert.deepEqual(await lagging(s), ['pxe-b', 'pxe-c'], "'all': every node lacking it");

    const info = await setImageNodes(s.db, 'golden', ['group:lab', 'pxe-c', 'group:building-a']);
    assert.deepEqual(info.nodes, ['pxe-c', 'group:building-a', 'group:lab']);
    assert.deepEqual((await getImageDetail(s.db, 'golden'))?.info.nodes, ['pxe-c', 'group:building-a', 'group:lab']);

    // building-a: pxe-a (holds it) and pxe-b; pxe-c is in no group.
    await setImageNodes(s.db, 'golden', ['group:building-a']);
    assert.deepEqual(await lagging(s), ['pxe-b']);
    // A node named beside a group.
    await setImageNodes(s.db, 'golden', ['pxe-c', 'group:lab']);
    assert.deepEqual(await lagging(s), ['pxe-b', 'pxe-c']);
    // Only pxe-a's name: nobody lags.
    await setImageNodes(s.db, 'golden', ['pxe-a']);
    assert.deepEqual(await lagging(s), []);
  });
});

test('setImageNodes() refuses malformed entries, an entry twice, and nodes or groups no registered node has, saying which exist', async () => {
  await withTempStore('image-nodes-bad', async (s) => {
    await setup(s);
    await assert.rejects(setImageNodes(s.db, 'golden', []), invalid(/^Image 'golden': a list of nodes is expected \(node names and group:NAME, or 'all' for every node\): got an empty list$/));
    for (const bad of ['group:', 'group:a b', 'Group:lab', 'a:b']) {
      await assert.rejects(setImageNodes(s.db, 'golden', ['pxe-a', bad]), invalid(new RegExp(`^Image 'golden': each entry must be a node name or group:NAME \\(each name 1-64 letters, .*\\): got ${JSON.stringify(bad)}$`)), bad);
    }
    await assert.rejects(setImageNodes(s.db, 'golden', ['group:lab', 'group:lab']), invalid(/^Image 'golden': group 'lab' is named twice$/));
    await assert.rejects(setImageNodes(s.db, 'golden', ['pxe-a', 'pxe-a']), invalid(/^Image 'golden': node 'pxe-a' is named twice$/));
    await assert.rejects(
      setImageNodes(s.db, 'golden', ['group:building-z', 'pxe-a']),
      invalid(/^Image 'golden': no registered node is in group 'building-z' \(known groups: building-a, lab; a node's groups are its node\.groups, published when it starts, see fleetboot node list\)$/),
    );
    // A group named like a node is not that node.
    await assert.rejects(setImageNodes(s.db, 'golden', ['group:pxe-a']), invalid(/no registered node is in group 'pxe-a' \(known groups: building-a, lab;/));
    // Both kinds unknown: both said.
    await assert.rejects(setImageNodes(s.db, 'golden', ['pxe-z', 'group:nope']), invalid(/^Image 'golden': no node is registered as 'pxe-z' \(known nodes: pxe-a, pxe-b, pxe-c; .*\); no registered node is in group 'nope' \(known groups: building-a, lab; /));
    // Nothing was stored by the refusals.
    assert.equal((await getImageDetail(s.db, 'golden'))?.info.nodes, 'all');
  });
});

test('setImageNodes() with no node in any group: the message says there are none', async () => {
  await withTempStore('image-nodes-none', async (s) => {
    const n = await addRevision(s.db, { dir: '00000000-0000-4000-8000-0000000000a2', manifest: sampleManifest('deb'), manifestSha256: 'b'.repeat(64), state: 'ready' });
    assert.equal(n, 1);
    await assert.rejects(setImageNodes(s.db, 'deb', ['group:lab']), invalid(/no registered node is in group 'lab' \(known groups: none;/));
  });
});
