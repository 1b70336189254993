import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LiveEvent, LiveEventInput, StreamEvent } from '../model/events.js';
import { createEventBus, parseEventId, type EventBusOptions, type TimerHandle } from './bus.js';

const A = '52:54:00:aa:00:01';

/** A clock and timers the test moves by hand. */
function fakeTime(start = 1_000_000) {
  let t = start;
  let timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
  return {
    now: () => t,
    setTimer(fn: () => void, ms: number): TimerHandle {
      const x = { at: t + ms, fn, live: true };
      timers.push(x);
      return { cancel: () => void (x.live = false) };
    },
    /** Move the clock by `ms`, firing the timers due on the way, in order. */
    advance(ms: number): void {
      const end = t + ms;
      for (;;) {
        const due = timers.filter((x) => x.live && x.at <= end).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        t = Math.max(t, due.at);
        due.live = false;
        due.fn();
      }
      timers = timers.filter((x) => x.live);
      t = end;
    },
    get pending(): number {
      return timers.filter((x) => x.live).length;
    },
  };
}

function setup(o: EventBusOptions = {}) {
  const time = fakeTime();
  const bus = createEventBus({ epoch: 'run1', now: time.now, setTimer: time.setTimer, ...o });
  const seen: LiveEvent[] = [];
  const sub = bus.subscribe((e) => seen.push(e));
  return { time, bus, seen, sub };
}

const progress = (taskId: number, bytesDone: number, at?: string): LiveEventInput => ({
  kind: 'task.progress',
  taskId,
  mac: A,
  phase: 'transfer',
  bytesDone,
  bytesTotal: 1000,
  partition: 1,
  rateBps: 100,
  etaSeconds: (1000 - bytesDone) / 100,
  message: null,
  ...(at !== undefined ? { at } : {}),
});

const state = (taskId: number, from: 'queued' | 'running' | null, to: 'running' | 'done' | 'waiting' | 'queued'): LiveEventInput => ({
  kind: 'task.state',
  taskId,
  mac: A,
  type: 'deploy',
  image: 'img',
  from,
  state: to,
  error: null,
  jobId: null,
});

const lease = (ip: string): LiveEventInput => ({
  kind: 'dhcp.lease',
  ip,
  mac: A,
  clientId: null,
  hostname: null,
  state: 'bound',
  expiresAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  active: true,
});

const ids = (list: ReadonlyArray<LiveEvent | StreamEvent>): string[] => list.map((e) => `${e.kind}@${e.id}`);

test('createEventBus() numbers events <epoch>-1, -2, ... in delivery order, with the time of publishing', () => {
  const { bus, seen, time } = setup();
  assert.equal(bus.lastId(), 'run1-0');
  bus.publish(lease('10.0.0.1'));
  time.advance(5);
  bus.publish({ ...lease('10.0.0.2'), at: '2020-01-01T00:00:00.000Z' });
  assert.deepEqual(seen.map((e) => e.id), ['run1-1', 'run1-2']);
  assert.equal(seen[0]?.at, new Date(1_000_000).toISOString());
  assert.equal(seen[1]?.at, '2020-01-01T00:00:00.000Z', 'a time given by the publisher is kept');
  assert.equal(bus.lastId(), 'run1-2');
  assert.deepEqual(parseEventId('run1-2'), { epoch: 'run1', seq: 2 });
  for (const bad of ['', 'run1', 'run1-', 'RUN-1', 'run1-01', 'run1--1', 'a-1-2', `${'x'.repeat(17)}-1`]) assert.equal(parseEventId(bad), null, bad);
});

test('createEventBus() checks its options, saying which and the value seen', () => {
  assert.throws(() => createEventBus({ maxEvents: 0 }), /'maxEvents' must be a positive number: current value is 0/);
  assert.throws(() => createEventBus({ progressIntervalMs: -1 }), /'progressIntervalMs'.*-1/);
  assert.throws(() => createEventBus({ epoch: 'Run-1' }), /'epoch'.*"Run-1"/);
  assert.match(createEventBus({ now: () => 1_700_000_000_000 }).epoch, /^[0-9a-z]+$/);
});

