import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../lib/log.js';
import { withTempStore } from '../store/temp-store.js';
import { listBootEvents, pruneBootEvents } from '../store/boot-events.js';
import { createBootRecorder, type StampedBootEvent } from './boot-recorder.js';

const A = '52:54:00:aa:00:01';
const B = '52:54:00:aa:00:02';

test('steps are stored in batches, in order; an address-only step takes the MAC last seen with that address, else the resolver\'s', async () => {
  await withTempStore('fb-events-', async (store) => {
    const asked: string[] = [];
    const rec = createBootRecorder({ store, log: silentLogger, flushMs: 3_600_000, resolveMac: async (ip) => (asked.push(ip), ip === '10.0.0.2' ? B : null) });
    const seen: StampedBootEvent[] = [];
    rec.subscribe((e) => seen.push(e));
    rec.record({ kind: 'dhcp', mac: A, ip: '10.0.0.1', summary: 'offer', detail: { file: 'x' } });
    rec.record({ kind: 'tftp', mac: null, ip: '10.0.0.1', summary: 'tftp x', detail: { outcome: 'done' } });
    rec.record({ kind: 'tftp', mac: null, ip: '10.0.0.2', summary: 'tftp y', detail: {} });
    rec.record({ kind: 'http', mac: null, ip: '10.0.0.3', summary: 'nobody\u0007 known', detail: {} });
    assert.equal(seen.length, 4, 'subscribers hear each step at once');
    assert.equal(seen[1]?.mac, A);
    assert.deepEqual(await listBootEvents(store.db, A), [], 'nothing stored before the batch');
    await rec.flush();
    assert.deepEqual((await listBootEvents(store.db, A)).map((e) => [e.kind, e.summary, e.detail]), [
      ['dhcp', 'offer', { file: 'x' }],
      ['tftp', 'tftp x', { outcome: 'done' }],
    ]);
    assert.deepEqual((await listBootEvents(store.db, B)).map((e) => e.summary), ['tftp y']);
    assert.deepEqual(asked.sort(), ['10.0.0.2', '10.0.0.3'], 'the resolver is asked only for addresses no step named');
    const orphan = await store.db.selectFrom('boot_events').selectAll().where('mac', 'is', null).execute();
    assert.deepEqual(orphan.map((r) => [r.ip, r.summary]), [['10.0.0.3', 'nobody  known']], 'kept with its address; control characters replaced');
    await rec.close();
  });
});

test('a full queue drops and counts; close() stores what waits; the table is pruned to its bound', async () => {
  await withTempStore('fb-events-', async (store) => {
    const rec = createBootRecorder({ store, log: silentLogger, flushMs: 3_600_000, maxQueue: 3 });
    for (let i = 0; i < 5; i++) rec.record({ kind: 'decision', mac: A, ip: null, summary: `d${i}`, detail: {} });
    assert.equal(rec.dropped, 2);
    await rec.close();
    assert.deepEqual((await listBootEvents(store.db, A)).map((e) => e.summary), ['d0', 'd1', 'd2']);
    rec.record({ kind: 'decision', mac: A, ip: null, summary: 'after close', detail: {} });
    assert.equal((await listBootEvents(store.db, A)).length, 3, 'nothing is recorded after close');
    assert.equal(await pruneBootEvents(store.db, { keepRows: 1, olderThan: '2000-01-01T00:00:00.000Z' }), 2);
    assert.deepEqual((await listBootEvents(store.db, A)).map((e) => e.summary), ['d2']);
    assert.equal(await pruneBootEvents(store.db, { keepRows: 100, olderThan: '2999-01-01T00:00:00.000Z' }), 1, 'and by age');
  });
});

test('a machine\'s timeline: the newest N, oldest first, and pages before an id', async () => {
  await withTempStore('fb-events-', async (store) => {
    const rec = createBootRecorder({ store, log: silentLogger, flushMs: 3_600_000 });
    for (let i = 0; i < 10; i++) rec.record({ kind: 'task', mac: A, ip: null, summary: `s${i}`, detail: { n: i } });
    rec.record({ kind: 'task', mac: B, ip: null, summary: 'other', detail: {} });
    await rec.close();
    const last3 = await listBootEvents(store.db, A, { limit: 3 });
    assert.deepEqual(last3.map((e) => e.summary), ['s7', 's8', 's9']);
    assert.deepEqual((await listBootEvents(store.db, A, { limit: 2, beforeId: last3[0]?.id ?? 0 })).map((e) => e.summary), ['s5', 's6']);
  });
});

test('one client cannot flood the timeline: past its burst its steps are dropped and counted, the others\' still recorded', async () => {
  await withTempStore('fb-events-', async (store) => {
    let t = 1_000_000;
    const rec = createBootRecorder({ store, log: silentLogger, flushMs: 3_600_000, clientBurst: 5, now: () => t });
    for (let i = 0; i < 8; i++) rec.record({ kind: 'tftp', mac: null, ip: '10.0.0.9', summary: `junk ${i}`, detail: {} });
    rec.record({ kind: 'dhcp', mac: B, ip: null, summary: 'another machine', detail: {} });
    assert.equal(rec.dropped, 3);
    t += 1000; // refilled at 10 a second, up to the burst again
    for (let i = 0; i < 12; i++) rec.record({ kind: 'tftp', mac: null, ip: '10.0.0.9', summary: `later ${i}`, detail: {} });
    assert.equal(rec.dropped, 3 + 7);
    await rec.close();
    assert.deepEqual((await listBootEvents(store.db, B)).map((e) => e.summary), ['another machine']);
    const junk = await store.db.selectFrom('boot_events').select('summary').where('ip', '=', '10.0.0.9').execute();
    assert.equal(junk.length, 5 + 5);
  });
});
