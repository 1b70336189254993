import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideSlot, type SlotHolder } from './slots.js';

const policy = { maxTransfers: 2, retryAfterSeconds: 5, staleWaitMs: 30_000 };
const now = 1_000_000;
const t = (id: number, requestedAt: string | null, grantedAt: string | null, lastSeenMs = now): SlotHolder => ({ id, requestedAt, grantedAt, lastSeenMs });

test('decideSlot() grants while slots are free', () => {
  assert.deepEqual(decideSlot([t(1, null, null)], 1, now, policy), { granted: true });
  assert.deepEqual(decideSlot([t(1, 'a', 'a'), t(2, null, null)], 2, now, policy), { granted: true });
});

test('decideSlot() keeps a granted slot', () => {
  assert.deepEqual(decideSlot([t(1, 'a', 'a'), t(2, 'b', 'b')], 2, now, { ...policy, maxTransfers: 1 }), { granted: true });
});

test('decideSlot() queues the rest FIFO by request time and gives positions from 1', () => {
  const tasks = [t(1, 'a', 'a'), t(2, 'b', 'b'), t(3, 'd', null), t(4, 'c', null)];
  assert.deepEqual(decideSlot(tasks, 4, now, policy), { granted: false, position: 1, retryAfterSeconds: 5 });
  assert.deepEqual(decideSlot(tasks, 3, now, policy), { granted: false, position: 2, retryAfterSeconds: 5 });
  assert.deepEqual(decideSlot([...tasks, t(5, null, null)], 5, now, policy), { granted: false, position: 3, retryAfterSeconds: 5 });
});

test('decideSlot() gives a freed slot to the head of the queue, not to a later asker', () => {
  const tasks = [t(1, 'a', 'a'), t(3, 'c', null), t(4, 'd', null)];
  assert.deepEqual(decideSlot(tasks, 4, now, policy), { granted: false, position: 1, retryAfterSeconds: 5 });
  assert.deepEqual(decideSlot(tasks, 3, now, policy), { granted: true });
});

test('decideSlot() does not let a silent waiting agent hold the queue', () => {
  const tasks = [t(1, 'a', 'a'), t(3, 'b', null, now - 60_000), t(4, 'c', null)];
  assert.deepEqual(decideSlot(tasks, 4, now, { ...policy, maxTransfers: 2 }), { granted: true });
});