test('publish() coalesces a task\'s progress: at most once a second, the newest wins, each task on its own', () => {
  const { bus, seen, time } = setup();
  bus.publish(progress(1, 100));
  bus.publish(progress(2, 5));
  assert.deepEqual(seen.map((e) => e.kind === 'task.progress' && [e.taskId, e.bytesDone]), [[1, 100], [2, 5]], 'the first of each task goes out at once');
  time.advance(200);
  bus.publish(progress(1, 200));
  time.advance(200);
  bus.publish(progress(1, 300));
  bus.publish(progress(1, 400));
  assert.equal(seen.length, 2, 'within the second: nothing more');
  time.advance(599);
  assert.equal(seen.length, 2);
  time.advance(1);
  assert.deepEqual(seen.slice(2).map((e) => e.kind === 'task.progress' && [e.taskId, e.bytesDone]), [[1, 400]], 'a second after the first: only the newest');
  assert.equal(seen[2]?.at, new Date(1_000_400).toISOString(), 'with the time it was reported');

  // A steady 10 reports a second for 5 s: 5 events, a second apart.
  const times: number[] = [];
  bus.subscribe((e) => {
    if (e.kind === 'task.progress' && e.taskId === 1) times.push(time.now());
  });
  for (let i = 0; i < 50; i++) {
    time.advance(100);
    bus.publish(progress(1, 400 + i));
  }
  time.advance(1000);
  for (let i = 1; i < times.length; i++) assert.ok((times[i] ?? 0) - (times[i - 1] ?? 0) >= 1000, `progress ${times.join(', ')}`);
  assert.ok(times.length >= 5 && times.length <= 6, `${times.length} progress events in 5 s`);
  const last = seen.at(-1);
  assert.ok(last?.kind === 'task.progress' && last.bytesDone === 449, 'the last report is not lost');
});

test('a state change goes out at once and is never followed by progress reported before it', () => {
  const { bus, seen, time } = setup();
  bus.publish(progress(1, 100));
  time.advance(300);
  bus.publish(progress(1, 900));
  bus.publish(state(1, 'running', 'done'));
  time.advance(5000);
  assert.deepEqual(
    seen.map((e) => (e.kind === 'task.progress' ? `progress ${e.bytesDone}` : e.kind === 'task.state' ? `state ${e.state}` : e.kind)),
    ['progress 100', 'state done'],
    'the waiting progress (older than the state) is dropped',
  );
  assert.equal(time.pending, 0, 'its timer too');

  // States are never coalesced, even many in a second; progress after a state goes out in its turn.
  bus.publish(state(2, null, 'queued'));
  bus.publish(state(2, 'queued', 'running'));
  bus.publish(progress(2, 10));
  bus.publish(state(2, 'running', 'waiting'));
  bus.publish(state(2, 'running', 'running'));
  bus.publish(progress(2, 20));
  time.advance(1000);
  assert.deepEqual(
    seen.slice(2).map((e) => (e.kind === 'task.progress' ? `progress ${e.bytesDone}` : e.kind === 'task.state' ? `state ${e.state}` : e.kind)),
    ['state queued', 'state running', 'progress 10', 'state waiting', 'state running', 'progress 20'],
  );
  const seqs = seen.map((e) => parseEventId(e.id)?.seq ?? 0);
  assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'ids stay in delivery order');
});

test('subscribe() with the last id seen replays what came after it, then the live ones, nothing lost or repeated', () => {
  const { bus, time } = setup();
  for (let i = 1; i <= 5; i++) bus.publish(lease(`10.0.0.${i}`));
  const live: LiveEvent[] = [];
  const sub = bus.subscribe((e) => live.push(e), { lastEventId: 'run1-3' });
  assert.deepEqual(ids(sub.first), ['dhcp.lease@run1-4', 'dhcp.lease@run1-5', 'ready@run1-5']);
  assert.deepEqual(sub.first.at(-1), { kind: 'ready', id: 'run1-5', resumed: true, replayed: 2 });
  time.advance(10);
  bus.publish(lease('10.0.0.6'));
  assert.deepEqual(ids(live), ['dhcp.lease@run1-6']);
  sub.unsubscribe();
  bus.publish(lease('10.0.0.7'));
  assert.equal(live.length, 1, 'nothing after unsubscribe');

  assert.deepEqual(ids(bus.subscribe(() => undefined, { lastEventId: 'run1-7' }).first), ['ready@run1-7'], 'up to date: only ready');
  assert.deepEqual(bus.subscribe(() => undefined).first, [{ kind: 'ready', id: 'run1-7', resumed: false, replayed: 0 }], 'no id: ready');
  assert.deepEqual(ids(bus.subscribe(() => undefined, { lastEventId: 'run1-0' }).first).length, 8, 'from the start: all 7 and ready');
  const history = bus.subscribe(() => undefined, { history: true }).first;
  assert.deepEqual(history.at(-1), { kind: 'ready', id: 'run1-7', resumed: false, replayed: 7 }, 'history: every event kept, then ready');
  assert.equal(history.length, 8);
});

