/**
 * The imaging server with a real HTTP listener on 127.0.0.1 (port 0) and
 * fetch playing the agent: captures (chunked uploads, cut-off uploads, bad
 * manifests), deploy downloads with Range, token rules, transfer slots, the
 * stale-task reaper, a restart, and the boot decision for machines with tasks.
 */
import { openTestStore } from '../src/store/temp-store.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cancelTask, createHost, createTask, getHost, getImage, getInventory, getTask, listTasks, openStore } from '../src/store/index.js';
import type { Manifest } from '../src/model/manifest.js';

import { agent, capture, inventory, manifestFor, MAC_A, MAC_B, pxe, sha, start, withServer } from './imaging-helpers.js';

function imageFiles(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const root = join(dir, 'images');
  for (const d of readdirSync(root)) {
    if (d === '.incoming') continue;
    for (const f of readdirSync(join(root, d))) out.set(`${d}/${f}`, sha(readFileSync(join(root, d, f))));
  }
  return out;
}

test('a capture uploaded in chunks becomes an image; a cut-off second capture of that name leaves it intact; a bad manifest is refused', async () => {
  await withServer(async (env) => {
    await createHost(env.store.db, { mac: MAC_A, name: 'ref' });
    const streams = { 'p1.raw.zst': randomBytes(300_000), 'p2.pcl.zst': randomBytes(123_457) };
    const id = await capture(env, MAC_A, 'base', streams);
    const t = await getTask(env.store.db, id);
    assert.equal(t?.state, 'done');
    const img = await getImage(env.store.db, 'base');
    assert.ok(img);
    assert.equal(img.info.partitions, 2);
    assert.equal(img.info.sizeBytes, 300_000 + 123_457);
    assert.equal(img.manifest.name, 'base');
    assert.equal(img.manifest.source.taskId, id);
    assert.equal(img.manifest.source.mac, MAC_A);
    const before = imageFiles(env.dir);
    assert.equal(before.size, 3, 'manifest.json and two streams');
    assert.ok([...before.values()].includes(sha(streams['p1.raw.zst'])));
    assert.ok(env.logs.some((l) => l['subsystem'] === 'imaging' && l['task'] === id && l['state'] === 'done'), 'the transition is logged');

    // Second capture of 'base': one stream complete, the next cut off mid-upload, then the agent fails.
    const second = await createTask(env.store.db, { type: 'capture', mac: MAC_A, image: 'base' });
    const boot = await pxe(env.fb, MAC_A);
    assert.ok(boot.token);
    const a = agent(env.fb, boot.token);
    await a.get('/task');
    assert.equal((await a.put('p1.raw.zst', randomBytes(50_000))).status, 200);
    await assert.rejects(a.put('p2.pcl.zst', randomBytes(2_000_000), { chunk: 16_384, abortAfter: 5 }));
    // The agent fails the task only once the server has seen the upload end.
    const cutOff = (): boolean => env.logs.some((l) => l['task'] === second.id && /upload of p2\.pcl\.zst cut off/.test(String(l['msg'])));
    for (const until = Date.now() + 10_000; !cutOff() && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
    assert.equal((await a.post('/task/fail', { reason: 'power lost' })).status, 200);
    assert.equal((await getTask(env.store.db, second.id))?.state, 'failed');
    assert.deepEqual(imageFiles(env.dir), before, 'the first image is byte for byte as it was');
    assert.deepEqual((await getImage(env.store.db, 'base'))?.manifest, img.manifest);
    assert.deepEqual(readdirSync(join(env.dir, 'images', '.incoming')), [], 'the failed capture left nothing behind');

    // A manifest whose sha256 is not what was uploaded: refused, task failed, no image.
    const third = await createTask(env.store.db, { type: 'capture', mac: MAC_A, image: 'other' });
    const b3 = await pxe(env.fb, MAC_A);
    assert.ok(b3.token);
    const a3 = agent(env.fb, b3.token);
    await a3.get('/task');
    const data = randomBytes(10_000);
    assert.equal((await a3.put('p1.raw.zst', data)).status, 200);
    const m = manifestFor({ 'p1.raw.zst': data });
    (m.partitions[0] as { sha256: string }).sha256 = sha(Buffer.from('something else'));
    const r = await a3.post('/task/complete', { type: 'capture', manifest: m });
    assert.equal(r.status, 400);
    assert.match(((await r.json()) as { message: string }).message, /Partition 1.*sha256/);
    const t3 = await getTask(env.store.db, third.id);
    assert.equal(t3?.state, 'failed');
    assert.match(t3?.error ?? '', /sha256/);
    assert.equal(await getImage(env.store.db, 'other'), null);
    assert.deepEqual(imageFiles(env.dir), before);
    assert.ok(env.logs.some((l) => l['task'] === second.id && /upload of p2\.pcl\.zst cut off/.test(String(l['msg']))), 'the server saw the cut-off upload');

    // An agent retrying a cut-off stream: the complete second PUT replaces the partial one.
    await createTask(env.store.db, { type: 'capture', mac: MAC_A, image: 'retried' });
    const b4 = await pxe(env.fb, MAC_A);
    assert.ok(b4.token);
    const a4 = agent(env.fb, b4.token);
    await a4.get('/task');
    const d4 = randomBytes(500_000);
    await assert.rejects(a4.put('p1.raw.zst', d4, { chunk: 16_384, abortAfter: 3 }));
    assert.equal((await a4.put('p1.raw.zst', d4)).status, 200);
    assert.equal((await a4.post('/task/complete', { type: 'capture', manifest: manifestFor({ 'p1.raw.zst': d4 }) })).status, 200);
    assert.equal((await getImage(env.store.db, 'retried'))?.info.sizeBytes, d4.length);
  });
});

test('deploy: Range downloads of the task image, token rules, cancel gives 409', async () => {
  await withServer(async (env) => {
    await createHost(env.store.db, { mac: MAC_A });
    await createHost(env.store.db, { mac: MAC_B });
    const streams = { 'p1.raw.zst': randomBytes(200_000) };
    await capture(env, MAC_A, 'base', streams);
    await createTask(env.store.db, { type: 'deploy', mac: MAC_B, image: 'base' });
    const boot = await pxe(env.fb, MAC_B);
    assert.ok(boot.token && boot.task);
    const a = agent(env.fb, boot.token);
    const spec = (await (await a.get('/task')).json()) as { type: string; manifest: Manifest; image: string };
    assert.equal(spec.type, 'deploy');
    assert.equal(spec.manifest.partitions[0]?.sha256, sha(streams['p1.raw.zst']));
    assert.equal((await getTask(env.store.db, boot.task))?.state, 'running');

    const full = await a.get('/task/image/p1.raw.zst');
    assert.equal(full.status, 200);
    assert.equal(sha(Buffer.from(await full.arrayBuffer())), sha(streams['p1.raw.zst']));
    const part = await a.get('/task/image/p1.raw.zst', { range: 'bytes=123456-' });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), 'bytes 123456-199999/200000');
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), streams['p1.raw.zst'].subarray(123456));

    assert.equal((await a.get('/task/image/p2.raw.zst')).status, 404, 'a file that is not in the task image');
    assert.equal((await a.get('/task/image/..%2Fmanifest.json')).status, 400);
    assert.equal((await a.put('p1.raw.zst', randomBytes(10))).status, 409, 'a deploy task uploads nothing');
    assert.equal((await agent(env.fb, 'ab'.repeat(32)).get('/task')).status, 401);
    assert.equal((await fetch(`${env.fb.url}/agent/v1/task`)).status, 401);

    const p = await a.post('/task/progress', { phase: 'transfer', bytesDone: 100_000, bytesTotal: 200_000, partition: 1 });
    assert.deepEqual(await p.json(), { state: 'running' });
    const t = await getTask(env.store.db, boot.task);
    assert.equal(t?.bytesDone, 100_000);
    assert.ok(t?.lastSeenAt);

    await cancelTask(env.store.db, boot.task);
    assert.equal((await a.get('/task')).status, 409);
    assert.equal((await a.get('/task/image/p1.raw.zst')).status, 409);
    assert.equal((await a.post('/task/complete', { type: 'deploy', verified: true })).status, 409);
    const after = await a.post('/task/progress', { phase: 'transfer', bytesDone: 150_000, bytesTotal: 200_000, partition: 1 });
    assert.deepEqual(await after.json(), { state: 'cancelled' }, 'progress tells the agent to stop');
  });
});

