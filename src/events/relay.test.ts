/**
 * relayEvents() with a fake of the cluster signals: this bus's events go
 * out (with its node, without their id), the others' come in marked with
 * theirs and numbered by this bus, and are not sent on; junk is ignored.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../lib/log.js';
import type { ClusterChannel, ClusterSignals } from '../store/cluster.js';
import type { LiveEvent } from '../model/events.js';
import { createEventBus } from './bus.js';
import { relayEvents } from './relay.js';

function fakeSignals(shared = true): ClusterSignals & { sent: Array<[ClusterChannel, string]>; deliver(channel: ClusterChannel, payload: string): void } {
  const handlers = new Map<ClusterChannel, Set<(p: string) => void>>();
  const sent: Array<[ClusterChannel, string]> = [];
  return {
    origin: 'abcd',
    shared,
    sent,
    on(channel, fn) {
      let set = handlers.get(channel);
      if (!set) handlers.set(channel, (set = new Set()));
      set.add(fn);
      return () => void set.delete(fn);
    },
    onResynced: () => () => {},
    notify(channel, payload = '') {
      sent.push([channel, payload]);
      return Promise.resolve(true);
    },
    ready: () => Promise.resolve(),
    listenPid: null,
    close: () => Promise.resolve(),
    deliver(channel, payload) {
      for (const fn of handlers.get(channel) ?? []) fn(payload);
    },
  };
}

const state = { kind: 'task.state', taskId: 7, mac: '52:54:00:00:00:07', type: 'inventory', image: null, from: null, state: 'queued', error: null, jobId: null } as const;

test('relayEvents() sends this bus\'s events with its node and publishes the others\' marked with theirs, once', () => {
  const bus = createEventBus({ epoch: 'e1' });
  const signals = fakeSignals();
  const seen: LiveEvent[] = [];
  bus.subscribe((e) => seen.push(e));
  const stop = relayEvents(bus, signals, { node: 'node-a', log: silentLogger });
  bus.publish({ ...state, at: '2026-12-07T10:00:00.000Z' });
  assert.equal(signals.sent.length, 1);
  const [channel, payload] = signals.sent[0] ?? ['', ''];
  assert.equal(channel, 'fleetboot_events');
  assert.deepEqual(JSON.parse(payload), { ...state, at: '2026-12-07T10:00:00.000Z', node: 'node-a' });

  signals.deliver('fleetboot_events', JSON.stringify({ ...state, taskId: 8, at: '2026-12-07T10:00:01.000Z', node: 'node-b' }));
  assert.equal(seen.length, 2);
  assert.equal(seen[1]?.id, 'e1-2', 'numbered by this bus');
  assert.equal(seen[1]?.node, 'node-b');
  assert.equal(seen[1]?.at, '2026-12-07T10:00:01.000Z', 'its time is kept');
  assert.equal(signals.sent.length, 1, 'an event from another server is not sent on');

  for (const junk of ['not json', '{"kind":"nope","node":"b"}', JSON.stringify({ ...state })]) signals.deliver('fleetboot_events', junk);
  assert.equal(seen.length, 2, 'junk and events without a node are ignored');

  stop();
  bus.publish(state);
  assert.equal(signals.sent.length, 1, 'nothing is sent once stopped');
  bus.close();
});

test('relayEvents() does nothing on SQLite (signals not shared)', () => {
  const bus = createEventBus({ epoch: 'e2' });
  const signals = fakeSignals(false);
  relayEvents(bus, signals, { node: 'node-a', log: silentLogger });
  bus.publish(state);
  assert.deepEqual(signals.sent, []);
  bus.close();
});
