/**
 * Replication between two servers on one PostgreSQL (SQLite is a single
 * server's store: on the test command's SQLite pass these tests are
 * skipped, its PostgreSQL pass runs them, through testDatabaseUrl()). Both
 * servers serve HTTPS with certificates of their own CAs; B pulls from A
 * over HTTPS with A's published certificate sha256 pinned. A revision is
 * written on A directly (files + addRevision, no capture). Covered: a pull
 * cut in the middle resumes with Range; a flipped byte in B's copy is found
 * by re-verification and pulled again; B never serves an unverified copy; a
 * peer showing another certificate is refused, and one with HTTPS off only
 * with replication.allowPlainHttp; per-image node assignment, by node name
 * and by node group (node.groups: A is in building-a, B in building-b); revisions
 * stored before copies were recorded are adopted by the node holding their
 * files; directories of revisions gone from the store are pruned.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { loadConfig } from '../config/config.js';
import { silentLogger } from '../lib/log.js';
import { startFleetboot, type RunningFleetboot } from '../server.js';
import { openStore, type Store } from '../store/db.js';
import { addRevision, setImageNodes } from '../store/images.js';
import { getCopy, replicationLag, setCopy } from '../store/copies.js';
import { testDatabaseUrl, testStoreDialect } from '../store/temp-store.js';
import { sampleManifest } from '../store/test-fixtures.js';
import { imageStreamPath, MANIFEST_FILE, REPLICA_DIR, removeImage } from '../imaging/image-store.js';
import { createReplicationService, type ReplicationService } from './service.js';
import { peerGet, type PeerGet } from './peer.js';

const STREAM = 'p1.pcl.zst';
const SIZE = 3 * 1024 * 1024 + 123;
const SKIP = testStoreDialect() === 'sqlite' ? 'two servers share one store only on PostgreSQL (the PostgreSQL pass of the test command runs this)' : false;

function config(dataDir: string, ip: string, name: string, groups: string[], url: string): ReturnType<typeof loadConfig> {
  return loadConfig({
    overrides: {
      dataDir,
      serverIp: ip,
      http: { host: ip, port: 0 },
      https: { enabled: true, host: ip, port: 0 },
      tftp: { enabled: false },
      dhcp: { mode: 'off' },
      store: { url },
      // Beats would publish the certificate again while a test changes what is published.
      node: { name, groups, heartbeatSeconds: 3600 },
      // No timers: the test calls pullOnce() and verifyOnce().
      replication: { enabled: false, verifyIntervalHours: 0 },
    },
  });
}

/** Write revision 1 of `image` on `store`'s disk and rows, as a capture on `node` would leave it (node null: no copy row, as before copies were recorded). */
async function writeRevision(store: Store, image: string, node: string | null, data: Buffer): Promise<{ dir: string; manifestSha256: string }> {
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
  if (node !== null) await setCopy(store.db, image, n, node, { state: 'verified', bytesDone: data.length, bytesTotal: data.length });
  return { dir, manifestSha256 };
}

const only = <T extends { image: string }>(rs: readonly T[], image: string): T[] => rs.filter((r) => r.image === image);

