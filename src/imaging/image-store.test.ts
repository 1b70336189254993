import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FleetbootError } from '../lib/errors.js';
import { approveRevision, createHost, createTask, getImage, getRevision, getTask, listRevisions, openStore, pruneRevisions, setCurrentRevision, type Store } from '../store/index.js';
import { cleanupOrphans, commitCapture, discardIncoming, imageStreamPath, receiveStream, removeImage, StreamTooLargeError } from './image-store.js';
import type { Manifest } from '../model/manifest.js';

const MAC = '52:54:00:00:00:01';
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function withStore(fn: (s: Store) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-images-'));
  const s = await openStore(dir);
  try {
    await createHost(s.db, { mac: MAC });
    await fn(s);
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function manifest(streams: Record<string, Buffer>): Manifest {
  return {
    format: 'fleetboot-image',
    version: 1,
    name: 'whatever',
    createdAt: '2026-01-01T00:00:00.000Z',
    source: { mac: null, taskId: null, disk: null, diskModel: null },
    diskBytes: 1 << 30,
    table: { type: 'gpt', sectorSize: 512, id: null, sfdisk: 'label: gpt\n' },
    partitions: Object.entries(streams).map(([file, data], i) => ({
      number: i + 1,
      start: 2048 + i * 4096,
      sectors: 4096,
      type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
      uuid: null,
      name: null,
      bootable: false,
      filesystem: null,
      tool: 'raw',
      compression: 'zstd' as const,
      file,
      sizeBytes: 4096 * 512,
      usedBytes: null,
      streamBytes: data.length,
      sha256: sha(data),
    })),
  };
}

async function upload(s: Store, taskId: number, streams: Record<string, Buffer>): Promise<void> {
  for (const [file, data] of Object.entries(streams)) await receiveStream(s, taskId, file, Readable.from([data]), { maxBytes: 1 << 30 });
}

const OPTS = { mac: MAC, maxBytes: 1 << 30, approval: false, keepRevisions: 3 };
const isCode = (c: string) => (e: unknown) => e instanceof FleetbootError && e.code === c;

test('commitCapture() turns verified uploads into an image and replaces the old one only then', async () => {
  await withStore(async (s) => {
    const one = { 'p1.raw.zst': randomBytes(5000) };
    const cap = await createTask(s.db, { type: 'capture', mac: MAC, image: 'img' });
    await upload(s, cap.id, one);
    const c1 = await commitCapture(s, cap.id, 'img', manifest(one), OPTS);
    const info = c1.info;
    assert.ok(info);
    assert.equal(c1.revision, 1);
    assert.equal(info.name, 'img');
    assert.equal(info.revision, 1);
    assert.equal(info.taskId, cap.id);
    // The commit ended the task in the same transaction.
    assert.equal((await getTask(s.db, cap.id))?.state, 'done');
    // A second commit for a task that is no longer active changes nothing.
    const late = { 'p1.raw.zst': randomBytes(10) };
    await upload(s, cap.id, late);
    await assert.rejects(commitCapture(s, cap.id, 'img', manifest(late), OPTS), isCode('CONFLICT'));
    assert.equal((await getImage(s.db, 'img'))?.info.sizeBytes, 5000);
    assert.equal(info.sourceMac, MAC);
    const rec = await getRevision(s.db, 'img');
    assert.ok(rec);
    const dir = join(s.dataDir, 'images', rec.dir);
    assert.deepEqual(readdirSync(dir).sort(), ['manifest.json', 'p1.raw.zst']);
    assert.equal(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).name, 'img');
    // The recorded sha256 is of manifest.json as stored (what sha256sum says).
    assert.equal(rec.revision.manifestSha256, createHash('sha256').update(readFileSync(join(dir, 'manifest.json'))).digest('hex'));
    assert.equal(c1.manifestSha256, rec.revision.manifestSha256);

    // A second capture with a missing stream: refused, naming the partition; the image is untouched.
    const two = { 'p1.raw.zst': randomBytes(100), 'p2.raw.zst': randomBytes(100) };
    const cap2 = await createTask(s.db, { type: 'capture', mac: MAC, image: 'img' });
    await upload(s, cap2.id, { 'p1.raw.zst': two['p1.raw.zst'] });
    await assert.rejects(commitCapture(s, cap2.id, 'img', manifest(two), OPTS), /Partition 2: stream p2\.raw\.zst was not uploaded/);
    // A stream with other bytes than the manifest says.
    await upload(s, cap2.id, { 'p2.raw.zst': randomBytes(101) });
    await assert.rejects(commitCapture(s, cap2.id, 'img', manifest(two), OPTS), /Partition 2: stream p2\.raw\.zst has 101 bytes/);
    assert.equal((await getRevision(s.db, 'img'))?.dir, rec.dir);
    assert.deepEqual(readFileSync(join(dir, 'p1.raw.zst')), one['p1.raw.zst']);

    // Fixed: the commit adds revision 2 and makes it current; revision 1 stays as it was.
    await upload(s, cap2.id, { 'p2.raw.zst': two['p2.raw.zst'] });
    assert.equal((await commitCapture(s, cap2.id, 'img', manifest(two), OPTS)).revision, 2);
    const now = await getImage(s.db, 'img');
    assert.equal(now?.info.partitions, 2);
    assert.equal(now?.info.revision, 2);
    assert.ok(existsSync(dir), 'revision 1 is kept');
    assert.deepEqual(readFileSync(join(dir, 'p1.raw.zst')), one['p1.raw.zst']);
    const p = await imageStreamPath(s, 'img', 2, 'p2.raw.zst');
    assert.ok(p);
    assert.deepEqual(readFileSync(p), two['p2.raw.zst']);
    assert.equal(await imageStreamPath(s, 'img', 2, 'p3.raw.zst'), null);
    assert.equal(await imageStreamPath(s, 'img', 1, 'p2.raw.zst'), null, 'revision 1 has no partition 2');
    assert.deepEqual(readdirSync(join(s.dataDir, 'images', '.incoming')), []);
  });
});

test('commitCapture() refuses an invalid manifest; receiveStream() refuses bad names and oversized streams', async () => {
  await withStore(async (s) => {
    await upload(s, 3, { 'p1.raw.zst': Buffer.from('x') });
    await assert.rejects(commitCapture(s, 3, 'img', { format: 'nope' }, OPTS), /Invalid manifest/);
    await assert.rejects(receiveStream(s, 3, '../p1.raw.zst', Readable.from([Buffer.from('x')]), { maxBytes: 10 }), isCode('INVALID_INPUT'));
    await assert.rejects(receiveStream(s, 3, 'p2.raw.zst', Readable.from([randomBytes(11)]), { maxBytes: 10 }), (e: unknown) => e instanceof StreamTooLargeError);
    const incoming = readdirSync(join(s.dataDir, 'images', '.incoming'));
    assert.equal(incoming.length, 1);
    assert.deepEqual(readdirSync(join(s.dataDir, 'images', '.incoming', incoming[0] as string)).filter((f) => !f.startsWith('.')), ['p1.raw.zst']);
    await discardIncoming(s, 3);
    assert.deepEqual(readdirSync(join(s.dataDir, 'images', '.incoming')), []);
  });
});

test('removeImage() deletes the row and the directory; NOT_FOUND; CONFLICT while a task uses it', async () => {
  await withStore(async (s) => {
    const one = { 'p1.raw.zst': randomBytes(10) };
    const cap = await createTask(s.db, { type: 'capture', mac: MAC, image: 'img' });
    await upload(s, cap.id, one);
    await commitCapture(s, cap.id, 'img', manifest(one), OPTS);
    const rec = await getRevision(s.db, 'img');
    assert.ok(rec);
    const t = await createTask(s.db, { type: 'deploy', mac: MAC, image: 'img' });
    await assert.rejects(removeImage(s, 'img'), isCode('CONFLICT'));
    await s.db.updateTable('tasks').set({ state: 'done' }).where('id', '=', t.id).execute();
    await removeImage(s, 'img');
    assert.equal(await getImage(s.db, 'img'), null);
    assert.ok(!existsSync(join(s.dataDir, 'images', rec.dir)));
    await assert.rejects(removeImage(s, 'img'), isCode('NOT_FOUND'));
  });
});

test('cleanupOrphans() removes directories no row points at and incoming ones of inactive tasks', async () => {
  await withStore(async (s) => {
    const one = { 'p1.raw.zst': randomBytes(10) };
    const cap = await createTask(s.db, { type: 'capture', mac: MAC, image: 'img' });
    await upload(s, cap.id, one);
    await commitCapture(s, cap.id, 'img', manifest(one), OPTS);
    const rec = await getRevision(s.db, 'img');
    const active = await createTask(s.db, { type: 'capture', mac: MAC, image: 'next' });
    const root = join(s.dataDir, 'images');
    mkdirSync(join(root, '11111111-1111-4111-8111-111111111111'));
    writeFileSync(join(root, '11111111-1111-4111-8111-111111111111', 'p1.raw.zst'), 'old');
    mkdirSync(join(root, '.incoming', 'task-999-abc'));
    mkdirSync(join(root, '.incoming', `task-${active.id}-def`));
    // Partial pulls (replication): kept for a revision that exists, removed for one that is gone.
    mkdirSync(join(root, '.replicating', rec?.dir ?? 'x'), { recursive: true });
    mkdirSync(join(root, '.replicating', '22222222-2222-4222-8222-222222222222'));
    const removed = await cleanupOrphans(s);
    assert.deepEqual(removed.sort(), ['.incoming/task-999-abc', '.replicating/22222222-2222-4222-8222-222222222222', '11111111-1111-4111-8111-111111111111']);
    assert.ok(existsSync(join(root, '.replicating', rec?.dir ?? 'x')));
    assert.ok(existsSync(join(root, rec?.dir ?? 'x')));
    assert.ok(existsSync(join(root, '.incoming', `task-${active.id}-def`)), 'an active capture keeps its uploads across a restart');
  });
});

test('revisions: pruning beyond keepRevisions never removes the current one; rollback and approval move the current pointer', async () => {
  await withStore(async (s) => {
    const capture = async (fill: number, approval = false) => {
      const data = { 'p1.raw.zst': Buffer.alloc(100, fill) };
      const cap = await createTask(s.db, { type: 'capture', mac: MAC, image: 'img' });
      await upload(s, cap.id, data);
      return commitCapture(s, cap.id, 'img', manifest(data), { ...OPTS, keepRevisions: 2, approval });
    };
    const dirOf = async (n: number) => join(s.dataDir, 'images', (await getRevision(s.db, 'img', n))?.dir ?? 'none');
    assert.equal((await capture(1)).revision, 1);
    assert.equal((await capture(2)).info?.revision, 2, 'a ready revision becomes current');
    const d1 = await dirOf(1);
    const d2 = await dirOf(2);
    await setCurrentRevision(s.db, 'img', 1);
    assert.equal((await getImage(s.db, 'img'))?.info.revision, 1);
    // Pending revision 3: revision 1 is beyond keep 2, but it is current, so it stays.
    const c3 = await capture(3, true);
    assert.equal(c3.state, 'pending');
    assert.deepEqual(c3.pruned, []);
    assert.equal((await getImage(s.db, 'img'))?.info.revision, 1, 'a pending revision is not current');
    await assert.rejects(setCurrentRevision(s.db, 'img', 3), isCode('CONFLICT'));
    await assert.rejects(createTask(s.db, { type: 'deploy', mac: MAC, image: 'img', revision: 3 }), isCode('CONFLICT'));
    await approveRevision(s.db, 'img', 3);
    assert.equal((await getImage(s.db, 'img'))?.info.revision, 3);
    await assert.rejects(approveRevision(s.db, 'img', 3), isCode('CONFLICT'));
    // Revision 4 (current): 1 and 2 go, rows and directories.
    const c4 = await capture(4);
    assert.deepEqual(c4.pruned, [2, 1]);
    assert.deepEqual((await listRevisions(s.db, 'img')).map((r) => r.revision.number), [3, 4]);
    assert.ok(!existsSync(d1) && !existsSync(d2));
    await assert.rejects(setCurrentRevision(s.db, 'img', 2), isCode('NOT_FOUND'));
  });
});

test('revisions: a revision an active deploy writes is not pruned', async () => {
  await withStore(async (s) => {
    for (const fill of [1, 2, 3]) {
      const data = { 'p1.raw.zst': Buffer.alloc(100, fill) };
      const cap = await createTask(s.db, { type: 'capture', mac: MAC, image: 'img' });
      await upload(s, cap.id, data);
      await commitCapture(s, cap.id, 'img', manifest(data), { ...OPTS, keepRevisions: 10 });
    }
    const other = '52:54:00:00:00:02';
    await createHost(s.db, { mac: other });
    const deploy = await createTask(s.db, { type: 'deploy', mac: other, image: 'img', revision: 1 });
    assert.deepEqual((await pruneRevisions(s.db, 'img', 1)).map((p) => p.number), [2], 'revision 1 is being deployed, 3 is current');
    await s.db.updateTable('tasks').set({ state: 'done' }).where('id', '=', deploy.id).execute();
    assert.deepEqual((await pruneRevisions(s.db, 'img', 1)).map((p) => p.number), [1]);
  });
});