test('slots: with maxTransfers 1 the second agent waits with position 1 and gets the slot when the first completes', async () => {
  await withServer(
    async (env) => {
      await createHost(env.store.db, { mac: MAC_A });
      await createHost(env.store.db, { mac: MAC_B });
      await createHost(env.store.db, { mac: '52:54:00:aa:00:03' });
      await capture(env, '52:54:00:aa:00:03', 'base', { 'p1.raw.zst': randomBytes(1000) });
      const boots = [];
      for (const mac of [MAC_A, MAC_B]) {
        await createTask(env.store.db, { type: 'deploy', mac, image: 'base' });
        const b = await pxe(env.fb, mac);
        assert.ok(b.token && b.task);
        boots.push({ a: agent(env.fb, b.token), id: b.task });
      }
      const [first, second] = boots as [(typeof boots)[0], (typeof boots)[0]];
      await first.a.get('/task');
      await second.a.get('/task');
      assert.deepEqual(await (await first.a.post('/task/slot')).json(), { granted: true });
      const wait = await second.a.post('/task/slot');
      assert.equal(wait.headers.get('retry-after'), '1');
      assert.deepEqual(await wait.json(), { granted: false, position: 1, retryAfterSeconds: 1 });
      assert.equal((await getTask(env.store.db, second.id))?.state, 'waiting');
      assert.equal((await getTask(env.store.db, first.id))?.state, 'running');
      assert.equal((await first.a.post('/task/complete', { type: 'deploy', verified: true })).status, 200);
      assert.deepEqual(await (await second.a.post('/task/slot')).json(), { granted: true });
      assert.equal((await getTask(env.store.db, second.id))?.state, 'running');
    },
    { maxTransfers: 1, progressIntervalSeconds: 1 },
  );
});

