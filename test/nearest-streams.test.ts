/**
 * Nearest node, deploy streams (issue 15 item 4): two servers on one
 * PostgreSQL (the test command's PostgreSQL pass; skipped on SQLite, which
 * is one server's store). A on 127.0.0.1 serves no subnet; B on 127.0.0.2
 * serves 127.0.0.0/24, the machine's (its agent talks from 127.0.0.1). An
 * image committed on A is replicated to B and verified there. The agent's
 * own transport (src/agent/http-transport.ts, the code a booted machine
 * runs) plays the agent; the stream access logs ('stream served') say who
 * served what:
 *   1. booted through B (where A's boot answer forwards it): streams from B;
 *   2. booted through A anyway (a request already forwarded, `via=`): told
 *      to read its streams from B (streamsUrl), B accepts the token; A none;
 *   3. B's copy corrupt: booted through B, told to read from A;
 *   4. B stopped: booted through A, streams from A.
 * And replication's pokes between nodes (the fleetboot_images signal): a
 * revision approved through A, or an image newly assigned to B, is pulled
 * by B at once, not at its next round (an hour away).
 */
import { testDatabaseUrl } from '../src/store/temp-store.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../src/config/config.js';
import { createLogger } from '../src/lib/log.js';
import { startFleetboot, type RunningFleetboot } from '../src/server.js';
import { createHost, createTask, getTask, openStore, type Store } from '../src/store/index.js';
import { setImageNodes } from '../src/store/images.js';
import { getCopy, setCopy } from '../src/store/copies.js';
import { HttpTransport } from '../src/agent/http-transport.js';
import { IDENTITY, MAC_A, MAC_B, makeImage, sha } from './imaging-helpers.js';

type Line = Record<string, unknown>;

/** `pullIntervalSeconds`: replication's timer (its first round 2 s after the start), or none (the test pulls with pullOnce()). */
async function server(dir: string, ip: string, name: string, url: string, subnets: string[], logs: Line[], pullIntervalSeconds?: number): Promise<RunningFleetboot> {
  mkdirSync(join(dir, 'bootenv'), { recursive: true });
  writeFileSync(join(dir, 'bootenv', 'vmlinuz'), 'kernel');
  writeFileSync(join(dir, 'bootenv', 'initrd.img'), 'initrd');
  const config = loadConfig({
    overrides: {
      dataDir: dir,
      serverIp: ip,
      http: { host: ip, port: 0 },
      // Replication pulls over HTTPS, pinned to the peer's published certificate.
      https: { enabled: true, host: ip, port: 0 },
      tftp: { enabled: false },
      dhcp: { mode: 'off' },
      store: { url },
      node: { name, subnets },
      replication: pullIntervalSeconds === undefined ? { enabled: false, verifyIntervalHours: 0 } : { enabled: true, pullIntervalSeconds, verifyIntervalHours: 0 },
    },
  });
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Line);
      cb();
    },
  });
  return startFleetboot(config, { logger: createLogger('info', sink), ipxeDir: join(dir, 'no-ipxe') });
}

const streamReads = (logs: Line[]): string[] => logs.filter((l) => l['msg'] === 'stream served' && l['subsystem'] === 'http').map((l) => `${String(l['path'])} ${String(l['status'])} ${String(l['bytes'])}`);

