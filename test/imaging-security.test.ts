/**
 * What the unauthenticated boot-time endpoints may and may not do, on a real
 * server on 127.0.0.1 (other loopback addresses play other machines): a
 * task token works only from the address it was handed to; another address
 * asking for the task does not rotate it; the agent's hardware identity must
 * match the host's inventory of record before any byte moves; menu
 * registration makes pending hosts, rate-limited per address; captures add
 * image revisions, rollback and approval choose which one deploys write.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHost, createTask, getInventory, getTask, listHosts, listTasks, putInventory, updateHost } from '../src/store/index.js';
import { getRevision } from '../src/store/images.js';
import { agent, capture, MAC_A, MAC_B, manifestFor, pxe, requestFrom, sampleInventory, withServer, type Env } from './imaging-helpers.js';

const OTHER = '127.0.0.2';

async function api(env: Env, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${env.fb.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${env.fb.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const logged = (env: Env, re: RegExp): boolean => env.logs.some((l) => re.test(String(l['msg'])));

test('a task token works only from the address it was handed to (403 and a log line from any other); another address asking does not rotate it', async () => {
  await withServer(async (env) => {
    await createHost(env.store.db, { mac: MAC_A });
    const task = await createTask(env.store.db, { type: 'capture', mac: MAC_A, image: 'golden' });
    const boot = await pxe(env.fb, MAC_A);
    assert.ok(boot.token);
    assert.match(boot.script, /fleetboot\.ip=127\.0\.0\.1 /, 'the environment is told the address its token is bound to');
    assert.equal((await getTask(env.store.db, task.id))?.tokenIp, '127.0.0.1');
    const auth = { authorization: `Bearer ${boot.token}` };

    // The impostor has the token (sniffed from the wire or the console) but another address.
    const spec = await requestFrom(OTHER, 'GET', `${env.fb.url}/agent/v1/task`, auth);
    assert.equal(spec.status, 403, spec.text);
    assert.match(spec.text, /handed to 127\.0\.0\.1; requests from 127\.0\.0\.2 are refused/);
    const up = await requestFrom(OTHER, 'PUT', `${env.fb.url}/agent/v1/task/streams/p1.raw.zst`, { ...auth, 'content-type': 'application/octet-stream' }, randomBytes(1000));
    assert.equal(up.status, 403);
    const done = await requestFrom(OTHER, 'POST', `${env.fb.url}/agent/v1/task/complete`, { ...auth, 'content-type': 'application/json' }, JSON.stringify({ type: 'capture', manifest: manifestFor({}) }));
    assert.equal(done.status, 403);
    assert.ok(logged(env, /token was used from 127\.0\.0\.2, but it was handed to 127\.0\.0\.1: refused \(403\)/), 'the impostor is in the log');
    assert.ok(!existsSync(join(env.dir, 'images', '.incoming', `task-${task.id}-incoming`)), 'nothing was received');

    // The impostor asks /boot/decide for the MAC: it waits, the token is not rotated, no attempt is used.
    const decide = await requestFrom(OTHER, 'GET', `${env.fb.url}/boot/decide?mac=${MAC_A}`);
    assert.doesNotMatch(decide.text, /fleetboot\.token=/);
    assert.match(decide.text, /was handed to 127\.0\.0\.1, last contact \d+ s ago. not handed to 127\.0\.0\.2/);
    assert.match(decide.text, /^chain --replace --autofree /m, 'the asker is told to ask again later');
    const after = await getTask(env.store.db, task.id);
    assert.equal(after?.attempts, 1);
    assert.equal(after?.tokenIp, '127.0.0.1');
    assert.ok(logged(env, /possible impostor or second machine with this MAC/));
    // The real machine goes on with its token.
    const a = agent(env.fb, boot.token);
    assert.equal((await a.get('/task')).status, 200);
    assert.equal((await a.put('p1.raw.zst', Buffer.alloc(1000, 7))).status, 200);

    // The machine itself booting again (same address) gets a new attempt and token; the old one stops working.
    await env.store.db.updateTable('tasks').set({ state: 'booting' }).where('id', '=', task.id).execute();
    const again = await pxe(env.fb, MAC_A);
    assert.ok(again.token && again.token !== boot.token);
    assert.equal((await getTask(env.store.db, task.id))?.attempts, 2);
    assert.equal((await agent(env.fb, boot.token).get('/task')).status, 401);
  });
});

test('the agent reports its hardware identity before any transfer; a machine that is not the recorded one fails the task naming both', async () => {
  await withServer(async (env) => {
    await createHost(env.store.db, { mac: MAC_A });
    const recorded = sampleInventory(MAC_A); // SMBIOS serial SN-123, disks sda (QEMU HARDDISK, 8 GiB) and nvme0n1
    await putInventory(env.store.db, MAC_A, recorded);
    const same = { smbiosUuid: recorded.smbios.uuid, smbiosSerial: recorded.smbios.serial, disk: { name: 'sda', model: 'QEMU HARDDISK', sizeBytes: 8 * 1024 ** 3 } };

    // No identity, no transfer.
    const t0 = await createTask(env.store.db, { type: 'capture', mac: MAC_A, image: 'golden' });
    const b0 = await pxe(env.fb, MAC_A);
    assert.ok(b0.token);
    const quiet = agent(env.fb, b0.token, { identity: false });
    assert.equal((await quiet.get('/task')).status, 200);
    const slot = await quiet.post('/task/slot');
    assert.equal(slot.status, 428);
    assert.match(await slot.text(), /report the hardware identity .* before any transfer/);
    assert.equal((await quiet.put('p1.raw.zst', Buffer.alloc(100))).status, 428);
    // Another machine's identity (serial): failed before a byte moved, both named.
    const bad = await quiet.post('/task/identity', { ...same, smbiosSerial: 'SN-999' });
    assert.equal(bad.status, 409);
    const failed = await getTask(env.store.db, t0.id);
    assert.equal(failed?.state, 'failed');
    assert.match(failed?.error ?? '', /SMBIOS serial differ.*reports SMBIOS UUID 8d2a1b3c-0000-4000-8000-000000000001, serial SN-999.*inventory of record has SMBIOS UUID 8d2a1b3c-0000-4000-8000-000000000001, serial SN-123/);
    assert.equal(failed?.bytesDone, 0);
    assert.equal((await quiet.put('p1.raw.zst', Buffer.alloc(100))).status, 409, 'the task is over');

    // The right machine with another disk than recorded: refused too, naming the disks.
    const t1 = await createTask(env.store.db, { type: 'capture', mac: MAC_A, image: 'golden' });
    const b1 = await pxe(env.fb, MAC_A);
    assert.ok(b1.token);
    const a1 = agent(env.fb, b1.token, { identity: false });
    assert.equal((await a1.get('/task')).status, 200);
    assert.equal((await a1.post('/task/identity', { ...same, disk: { name: 'sda', model: 'Samsung SSD 870', sizeBytes: 500 * 1024 ** 3 } })).status, 409);
    assert.match((await getTask(env.store.db, t1.id))?.error ?? '', /disk differ.*disk Samsung SSD 870 of 536870912000 bytes.*disk QEMU HARDDISK of 8589934592 bytes or disk NVMe disk of 549755813888 bytes/);

    // The recorded machine: the capture goes through.
    await createTask(env.store.db, { type: 'capture', mac: MAC_A, image: 'golden' });
    const b2 = await pxe(env.fb, MAC_A);
    assert.ok(b2.token);
    const a2 = agent(env.fb, b2.token, { identity: same });
    assert.equal((await a2.get('/task')).status, 200);
    assert.deepEqual(await (await a2.post('/task/slot')).json(), { granted: true });
    const data = { 'p1.raw.zst': randomBytes(5000) };
    assert.equal((await a2.put('p1.raw.zst', data['p1.raw.zst'])).status, 200);
    assert.equal((await a2.post('/task/complete', { type: 'capture', manifest: manifestFor(data) })).status, 200);
    assert.equal((await getRevision(env.store.db, 'golden'))?.revision.number, 1);
  });
});

test("a menu inventory of a known host is stored only from the machine its inventory of record describes", async () => {
  await withServer(async (env) => {
    await createHost(env.store.db, { mac: MAC_A });
    await putInventory(env.store.db, MAC_A, sampleInventory(MAC_A));
    const res = await fetch(`${env.fb.url}/boot/task?mac=${MAC_A}&type=inventory`);
    const token = /fleetboot\.token=([0-9a-f]+)/.exec(await res.text())?.[1];
    assert.ok(token);
    const a = agent(env.fb, token, { identity: false });
    assert.equal((await a.get('/task')).status, 200);
    const other = { ...sampleInventory(MAC_A), smbios: { ...sampleInventory(MAC_A).smbios, serial: 'SN-999', product: 'Impostor' } };
    assert.equal((await a.post('/task/complete', { type: 'inventory', inventory: other })).status, 409);
    assert.equal((await getInventory(env.store.db, MAC_A))?.inventory.smbios.product, 'Standard PC (i440FX + PIIX, 1996)', 'the record is unchanged');
    assert.match((await listTasks(env.store.db, { mac: MAC_A, limit: 1 }))[0]?.error ?? '', /inventory refused: .*serial SN-999/);
    // Nor through a failure report, which may carry an inventory too.
    const again = await fetch(`${env.fb.url}/boot/task?mac=${MAC_A}&type=inventory`);
    const token2 = /fleetboot\.token=([0-9a-f]+)/.exec(await again.text())?.[1];
    assert.ok(token2);
    const b = agent(env.fb, token2, { identity: false });
    assert.equal((await b.post('/task/fail', { reason: 'no disk', inventory: other })).status, 200);
    assert.equal((await getInventory(env.store.db, MAC_A))?.inventory.smbios.product, 'Standard PC (i440FX + PIIX, 1996)', 'a failure report does not replace the record either');
    assert.ok(logged(env, /the inventory sent with the failure was not stored: this machine is not the one recorded/));
  });
});

test('2,000 menu registrations for random MACs from one address make at most the rate limit of pending hosts, none assigned anything', async () => {
  await withServer(
    async (env) => {
      const started = Date.now();
      let refused = 0;
      for (let i = 0; i < 2000; i++) {
        const mac = ['52', ...Array.from(randomBytes(5), (b) => b.toString(16).padStart(2, '0'))].join(':');
        const text = await (await fetch(`${env.fb.url}/boot/task?mac=${mac}&type=register`)).text();
        if (/too many registrations or tasks from 127\.0\.0\.1: at most 20 at once and 10 per minute. nothing was created/.test(text)) refused++;
      }
      const minutes = (Date.now() - started) / 60_000;
      const pending = await listHosts(env.store.db, { status: 'pending' });
      assert.ok(pending.length >= 20 && pending.length <= 20 + Math.ceil(minutes * 10), `${pending.length} pending hosts after ${minutes.toFixed(2)} min`);
      assert.equal(refused, 2000 - pending.length);
      assert.equal((await listHosts(env.store.db, { status: 'approved' })).length, 0);
      for (const h of pending) assert.deepEqual([h.entry, h.ip], [null, null]);
      assert.ok((await listTasks(env.store.db)).every((t) => t.type === 'register'), 'only their register tasks');
      assert.ok(logged(env, /over the boot-time creation limit/));
      // Nothing can be given to a pending host until it is approved.
      const p = pending[0];
      assert.ok(p);
      await assert.rejects(updateHost(env.store.db, p.mac, { ip: '10.0.0.9' }), /pending approval/);
      await env.store.db.updateTable('tasks').set({ state: 'cancelled' }).where('mac', '=', p.mac).execute();
      await assert.rejects(createTask(env.store.db, { type: 'inventory', mac: p.mac }), /pending approval: approve it first/);
      // A pending host boots its local disk; approved, it is a host.
      assert.match((await pxe(env.fb, p.mac)).script, /waiting for approval/);
      const approved = await api(env, 'POST', `/hosts/${p.mac}/approve`, { name: 'lab-pc-1' });
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      assert.equal(approved.body['status'], 'approved');
      const inbox = await api(env, 'GET', '/hosts?status=pending');
      assert.equal((inbox.body['hosts'] as unknown[]).length, pending.length - 1);
      const q = pending[1];
      assert.ok(q);
      await putInventory(env.store.db, q.mac, sampleInventory(q.mac));
      assert.equal((await api(env, 'POST', `/hosts/${q.mac}/reject`)).status, 200);
      assert.equal(await getInventory(env.store.db, q.mac), null, "a rejected machine's inventory goes with it");
      assert.equal((await api(env, 'POST', `/hosts/${p.mac}/reject`)).status, 409, 'an approved host is not rejected');
    },
    { createRateLimit: { burst: 20, perMinute: 10 } },
  );
});

test('revisions: captures add revisions; rollback makes deploys write the earlier one (manifest sha256 checked); keepRevisions prunes', async () => {
  await withServer(
    async (env) => {
      await createHost(env.store.db, { mac: MAC_A });
      await createHost(env.store.db, { mac: MAC_B });
      const first = { 'p1.raw.zst': Buffer.alloc(3000, 1) };
      const second = { 'p1.raw.zst': Buffer.alloc(4000, 2) };
      await capture(env, MAC_A, 'golden', first);
      await capture(env, MAC_A, 'golden', second);
      let shown = await api(env, 'GET', '/images/golden');
      const revs = shown.body['revisions'] as Array<{ number: number; current: boolean; manifestSha256: string; sourceMac: string }>;
      assert.deepEqual(revs.map((r) => [r.number, r.current, r.sourceMac]), [[1, false, MAC_A], [2, true, MAC_A]]);
      assert.equal(shown.body['revision'], 2);

      const rolled = await api(env, 'POST', '/images/golden/rollback', { to: 1 });
      assert.equal(rolled.status, 200);
      assert.equal(rolled.body['number'], 1);
      const deploy = await api(env, 'POST', '/tasks', { type: 'deploy', mac: MAC_B, image: 'golden' });
      assert.equal(deploy.status, 201);
      const b = await pxe(env.fb, MAC_B);
      assert.ok(b.token);
      const a = agent(env.fb, b.token);
      const spec = (await (await a.get('/task')).json()) as { revision: number; manifest: { partitions: Array<{ sha256: string }> } };
      assert.equal(spec.revision, 1);
      assert.equal(spec.manifest.partitions[0]?.sha256, createHash('sha256').update(first['p1.raw.zst']).digest('hex'));
      const rev1 = await getRevision(env.store.db, 'golden', 1);
      assert.ok(rev1);
      const fileSha = createHash('sha256').update(readFileSync(join(env.dir, 'images', rev1.dir, 'manifest.json'))).digest('hex');
      assert.equal(fileSha, revs[0]?.manifestSha256, 'the recorded sha256 is the manifest file of revision 1');
      assert.deepEqual(Buffer.from(await (await a.get('/task/image/p1.raw.zst')).arrayBuffer()), first['p1.raw.zst']);
      assert.equal((await getTask(env.store.db, Number(deploy.body['id'])))?.revision, 1, 'the deploy is pinned to revision 1');
      // Rolling forward meanwhile does not change what this deploy writes.
      assert.equal((await api(env, 'POST', '/images/golden/rollback', { to: 2 })).status, 200);
      assert.deepEqual(Buffer.from(await (await a.get('/task/image/p1.raw.zst')).arrayBuffer()), first['p1.raw.zst']);
      assert.equal((await a.post('/task/complete', { type: 'deploy', verified: true })).status, 200);
      // A retry of a deploy that asked for "the current revision" asks for it again (not for the revision the first run pinned).
      await env.store.db.updateTable('tasks').set({ state: 'failed' }).where('id', '=', Number(deploy.body['id'])).execute();
      const retried = await api(env, 'POST', `/tasks/${String(deploy.body['id'])}/retry`);
      assert.equal(retried.status, 201);
      assert.equal(retried.body['revision'], null);
      await api(env, 'POST', `/tasks/${String(retried.body['id'])}/cancel`);
      // Rollback without --to: the newest ready revision before the current one.
      assert.equal((await api(env, 'POST', '/images/golden/rollback', {})).body['number'], 1);
      assert.equal((await api(env, 'POST', '/images/golden/rollback', {})).status, 409, 'nothing before revision 1');

      // keepRevisions 2: a third capture (current now) leaves revisions 2 and 3; revision 1's files go.
      await capture(env, MAC_A, 'golden', { 'p1.raw.zst': Buffer.alloc(10, 3) });
      shown = await api(env, 'GET', '/images/golden');
      assert.deepEqual((shown.body['revisions'] as Array<{ number: number; current: boolean }>).map((r) => [r.number, r.current]), [[2, false], [3, true]]);
      assert.ok(!existsSync(join(env.dir, 'images', rev1.dir)), "revision 1's files are gone");
    },
    { keepRevisions: 2 },
  );
});

test('captureApproval: a new revision waits as pending and is not deployed until approved', async () => {
  await withServer(
    async (env) => {
      await createHost(env.store.db, { mac: MAC_A });
      await createHost(env.store.db, { mac: MAC_B });
      await capture(env, MAC_A, 'golden', { 'p1.raw.zst': Buffer.alloc(100, 1) });
      const none = await api(env, 'POST', '/tasks', { type: 'deploy', mac: MAC_B, image: 'golden' });
      assert.equal(none.status, 409);
      assert.match(String(none.body['message']), /no approved revision yet/);
      assert.equal((await api(env, 'POST', '/images/golden/revisions/1/approve')).status, 200);
      await capture(env, MAC_A, 'golden', { 'p1.raw.zst': Buffer.alloc(100, 2) });
      const shown = await api(env, 'GET', '/images/golden');
      assert.equal(shown.body['revision'], 1);
      assert.equal(shown.body['pending'], 1);
      assert.equal((await api(env, 'POST', '/tasks', { type: 'deploy', mac: MAC_B, image: 'golden', revision: 2 })).status, 409, 'a pending revision is not deployed');
      const d = await api(env, 'POST', '/tasks', { type: 'deploy', mac: MAC_B, image: 'golden' });
      const b = await pxe(env.fb, MAC_B);
      assert.ok(b.token);
      assert.equal(((await (await agent(env.fb, b.token).get('/task')).json()) as { revision: number }).revision, 1);
      await api(env, 'POST', `/tasks/${String(d.body['id'])}/cancel`);
      assert.equal((await api(env, 'POST', '/images/golden/revisions/2/approve')).body['current'], true);
      assert.equal((await api(env, 'GET', '/images/golden')).body['revision'], 2);
      assert.equal((await api(env, 'POST', '/images/golden/revisions/2/approve')).status, 409);
    },
    { captureApproval: true },
  );
});

test('a capture whose completion is refused leaves no uploads behind', async () => {
  await withServer(async (env) => {
    await createHost(env.store.db, { mac: MAC_A });
    const task = await createTask(env.store.db, { type: 'capture', mac: MAC_A, image: 'golden' });
    const boot = await pxe(env.fb, MAC_A);
    assert.ok(boot.token);
    const a = agent(env.fb, boot.token);
    assert.equal((await a.get('/task')).status, 200);
    const data = randomBytes(5000);
    assert.equal((await a.put('p1.raw.zst', data)).status, 200);
    assert.ok(existsSync(join(env.dir, 'images', '.incoming', `task-${task.id}-incoming`)));
    // The manifest says other bytes than were uploaded.
    const refused = await a.post('/task/complete', { type: 'capture', manifest: manifestFor({ 'p1.raw.zst': randomBytes(5000) }) });
    assert.equal(refused.status, 400);
    assert.equal((await getTask(env.store.db, task.id))?.state, 'failed');
    assert.ok(!existsSync(join(env.dir, 'images', '.incoming', `task-${task.id}-incoming`)), 'the refused uploads were removed');
  });
});
