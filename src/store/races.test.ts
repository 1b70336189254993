/**
 * Two servers on one PostgreSQL: two stores (two pools, as two processes
 * have) on one database, racing on the writes they share. SQLite is a
 * single server's store, so these run on PostgreSQL only (the test
 * command's PostgreSQL, src/store/test-postgres.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetbootError } from '../lib/errors.js';
import { silentLogger } from '../lib/log.js';
import { loadConfig } from '../config/config.js';
import { createImagingService } from '../imaging/tasks.js';
import { createTestDatabase } from './test-postgres.js';
import { openStore, type Store } from './db.js';
import {
  addGroupMembers,
  addRevision,
  bootTaskRow,
  claimScheduleRun,
  createGroup,
  createHost,
  createJob,
  createSchedule,
  createTask,
  createUser,
  getTask,
  listUsers,
  updateUser,
} from './index.js';
import { sampleManifest } from './test-fixtures.js';

async function twoServers(fn: (a: Store, b: Store) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-races-'));
  const db = await createTestDatabase();
  const [a, b] = await Promise.all([openStore(dir, { url: db.url, applicationName: 'race-a' }), openStore(dir, { url: db.url, applicationName: 'race-b' })]);
  try {
    await fn(a, b);
  } finally {
    await a.close();
    await b.close();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const mac = (i: number): string => `52:54:00:77:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

test('two servers starting at the same moment on an empty database: both open it, each migration runs once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-races-'));
  const db = await createTestDatabase();
  try {
    const stores = await Promise.all([1, 2, 3].map((i) => openStore(dir, { url: db.url, applicationName: `start-${i}` })));
    const rows = await stores[0]!.db.selectFrom('fleetboot_migrations').select('name').execute();
    const names = rows.map((r) => r.name);
    assert.equal(new Set(names).size, names.length, 'each migration recorded once');
    assert.ok(names.length >= 15, `${names.length} migrations`);
    for (const s of stores) await s.close();
  } finally {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('int8 and count come back as numbers; the C collation orders like SQLite', async () => {
  await twoServers(async (a) => {
    const n = await a.db.selectFrom('hosts').select((e) => e.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    assert.equal(n.n, 0);
    await createHost(a.db, { mac: mac(1), name: 'b-host' });
    await createHost(a.db, { mac: mac(2), name: 'B-host' });
    await createHost(a.db, { mac: mac(3), name: 'a-host' });
    const names = (await a.db.selectFrom('hosts').select('name').orderBy('name').execute()).map((r) => r.name);
    assert.deepEqual(names, ['B-host', 'a-host', 'b-host'], 'byte order, as SQLite');
  });
});

test('ten captures of one image stored by two servers at once are revisions 1..10', async () => {
  await twoServers(async (a, b) => {
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => addRevision(i % 2 ? a.db : b.db, { dir: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, manifest: sampleManifest('racy'), manifestSha256: 'a'.repeat(64), state: 'ready' })),
    );
    assert.deepEqual([...results].sort((x, y) => x - y), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const img = await a.db.selectFrom('images').select('current_revision').where('name', '=', 'racy').executeTakeFirstOrThrow();
    assert.ok(img.current_revision !== null && img.current_revision >= 1);
  });
});

test('a task is handed out once when fifty boot requests reach two servers at once', async () => {
  await twoServers(async (a, b) => {
    await createHost(a.db, { mac: mac(9), name: 'pc9' });
    const t = await createTask(a.db, { type: 'inventory', mac: mac(9) });
    const won = await Promise.all(Array.from({ length: 50 }, (_, i) => bootTaskRow(i % 2 ? a.db : b.db, t.id, String(i).padStart(64, '0'), '10.0.0.9', t)));
    assert.equal(won.filter(Boolean).length, 1, 'one compare-and-swap wins');
    const after = await getTask(b.db, t.id);
    assert.equal(after?.attempts, 1);
  });
});

test('a schedule due on two servers fires once', async () => {
  await twoServers(async (a, b) => {
    await createHost(a.db, { mac: mac(5), name: 'pc5' });
    await createGroup(a.db, 'room');
    await addGroupMembers(a.db, 'room', [mac(5)]);
    const s = await createSchedule(a.db, { name: 'nightly', cron: '0 2 * * *', request: { type: 'inventory', group: 'room' }, nextRunAt: '2026-12-02T02:00:00.000Z' });
    const due = s.nextRunAt;
    assert.ok(due);
    const next = '2026-12-03T02:00:00.000Z';
    const won = await Promise.all(Array.from({ length: 10 }, (_, i) => claimScheduleRun(i % 2 ? a.db : b.db, s.id, due, next, '2026-12-02T02:00:00.000Z')));
    assert.equal(won.filter(Boolean).length, 1);
  });
});

test('transfer slots granted by two servers at once stay within imaging.maxTransfers', async () => {
  await twoServers(async (a, b) => {
    const config = loadConfig({ overrides: { dataDir: a.dataDir, imaging: { maxTransfers: 3 } } });
    const ia = createImagingService({ store: a, config, log: silentLogger });
    const ib = createImagingService({ store: b, config, log: silentLogger });
    const tasks = [];
    for (let i = 0; i < 12; i++) {
      await createHost(a.db, { mac: mac(100 + i), name: `pc${100 + i}` });
      tasks.push(await createTask(a.db, { type: 'inventory', mac: mac(100 + i) }));
    }
    const answers = await Promise.all(tasks.map((t, i) => (i % 2 ? ia : ib).slot(t)));
    assert.equal(answers.filter((x) => x.granted).length, 3, JSON.stringify(answers));
    const running = await a.db.selectFrom('tasks').select('id').where('slot_granted_at', 'is not', null).execute();
    assert.equal(running.length, 3);
  });
});

test('multicast jobs created on two servers at once get distinct group:port endpoints', async () => {
  await twoServers(async (a, b) => {
    await addRevision(a.db, { dir: '00000000-0000-4000-8000-0000000000aa', manifest: sampleManifest('golden'), manifestSha256: 'b'.repeat(64), state: 'ready' });
    for (let g = 0; g < 8; g++) {
      await createGroup(a.db, `room${g}`);
      await createHost(a.db, { mac: mac(200 + g), name: `m${200 + g}` });
      await addGroupMembers(a.db, `room${g}`, [mac(200 + g)]);
    }
    const ports = Array.from({ length: 20 }, (_, i) => 9000 + i * 2);
    const allocate = (used: readonly { address: string; port: number }[]) => {
      const taken = new Set(used.map((u) => `${u.address}:${u.port}`));
      const port = ports.find((p) => !taken.has(`239.255.42.1:${p}`));
      return port === undefined ? null : { address: '239.255.42.1', port };
    };
    const jobs = await Promise.all(
      Array.from({ length: 8 }, (_, g) => createJob(g % 2 ? a.db : b.db, { request: { type: 'deploy', group: `room${g}`, image: 'golden', multicast: {} }, startAt: null, allocateMulticast: allocate })),
    );
    assert.equal(jobs.length, 8);
    const sessions = await a.db.selectFrom('multicast_sessions').select(['address', 'port']).execute();
    assert.equal(sessions.length, 8);
    assert.equal(new Set(sessions.map((s) => `${s.address}:${s.port}`)).size, 8, JSON.stringify(sessions));
  });
});

test('two servers demoting the last two admins at once leave one admin', async () => {
  await twoServers(async (a, b) => {
    await createUser(a.db, { name: 'ann', role: 'admin', passwordHash: 'x', mustChangePassword: false });
    await createUser(a.db, { name: 'bob', role: 'admin', passwordHash: 'x', mustChangePassword: false });
    const r = await Promise.allSettled([updateUser(a.db, 'ann', { role: 'viewer' }), updateUser(b.db, 'bob', { role: 'viewer' })]);
    assert.equal(r.filter((x) => x.status === 'fulfilled').length, 1);
    const failed = r.find((x) => x.status === 'rejected');
    assert.ok(failed && failed.status === 'rejected' && failed.reason instanceof FleetbootError && failed.reason.code === 'CONFLICT');
    const admins = (await listUsers(b.db)).filter((u) => u.role === 'admin' && u.disabledAt === null);
    assert.equal(admins.length, 1);
  });
});