test('subscribe() answers reset for an id of another run, one too old to replay, or not an id', () => {
  const { bus, time } = setup({ maxEvents: 3, maxAgeMs: 60_000 });
  for (let i = 1; i <= 5; i++) bus.publish(lease(`10.0.0.${i}`));
  const reset = (id: string): string => {
    const f = bus.subscribe(() => undefined, { lastEventId: id }).first;
    assert.equal(f.length, 1, id);
    const e = f[0];
    assert.ok(e?.kind === 'reset', id);
    assert.equal(e.id, bus.lastId(), 'a reset carries the newest id: a resume from it replays what comes next');
    return e.reason;
  };
  assert.match(reset('0ld-5'), /another run of the server/);
  assert.match(reset('garbage'), /not an event id/);
  assert.match(reset('run1-9'), /newer than the newest/);
  // The ring keeps 3 (seq 3..5): after 2 the replay is whole, after 1 it is not.
  assert.deepEqual(ids(bus.subscribe(() => undefined, { lastEventId: 'run1-2' }).first), ['dhcp.lease@run1-3', 'dhcp.lease@run1-4', 'dhcp.lease@run1-5', 'ready@run1-5']);
  assert.match(reset('run1-1'), /no longer kept/);
  // And by age: a minute later nothing is kept; only a client that saw the newest may resume.
  time.advance(60_001);
  assert.match(reset('run1-4'), /no longer kept/);
  assert.deepEqual(ids(bus.subscribe(() => undefined, { lastEventId: 'run1-5' }).first), ['ready@run1-5']);
  bus.publish(lease('10.0.0.6'));
  assert.deepEqual(ids(bus.subscribe(() => undefined, { lastEventId: 'run1-5' }).first), ['dhcp.lease@run1-6', 'ready@run1-6']);
  assert.deepEqual(ids(bus.subscribe(() => undefined, { history: true }).first), ['dhcp.lease@run1-6', 'ready@run1-6'], 'history: only what is kept');
});

test('the replay ring never holds more than maxEvents', () => {
  const { bus } = setup({ maxEvents: 100 });
  for (let i = 0; i < 1000; i++) bus.publish(lease('10.0.0.1'));
  const f = bus.subscribe(() => undefined, { lastEventId: 'run1-900' }).first;
  assert.equal(f.length, 101);
  assert.equal(f[0]?.id, 'run1-901');
  assert.match(bus.subscribe(() => undefined, { lastEventId: 'run1-899' }).first[0]?.kind ?? '', /reset/);
});

test('a subscriber that throws is reported and does not stop the others; close() stops everything', () => {
  const errors: unknown[] = [];
  const { bus, seen, time } = setup({ onSubscriberError: (e) => errors.push(e) });
  bus.subscribe(() => {
    throw new Error('boom');
  });
  const after: LiveEvent[] = [];
  bus.subscribe((e) => after.push(e));
  bus.publish(lease('10.0.0.1'));
  assert.equal(seen.length, 1);
  assert.equal(after.length, 1);
  assert.equal(errors.length, 1);
  assert.equal(bus.subscriberCount, 3);
  bus.publish(progress(1, 1));
  bus.publish(progress(1, 2));
  bus.close();
  time.advance(2000);
  bus.publish(lease('10.0.0.2'));
  assert.equal(seen.length, 2, 'the waiting progress and later events are not delivered');
  assert.equal(bus.subscriberCount, 0);
});
