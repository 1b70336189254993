import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler, sql } from 'kysely';
import { FleetbootError } from '../lib/errors.js';
import { ensureNodeSecret, hashNodeSecret, nodeSecretPath, readNodeSecret } from './node-secret.js';
import { DOWN_AFTER_BEATS, getNode, heartbeatNode, listNodes, liveNodes, markNodeStopped, nodeForSubnet, registerNode, removeNode, type NodeRegistration } from './nodes.js';
import { openStore } from './db.js';
import { migrations } from './migrations/index.js';
import { testDatabaseUrl, withTempStore } from './temp-store.js';
import { claimSession, failOrphanedSessions, failSessionOfNode, getSession } from './multicast.js';

const T0 = new Date('2026-12-13T10:00:00.000Z');
const at = (s: number): Date => new Date(T0.getTime() + s * 1000);
const HASH_A = hashNodeSecret('a'.repeat(64));
const HASH_B = hashNodeSecret('b'.repeat(64));

function reg(name: string, credentialHash: string, extra: Partial<NodeRegistration> = {}): NodeRegistration {
  return {
    name,
    addresses: ['10.0.0.2'],
    subnets: ['10.0.0.0/24'],
    httpUrl: 'http://10.0.0.2:8080',
    httpsUrl: 'https://10.0.0.2:8443',
    capacityBytes: 100 * 2 ** 30,
    freeBytes: 40 * 2 ** 30,
    version: '0.1.0',
    heartbeatSeconds: 10,
    credentialHash,
    ...extra,
  };
}

const conflict = (re: RegExp) => (e: unknown) => e instanceof FleetbootError && e.code === 'CONFLICT' && re.test(e.message);

test('registerNode() adds a node that is up; a heartbeat moves its time and free space, only with its credential', async () => {
  await withTempStore('nodes-reg', async (s) => {
    const r = await registerNode(s.db, reg('pxe-a', HASH_A), T0);
    assert.equal(r.tookOverFrom, null);
    assert.equal(r.node.name, 'pxe-a');
    assert.equal(r.node.state, 'up');
    assert.deepEqual(r.node.addresses, ['10.0.0.2']);
    assert.deepEqual(r.node.subnets, ['10.0.0.0/24']);
    assert.equal(r.node.capacityBytes, 100 * 2 ** 30);
    assert.equal(r.node.freeBytes, 40 * 2 ** 30);
    assert.equal(r.node.startedAt, T0.toISOString());
    assert.equal(r.node.heartbeatAgeSeconds, 0);

    assert.equal(await heartbeatNode(s.db, 'pxe-a', HASH_A, { freeBytes: 39 * 2 ** 30 }, at(10)), true);
    const n = await getNode(s.db, 'pxe-a', at(12));
    assert.equal(n?.heartbeatAt, at(10).toISOString());
    assert.equal(n?.freeBytes, 39 * 2 ** 30);
    assert.equal(n?.capacityBytes, 100 * 2 ** 30);
    assert.equal(n?.heartbeatAgeSeconds, 2);
    assert.equal(await heartbeatNode(s.db, 'pxe-a', HASH_B, {}, at(20)), false, 'another credential beats nothing');
    assert.equal(await heartbeatNode(s.db, 'nobody', HASH_A, {}, at(20)), false);
    assert.equal((await getNode(s.db, 'pxe-a', at(20)))?.heartbeatAt, at(10).toISOString());
    await assert.rejects(registerNode(s.db, reg('bad name', HASH_A), T0), (e: unknown) => e instanceof FleetbootError && e.code === 'INVALID_INPUT' && /node\.name or --node-name/.test(e.message));
  });
});

test(`a node is down after ${DOWN_AFTER_BEATS} missed heartbeats, or at once after a clean stop; a beat brings it back`, async () => {
  await withTempStore('nodes-down', async (s) => {
    await registerNode(s.db, reg('pxe-a', HASH_A), T0);
    assert.equal((await getNode(s.db, 'pxe-a', at(30)))?.state, 'up', '3 beats late exactly: still up');
    assert.equal((await getNode(s.db, 'pxe-a', at(31)))?.state, 'down');
    assert.deepEqual((await liveNodes(s.db, at(31))).map((n) => n.name), []);
    assert.equal(await heartbeatNode(s.db, 'pxe-a', HASH_A, {}, at(40)), true);
    assert.equal((await getNode(s.db, 'pxe-a', at(41)))?.state, 'up');
    assert.equal(await markNodeStopped(s.db, 'pxe-a', HASH_A, at(42)), true);
    const stopped = await getNode(s.db, 'pxe-a', at(43));
    assert.equal(stopped?.state, 'down');
    assert.equal(stopped?.stoppedAt, at(42).toISOString());
    // Registering again (a restart) clears the stop.
    const again = await registerNode(s.db, reg('pxe-a', HASH_A), at(50));
    assert.equal(again.node.state, 'up');
    assert.equal(again.node.stoppedAt, null);
    assert.equal(again.node.startedAt, at(50).toISOString());
  });
});

