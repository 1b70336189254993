import { openTestStore } from '../store/temp-store.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config/config.js';
import { silentLogger } from '../lib/log.js';
import { decodeMagicPacket } from '../protocol/wol.js';
import { bootTaskRow, createHost, createTask, finishTask, getTask, openStore, type Store } from '../store/index.js';
import { createWakeService, noContactReason } from './service.js';
import type { WakeTarget } from './targets.js';

const TARGETS: WakeTarget[] = [
  { address: '10.9.0.255', port: 9, reason: 'test subnet' },
  { address: '10.9.1.255', port: 9, reason: 'test relay' },
];

async function withWake(wake: { repeats?: number; spacingSeconds?: number; contactTimeoutSeconds?: number }, fn: (s: Store, sent: Array<{ mac: string; to: string; t: number }>, clock: { ms: number }, svc: ReturnType<typeof createWakeService>) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-wake-'));
  const store = await openTestStore(dir);
  const config = loadConfig({ cwd: dir, overrides: { dataDir: dir, wake } });
  const sent: Array<{ mac: string; to: string; t: number }> = [];
  const clock = { ms: Date.parse('2026-12-02T10:00:00Z') };
  const svc = createWakeService({
    store,
    config,
    log: silentLogger,
    sender: {
      send: async (payload, address, port) => void sent.push({ mac: decodeMagicPacket(payload).mac, to: `${address}:${port}`, t: Date.now() }),
      close: async () => undefined,
    },
    targets: async () => TARGETS,
    failTask: async (t, reason) => (await finishTask(store.db, t.id, 'failed', reason)) !== null,
    now: () => clock.ms,
    intervalMs: 3600_000,
  });
  try {
    await fn(store, sent, clock, svc);
  } finally {
    await svc.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const A = '52:54:00:00:02:01';
const B = '52:54:00:00:02:02';

test('sweep(): a queued task with wake is woken, once more after the contact timeout, then fails "no contact after wake"', async () => {
  await withWake({ repeats: 1, contactTimeoutSeconds: 60 }, async (store, sent, clock, svc) => {
    await createHost(store.db, { mac: A });
    await createHost(store.db, { mac: B });
    const ta = await createTask(store.db, { type: 'inventory', mac: A, wake: true });
    await createTask(store.db, { type: 'inventory', mac: B });
    assert.deepEqual(await svc.sweep(), { woken: [ta.id], failed: [] });
    assert.deepEqual(sent.map((x) => [x.mac, x.to]), [[A, '10.9.0.255:9'], [A, '10.9.1.255:9']], 'A only (B was not asked to wake), to every target');
    clock.ms += 59_000;
    assert.deepEqual(await svc.sweep(), { woken: [], failed: [] }, 'not before the contact timeout');
    clock.ms += 1_000;
    assert.deepEqual(await svc.sweep(), { woken: [ta.id], failed: [] }, 'woken once more');
    assert.equal(sent.length, 4);
    clock.ms += 60_000;
    assert.deepEqual(await svc.sweep(), { woken: [], failed: [ta.id] });
    const after = await getTask(store.db, ta.id);
    assert.equal(after?.state, 'failed');
    assert.ok(after?.error?.startsWith('no contact after wake'), after?.error ?? '');
    assert.equal(after?.error, noContactReason(loadConfig({ overrides: { wake: { repeats: 1, contactTimeoutSeconds: 60 } } }).wake));
    assert.deepEqual(await svc.sweep(), { woken: [], failed: [] });
  });
});

test('sweep(): contact (the boot request hands the task out) ends the wake bookkeeping', async () => {
  await withWake({ repeats: 1, contactTimeoutSeconds: 60 }, async (store, sent, clock, svc) => {
    await createHost(store.db, { mac: A });
    const t = await createTask(store.db, { type: 'inventory', mac: A, wake: true });
    await svc.sweep();
    assert.equal(sent.length, 2);
    assert.ok(await bootTaskRow(store.db, t.id, 'a'.repeat(64), '10.9.0.7', t));
    clock.ms += 3600_000;
    assert.deepEqual(await svc.sweep(), { woken: [], failed: [] });
    assert.equal((await getTask(store.db, t.id))?.state, 'booting');
  });
});

test('wake(): a round sends each magic packet `repeats` times, `spacingSeconds` apart', async () => {
  await withWake({ repeats: 2, spacingSeconds: 1, contactTimeoutSeconds: 60 }, async (_store, sent, _clock, svc) => {
    const t0 = Date.now();
    const r = await svc.wake([A, B], 'test');
    assert.equal(r.sent, 4);
    assert.deepEqual(r.errors, []);
    assert.deepEqual([r.repeats, r.spacingSeconds], [2, 1]);
    for (;;) {
      if (sent.length >= 8) break;
      assert.ok(Date.now() - t0 < 5000, `only ${sent.length} packets after 5 s`);
      await new Promise((res) => setTimeout(res, 50)); // poll interval; the assertion above bounds the wait
    }
    const second = sent.slice(4);
    assert.deepEqual(second.map((x) => x.mac).sort(), [A, A, B, B]);
    const gap = (second[0]?.t ?? 0) - (sent[0]?.t ?? 0);
    assert.ok(gap >= 950 && gap < 2500, `second send ${gap} ms after the first`);
  });
});
