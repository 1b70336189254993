import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withTempStore } from './temp-store.js';
import { addGroupMembers, createGroup, createHost, importHosts, putInventory, queryHosts } from './index.js';
import type { Inventory } from '../model/manifest.js';

const macOf = (i: number): string => `52:54:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

function inventory(serial: string): Inventory {
  return {
    collectedAt: '2026-12-07T00:00:00.000Z',
    cpu: { model: null, sockets: null, cores: null, threads: 1 },
    memoryBytes: 1,
    disks: [],
    nics: [],
    smbios: { manufacturer: null, product: null, serial, uuid: null, biosVendor: null, biosVersion: null },
    firmware: null,
  };
}

test('the host list: search by part of a name, a MAC in any spelling, an address, a serial or a group; paging and sorting', async () => {
  await withTempStore('hostq', async (s) => {
    const db = s.db;
    for (let i = 0; i < 120; i++) await createHost(db, { mac: macOf(i), name: `pc-${String(i).padStart(3, '0')}`, ip: i < 5 ? `10.0.0.${20 + i}` : null });
    await createHost(db, { mac: '52:54:00:ab:cd:ef', status: 'pending' });
    await createGroup(db, 'room-101');
    await addGroupMembers(db, 'room-101', [macOf(7), macOf(8)]);
    await putInventory(db, macOf(9), inventory('SN-XYZ_42'));

    const all = await queryHosts(db, { status: 'approved', limit: 50 });
    assert.equal(all.total, 120);
    assert.equal(all.hosts.length, 50);
    const page3 = await queryHosts(db, { status: 'approved', offset: 100, limit: 50 });
    assert.equal(page3.hosts.length, 20);
    // Pages neither overlap nor skip.
    const pages = [...all.hosts, ...(await queryHosts(db, { status: 'approved', offset: 50, limit: 50 })).hosts, ...page3.hosts].map((h) => h.mac);
    assert.equal(new Set(pages).size, 120);

    for (const spelling of ['54:00:00:00:07', '54-00-00-00-07', '5400000007', '5400.0000.07', ' 54:00:00:00:07 ']) {
      const r = await queryHosts(db, { q: spelling });
      assert.deepEqual(r.hosts.map((h) => h.mac), [macOf(7)], spelling);
    }
    assert.deepEqual((await queryHosts(db, { q: 'PC-11' })).hosts.map((h) => h.name), ['pc-110', 'pc-111', 'pc-112', 'pc-113', 'pc-114', 'pc-115', 'pc-116', 'pc-117', 'pc-118', 'pc-119']);
    assert.deepEqual((await queryHosts(db, { q: '10.0.0.2' })).hosts.map((h) => h.ip), ['10.0.0.20', '10.0.0.21', '10.0.0.22', '10.0.0.23', '10.0.0.24']);
    assert.deepEqual((await queryHosts(db, { q: 'xyz_4' })).hosts.map((h) => h.mac), [macOf(9)]);
    const room = await queryHosts(db, { q: 'room-1' });
    assert.deepEqual(room.hosts.map((h) => [h.mac, h.groups]), [[macOf(7), ['room-101']], [macOf(8), ['room-101']]]);
    assert.equal((await queryHosts(db, { group: 'room-101' })).total, 2);
    assert.equal((await queryHosts(db, { group: 'room-101', q: 'pc-008' })).total, 1);
    assert.equal((await queryHosts(db, { group: 'nope' })).total, 0);
    // LIKE wildcards are taken literally.
    assert.equal((await queryHosts(db, { q: '%' })).total, 0);
    assert.equal((await queryHosts(db, { q: 'pc_0' })).total, 0);
    assert.equal((await queryHosts(db, { q: 'SN-XYZ_42' })).total, 1);
    // Sorting: by name descending, ties broken by MAC.
    const desc = await queryHosts(db, { status: 'approved', sort: 'name', order: 'desc', limit: 2 });
    assert.deepEqual(desc.hosts.map((h) => h.name), ['pc-119', 'pc-118']);
    assert.equal((await queryHosts(db, { status: 'pending' })).hosts[0]?.mac, '52:54:00:ab:cd:ef');
  });
});

test('the host list stays fast at 10,000 hosts', async () => {
  await withTempStore('hostq10k', async (s) => {
    const now = new Date().toISOString();
    const rows = Array.from({ length: 10_000 }, (_, i) => ({ mac: macOf(i), name: `host-${i}`, status: 'approved', created_at: now, updated_at: now }));
    for (let i = 0; i < rows.length; i += 500) await s.db.insertInto('hosts').values(rows.slice(i, i + 500)).execute();
    const t0 = performance.now();
    const first = await queryHosts(s.db, { limit: 50 });
    const found = await queryHosts(s.db, { q: macOf(4321).slice(-5), limit: 50 });
    const sorted = await queryHosts(s.db, { sort: 'name', order: 'desc', offset: 9950, limit: 50 });
    const ms = performance.now() - t0;
    assert.equal(first.total, 10_000);
    assert.ok(found.hosts.some((h) => h.mac === macOf(4321)));
    assert.equal(sorted.hosts.length, 50);
    // Three queries over 10,000 rows: a few tens of ms on a slow machine; 2 s means a lost index or a per-row query.
    assert.ok(ms < 2000, `three host queries over 10,000 hosts took ${ms.toFixed(0)} ms`);
  });
});

test('importing hosts: all or none, each bad row named, existing MACs refused or skipped, groups made', async () => {
  await withTempStore('hostimport', async (s) => {
    const db = s.db;
    await createHost(db, { mac: macOf(1), ip: '10.0.0.9' });
    await assert.rejects(
      importHosts(db, [{ mac: 'zz' }, { mac: macOf(2), name: 'bad name!' }, { mac: macOf(3), ip: '10.0.0.300' }, { mac: macOf(3) }]),
      /Nothing was imported: row 1: MAC "zz" is not six hex bytes; row 2: name "bad name!" is not a valid name .*; row 3: address "10.0.0.300" is not a unicast IPv4 address; row 4: MAC 52:54:00:00:00:03 is also on row 3/,
    );
    await assert.rejects(importHosts(db, [{ mac: macOf(1) }, { mac: macOf(2) }]), /Nothing was imported: 1 of the MACs is already a host \(52:54:00:00:00:01\)/);
    await assert.rejects(importHosts(db, [{ mac: macOf(2), ip: '10.0.0.9' }]), /address 10.0.0.9 is already reserved for 52:54:00:00:00:01/);
    await assert.rejects(importHosts(db, [{ mac: macOf(2), entry: 'nope' }]), /No boot entry named 'nope'/);
    assert.equal((await queryHosts(db, {})).total, 1, 'nothing was added by the refused imports');
    const r = await importHosts(db, [{ mac: macOf(1) }, { mac: macOf(2).toUpperCase(), name: 'b', groups: ['room', 'room'] }, { mac: macOf(3), ip: '10.0.0.10', groups: ['room', 'lab'] }], { skipExisting: true });
    assert.deepEqual(r, { added: 2, skipped: [macOf(1)], groupsCreated: ['room', 'lab'] });
    assert.deepEqual((await queryHosts(db, { group: 'room' })).hosts.map((h) => [h.mac, h.groups]), [[macOf(2), ['room']], [macOf(3), ['lab', 'room']]]);
  });
});