test('the reaper fails a silent task', async () => {
  await withServer(
    async (env) => {
      await createHost(env.store.db, { mac: MAC_A });
      await createTask(env.store.db, { type: 'inventory', mac: MAC_A });
      const b = await pxe(env.fb, MAC_A);
      assert.ok(b.token && b.task);
      await agent(env.fb, b.token).get('/task');
      const heard = Date.now();
      assert.deepEqual(await env.fb.reaper.sweep(), []);
      // The server's own sweeps (every second with this timeout) fail the task
      // once it has been silent for 2 s; an explicit sweep may or may not get
      // there first, so the test waits for the outcome, not for one sweep.
      let t = await getTask(env.store.db, b.task);
      while (t?.state !== 'failed' && Date.now() - heard < 6000) {
        await new Promise((r) => setTimeout(r, 100));
        if (Date.now() - heard > 2100) await env.fb.reaper.sweep();
        t = await getTask(env.store.db, b.task);
      }
      assert.equal(t?.state, 'failed');
      assert.equal(t?.error, 'no contact from the agent for 2 s (machine off or network down?)');
      assert.ok(Date.parse(t.updatedAt) - Date.parse(t.lastSeenAt ?? '') > 2000, 'failed only after 2 s of silence');
      assert.deepEqual(await env.fb.reaper.sweep(), [], 'a failed task is not reaped twice');
    },
    { agentTimeoutSeconds: 2, progressIntervalSeconds: 1 },
  );
});

