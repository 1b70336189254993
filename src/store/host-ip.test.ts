import { test } from 'node:test';
import { sqliteOf } from './db.js';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetbootError } from '../lib/errors.js';
import { createHost, deleteHost, getHost, hostReservations, isReservableIPv4, listHosts, openStore, updateHost, type Store } from './index.js';

async function withStore(fn: (store: Store) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-host-ip-'));
  const store = await openStore(dir);
  try {
    await fn(store);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const code = (c: string) => (err: unknown) => err instanceof FleetbootError && err.code === c;

test('isReservableIPv4() accepts unicast dotted quads and refuses the rest', () => {
  for (const s of ['10.0.0.20', '192.168.1.1', '1.2.3.4', '223.255.255.254']) assert.ok(isReservableIPv4(s), s);
  for (const s of ['', '10.0.0', '10.0.0.256', '010.0.0.1', '10.0.0.1 ', '0.0.0.0', '127.0.0.1', '224.0.0.1', '255.255.255.255', 'x']) {
    assert.ok(!isReservableIPv4(s), s);
  }
});

test('createHost() and updateHost() store, change and clear a reserved address', async () => {
  await withStore(async (store) => {
    const a = await createHost(store.db, { mac: '52:54:00:00:00:01', name: 'pc1', ip: '10.0.0.20' });
    assert.equal(a.ip, '10.0.0.20');
    assert.equal((await getHost(store.db, '525400000001'))?.ip, '10.0.0.20');
    const b = await createHost(store.db, { mac: '52:54:00:00:00:02' });
    assert.equal(b.ip, null);
    assert.equal((await updateHost(store.db, '52:54:00:00:00:02', { ip: '10.0.0.21' })).ip, '10.0.0.21');
    // The same address again for the same host is fine; other fields keep it.
    assert.equal((await updateHost(store.db, '52:54:00:00:00:01', { ip: '10.0.0.20' })).ip, '10.0.0.20');
    assert.equal((await updateHost(store.db, '52:54:00:00:00:01', { name: 'pc1b' })).ip, '10.0.0.20');
    assert.equal((await updateHost(store.db, '52:54:00:00:00:01', { ip: null })).ip, null);
    // Several hosts without an address (NULLs do not clash in the unique index).
    await createHost(store.db, { mac: '52:54:00:00:00:03' });
    assert.deepEqual((await listHosts(store.db)).map((h) => h.ip), [null, '10.0.0.21', null]);
  });
});

test('createHost() and updateHost() refuse invalid (INVALID_INPUT) and taken (CONFLICT) addresses', async () => {
  await withStore(async (store) => {
    await createHost(store.db, { mac: '52:54:00:00:00:01', ip: '10.0.0.20' });
    await createHost(store.db, { mac: '52:54:00:00:00:02' });
    await assert.rejects(createHost(store.db, { mac: '52:54:00:00:00:03', ip: '10.0.0.20' }), code('CONFLICT'));
    await assert.rejects(updateHost(store.db, '52:54:00:00:00:02', { ip: '10.0.0.20' }), code('CONFLICT'));
    for (const bad of ['10.0.0.300', '127.0.0.5', 'ten', '0.0.0.0']) {
      await assert.rejects(createHost(store.db, { mac: '52:54:00:00:00:04', ip: bad }), code('INVALID_INPUT'), bad);
      await assert.rejects(updateHost(store.db, '52:54:00:00:00:02', { ip: bad }), code('INVALID_INPUT'), bad);
    }
    assert.equal(await getHost(store.db, '52:54:00:00:00:04'), null, 'nothing stored for a refused add');
    // The database itself refuses a duplicate too (unique index of the migration).
    assert.throws(() => sqliteOf(store).prepare("UPDATE hosts SET ip = '10.0.0.20' WHERE mac = '52:54:00:00:00:02'").run(), /UNIQUE/);
    // Once the first host lets it go, the second may have it.
    await deleteHost(store.db, '52:54:00:00:00:01');
    assert.equal((await updateHost(store.db, '52:54:00:00:00:02', { ip: '10.0.0.20' })).ip, '10.0.0.20');
  });
});

test('hostReservations() lists the hosts with an address, name as hostname', async () => {
  await withStore(async (store) => {
    await createHost(store.db, { mac: '52:54:00:00:00:02', name: 'web2', ip: '10.0.0.22' });
    await createHost(store.db, { mac: '52:54:00:00:00:01', ip: '10.0.0.21' });
    await createHost(store.db, { mac: '52:54:00:00:00:03', name: 'none' });
    assert.deepEqual(await hostReservations(store.db), [
      { mac: '52:54:00:00:00:01', ip: '10.0.0.21', hostname: null },
      { mac: '52:54:00:00:00:02', ip: '10.0.0.22', hostname: 'web2' },
    ]);
  });
});

test('openStore() upgrades a database made before the host address migration: existing hosts have no address', async () => {
  const { migrations } = await import('./migrations/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-host-ip-up-'));
  try {
    const old = await openStore(dir, { migrations: migrations.filter((m) => m.name < '20251210T1200') });
    sqliteOf(old).prepare("INSERT INTO hosts (mac, name, entry_id, created_at, updated_at) VALUES ('52:54:00:00:00:09', 'old', NULL, 'x', 'x')").run();
    await old.close();
    const store = await openStore(dir);
    try {
      assert.equal((await getHost(store.db, '52:54:00:00:00:09'))?.ip, null);
      assert.equal((await updateHost(store.db, '52:54:00:00:00:09', { ip: '10.0.0.9' })).ip, '10.0.0.9');
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
