/**
 * Schedules against a real server (startFleetboot on 127.0.0.1, the clock
 * of the machine): a task --at two seconds ahead is queued at that moment;
 * a recurring schedule is kept across a restart, a time missed while the
 * server was down fires once at start, and a schedule fires at its time.
 */
import { openTestStore } from '../src/store/temp-store.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningFleetboot } from '../src/server.js';
import { createHost, openStore } from '../src/store/index.js';
import { start, withServer } from './imaging-helpers.js';
import { waitFor } from './wait.js';

const A = '52:54:00:dd:00:01';
const B = '52:54:00:dd:00:02';

type Json = Record<string, unknown>;
async function api(fb: RunningFleetboot, method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const r = await fetch(`${fb.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${fb.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: r.status, body: (await r.json()) as Json };
}

test('a task --at two seconds ahead waits as scheduled and is queued at that moment', async (t) => {
  await withServer(async ({ fb, store }) => {
    await createHost(store.db, { mac: A });
    const at = Date.now() + 2000;
    const r = await api(fb, 'POST', '/tasks', { type: 'inventory', mac: A, at: new Date(at).toISOString() });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body['state'], 'scheduled');
    const id = Number(r.body['id']);
    let lastScheduled = 0;
    const queued = await waitFor(
      'the task queued',
      async () => {
        const t = (await api(fb, 'GET', `/tasks/${id}`)).body;
        const seen = Date.now();
        if (t['state'] === 'scheduled') lastScheduled = seen;
        return t['state'] === 'queued' ? { seen, t } : null;
      },
      6000,
    );
    const promotedAt = Date.parse(String(queued.t['updatedAt']));
    const late = promotedAt - at;
    // Still scheduled until (nearly) its time: polls are 10 ms apart plus a request each.
    assert.ok(lastScheduled >= at - 150, `last seen scheduled ${at - lastScheduled} ms before its time`);
    assert.ok(late >= 0 && late < 300, `queued ${late} ms after its start time (updatedAt ${String(queued.t['updatedAt'])})`);
    assert.ok(queued.seen - at < 600, `seen queued ${queued.seen - at} ms after its start time`);
    t.diagnostic(`queued ${late} ms after its start time (seen by polling ${queued.seen - at} ms after; last seen scheduled ${at - lastScheduled} ms before)`);
  });
});

test('a recurring schedule is kept across a restart: a time missed while the server was down fires once at start; then one fires at its time', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-schedule-restart-'));
  const logs: Array<Record<string, unknown>> = [];
  let fb: RunningFleetboot | null = await start(dir, {});
  try {
    const store = await openTestStore(dir);
    await createHost(store.db, { mac: A });
    await createHost(store.db, { mac: B });
    await store.close();
    // Once a minute, at the second three seconds from now (croner's seconds field).
    const due = Math.ceil((Date.now() + 3000) / 1000) * 1000;
    const r = await api(fb, 'POST', '/schedules', { cron: `${new Date(due).getSeconds()} * * * * *`, name: 'soon', request: { type: 'inventory', mac: A } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body['nextRunAt'], new Date(due).toISOString());
    await fb.close();
    fb = null;
    // Down over the due time.
    await waitFor('the due time to pass', () => Date.now() > due + 1000, 10_000, { intervalMs: 50 });
    fb = await start(dir, {}, logs);
    const s = await waitFor('the missed schedule to fire', async () => {
      const x = (await api(fb as RunningFleetboot, 'GET', '/schedules/soon')).body;
      return x['lastResult'] !== null ? x : null;
    }, 5000);
    assert.match(String(s['lastResult']), /^task #\d+ inventory of 52:54:00:dd:00:01$/);
    assert.equal(s['nextRunAt'], new Date(due + 60_000).toISOString(), 'the next time is the next minute, from now');
    const tasks = (await api(fb, 'GET', `/tasks?mac=${A}`)).body['tasks'] as Json[];
    assert.equal(tasks.length, 1, 'fired once');
    assert.equal(tasks[0]?.['id'], s['lastTaskId']);
    assert.ok(logs.some((l) => l['level'] === 40 && /schedule #\d+ \(soon\) was due at .* and missed while the server was down: it fires once now, not once per missed time/.test(String(l['msg']))), 'the missed time is logged');

    // And while it runs: a schedule fires at its time.
    const due2 = Math.ceil((Date.now() + 2000) / 1000) * 1000;
    const r2 = await api(fb, 'POST', '/schedules', { cron: `${new Date(due2).getSeconds()} * * * * *`, request: { type: 'inventory', mac: B } });
    assert.equal(r2.status, 201, JSON.stringify(r2.body));
    const s2 = await waitFor('the schedule to fire', async () => {
      const x = (await api(fb as RunningFleetboot, 'GET', `/schedules/${String(r2.body['id'])}`)).body;
      // lastRunAt is set when the run is claimed, lastResult once the task is made: wait for both.
      return x['lastRunAt'] !== null && x['lastResult'] !== null ? x : null;
    }, 6000);
    const late = Date.parse(String(s2['lastRunAt'])) - due2;
    assert.ok(late >= 0 && late < 500, `fired ${late} ms after its time`);
    t.diagnostic(`the running server fired the schedule ${late} ms after its time`);
    assert.match(String(s2['lastResult']), /^task #\d+ inventory of 52:54:00:dd:00:02$/);
  } finally {
    await fb?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