test('a server restart keeps the task and its token working (and does not reap it)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-imaging-'));
  mkdirSync(join(dir, 'bootenv'));
  writeFileSync(join(dir, 'bootenv', 'vmlinuz'), 'k');
  writeFileSync(join(dir, 'bootenv', 'initrd.img'), 'i');
  let fb = await start(dir, { agentTimeoutSeconds: 30, progressIntervalSeconds: 1 });
  const store = await openTestStore(dir);
  try {
    await createHost(store.db, { mac: MAC_A });
    await createHost(store.db, { mac: MAC_B });
    const data = randomBytes(100_000);
    await capture({ dir, fb, store, logs: [] }, MAC_A, 'base', { 'p1.raw.zst': data });
    await createTask(store.db, { type: 'deploy', mac: MAC_B, image: 'base' });
    const b = await pxe(fb, MAC_B);
    assert.ok(b.token && b.task);
    assert.equal((await agent(fb, b.token).get('/task')).status, 200);
    await fb.close();
    // The server was down for longer than the agent timeout: the last contact is 60 s old.
    const longAgo = new Date(Date.now() - 60_000).toISOString();
    await store.db.updateTable('tasks').set({ last_seen_at: longAgo }).where('id', '=', b.task).execute();
    fb = await start(dir, { agentTimeoutSeconds: 30, progressIntervalSeconds: 1 });
    assert.deepEqual(await fb.reaper.sweep(), [], 'the grace period counts from the restart');
    const a = agent(fb, b.token);
    assert.equal((await a.get('/task')).status, 200);
    const part = await a.get('/task/image/p1.raw.zst', { range: 'bytes=50000-' });
    assert.equal(part.status, 206);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), data.subarray(50000));
    assert.equal((await a.post('/task/complete', { type: 'deploy', verified: true })).status, 200);
    assert.equal((await getTask(store.db, b.task))?.state, 'done');
  } finally {
    await store.close();
    await fb.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('boot decision: a queued task boots the environment with a token; after done the normal decision is back', async () => {
  await withServer(async (env) => {
    await createHost(env.store.db, { mac: MAC_A, name: 'pc1' });
    const before = await pxe(env.fb, MAC_A);
    assert.match(before.script, /^menu /m);
    assert.equal(before.token, null);
    const task = await createTask(env.store.db, { type: 'inventory', mac: MAC_A, options: {} });
    const b = await pxe(env.fb, MAC_A);
    const base = env.fb.baseUrl;
    assert.ok(b.token && b.token.length === 64);
    assert.ok(
      b.script.includes(
        `kernel ${base}/boot/env/vmlinuz initrd=initrd.img fleetboot.url=${base} fleetboot.task=${task.id} fleetboot.token=${b.token} fleetboot.ip=127.0.0.1 BOOTIF=01-\${net0/mac:hexhyp} console=tty0 console=ttyS0,115200 || goto failed`,
      ),
      b.script,
    );
    assert.match(b.script, new RegExp(`^initrd ${base}/boot/env/initrd.img \\|\\| goto failed$`, 'm'));
    let t = await getTask(env.store.db, task.id);
    assert.equal(t?.state, 'booting');
    assert.equal(t?.attempts, 1);
    // A second PXE boot: a new token, the old one stops working.
    const again = await pxe(env.fb, MAC_A);
    assert.ok(again.token && again.token !== b.token);
    assert.equal((await agent(env.fb, b.token).get('/task')).status, 401);
    const a = agent(env.fb, again.token);
    assert.equal((await a.get('/task')).status, 200);
    assert.equal((await a.post('/task/complete', { type: 'inventory', inventory })).status, 200);
    t = await getTask(env.store.db, task.id);
    assert.equal(t?.state, 'done');
    assert.equal(t?.attempts, 2);
    assert.equal((await getInventory(env.store.db, MAC_A))?.inventory.smbios.product, inventory.smbios.product);
    const after = await pxe(env.fb, MAC_A);
    assert.equal(after.token, null);
    assert.match(after.script, /^menu /m, 'no re-imaging loop');

    // The boot environment files are served with Range.
    const k = await fetch(`${env.fb.url}/boot/env/vmlinuz`, { headers: { range: 'bytes=100-199' } });
    assert.equal(k.status, 206);
    assert.equal(Buffer.from(await k.arrayBuffer())[0], 100);
    assert.equal((await fetch(`${env.fb.url}/boot/env/initrd.img`, { method: 'HEAD' })).headers.get('content-length'), '6');
  });
});

test('boot decision: without the boot environment the task fails naming the build command; the machine boots as without it', async () => {
  await withServer(
    async (env) => {
      await createHost(env.store.db, { mac: MAC_A });
      const task = await createTask(env.store.db, { type: 'inventory', mac: MAC_A });
      const b = await pxe(env.fb, MAC_A);
      assert.equal(b.token, null);
      assert.match(b.script, /^menu /m, 'the machine is not stuck: it gets its menu (local disk by default)');
      const t = await getTask(env.store.db, task.id);
      assert.equal(t?.state, 'failed');
      assert.match(t?.error ?? '', /boot environment is not built on the server: run fleetboot bootenv build/);
      assert.equal((await fetch(`${env.fb.url}/boot/env/vmlinuz`)).status, 404);
    },
    {},
    { bootEnv: false },
  );
});

test('boot decision: an unknown MAC under policy register gets a register task and becomes a host', async () => {
  await withServer(
    async (env) => {
      const mac = '52:54:00:aa:00:77';
      const b = await pxe(env.fb, mac);
      assert.ok(b.token && b.task);
      const t = await getTask(env.store.db, b.task);
      assert.equal(t?.type, 'register');
      assert.equal(t?.state, 'booting');
      const a = agent(env.fb, b.token);
      assert.equal((await a.get('/task')).status, 200);
      assert.equal((await a.post('/task/complete', { type: 'register', inventory })).status, 200);
      assert.equal((await getHost(env.store.db, mac))?.name, 'host-525400aa0077');
      assert.equal((await getInventory(env.store.db, mac))?.inventory.memoryBytes, inventory.memoryBytes);
      const next = await pxe(env.fb, mac);
      assert.equal(next.token, null, 'a registered host is not registered again');
    },
    { unknownPolicy: 'register' },
  );
});

test('boot menu of an unknown machine offers register and inventory, which create the task', async () => {
  await withServer(async (env) => {
    const mac = '52:54:00:aa:00:88';
    const menu = await pxe(env.fb, mac);
    assert.match(menu.script, /^item fb-register Register this machine$/m);
    assert.match(menu.script, /^item fb-inventory Hardware inventory$/m);
    assert.ok(menu.script.includes(`chain --replace --autofree ${env.fb.baseUrl}/boot/task?mac=${mac}&type=inventory || goto failed`));
    assert.equal((await listTasks(env.store.db)).length, 0, 'the menu alone creates nothing');
    const r = await fetch(`${env.fb.url}/boot/task?mac=${mac}&type=inventory`);
    const script = await r.text();
    assert.match(script, /fleetboot\.token=[0-9a-f]{64}/);
    const [t] = await listTasks(env.store.db, { mac });
    assert.equal(t?.type, 'inventory');
    assert.equal(t?.state, 'booting');
    const again = await (await fetch(`${env.fb.url}/boot/task?mac=${mac}&type=register`)).text();
    assert.match(again, /already has an active task/);
    assert.match(await (await fetch(`${env.fb.url}/boot/task?mac=${mac}&type=deploy`)).text(), /bad request/);
    assert.ok(!existsSync(join(env.dir, 'images', 'x')));
  });
});

test('a capture cancelled before its completion never replaces the image', async () => {
  await withServer(async (env) => {
    await createHost(env.store.db, { mac: MAC_A, name: 'ref' });
    const good = { 'p1.raw.zst': randomBytes(50_000) };
    const first = await capture(env, MAC_A, 'gold', good);
    const before = imageFiles(env.dir);
    const img = await getImage(env.store.db, 'gold');
    assert.equal(img?.info.taskId, first);

    const second = await createTask(env.store.db, { type: 'capture', mac: MAC_A, image: 'gold' });
    const boot = await pxe(env.fb, MAC_A);
    assert.ok(boot.token);
    const a = agent(env.fb, boot.token);
    assert.equal((await a.get('/task')).status, 200);
    const other = { 'p1.raw.zst': randomBytes(40_000) };
    assert.equal((await a.put('p1.raw.zst', other['p1.raw.zst'])).status, 200);
    // The administrator cancels it; the agent's completion comes after.
    const cancel = await fetch(`${env.fb.url}/api/v1/tasks/${second.id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${env.fb.token}` } });
    assert.equal(cancel.status, 200, await cancel.clone().text());
    const late = await a.post('/task/complete', { type: 'capture', manifest: manifestFor(other) });
    assert.equal(late.status, 409);
    assert.deepEqual(imageFiles(env.dir), before, 'the cancelled capture changed the stored image');
    assert.equal((await getImage(env.store.db, 'gold'))?.info.taskId, first);
    assert.ok(env.logs.some((l) => l['task'] === second.id && l['state'] === 'cancelled'), 'no transition line for the cancel');
  });
});

