import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reapReason, staleTaskIds, type ReapCandidate } from './reaper.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const at = (ms: number): string => new Date(T0 + ms).toISOString();
const c = (id: number, state: ReapCandidate['state'], seenMs: number | null): ReapCandidate => ({ id, state, lastSeenAt: seenMs === null ? null : at(seenMs), updatedAt: at(0) });

test('staleTaskIds() fails started tasks silent for longer than the timeout, never queued ones', () => {
  const tasks = [c(1, 'running', 0), c(2, 'running', 250_000), c(3, 'queued', null), c(4, 'booting', null), c(5, 'waiting', 0), c(6, 'done', 0)];
  assert.deepEqual(staleTaskIds(tasks, T0 + 301_000, 300_000, 0), [1, 4, 5]);
});

test('staleTaskIds() counts from the server start at the earliest (a restart is a grace period)', () => {
  const tasks = [c(1, 'running', 0)];
  assert.deepEqual(staleTaskIds(tasks, T0 + 400_000, 300_000, T0 + 200_000), []);
  assert.deepEqual(staleTaskIds(tasks, T0 + 501_000, 300_000, T0 + 200_000), [1]);
});

test('reapReason() says what happened and the likely cause', () => {
  assert.equal(reapReason(300), 'no contact from the agent for 300 s (machine off or network down?)');
});
