/**
 * Multicast sessions with several nodes on one database: a start fails only
 * this node's sessions and unclaimed ones; reconcile claims unclaimed ones,
 * leaves those of live nodes alone and fails those of down nodes. Without a
 * node name, a start fails every active session, as before nodes existed.
 * (Sessions here have no members: reconcile ends its own as cancelled
 * without opening a socket.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../config/config.js';
import { silentLogger } from '../lib/log.js';
import { hashNodeSecret } from '../store/node-secret.js';
import { registerNode } from '../store/nodes.js';
import { getSession } from '../store/multicast.js';
import { withTempStore } from '../store/temp-store.js';
import type { Store } from '../store/db.js';
import { createMulticastService } from './service.js';

async function session(s: Store, node: string | null, port: number): Promise<number> {
  const r = await s.db
    .insertInto('multicast_sessions')
    .values({ session: String(port).padStart(16, '0'), job_id: null, image: 'img', revision: 1, address: '239.255.42.1', port, state: 'waiting', expected: 1, min_receivers: 1, max_wait_seconds: null, error: null, stats: null, created_at: new Date().toISOString(), started_at: null, finished_at: null, node })
    .returning('id')
    .executeTakeFirstOrThrow();
  return r.id;
}

const state = async (s: Store, id: number): Promise<[string | undefined, string | null | undefined]> => {
  const x = await getSession(s.db, id);
  return [x?.state, x?.node];
};

test('a node starts and reconciles only its own multicast sessions (and claims unclaimed ones); a down node\'s sessions fail', async () => {
  await withTempStore('mcast-nodes', async (s, dir) => {
    const config = loadConfig({ overrides: { dataDir: dir, serverIp: '127.0.0.1' } });
    await registerNode(s.db, { name: 'pxe-b', addresses: ['10.0.0.3'], subnets: [], httpUrl: null, httpsUrl: null, capacityBytes: null, freeBytes: null, version: 'x', heartbeatSeconds: 60, credentialHash: hashNodeSecret('b'.repeat(64)) });
    const own = await session(s, 'pxe-a', 63001);
    const live = await session(s, 'pxe-b', 63002);
    const old = await session(s, null, 63003);
    const gone = await session(s, 'pxe-c', 63004);
    const mc = createMulticastService({ store: s, config, serverIp: '127.0.0.1', log: silentLogger, node: 'pxe-a' });
    try {
      assert.equal(mc.allocate([])?.node, 'pxe-a', 'new sessions are stamped with this node');
      await mc.start();
      assert.deepEqual(await state(s, own), ['failed', 'pxe-a']);
      assert.deepEqual(await state(s, old), ['failed', 'pxe-a']);
      assert.deepEqual(await state(s, live), ['waiting', 'pxe-b'], "another live node's session runs on");
      assert.deepEqual(await state(s, gone), ['waiting', 'pxe-c'], 'not at start: reconcile judges other nodes');

      const fresh = await session(s, null, 63005);
      await mc.reconcile();
      assert.deepEqual(await state(s, fresh), ['cancelled', 'pxe-a'], 'claimed, then ended here (no members)');
      assert.deepEqual(await state(s, live), ['waiting', 'pxe-b']);
      assert.deepEqual(await state(s, gone), ['failed', 'pxe-c']);
      assert.equal((await getSession(s.db, gone))?.error, 'its node pxe-c is down; its members go on by unicast');
      await assert.rejects(mc.cancel(live, 'x'), /Multicast session #\d+ runs on node pxe-b, not on this one \(pxe-a\): cancel it through that node/);
    } finally {
      await mc.close();
    }
  });
});

test('without a node name, a start fails every active session, as with one server', async () => {
  await withTempStore('mcast-single', async (s, dir) => {
    const config = loadConfig({ overrides: { dataDir: dir, serverIp: '127.0.0.1' } });
    const ids = [await session(s, null, 63001), await session(s, 'pxe-b', 63002)];
    const mc = createMulticastService({ store: s, config, serverIp: '127.0.0.1', log: silentLogger });
    try {
      assert.equal(mc.allocate([])?.node, null);
      await mc.start();
      for (const id of ids) assert.equal((await getSession(s.db, id))?.state, 'failed');
    } finally {
      await mc.close();
    }
  });
});