/** Boot `mac` through `control` and run its deploy task as the agent does (task, identity, streams, complete): the streams' sha256 and where they came from. */
async function deploy(control: RunningFleetboot, mac: string, files: string[], opts: { via?: string } = {}): Promise<{ task: number; streamsUrl: string | null; origin: string; sha256: string[] }> {
  // `via`: as if another node had forwarded the machine here (it decides, and is not forwarded again).
  const res = await fetch(`${control.url}/boot/decide?mac=${mac.replace(/:/g, '-')}&platform=pcbios${opts.via ? `&via=${opts.via}` : ''}`);
  const script = await res.text();
  const boot = { task: Number(/fleetboot\.task=(\d+)/.exec(script)?.[1] ?? NaN), token: /fleetboot\.token=([0-9a-f]+)/.exec(script)?.[1] ?? null };
  assert.ok(Number.isInteger(boot.task) && boot.token !== null, script);
  const t = new HttpTransport({ url: control.url, token: boot.token, timeoutSeconds: 5, baseDelayMs: 50 });
  const spec = await t.task();
  t.useStreamsUrl(spec.streamsUrl);
  await t.identify(IDENTITY);
  const sums: string[] = [];
  for (const f of files) {
    const parts: Buffer[] = [];
    for await (const c of await t.getStream(f, 0, new AbortController().signal)) parts.push(c as Buffer);
    sums.push(sha(Buffer.concat(parts)));
  }
  await t.complete({ type: 'deploy', verified: true });
  return { task: boot.task, streamsUrl: spec.streamsUrl ?? null, origin: t.streamsOrigin, sha256: sums };
}