test('a node publishes its groups (node.groups) at register and at each heartbeat; a group name is a node name', async () => {
  await withTempStore('nodes-groups', async (s) => {
    assert.deepEqual((await registerNode(s.db, reg('pxe-a', HASH_A), T0)).node.groups, [], 'none given: none');
    const r = await registerNode(s.db, reg('pxe-a', HASH_A, { groups: ['building-a', 'lab'] }), at(1));
    assert.deepEqual(r.node.groups, ['building-a', 'lab']);
    assert.equal(await heartbeatNode(s.db, 'pxe-a', HASH_A, { groups: ['building-b'] }, at(2)), true);
    assert.deepEqual((await getNode(s.db, 'pxe-a', at(2)))?.groups, ['building-b']);
    assert.equal(await heartbeatNode(s.db, 'pxe-a', HASH_A, {}, at(3)), true);
    assert.deepEqual((await listNodes(s.db, at(3)))[0]?.groups, ['building-b'], 'a beat without groups keeps them');
    const badGroup = (e: unknown) => e instanceof FleetbootError && e.code === 'INVALID_INPUT' && /^A node group name is 1-64 letters, .*: got "group:x" \(set node\.groups\)$/.test(e.message);
    await assert.rejects(registerNode(s.db, reg('pxe-b', HASH_B, { groups: ['ok', 'group:x'] }), T0), badGroup);
    await assert.rejects(heartbeatNode(s.db, 'pxe-a', HASH_A, { groups: ['group:x'] }, at(4)), badGroup);
    assert.equal(await getNode(s.db, 'pxe-b', T0), null);
  });
});

