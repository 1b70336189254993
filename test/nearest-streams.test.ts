/**
 * Nearest node, deploy streams (issue 15 item 4): two servers on one
 * PostgreSQL (the test command's PostgreSQL pass; skipped on SQLite, which
 * is one server's store). A on 127.0.0.1 serves no subnet; B on 127.0.0.2
 * serves 127.0.0.0/24, the machine's (its agent talks from 127.0.0.1). An
 * image committed on A is replicated to B and verified there. A deploy
 * task booted through A (its control server) is told to read its streams
 * from B; the agent's own transport (src/agent/http-transport.ts, the
 * code a booted machine runs) reads them there with the task token, and
 * the stream access logs ('stream served') show B served every stream and
 * A none. With B's copy corrupt, and with B stopped, the next deploys read
 * from A.
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
import { setCopy } from '../src/store/copies.js';
import { HttpTransport } from '../src/agent/http-transport.js';
import { IDENTITY, MAC_A, MAC_B, makeImage, pxe, sha } from './imaging-helpers.js';

type Line = Record<string, unknown>;

async function server(dir: string, ip: string, name: string, url: string, subnets: string[], logs: Line[]): Promise<RunningFleetboot> {
  mkdirSync(join(dir, 'bootenv'), { recursive: true });
  writeFileSync(join(dir, 'bootenv', 'vmlinuz'), 'kernel');
  writeFileSync(join(dir, 'bootenv', 'initrd.img'), 'initrd');
  const config = loadConfig({
    overrides: {
      dataDir: dir,
      serverIp: ip,
      http: { host: ip, port: 0 },
      https: { enabled: false },
      tftp: { enabled: false },
      dhcp: { mode: 'off' },
      store: { url },
      node: { name, subnets },
      // No timers: the test pulls with pullOnce().
      replication: { enabled: false, verifyIntervalHours: 0 },
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
async function deploy(control: RunningFleetboot, mac: string, files: string[]): Promise<{ task: number; streamsUrl: string | null; origin: string; sha256: string[] }> {
  const boot = await pxe(control, mac);
  assert.ok(boot.task !== null && boot.token !== null, boot.script);
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

test('a deploy booted through A reads its streams from B, the node of its subnet; from A when B lacks a verified copy or is down', async (t) => {
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

    // 1. B serves the machine's subnet and holds a verified copy: the streams come from B, A sends none.
    await createTask(store.db, { type: 'deploy', mac: MAC_B, image: 'golden' });
    let d = await deploy(a, MAC_B, files);
    assert.equal(d.streamsUrl, b.url);
    assert.equal(d.origin, new URL(b.url).origin);
    assert.deepEqual(d.sha256, want);
    assert.equal((await getTask(store.db, d.task))?.state, 'done');
    assert.deepEqual(streamReads(logsB), files.map((f, i) => `/agent/v1/task/image/${f} 200 ${img.streams[i]?.length}`));
    assert.deepEqual(streamReads(logsA), []);
    assert.ok(logsA.some((l) => typeof l['msg'] === 'string' && /streams of golden revision 1 from node node-b \(the node serving 127\.0\.0\.1\)/.test(l['msg'])));

    // 2. B's copy is corrupt: A (the control server) serves them; B is not asked.
    await setCopy(store.db, 'golden', img.revision, 'node-b', { state: 'corrupt', error: 'test' });
    logsB.length = 0;
    await createTask(store.db, { type: 'deploy', mac: MAC_B, image: 'golden' });
    d = await deploy(a, MAC_B, files);
    assert.equal(d.streamsUrl, null);
    assert.deepEqual(d.sha256, want);
    assert.deepEqual(streamReads(logsA), files.map((f, i) => `/agent/v1/task/image/${f} 200 ${img.streams[i]?.length}`));
    assert.deepEqual(streamReads(logsB), []);

    // 3. B verified again but stopped (down): A serves them.
    await setCopy(store.db, 'golden', img.revision, 'node-b', { state: 'verified' });
    await b.close();
    b = null;
    logsA.length = 0;
    await createTask(store.db, { type: 'deploy', mac: MAC_B, image: 'golden' });
    d = await deploy(a, MAC_B, files);
    assert.equal(d.streamsUrl, null);
    assert.deepEqual(d.sha256, want);
    assert.equal(streamReads(logsA).length, 2);
  } finally {
    await store?.close();
    await b?.close();
    await a?.close();
    rmSync(root, { recursive: true, force: true });
  }
});