test('a deploy of a machine on B\'s subnet reads its streams from B, booted through B or through A; from A when B lacks a verified copy or is down', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'fleetboot-nearest-'));
  const url = await testDatabaseUrl(root);
  if (url === null) {
    t.skip('two servers need the shared PostgreSQL store (the test command runs this file in its PostgreSQL pass)');
    rmSync(root, { recursive: true, force: true });
    return;
  }
  const logsA: Line[] = [];
  const logsB: Line[] = [];
  let a: RunningFleetboot | null = null;
  let b: RunningFleetboot | null = null;
  let store: Store | null = null;
  try {
    a = await server(join(root, 'a'), '127.0.0.1', 'node-a', url, [], logsA);
    b = await server(join(root, 'b'), '127.0.0.2', 'node-b', url, ['127.0.0.0/24'], logsB);
    store = await openStore(join(root, 'a'), { url });
    await createHost(store.db, { mac: MAC_A, name: 'ref' });
    await createHost(store.db, { mac: MAC_B, name: 'target' });
    // Committed on A as a capture there would leave it: A's copy verified. B pulls and verifies it.
    const img = await makeImage(store, 'golden', MAC_A);
    await setCopy(store.db, 'golden', img.revision, 'node-a', { state: 'verified' });
    assert.deepEqual((await b.replication.pullOnce()).map((r) => [r.image, r.from, r.outcome]), [['golden', 'node-a', 'verified']]);
    const files = ['p1.pcl.zst', 'p2.raw.zst'];
    const want = img.streams.map(sha);

    const served = files.map((f, i) => `/agent/v1/task/image/${f} 200 ${img.streams[i]?.length}`);

    // 1. A's boot answer forwards the machine to B, the node of its subnet; booted there, it reads from B.
    assert.match(await (await fetch(`${a.url}/boot/decide?mac=${MAC_B.replace(/:/g, '-')}&platform=pcbios`)).text(), new RegExp(new URL(b.url).host.replace(/[.]/g, '\\.')));
    await createTask(store.db, { type: 'deploy', mac: MAC_B, image: 'golden' });
    let d = await deploy(b, MAC_B, files);
    assert.equal(d.streamsUrl, null);
    assert.deepEqual(d.sha256, want);
    assert.deepEqual(streamReads(logsB), served);
    assert.deepEqual(streamReads(logsA), []);

    // 2. Booted through A all the same: told to read from B, which accepts the token; A sends none.
    logsB.length = 0;
    await createTask(store.db, { type: 'deploy', mac: MAC_B, image: 'golden' });
    d = await deploy(a, MAC_B, files, { via: 'node-x' });
    assert.equal(d.streamsUrl, b.url);
    assert.equal(d.origin, new URL(b.url).origin);
    assert.deepEqual(d.sha256, want);
    assert.equal((await getTask(store.db, d.task))?.state, 'done');
    assert.deepEqual(streamReads(logsB), served);
    assert.deepEqual(streamReads(logsA), []);
    assert.ok(logsA.some((l) => typeof l['msg'] === 'string' && /streams of golden revision 1 from node node-b \(the node serving 127\.0\.0\.1\)/.test(l['msg'])));

    // 3. B's copy is corrupt: booted through B, told to read from A; B sends none.
    await setCopy(store.db, 'golden', img.revision, 'node-b', { state: 'corrupt', error: 'test' });
    logsB.length = 0;
    await createTask(store.db, { type: 'deploy', mac: MAC_B, image: 'golden' });
    d = await deploy(b, MAC_B, files);
    assert.equal(d.streamsUrl, a.url);
    assert.deepEqual(d.sha256, want);
    assert.deepEqual(streamReads(logsA), served);
    assert.deepEqual(streamReads(logsB), []);

    // 4. B verified again but stopped (down): the machine boots through A, which serves the streams.
    await setCopy(store.db, 'golden', img.revision, 'node-b', { state: 'verified' });
    await b.close();
    b = null;
    logsA.length = 0;
    await createTask(store.db, { type: 'deploy', mac: MAC_B, image: 'golden' });
    d = await deploy(a, MAC_B, files);
    assert.equal(d.streamsUrl, null);
    assert.deepEqual(d.sha256, want);
    assert.deepEqual(streamReads(logsA), served);
  } finally {
    await store?.close();
    await b?.close();
    await a?.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test('B pulls at once (not at its next round) a revision approved through A, and an image newly assigned to it', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'fleetboot-poke-'));
  const url = await testDatabaseUrl(root);
  if (url === null) {
    t.skip('two servers need the shared PostgreSQL store (the test command runs this file in its PostgreSQL pass)');
    rmSync(root, { recursive: true, force: true });
    return;
  }
  let a: RunningFleetboot | null = null;
  let b: RunningFleetboot | null = null;
  let store: Store | null = null;
  try {
    // Rounds an hour apart: only a poke makes B pull within the test.
    a = await server(join(root, 'a'), '127.0.0.1', 'node-a', url, [], [], 3600);
    store = await openStore(join(root, 'a'), { url });
    await createHost(store.db, { mac: MAC_A, name: 'ref' });
    const api = (method: string, path: string, body?: unknown): Promise<Response> =>
      fetch(`${(a as RunningFleetboot).url}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${(a as RunningFleetboot).token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    const verifiedOnB = async (image: string, revision: number, what: string): Promise<void> => {
      const deadline = Date.now() + 8000;
      while ((await getCopy((store as Store).db, image, revision, 'node-b'))?.state !== 'verified') {
        assert.ok(Date.now() < deadline, `B did not pull ${image} revision ${revision} within 8 s of ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    // Revision 1, assigned to A only: not B's.
    const r1 = await makeImage(store, 'golden', MAC_A);
    await setCopy(store.db, 'golden', r1.revision, 'node-a', { state: 'verified' });
    await setImageNodes(store.db, 'golden', ['node-a']);
    b = await server(join(root, 'b'), '127.0.0.2', 'node-b', url, [], [], 3600);
    // B's first round (2 s after its start) is over: the next is an hour away.
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(await getCopy(store.db, 'golden', r1.revision, 'node-b'), null, 'an image assigned to A only is not pulled by B');

    // Assigned to every node through A: B pulls it at once.
    assert.equal((await api('PATCH', '/images/golden', { nodes: 'all' })).status, 200);
    await verifiedOnB('golden', r1.revision, "the image's assignment to every node");

    // Revision 2 waits for approval (pending: not pulled); approved through A, B pulls it at once.
    const r2 = await makeImage(store, 'golden', MAC_A, { approval: true });
    await setCopy(store.db, 'golden', r2.revision, 'node-a', { state: 'verified' });
    assert.equal(await getCopy(store.db, 'golden', r2.revision, 'node-b'), null, 'a pending revision is not pulled');
    assert.equal((await api('POST', `/images/golden/revisions/${r2.revision}/approve`)).status, 200);
    await verifiedOnB('golden', r2.revision, 'its approval through A');
  } finally {
    await store?.close();
    await b?.close();
    await a?.close();
    rmSync(root, { recursive: true, force: true });
  }
});
