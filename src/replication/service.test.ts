/**
 * Replication between two servers on one PostgreSQL (SQLite is a single
 * server's store, so this file runs on PostgreSQL only, through
 * createTestDatabase(), in the SQLite pass of the test command too). A
 * revision is written on A directly (files + addRevision, no capture), B
 * pulls it over HTTP from A's /node/v1 routes and verifies it; a pull cut
 * in the middle resumes with Range; a flipped byte in B's copy is found by
 * re-verification and pulled again; B never serves an unverified copy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config/config.js';
import { silentLogger } from '../lib/log.js';
import { startFleetboot, type RunningFleetboot } from '../server.js';
import { openStore, type Store } from '../store/db.js';
import { addRevision } from '../store/images.js';
import { getCopy, setCopy } from '../store/copies.js';
import { createTestDatabase } from '../store/test-postgres.js';
import { sampleManifest } from '../store/test-fixtures.js';
import { imageStreamPath, MANIFEST_FILE, REPLICA_DIR } from '../imaging/image-store.js';
import { createReplicationService } from './service.js';

const STREAM = 'p1.pcl.zst';
const SIZE = 3 * 1024 * 1024 + 123;

function config(dataDir: string, ip: string, name: string, url: string): ReturnType<typeof loadConfig> {
  return loadConfig({
    overrides: {
      dataDir,
      serverIp: ip,
      http: { host: ip, port: 0 },
      https: { enabled: false },
      tftp: { enabled: false },
      dhcp: { mode: 'off' },
      store: { url },
      node: { name },
      // No timers: the test calls pullOnce() and verifyOnce().
      replication: { enabled: false, verifyIntervalHours: 0 },
    },
  });
}

/** Write revision 1 of `image` on `store`'s disk and rows, as a capture on `node` would leave it. */
async function writeRevision(store: Store, image: string, node: string, data: Buffer): Promise<{ dir: string; manifestSha256: string }> {
  const base = sampleManifest(image);
  const p = base.partitions[0];
  assert.ok(p);
  const manifest = { ...base, partitions: [{ ...p, streamBytes: data.length, sha256: createHash('sha256').update(data).digest('hex') }] };
  const dir = randomUUID();
  const path = join(store.dataDir, 'images', dir);
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, STREAM), data);
  const text = JSON.stringify(manifest, null, 2) + '\n';
  writeFileSync(join(path, MANIFEST_FILE), text);
  const manifestSha256 = createHash('sha256').update(text).digest('hex');
  const n = await addRevision(store.db, { dir, manifest, manifestSha256, state: 'ready' });
  await setCopy(store.db, image, n, node, { state: 'verified', bytesDone: data.length, bytesTotal: data.length });
  return { dir, manifestSha256 };
}

