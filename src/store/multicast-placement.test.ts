import { test } from 'node:test';
import assert from 'node:assert/strict';
import { placeSession } from './multicast-placement.js';
import { withTempStore } from './temp-store.js';
import { registerNode } from './nodes.js';
import { hashNodeSecret } from './node-secret.js';
import { addRevision } from './images.js';
import { setCopy } from './copies.js';
import { sampleManifest } from './test-fixtures.js';
import { createHost } from './hosts.js';
import { createJob } from './jobs.js';
import { createTask } from './tasks.js';
import { getSession } from './multicast.js';

const A = { name: 'pxe-a', subnets: ['10.0.0.0/24'] };
const B = { name: 'pxe-b', subnets: ['10.1.0.0/24'] };
const C = { name: 'pxe-c', subnets: ['10.2.0.0/24'] };

test('placeSession() gives the session to the node serving most receivers when it holds or is copying the revision, else to the creator', () => {
  const verified = new Map([['pxe-a', 'verified'], ['pxe-b', 'verified'], ['pxe-c', 'verified']]);
  assert.deepEqual(placeSession(['10.1.0.5', '10.1.0.6', '10.2.0.5'], 'pxe-a', [A, B, C], verified), { node: 'pxe-b', reason: 'receivers', note: "it serves 2 of the receivers' addresses" });
  // A tie: by name.
  assert.equal(placeSession(['10.1.0.5', '10.2.0.5'], 'pxe-a', [A, B, C], verified).node, 'pxe-b');
  // Copying: chosen, the sender waits for the verification.
  assert.match(placeSession(['10.1.0.5'], 'pxe-a', [A, B], new Map([['pxe-b', 'copying']])).note, /its copy is copying: the sender waits/);
  // Corrupt, no copy, down (not live), no address, or no node serving it: the creator.
  assert.deepEqual(placeSession(['10.1.0.5'], 'pxe-a', [A, B], new Map([['pxe-b', 'corrupt']])), { node: 'pxe-a', reason: 'creator', note: "node pxe-b serves the receivers' addresses but its copy is corrupt" });
  assert.equal(placeSession(['10.1.0.5'], 'pxe-a', [A, B], new Map()).node, 'pxe-a');
  assert.equal(placeSession(['10.1.0.5'], 'pxe-a', [A], verified).node, 'pxe-a');
  assert.equal(placeSession([null], 'pxe-a', [A, B], verified).reason, 'creator');
  assert.equal(placeSession(['192.168.9.9'], 'pxe-a', [A, B], verified).reason, 'creator');
});

test('a multicast job created on one node runs on the node of its receivers\' subnet (reserved, leased or last-booted address)', async () => {
  await withTempStore('mcast-place', async (s) => {
    const reg = (n: { name: string; subnets: string[] }, secret: string) =>
      registerNode(s.db, { name: n.name, addresses: [], subnets: n.subnets, httpUrl: `http://${n.name}:8080`, httpsUrl: null, capacityBytes: null, freeBytes: null, version: 'x', heartbeatSeconds: 60, credentialHash: hashNodeSecret(secret.repeat(64)) });
    await reg(A, 'a');
    await reg(B, 'b');
    const rev = await addRevision(s.db, { dir: '00000000-0000-4000-8000-0000000000aa', manifest: sampleManifest('golden'), manifestSha256: 'b'.repeat(64), state: 'ready' });
    await setCopy(s.db, 'golden', rev, 'pxe-a', { state: 'verified' });
    await setCopy(s.db, 'golden', rev, 'pxe-b', { state: 'verified' });
    // One reserved address, one lease, one address its last task token went to: all on B's subnet.
    await createHost(s.db, { mac: '52:54:00:00:00:01', name: 'm1', ip: '10.1.0.11' });
    await createHost(s.db, { mac: '52:54:00:00:00:02', name: 'm2' });
    await createHost(s.db, { mac: '52:54:00:00:00:03', name: 'm3' });
    await s.db.insertInto('dhcp_leases').values({ ip: '10.1.0.12', mac: '52:54:00:00:00:02', client_id: null, state: 'bound', expires_at: Date.now() + 60_000, hostname: null, updated_at: Date.now() }).execute();
    const inv = await createTask(s.db, { type: 'inventory', mac: '52:54:00:00:00:03' });
    await s.db.updateTable('tasks').set({ token_ip: '10.1.0.13', state: 'done' }).where('id', '=', inv.id).execute();
    let port = 9000;
    const allocate = () => ({ address: '239.255.42.1', port: port++, node: 'pxe-a' });
    const macs = ['52:54:00:00:00:01', '52:54:00:00:00:02', '52:54:00:00:00:03'];
    const job = await createJob(s.db, { request: { type: 'deploy', macs, image: 'golden', multicast: {} }, startAt: null, allocateMulticast: allocate });
    assert.ok(job.multicastSessionId);
    assert.equal((await getSession(s.db, job.multicastSessionId))?.node, 'pxe-b');
    // B's copy corrupt: the creating node runs the next one.
    await s.db.updateTable('tasks').set({ state: 'cancelled' }).where('job_id', '=', job.id).execute();
    await setCopy(s.db, 'golden', rev, 'pxe-b', { state: 'corrupt' });
    const again = await createJob(s.db, { request: { type: 'deploy', macs, image: 'golden', multicast: {} }, startAt: null, allocateMulticast: allocate });
    assert.ok(again.multicastSessionId);
    assert.equal((await getSession(s.db, again.multicastSessionId))?.node, 'pxe-a');
  });
});