test('replication between two nodes over pinned HTTPS', { skip: SKIP }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'fleetboot-repl-'));
  const url = await testDatabaseUrl(root);
  assert.ok(url);
  const dirA = join(root, 'a');
  const dirB = join(root, 'b');
  let a: RunningFleetboot | null = null;
  let b: RunningFleetboot | null = null;
  let storeA: Store | null = null;
  let storeB: Store | null = null;
  const services: ReplicationService[] = [];
  try {
    [a, b] = await Promise.all([
      startFleetboot(config(dirA, '127.0.0.1', 'node-a', ['building-a'], url), { logger: silentLogger, ipxeDir: join(root, 'no-ipxe') }),
      startFleetboot(config(dirB, '127.0.0.2', 'node-b', ['building-b'], url), { logger: silentLogger, ipxeDir: join(root, 'no-ipxe') }),
    ]);
    const A = a;
    const B = b;
    storeA = await openStore(dirA, { url });
    storeB = await openStore(dirB, { url });
    const sA = storeA;
    const sB = storeB;
    const selfA = await A.node.self();
    assert.equal(selfA?.tlsSha256, A.tls?.info().server.sha256, 'A publishes the sha256 of the certificate its HTTPS serves');
    assert.match(selfA?.httpsUrl ?? '', /^https:\/\/127\.0\.0\.1:\d+$/);

    // What B's puller asked for: each request's scheme and Range; the first stream request can be cut.
    const asked: { scheme: string; path: string; range: string | null }[] = [];
    let cutNext = false;
    const recording: PeerGet = async (peer, path, headers, signal) => {
      asked.push({ scheme: new URL(peer.baseUrl).protocol, path, range: headers['range'] ?? null });
      const r = await peerGet(peer, path, headers, signal);
      if (!cutNext || !path.includes('/streams/')) return r;
      cutNext = false;
      let sent = 0;
      const cutter = new Transform({
        transform(chunk: Buffer, _e, cb) {
          sent += chunk.length;
          if (sent > 1024 * 1024) {
            r.body.destroy();
            cb(new Error('connection cut by the test'));
          } else cb(null, chunk);
        },
      });
      r.body.on('error', (err) => cutter.destroy(err));
      return { ...r, body: r.body.pipe(cutter) };
    };
    const make = (opts: { allowPlainHttp?: boolean; store?: Store; node?: string; pullIntervalSeconds?: number } = {}): ReplicationService => {
      const s = createReplicationService({
        store: opts.store ?? sB,
        log: silentLogger,
        nodeName: opts.node ?? 'node-b',
        authorization: () => (opts.node === 'node-a' ? A.node.authorization() : B.node.authorization()),
        pullIntervalSeconds: opts.pullIntervalSeconds ?? 0,
        verifyIntervalHours: 0,
        ...(opts.allowPlainHttp !== undefined ? { allowPlainHttp: opts.allowPlainHttp } : {}),
        peerGet: recording,
      });
      services.push(s);
      return s;
    };
    const repl = make();
    /** PATCH /api/v1/images/NAME through A (what `fleetboot image set NAME --nodes ...` sends). */
    const patchImage = (image: string, body: unknown) =>
      fetch(`${A.url}/api/v1/images/${image}`, { method: 'PATCH', headers: { authorization: `Bearer ${A.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const fromB = (path: string, headers: Record<string, string> = {}) => fetch(`${B.baseUrl.replace(/\/+$/, '')}${path}`, { headers: { authorization: A.node.authorization(), ...headers } });

    await t.test('B pulls over HTTPS, resumes a cut pull with Range, re-verifies, and serves only verified copies', async () => {
      const data = randomBytes(SIZE);
      const { dir } = await writeRevision(sA, 'win11', 'node-a', data);
      let res = await fromB(`/node/v1/images/win11/1/streams/${STREAM}`);
      assert.equal(res.status, 404);
      assert.match(await res.text(), /holds no verified copy of image 'win11' revision 1/);
      await assert.rejects(imageStreamPath(sB, 'win11', 1, STREAM, 'node-b'), /not verified on node 'node-b'/);
      assert.equal((await fetch(`${A.baseUrl.replace(/\/+$/, '')}/node/v1/images/win11/1/manifest`)).status, 401);
      res = await fetch(`${A.baseUrl.replace(/\/+$/, '')}/node/v1/images/win11/1/streams/..%2Fmanifest.json`, { headers: { authorization: B.node.authorization() } });
      assert.equal(res.status, 400);
      // Before B's pull: the lag lists it for B.
      assert.deepEqual(
        only(await replicationLag(sA.db), 'win11').map((l) => [l.node, l.state, l.holders]),
        [['node-b', 'missing', 1]],
      );

      // A pull cut after 1 MiB: the partial file stays, the copy is 'copying'.
      cutNext = true;
      asked.length = 0;
      const first = await repl.pullOnce();
      assert.deepEqual(first.map((r) => [r.image, r.revision, r.from, r.outcome]), [['win11', 1, 'node-a', 'failed']]);
      assert.ok(asked.every((q) => q.scheme === 'https:'), JSON.stringify(asked));
      let copy = await getCopy(sB.db, 'win11', 1, 'node-b');
      assert.equal(copy?.state, 'copying');
      assert.match(copy?.error ?? '', /interrupted/);
      const partial = statSync(join(dirB, 'images', REPLICA_DIR, dir, STREAM)).size;
      assert.ok(partial > 0 && partial < SIZE, `partial ${partial}`);
      assert.equal(copy?.bytesDone, partial);
      assert.equal(copy?.bytesTotal, SIZE);
      assert.equal((await fromB(`/node/v1/images/win11/1/streams/${STREAM}`)).status, 404);

      // The next round resumes at the partial file's end, then verifies.
      asked.length = 0;
      const second = await repl.pullOnce();
      assert.deepEqual(second.map((r) => r.outcome), ['verified']);
      assert.deepEqual(asked.map((q) => q.range), [`bytes=${partial}-`, null]);
      copy = await getCopy(sB.db, 'win11', 1, 'node-b');
      assert.equal(copy?.state, 'verified');
      assert.equal(copy?.bytesDone, SIZE);
      assert.ok(copy?.verifiedAt);
      assert.deepEqual(readFileSync(join(dirB, 'images', dir, STREAM)), data);
      assert.equal(await imageStreamPath(sB, 'win11', 1, STREAM, 'node-b'), join(dirB, 'images', dir, STREAM));
      assert.deepEqual(only(await replicationLag(sA.db), 'win11'), []);

      res = await fromB(`/node/v1/images/win11/1/streams/${STREAM}`);
      assert.equal(res.status, 200);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), data);
      res = await fromB(`/node/v1/images/win11/1/streams/${STREAM}`, { range: 'bytes=10-19' });
      assert.equal(res.status, 206);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), data.subarray(10, 20));

      const detail = (await (await fetch(`${A.url}/api/v1/images/win11`, { headers: { authorization: `Bearer ${A.token}` } })).json()) as { nodes: unknown; copies: { number: number; node: string; state: string; bytesDone: number; bytesTotal: number }[] };
      assert.equal(detail.nodes, 'all');
      assert.deepEqual(
        detail.copies.map((c) => [c.number, c.node, c.state, c.bytesDone, c.bytesTotal]),
        [
          [1, 'node-a', 'verified', SIZE, SIZE],
          [1, 'node-b', 'verified', SIZE, SIZE],
        ],
      );

      // One byte flipped in B's copy: re-verification finds it; B stops serving it; the next pull fetches it again.
      const file = join(dirB, 'images', dir, STREAM);
      const bytes = readFileSync(file);
      bytes[SIZE >> 1] = (bytes[SIZE >> 1] ?? 0) ^ 0x01;
      writeFileSync(file, bytes);
      assert.deepEqual(only(await repl.verifyOnce(), 'win11').map((r) => r.outcome), ['corrupt']);
      copy = await getCopy(sB.db, 'win11', 1, 'node-b');
      assert.equal(copy?.state, 'corrupt');
      assert.match(copy?.error ?? '', /stream p1\.pcl\.zst has \d+ bytes and sha256 [0-9a-f]{64}, the shared store records/);
      assert.equal((await fromB(`/node/v1/images/win11/1/streams/${STREAM}`)).status, 404);
      await assert.rejects(imageStreamPath(sB, 'win11', 1, STREAM, 'node-b'), /its copy is corrupt/);
      assert.deepEqual(only(await B.replication.pullOnce(), 'win11').map((r) => r.outcome), ['verified']);
      assert.deepEqual(readFileSync(file), data);
      assert.deepEqual(only(await B.replication.verifyOnce(), 'win11').map((r) => r.outcome), ['verified']);
      assert.deepEqual(only(await A.replication.verifyOnce(), 'win11').map((r) => r.outcome), ['verified']);
    });

    await t.test('poke() pulls at once, without waiting for the next round (a capture finished on another node)', async () => {
      const data = randomBytes(64 * 1024);
      await writeRevision(sA, 'poked', 'node-a', data);
      const hourly = make({ pullIntervalSeconds: 3600 });
      hourly.poke();
      hourly.poke(); // a burst makes one round
      const deadline = Date.now() + 5000;
      while ((await getCopy(sB.db, 'poked', 1, 'node-b'))?.state !== 'verified') {
        assert.ok(Date.now() < deadline, 'B did not pull within 5 s of the poke');
        await new Promise((r) => setTimeout(r, 50));
      }
      await hourly.close();
      await removeImage(sA, 'poked');
    });

    await t.test('a pulled stream whose sha256 differs is deleted and the copy marked corrupt', async () => {
      const data = randomBytes(64 * 1024);
      const { dir } = await writeRevision(sA, 'deb', 'node-a', data);
      // A's disk differs from what the store records (A has not re-verified yet).
      const bad = Buffer.from(data);
      bad[0] = (bad[0] ?? 0) ^ 0xff;
      writeFileSync(join(dirA, 'images', dir, STREAM), bad);
      assert.deepEqual(only(await repl.pullOnce(), 'deb').map((x) => x.outcome), ['corrupt']);
      const copy = await getCopy(sB.db, 'deb', 1, 'node-b');
      assert.equal(copy?.state, 'corrupt');
      assert.match(copy?.error ?? '', /pulled from node 'node-a' has 65536 bytes and sha256 [0-9a-f]{64}, the shared store records 65536 bytes/);
      assert.equal(existsSync(join(dirB, 'images', REPLICA_DIR, dir, STREAM)), false);
      assert.equal(existsSync(join(dirB, 'images', dir)), false);
      await removeImage(sA, 'deb');
    });

    await t.test('a peer showing another certificate than the one it publishes is refused; HTTPS off only with allowPlainHttp', async () => {
      const data = randomBytes(64 * 1024);
      await writeRevision(sA, 'pin', 'node-a', data);
      const published = (await A.node.self())?.tlsSha256 ?? null;
      assert.ok(published);
      // What the store publishes for A is not the certificate A serves (another server at A's address, say).
      const other = 'ab'.repeat(32);
      await sA.db.updateTable('nodes').set({ tls_sha256: other }).where('name', '=', 'node-a').execute();
      asked.length = 0;
      const refused = only(await repl.pullOnce(), 'pin');
      assert.deepEqual(refused.map((r) => [r.from, r.outcome]), [['node-a', 'refused']]);
      assert.match(refused[0]?.error ?? '', new RegExp(`node 'node-a' at 127\\.0\\.0\\.1:\\d+ presented a certificate with sha256 ${published}, but the shared store publishes ${other} for it: refused, nothing was sent`));
      let copy = await getCopy(sB.db, 'pin', 1, 'node-b');
      assert.equal(copy?.state, 'missing');
      assert.match(copy?.error ?? '', /presented a certificate with sha256/);

      // HTTPS off on A (no https_url): not over plain HTTP by default...
      const httpsUrl = (await A.node.self())?.httpsUrl ?? null;
      await sA.db.updateTable('nodes').set({ tls_sha256: null, https_url: null }).where('name', '=', 'node-a').execute();
      const plainRefused = only(await repl.pullOnce(), 'pin');
      assert.deepEqual(plainRefused.map((r) => r.outcome), ['refused']);
      assert.match(plainRefused[0]?.error ?? '', /node 'node-a' has HTTPS off: its copies are pulled over plain HTTP \(http:\/\/127\.0\.0\.1:\d+\/?\) only with replication\.allowPlainHttp: true/);
      // ...and with allowPlainHttp, over http_url.
      asked.length = 0;
      assert.deepEqual(only(await make({ allowPlainHttp: true }).pullOnce(), 'pin').map((r) => r.outcome), ['verified']);
      assert.ok(asked.length > 0 && asked.every((q) => q.scheme === 'http:'), JSON.stringify(asked));
      copy = await getCopy(sB.db, 'pin', 1, 'node-b');
      assert.equal(copy?.state, 'verified');
      // HTTPS with no published certificate: never plain HTTP, even when allowed.
      await sA.db.updateTable('nodes').set({ https_url: httpsUrl }).where('name', '=', 'node-a').execute();
      await sB.db.deleteFrom('revision_copies').where('image', '=', 'pin').where('node', '=', 'node-b').execute();
      const noPin = only(await make({ allowPlainHttp: true }).pullOnce(), 'pin');
      assert.deepEqual(noPin.map((r) => r.outcome), ['refused']);
      assert.match(noPin[0]?.error ?? '', /publishes no certificate sha256 to pin .*no fallback to plain HTTP/);
      // A beats: its certificate is published again.
      assert.equal(await A.node.beat(), true);
      assert.equal((await A.node.self())?.tlsSha256, published);
      await removeImage(sA, 'pin');
    });

    await t.test('a node pulls only the images assigned to it (image set --nodes)', async () => {
      const data = randomBytes(32 * 1024);
      await writeRevision(sA, 'lab', 'node-a', data);
      await setImageNodes(sA.db, 'lab', ['node-a']);
      assert.deepEqual(only(await repl.pullOnce(), 'lab'), []);
      assert.equal(await getCopy(sB.db, 'lab', 1, 'node-b'), null);
      assert.deepEqual(only(await replicationLag(sA.db), 'lab'), []);
      // Through the API (what `fleetboot image set lab --nodes node-a,node-b` sends).
      let res = await patchImage('lab', { nodes: ['node-a', 'node-z'] });
      assert.equal(res.status, 400);
      assert.match(((await res.json()) as { message: string }).message, /Image 'lab': no node is registered as 'node-z' \(known nodes: node-a, node-b;/);
      res = await patchImage('lab', { nodes: ['node-b', 'node-a'] });
      assert.equal(res.status, 200);
      assert.deepEqual(((await res.json()) as { nodes: unknown }).nodes, ['node-a', 'node-b']);
      assert.deepEqual(only(await replicationLag(sA.db), 'lab').map((l) => [l.node, l.state]), [['node-b', 'missing']]);
      assert.deepEqual(only(await repl.pullOnce(), 'lab').map((r) => r.outcome), ['verified']);
      await removeImage(sA, 'lab');
    });

    await t.test('a node pulls the images assigned to one of its groups (node.groups), not those of other groups', async () => {
      assert.deepEqual((await A.node.self())?.groups, ['building-a'], 'A publishes its node.groups');
      assert.deepEqual((await B.node.self())?.groups, ['building-b']);
      await writeRevision(sA, 'by-group', 'node-a', randomBytes(32 * 1024));
      await setImageNodes(sA.db, 'by-group', ['group:building-a']);
      assert.deepEqual(only(await repl.pullOnce(), 'by-group'), [], "B is not in building-a");
      assert.equal(await getCopy(sB.db, 'by-group', 1, 'node-b'), null);
      assert.deepEqual(only(await replicationLag(sA.db), 'by-group'), [], 'A, the only node in building-a, holds it');
      // Through the API (what `fleetboot image set by-group --nodes group:building-b` sends).
      let res = await patchImage('by-group', { nodes: ['group:building-c'] });
      assert.equal(res.status, 400);
      assert.match(((await res.json()) as { message: string }).message, /Image 'by-group': no registered node is in group 'building-c' \(known groups: building-a, building-b;/);
      res = await patchImage('by-group', { nodes: ['group:building-b'] });
      assert.equal(res.status, 200);
      assert.deepEqual(((await res.json()) as { nodes: unknown }).nodes, ['group:building-b']);
      assert.deepEqual(only(await replicationLag(sA.db), 'by-group').map((l) => [l.node, l.state]), [['node-b', 'missing']]);
      assert.deepEqual(only(await repl.pullOnce(), 'by-group').map((r) => r.outcome), ['verified']);
      await removeImage(sA, 'by-group');
    });

    await t.test('revisions stored before copies were recorded are adopted by the node holding their files, then pulled', async () => {
      const data = randomBytes(48 * 1024);
      const { dir } = await writeRevision(sA, 'legacy', null, data);
      const { dir: badDir } = await writeRevision(sA, 'legacy-bad', null, data);
      writeFileSync(join(dirA, 'images', badDir, STREAM), randomBytes(48 * 1024));
      // Nobody is known to hold them: B leaves them alone, and they are served by A's disk as before.
      assert.deepEqual([...only(await repl.pullOnce(), 'legacy'), ...only(await repl.pullOnce(), 'legacy-bad')], []);
      assert.ok(await imageStreamPath(sA, 'legacy', 1, STREAM, 'node-a'));
      // A (restarted, say) adopts them: its copies are hashed against the manifests.
      const adopt = await make({ store: sA, node: 'node-a' }).adoptOnce();
      assert.deepEqual(
        adopt.filter((r) => r.image.startsWith('legacy')).map((r) => [r.image, r.outcome]),
        [
          ['legacy', 'verified'],
          ['legacy-bad', 'corrupt'],
        ],
      );
      assert.match((await getCopy(sA.db, 'legacy-bad', 1, 'node-a'))?.error ?? '', /stream p1\.pcl\.zst has 49152 bytes and sha256 [0-9a-f]{64}, the shared store records 49152 bytes/);
      // Now B pulls the good one; the corrupt one has no holder.
      const pulled = await repl.pullOnce();
      assert.deepEqual(only(pulled, 'legacy').map((r) => r.outcome), ['verified']);
      assert.deepEqual(only(pulled, 'legacy-bad').map((r) => r.outcome), ['no-holder']);
      assert.deepEqual(readFileSync(join(dirB, 'images', dir, STREAM)), data);
    });

    await t.test('B removes the directories of revisions gone from the store, and nothing else', async () => {
      const { dir } = (await sA.db.selectFrom('image_revisions').select('dir').where('image', '=', 'legacy').executeTakeFirstOrThrow()) as { dir: string };
      assert.ok(existsSync(join(dirB, 'images', dir)));
      // A partial pull of a revision that will go, a directory never seen in the store, a file that is no revision's.
      const gonePartial = join(dirB, 'images', REPLICA_DIR, randomUUID());
      mkdirSync(gonePartial, { recursive: true });
      const unseen = join(dirB, 'images', randomUUID());
      mkdirSync(unseen);
      writeFileSync(join(dirB, 'images', 'notes.txt'), 'keep');
      await removeImage(sA, 'legacy');
      const removed = await repl.pruneOnce();
      assert.deepEqual(removed.sort(), [dir, `${REPLICA_DIR}/${gonePartial.split('/').pop() ?? ''}`].sort());
      assert.equal(existsSync(join(dirB, 'images', dir)), false);
      assert.equal(existsSync(gonePartial), false);
      assert.ok(existsSync(unseen), 'a directory never seen in the store (a capture being committed) stays');
      assert.ok(existsSync(join(dirB, 'images', 'notes.txt')));
      // Still there: what the store still has.
      assert.ok(existsSync(join(dirB, 'images', (await sA.db.selectFrom('image_revisions').select('dir').where('image', '=', 'win11').executeTakeFirstOrThrow()).dir)));
    });
  } finally {
    for (const s of services) await s.close();
    await b?.close();
    await a?.close();
    await storeA?.close();
    await storeB?.close();
    rmSync(root, { recursive: true, force: true });
  }
});