test('B pulls a revision committed on A, resumes a cut pull with Range, re-verifies, and serves only verified copies', async () => {
  const root = mkdtempSync(join(tmpdir(), 'fleetboot-repl-'));
  const db = await createTestDatabase();
  const dirA = join(root, 'a');
  const dirB = join(root, 'b');
  let a: RunningFleetboot | null = null;
  let b: RunningFleetboot | null = null;
  let storeA: Store | null = null;
  let storeB: Store | null = null;
  try {
    a = await startFleetboot(config(dirA, '127.0.0.1', 'node-a', db.url), { logger: silentLogger, ipxeDir: join(root, 'no-ipxe') });
    b = await startFleetboot(config(dirB, '127.0.0.2', 'node-b', db.url), { logger: silentLogger, ipxeDir: join(root, 'no-ipxe') });
    storeA = await openStore(dirA, { url: db.url });
    storeB = await openStore(dirB, { url: db.url });
    const data = randomBytes(SIZE);
    const { dir } = await writeRevision(storeA, 'win11', 'node-a', data);
    const fromB = (path: string) => fetch(`${b?.baseUrl.replace(/\/+$/, '')}${path}`, { headers: { authorization: a?.node.authorization() ?? '' } });

    // Before the pull: B has nothing verified, serves nothing and refuses deploy streams.
    let res = await fromB(`/node/v1/images/win11/1/streams/${STREAM}`);
    assert.equal(res.status, 404);
    assert.match(await res.text(), /holds no verified copy of image 'win11' revision 1/);
    await assert.rejects(imageStreamPath(storeB, 'win11', 1, STREAM, 'node-b'), /not verified on node 'node-b'/);
    // Without a node credential: 401.
    assert.equal((await fetch(`${a.baseUrl.replace(/\/+$/, '')}/node/v1/images/win11/1/manifest`)).status, 401);
    // Names are validated.
    res = await fetch(`${a.baseUrl.replace(/\/+$/, '')}/node/v1/images/win11/1/streams/..%2Fmanifest.json`, { headers: { authorization: b.node.authorization() } });
    assert.equal(res.status, 400);

    // A pull cut after 1 MiB: the partial file stays, the copy is 'copying'.
    const ranges: (string | null)[] = [];
    let cut = true;
    const cutting: typeof fetch = async (input, init) => {
      const headers = new Headers(init?.headers);
      ranges.push(headers.get('range'));
      const r = await fetch(input, init);
      if (!cut || !String(input).includes('/streams/') || !r.body) return r;
      cut = false;
      let sent = 0;
      const reader = r.body.getReader();
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          const { done, value } = await reader.read();
          if (done) return c.close();
          sent += value.length;
          if (sent > 1024 * 1024) {
            await reader.cancel();
            c.error(new Error('connection cut by the test'));
            return;
          }
          c.enqueue(value);
        },
      });
      return new Response(body, { status: r.status, headers: r.headers });
    };
    const repl = createReplicationService({ store: storeB, log: silentLogger, nodeName: 'node-b', authorization: () => b?.node.authorization() ?? '', pullIntervalSeconds: 0, verifyIntervalHours: 0, fetch: cutting });
    try {
      const first = await repl.pullOnce();
      assert.deepEqual(first.map((r) => [r.image, r.revision, r.from, r.outcome]), [['win11', 1, 'node-a', 'failed']]);
      let copy = await getCopy(storeB.db, 'win11', 1, 'node-b');
      assert.equal(copy?.state, 'copying');
      assert.match(copy?.error ?? '', /interrupted/);
      const partial = statSync(join(dirB, 'images', REPLICA_DIR, dir, STREAM)).size;
      assert.ok(partial > 0 && partial < SIZE, `partial ${partial}`);
      assert.equal(copy?.bytesDone, partial);
      assert.equal(copy?.bytesTotal, SIZE);
      res = await fromB(`/node/v1/images/win11/1/streams/${STREAM}`);
      assert.equal(res.status, 404);

      // The next round resumes at the partial file's end, then verifies.
      ranges.length = 0;
      const second = await repl.pullOnce();
      assert.deepEqual(second.map((r) => r.outcome), ['verified']);
      assert.deepEqual(ranges, [`bytes=${partial}-`, null]);
      copy = await getCopy(storeB.db, 'win11', 1, 'node-b');
      assert.equal(copy?.state, 'verified');
      assert.equal(copy?.bytesDone, SIZE);
      assert.ok(copy?.verifiedAt);
      assert.deepEqual(readFileSync(join(dirB, 'images', dir, STREAM)), data);
      assert.equal(await imageStreamPath(storeB, 'win11', 1, STREAM, 'node-b'), join(dirB, 'images', dir, STREAM));

      // B now serves it, with Range.
      res = await fromB(`/node/v1/images/win11/1/streams/${STREAM}`);
      assert.equal(res.status, 200);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), data);
      res = await fetch(`${b.baseUrl.replace(/\/+$/, '')}/node/v1/images/win11/1/streams/${STREAM}`, { headers: { authorization: a.node.authorization(), range: 'bytes=10-19' } });
      assert.equal(res.status, 206);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), data.subarray(10, 20));

      // The API's image detail (fleetboot image show) gives each node's copy.
      const detail = (await (await fetch(`${a.url}/api/v1/images/win11`, { headers: { authorization: `Bearer ${a.token}` } })).json()) as { copies: { number: number; node: string; state: string; bytesDone: number; bytesTotal: number }[] };
      assert.deepEqual(
        detail.copies.map((c) => [c.number, c.node, c.state, c.bytesDone, c.bytesTotal]),
        [
          [1, 'node-a', 'verified', SIZE, SIZE],
          [1, 'node-b', 'verified', SIZE, SIZE],
        ],
      );

      // A revision stored before copies were recorded (no rows): left alone by B, still served by A's disk.
      await addRevision(storeA.db, { dir: randomUUID(), manifest: { ...sampleManifest('legacy') }, manifestSha256: 'd'.repeat(64), state: 'ready' });
      // Nothing left to pull.
      assert.deepEqual(await repl.pullOnce(), []);

      assert.equal(await getCopy(storeB.db, 'legacy', 1, 'node-b'), null);
      assert.ok(await imageStreamPath(storeA, 'legacy', 1, STREAM, 'node-a'));

      // One byte flipped in B's copy: re-verification finds it; B stops serving it; the server's own service pulls it again.
      const file = join(dirB, 'images', dir, STREAM);
      const bytes = readFileSync(file);
      bytes[SIZE >> 1] = (bytes[SIZE >> 1] ?? 0) ^ 0x01;
      writeFileSync(file, bytes);
      assert.deepEqual((await repl.verifyOnce()).map((r) => r.outcome), ['corrupt']);
      copy = await getCopy(storeB.db, 'win11', 1, 'node-b');
      assert.equal(copy?.state, 'corrupt');
      assert.match(copy?.error ?? '', /stream p1\.pcl\.zst has \d+ bytes and sha256 [0-9a-f]{64}, the shared store records/);
      res = await fromB(`/node/v1/images/win11/1/streams/${STREAM}`);
      assert.equal(res.status, 404);
      await assert.rejects(imageStreamPath(storeB, 'win11', 1, STREAM, 'node-b'), /its copy is corrupt/);
      assert.deepEqual((await b.replication.pullOnce()).map((r) => r.outcome), ['verified']);
      assert.deepEqual(readFileSync(file), data);
      assert.deepEqual((await b.replication.verifyOnce()).map((r) => r.outcome), ['verified']);
      // A's own copy verifies too.
      assert.deepEqual((await a.replication.verifyOnce()).map((r) => r.outcome), ['verified']);
    } finally {
      await repl.close();
    }
  } finally {
    await b?.close();
    await a?.close();
    await storeA?.close();
    await storeB?.close();
    await db.drop();
    rmSync(root, { recursive: true, force: true });
  }
});