test('migration 20261216T1200_node_groups: nodes registered before it are in no group', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-node-groups-up-'));
  try {
    // On PostgreSQL (the test command's second pass) both opens use one new database.
    const url = await testDatabaseUrl(dir);
    const old = await openStore(dir, { url, migrations: migrations.filter((m) => m.name < '20261216T1200') });
    // The table as it was: no groups column yet (so plain SQL, not the typed builder).
    await sql`INSERT INTO nodes (name, addresses, subnets, version, started_at, heartbeat_at, heartbeat_seconds, credential_hash, created_at)
      VALUES ('pxe-old', '[]', '[]', '0.1.0', ${T0.toISOString()}, ${T0.toISOString()}, 10, ${HASH_A}, ${T0.toISOString()})`.execute(old.db);
    await old.close();
    const store = await openStore(dir, { url });
    try {
      assert.deepEqual((await getNode(store.db, 'pxe-old', T0))?.groups, []);
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a name held by a node that is up with another credential is refused, with the story; a down one is taken over; a restart is not a clash', async () => {
  await withTempStore('nodes-clash', async (s) => {
    await registerNode(s.db, reg('pxe-a', HASH_A), T0);
    await assert.rejects(
      registerNode(s.db, reg('pxe-a', HASH_B, { addresses: ['10.0.0.3'] }), at(5)),
      conflict(/^The node name 'pxe-a' belongs to another running Fleetboot server \(10\.0\.0\.2; started 2026-12-13T10:00:00\.000Z, last heartbeat 5 s ago\) with another credential\. Give this server a name of its own \(node\.name in the config, or --node-name NAME\), or stop the other one: a node is down 30 s after its last heartbeat/),
    );
    // The row is the first server's still.
    assert.deepEqual((await getNode(s.db, 'pxe-a', at(5)))?.addresses, ['10.0.0.2']);
    // The same credential: a restart of the same node.
    assert.equal((await registerNode(s.db, reg('pxe-a', HASH_A), at(6))).tookOverFrom, null);
    // Down (no beat for 3 intervals): taken over, and the first one's heartbeats then fail.
    const took = await registerNode(s.db, reg('pxe-a', HASH_B, { addresses: ['10.0.0.3'] }), at(40));
    assert.deepEqual(took.tookOverFrom?.addresses, ['10.0.0.2']);
    assert.deepEqual(took.node.addresses, ['10.0.0.3']);
    assert.equal(await heartbeatNode(s.db, 'pxe-a', HASH_A, {}, at(41)), false);
    assert.equal((await listNodes(s.db, at(41))).length, 1);
  });
});

test('two servers registering one name at the same moment with different credentials: one wins, the other is refused', async () => {
  await withTempStore('nodes-race', async (s) => {
    for (let i = 0; i < 5; i++) {
      const name = `race-${i}`;
      const results = await Promise.allSettled([registerNode(s.db, reg(name, HASH_A), T0), registerNode(s.db, reg(name, HASH_B), T0)]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, name);
      const lost = results.find((r) => r.status === 'rejected');
      assert.ok(lost && lost.status === 'rejected' && conflict(/belongs to another running Fleetboot server/)(lost.reason), name);
    }
  });
});

test('removeNode(): unknown is NOT_FOUND, an up node is refused unless force, a down one goes', async () => {
  await withTempStore('nodes-rm', async (s) => {
    await registerNode(s.db, reg('pxe-a', HASH_A), T0);
    await registerNode(s.db, reg('pxe-b', HASH_B), T0);
    await assert.rejects(removeNode(s.db, 'pxe-z', { now: T0 }), (e: unknown) => e instanceof FleetbootError && e.code === 'NOT_FOUND' && e.message === "No node named 'pxe-z'");
    await assert.rejects(removeNode(s.db, 'pxe-a', { now: at(3) }), conflict(/^Node 'pxe-a' is up \(last heartbeat 3 s ago\): stop it first .* or remove it anyway with force/));
    assert.equal((await removeNode(s.db, 'pxe-a', { now: at(3), force: true })).name, 'pxe-a');
    await markNodeStopped(s.db, 'pxe-b', HASH_B, at(4));
    assert.equal((await removeNode(s.db, 'pxe-b', { now: at(5) })).state, 'down');
    assert.deepEqual(await listNodes(s.db), []);
  });
});

test('liveNodes() and nodeForSubnet(): the live node with the most specific subnet; down nodes are skipped', async () => {
  await withTempStore('nodes-subnet', async (s) => {
    await registerNode(s.db, reg('wide', HASH_A, { subnets: ['10.0.0.0/8'] }), T0);
    await registerNode(s.db, reg('narrow', HASH_B, { subnets: ['10.1.2.0/24', '192.168.5.0/24'] }), T0);
    await registerNode(s.db, reg('other', hashNodeSecret('c'.repeat(64)), { subnets: ['10.1.0.0/16'], heartbeatSeconds: 2 }), T0);
    assert.deepEqual((await liveNodes(s.db, at(5))).map((n) => n.name), ['narrow', 'other', 'wide']);
    assert.equal((await nodeForSubnet(s.db, '10.1.2.77', at(5)))?.name, 'narrow');
    assert.equal((await nodeForSubnet(s.db, '10.1.9.1', at(5)))?.name, 'other');
    assert.equal((await nodeForSubnet(s.db, '10.9.9.9', at(5)))?.name, 'wide');
    assert.equal((await nodeForSubnet(s.db, '192.168.5.1', at(5)))?.name, 'narrow');
    assert.equal(await nodeForSubnet(s.db, '172.16.0.1', at(5)), null);
    // 'other' beats every 2 s: down at 7 s; 'narrow' down too after 31 s.
    assert.deepEqual((await liveNodes(s.db, at(7))).map((n) => n.name), ['narrow', 'wide']);
    assert.equal((await nodeForSubnet(s.db, '10.1.9.1', at(7)))?.name, 'wide');
    await heartbeatNode(s.db, 'wide', HASH_A, {}, at(25));
    assert.equal((await nodeForSubnet(s.db, '10.1.2.77', at(31)))?.name, 'wide');
    await assert.rejects(nodeForSubnet(s.db, '10.1.2', T0), (e: unknown) => e instanceof FleetbootError && e.code === 'INVALID_INPUT' && /IPv4 address is expected .*"10\.1\.2"/.test(e.message));
  });
});

test('two stores on one database (two servers: one SQLite data directory, or one PostgreSQL database): both nodes are seen from each', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-nodes-two-'));
  const url = await testDatabaseUrl(dir);
  const a = await openStore(dir, { url });
  const b = await openStore(dir, { url });
  try {
    await Promise.all([registerNode(a.db, reg('pxe-a', HASH_A), T0), registerNode(b.db, reg('pxe-b', HASH_B), T0)]);
    for (const s of [a, b]) assert.deepEqual((await listNodes(s.db, at(1))).map((n) => [n.name, n.state]), [['pxe-a', 'up'], ['pxe-b', 'up']]);
    await assert.rejects(registerNode(b.db, reg('pxe-a', HASH_B), at(2)), conflict(/belongs to another running Fleetboot server/));
  } finally {
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the node secret: 64 hex digits, 0600, one per node name, kept across starts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-node-secret-'));
  try {
    const first = ensureNodeSecret(dir, 'pxe-a');
    assert.equal(first.created, true);
    assert.match(first.secret, /^[0-9a-f]{64}$/);
    assert.equal(statSync(nodeSecretPath(dir, 'pxe-a')).mode & 0o777, 0o600);
    assert.deepEqual(ensureNodeSecret(dir, 'pxe-a'), { secret: first.secret, created: false });
    assert.equal(readNodeSecret(dir, 'pxe-a'), first.secret);
    const other = ensureNodeSecret(dir, 'pxe-b');
    assert.notEqual(other.secret, first.secret);
    assert.equal(readNodeSecret(dir, 'pxe-c'), null);
    assert.throws(() => nodeSecretPath(dir, '../x'), TypeError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('multicast sessions per node: claimed once, a start fails only its own and unclaimed ones, a down node\'s fail by CAS', async () => {
  await withTempStore('nodes-mcast', async (s) => {
    const ins = async (node: string | null, port: number): Promise<number> =>
      (
        await s.db
          .insertInto('multicast_sessions')
          .values({ session: `${port}`.padStart(16, '0'), job_id: null, image: 'img', revision: 1, address: '239.255.42.1', port, state: 'waiting', expected: 1, min_receivers: 1, max_wait_seconds: null, error: null, stats: null, created_at: T0.toISOString(), started_at: null, finished_at: null, node })
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id;
    const mine = await ins('pxe-a', 1);
    const theirs = await ins('pxe-b', 2);
    const unclaimed = await ins(null, 3);
    const unclaimed2 = await ins(null, 4);
    assert.equal(await claimSession(s.db, unclaimed2, 'pxe-b'), true);
    assert.equal(await claimSession(s.db, unclaimed2, 'pxe-a'), false, 'claimed once');
    const failed = await failOrphanedSessions(s.db, 'pxe-a', 'restarted');
    assert.deepEqual(failed.map((x) => x.id).sort(), [mine, unclaimed].sort());
    assert.equal((await getSession(s.db, unclaimed))?.node, 'pxe-a');
    assert.equal((await getSession(s.db, unclaimed))?.state, 'failed');
    assert.equal((await getSession(s.db, theirs))?.state, 'waiting');
    assert.equal(await failSessionOfNode(s.db, theirs, 'pxe-a', 'down'), false, 'only with its own node');
    assert.equal(await failSessionOfNode(s.db, theirs, 'pxe-b', 'its node pxe-b is down'), true);
    assert.equal(await failSessionOfNode(s.db, theirs, 'pxe-b', 'again'), false);
    assert.equal((await getSession(s.db, theirs))?.error, 'its node pxe-b is down');
  });
});

/** A Kysely on PostgreSQL that runs nothing and records the SQL it is given. */
function recordingPostgres(): { db: Kysely<unknown>; sql: string[] } {
  const sql: string[] = [];
  const db = new Kysely<unknown>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (k) => new PostgresIntrospector(k),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
    log: (e) => void sql.push(e.query.sql),
  });
  return { db, sql };
}

test('20261213T1300_nodes on PostgreSQL: an identity id, bigint bytes, the multicast_sessions.node column', async () => {
  const m = migrations.find((x) => x.name === '20261213T1300_nodes');
  assert.ok(m);
  const pg = recordingPostgres();
  await m.up(pg.db);
  const all = pg.sql.join('\n');
  assert.match(all, /create table "nodes" \("id" integer generated by default as identity primary key, "name" varchar\(64\) not null unique/);
  assert.match(all, /"capacity_bytes" bigint, "free_bytes" bigint/);
  assert.match(all, /alter table "multicast_sessions" add column "node" varchar\(64\)/);
  assert.doesNotMatch(all, /autoincrement/i);
});