test('a stream upload that is not application/octet-stream is refused (415) and leaves the earlier upload; a repeated completion is answered 200', async () => {
  await withServer(async (env) => {
    await createHost(env.store.db, { mac: MAC_A, name: 'ref' });
    await createTask(env.store.db, { type: 'capture', mac: MAC_A, image: 'x' });
    const boot = await pxe(env.fb, MAC_A);
    assert.ok(boot.token);
    const a = agent(env.fb, boot.token);
    const data = randomBytes(20_000);
    assert.equal((await a.get('/task')).status, 200);
    assert.equal((await a.put('p1.raw.zst', data)).status, 200);
    const json = await fetch(`${env.fb.url}/agent/v1/task/streams/p1.raw.zst`, { method: 'PUT', headers: { authorization: `Bearer ${boot.token}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(json.status, 415);
    const done = await a.post('/task/complete', { type: 'capture', manifest: manifestFor({ 'p1.raw.zst': data }) });
    assert.equal(done.status, 200, await done.clone().text());
    // The agent retries its completion (the first answer was lost): 200, the image stays.
    const files = imageFiles(env.dir);
    const again = await a.post('/task/complete', { type: 'capture', manifest: manifestFor({ 'p1.raw.zst': data }) });
    assert.equal(again.status, 200, await again.clone().text());
    assert.deepEqual(imageFiles(env.dir), files);
  });
});

test('boot decision: a running task whose agent was heard from recently keeps its token (the machine is told to wait); too many boots fail the task', async () => {
  await withServer(
    async (env) => {
      await createHost(env.store.db, { mac: MAC_A, name: 'ref' });
      const t = await createTask(env.store.db, { type: 'capture', mac: MAC_A, image: 'y' });
      const boot = await pxe(env.fb, MAC_A);
      assert.ok(boot.token);
      const a = agent(env.fb, boot.token);
      assert.equal((await a.get('/task')).status, 200);
      // Someone asks /boot/decide with the same MAC while the agent runs: no new token.
      const again = await pxe(env.fb, MAC_A);
      assert.equal(again.token, null);
      assert.match(again.script, /is running on this machine/);
      assert.match(again.script, /chain --replace --autofree http:\/\/127\.0\.0\.1:\d+\/boot\.ipxe/);
      assert.equal((await a.post('/task/progress', { phase: 'transfer', bytesDone: 1, bytesTotal: null, partition: 1 })).status, 200);
      assert.equal((await getTask(env.store.db, t.id))?.state, 'running');

      // Boot loops end: a task handed out maxAttempts (2) times fails at the next boot.
      const loop = await createTask(env.store.db, { type: 'inventory', mac: MAC_B }, { allowUnknownHost: true });
      assert.ok((await pxe(env.fb, MAC_B)).token);
      assert.ok((await pxe(env.fb, MAC_B)).token);
      const third = await pxe(env.fb, MAC_B);
      assert.equal(third.token, null);
      const failed = await getTask(env.store.db, loop.id);
      assert.equal(failed?.state, 'failed');
      assert.match(failed?.error ?? '', /PXE-booted 2 times without finishing/);
    },
    { maxAttempts: 2 },
  );
});