test('a pulled stream whose sha256 differs is deleted and the copy marked corrupt', async () => {
  const root = mkdtempSync(join(tmpdir(), 'fleetboot-repl-'));
  const db = await createTestDatabase();
  const dirA = join(root, 'a');
  const dirB = join(root, 'b');
  let a: RunningFleetboot | null = null;
  let storeA: Store | null = null;
  let storeB: Store | null = null;
  try {
    a = await startFleetboot(config(dirA, '127.0.0.3', 'node-a', db.url), { logger: silentLogger, ipxeDir: join(root, 'no-ipxe') });
    storeA = await openStore(dirA, { url: db.url });
    storeB = await openStore(dirB, { url: db.url });
    const data = randomBytes(64 * 1024);
    const { dir } = await writeRevision(storeA, 'deb', 'node-a', data);
    // A's disk differs from what the store records (A has not re-verified yet).
    const bad = Buffer.from(data);
    bad[0] = (bad[0] ?? 0) ^ 0xff;
    writeFileSync(join(dirA, 'images', dir, STREAM), bad);
    // The puller only needs a live node's credential here: it borrows A's (B runs no server in this test).
    const repl = createReplicationService({ store: storeB, log: silentLogger, nodeName: 'node-b', authorization: () => a?.node.authorization() ?? '', pullIntervalSeconds: 0, verifyIntervalHours: 0 });
    try {
      const r = await repl.pullOnce();
      assert.deepEqual(r.map((x) => x.outcome), ['corrupt']);
      const copy = await getCopy(storeB.db, 'deb', 1, 'node-b');
      assert.equal(copy?.state, 'corrupt');
      assert.match(copy?.error ?? '', /pulled from node 'node-a' has 65536 bytes and sha256 [0-9a-f]{64}, the shared store records 65536 bytes/);
      assert.throws(() => statSync(join(dirB, 'images', REPLICA_DIR, dir, STREAM)), /ENOENT/);
      assert.throws(() => statSync(join(dirB, 'images', dir)), /ENOENT/);
    } finally {
      await repl.close();
    }
  } finally {
    await a?.close();
    await storeA?.close();
    await storeB?.close();
    await db.drop();
    rmSync(root, { recursive: true, force: true });
  }
});
