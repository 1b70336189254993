import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetbootError } from '../lib/errors.js';
import { createEntry, createHost, deleteEntry, findBootTarget, getEntry, listEntries, listHosts, normaliseMac, openStore, updateHost } from './index.js';
import { migrations } from './migrations/index.js';

async function withStore(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-store-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('normaliseMac() accepts the usual spellings and refuses the rest', () => {
  for (const s of ['52:54:00:AB:CD:EF', '52-54-00-ab-cd-ef', '525400abcdef', '5254.00ab.cdef', ' 52:54:00:ab:cd:ef ']) {
    assert.equal(normaliseMac(s), '52:54:00:ab:cd:ef', s);
  }
  for (const s of ['', '52:54:00:ab:cd', '52:54-00:ab:cd:ef', '52:54:00:ab:cd:eg', '52:54:00:ab:cd:ef:00', 'x\n52:54:00:ab:cd:ef']) {
    assert.equal(normaliseMac(s), null, s);
  }
});

test('openStore() creates fleetboot.db, migrates once and reopens the same data', async () => {
  await withStore(async (dir) => {
    const a = await openStore(dir);
    assert.ok(existsSync(join(dir, 'fleetboot.db')));
    await createEntry(a.db, { name: 'e1', kernel: 'http://x/k', initrds: ['http://x/3', 'http://x/1', 'http://x/2'], cmdline: 'quiet' });
    await a.close();
    const b = await openStore(dir);
    const e = await getEntry(b.db, 'e1');
    assert.deepEqual(e?.initrds, ['http://x/3', 'http://x/1', 'http://x/2']);
    const rows = await b.db.selectFrom('fleetboot_migrations').selectAll().execute();
    assert.equal(rows.length, migrations.length, "each migration recorded once");
    await b.close();
  });
});

test('openStore() refuses a database migrated by a newer version', async () => {
  await withStore(async (dir) => {
    const a = await openStore(dir);
    await a.db.insertInto('fleetboot_migrations').values({ name: '29991231T0000_future', applied_at: 'x' }).execute();
    await a.close();
    await assert.rejects(openStore(dir), /newer Fleetboot/);
  });
});

test('a failing migration leaves nothing behind (it runs in a transaction)', async () => {
  await withStore(async (dir) => {
    const bad = [
      {
        name: '20000101T0000_bad',
        async up(db: import('kysely').Kysely<unknown>) {
          await db.schema.createTable('half').addColumn('x', 'integer').execute();
          throw new Error('boom');
        },
      },
    ];
    await assert.rejects(openStore(dir, { migrations: bad }), /20000101T0000_bad failed: boom/);
    const s = await openStore(dir, { migrations: [] });
    const tables = await s.db.introspection.getTables();
    assert.ok(!tables.some((t) => t.name === 'half'));
    await s.close();
  });
});

test('hosts and entries: unique names and MACs, foreign keys, delete refused while in use', async () => {
  await withStore(async (dir) => {
    const s = await openStore(dir);
    try {
      await createEntry(s.db, { name: 'e1', kernel: 'http://x/k' });
      await assert.rejects(createEntry(s.db, { name: 'e1', kernel: 'http://x/k' }), (e: unknown) => e instanceof FleetbootError && e.code === 'CONFLICT');
      await createHost(s.db, { mac: '52-54-00-00-00-01', entry: 'e1' });
      await assert.rejects(createHost(s.db, { mac: '525400000001' }), (e: unknown) => e instanceof FleetbootError && e.code === 'CONFLICT');
      await assert.rejects(updateHost(s.db, '52:54:00:00:00:09', { entry: null }), (e: unknown) => e instanceof FleetbootError && e.code === 'NOT_FOUND');
      await assert.rejects(deleteEntry(s.db, 'e1'), (e: unknown) => e instanceof FleetbootError && e.code === 'CONFLICT');
      const t = await findBootTarget(s.db, '52:54:00:00:00:01');
      assert.equal(t.entry?.name, 'e1');
      // The database itself refuses a dangling reference (foreign keys are on).
      await assert.rejects(s.db.updateTable('hosts').set({ entry_id: 999 }).execute());
      assert.deepEqual(await deleteEntry(s.db, 'e1', { force: true }), { unassigned: ['52:54:00:00:00:01'] });
      assert.deepEqual(await listEntries(s.db), []);
      assert.equal((await listHosts(s.db))[0]?.entry, null);
    } finally {
      await s.close();
    }
  });
});
