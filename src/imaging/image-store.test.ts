import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FleetbootError } from '../lib/errors.js';
import { createHost, createTask, getImage, getImageRecord, getTask, openStore, type Store } from '../store/index.js';
import { cleanupOrphans, commitCapture, discardIncoming, imageStreamPath, receiveStream, removeImage, StreamTooLargeError } from './image-store.js';
import type { Manifest } from './manifest.js';

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

const isCode = (c: string) => (e: unknown) => e instanceof FleetbootError && e.code === c;

test('commitCapture() turns verified uploads into an image and replaces the old one only then', async () => {
  await withStore(async (s) => {
    const one = { 'p1.raw.zst': randomBytes(5000) };
    const cap = await createTask(s.db, { type: 'capture', mac: MAC, image: 'img' });
    await upload(s, cap.id, one);
    const info = await commitCapture(s, cap.id, 'img', manifest(one), { mac: MAC, maxBytes: 1 << 30 });
    assert.equal(info.name, 'img');
    assert.equal(info.taskId, cap.id);
    // The commit ended the task in the same transaction.
    assert.equal((await getTask(s.db, cap.id))?.state, 'done');
    // A second commit for a task that is no longer active changes nothing.
    const late = { 'p1.raw.zst': randomBytes(10) };
    await upload(s, cap.id, late);
    await assert.rejects(commitCapture(s, cap.id, 'img', manifest(late), { mac: MAC, maxBytes: 1 << 30 }), isCode('CONFLICT'));
    assert.equal((await getImage(s.db, 'img'))?.info.sizeBytes, 5000);
    assert.equal(info.sourceMac, MAC);
    const rec = await getImageRecord(s.db, 'img');
    assert.ok(rec);
    const dir = join(s.dataDir, 'images', rec.dir);
    assert.deepEqual(readdirSync(dir).sort(), ['manifest.json', 'p1.raw.zst']);
    assert.equal(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).name, 'img');

    // A second capture with a missing stream: refused, naming the partition; the image is untouched.
    const two = { 'p1.raw.zst': randomBytes(100), 'p2.raw.zst': randomBytes(100) };
    const cap2 = await createTask(s.db, { type: 'capture', mac: MAC, image: 'img' });
    await upload(s, cap2.id, { 'p1.raw.zst': two['p1.raw.zst'] });
    await assert.rejects(commitCapture(s, cap2.id, 'img', manifest(two), { mac: MAC, maxBytes: 1 << 30 }), /Partition 2: stream p2\.raw\.zst was not uploaded/);
    // A stream with other bytes than the manifest says.
    await upload(s, cap2.id, { 'p2.raw.zst': randomBytes(101) });
    await assert.rejects(commitCapture(s, cap2.id, 'img', manifest(two), { mac: MAC, maxBytes: 1 << 30 }), /Partition 2: stream p2\.raw\.zst has 101 bytes/);
    assert.equal((await getImageRecord(s.db, 'img'))?.dir, rec.dir);
    assert.deepEqual(readFileSync(join(dir, 'p1.raw.zst')), one['p1.raw.zst']);

    // Fixed: the commit replaces the image and removes the old directory.
    await upload(s, cap2.id, { 'p2.raw.zst': two['p2.raw.zst'] });
    await commitCapture(s, cap2.id, 'img', manifest(two), { mac: MAC, maxBytes: 1 << 30 });
    const now = await getImage(s.db, 'img');
    assert.equal(now?.info.partitions, 2);
    assert.ok(!existsSync(dir), 'the old directory is gone');
    const p = await imageStreamPath(s, 'img', 'p2.raw.zst');
    assert.ok(p);
    assert.deepEqual(readFileSync(p), two['p2.raw.zst']);
    assert.equal(await imageStreamPath(s, 'img', 'p3.raw.zst'), null);
    assert.deepEqual(readdirSync(join(s.dataDir, 'images', '.incoming')), []);
  });
});

test('commitCapture() refuses an invalid manifest; receiveStream() refuses bad names and oversized streams', async () => {
  await withStore(async (s) => {
    await upload(s, 3, { 'p1.raw.zst': Buffer.from('x') });
    await assert.rejects(commitCapture(s, 3, 'img', { format: 'nope' }, { mac: MAC, maxBytes: 1 << 30 }), /Invalid manifest/);
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
    await commitCapture(s, cap.id, 'img', manifest(one), { mac: MAC, maxBytes: 1 << 30 });
    const rec = await getImageRecord(s.db, 'img');
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
    await commitCapture(s, cap.id, 'img', manifest(one), { mac: MAC, maxBytes: 1 << 30 });
    const rec = await getImageRecord(s.db, 'img');
    const active = await createTask(s.db, { type: 'capture', mac: MAC, image: 'next' });
    const root = join(s.dataDir, 'images');
    mkdirSync(join(root, '11111111-1111-4111-8111-111111111111'));
    writeFileSync(join(root, '11111111-1111-4111-8111-111111111111', 'p1.raw.zst'), 'old');
    mkdirSync(join(root, '.incoming', 'task-999-abc'));
    mkdirSync(join(root, '.incoming', `task-${active.id}-def`));
    const removed = await cleanupOrphans(s);
    assert.deepEqual(removed.sort(), ['.incoming/task-999-abc', '11111111-1111-4111-8111-111111111111']);
    assert.ok(existsSync(join(root, rec?.dir ?? 'x')));
    assert.ok(existsSync(join(root, '.incoming', `task-${active.id}-def`)), 'an active capture keeps its uploads across a restart');
  });
});
