import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { POLL_JITTER } from '../model/endpoint.js';
import { BACKOFF_BASE_MS, BACKOFF_CAP_MS, backoffDelayMs, parseRetryAfter, pollDelayMs, retryDelayMs, START_DELAY_MS, startDelayMs } from './backoff.js';

/** A fixed sequence of "random" numbers, repeated. */
function seq(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length] as number;
}

test('backoffDelayMs() grows as base × 2^attempt, with full jitter below it', () => {
  const top = seq(0.999999);
  assert.equal(backoffDelayMs(0, top), Math.floor(0.999999 * BACKOFF_BASE_MS));
  assert.equal(backoffDelayMs(1, top), Math.floor(0.999999 * BACKOFF_BASE_MS * 2));
  assert.equal(backoffDelayMs(3, top), Math.floor(0.999999 * BACKOFF_BASE_MS * 8));
  assert.equal(backoffDelayMs(5, seq(0)), 0);
  assert.equal(backoffDelayMs(2, seq(0.5)), BACKOFF_BASE_MS * 2);
});

test('backoffDelayMs() never exceeds the cap, however many attempts', () => {
  for (const attempt of [7, 8, 20, 100, 5000]) {
    for (const r of [0, 0.3, 0.999999, 1]) {
      const d = backoffDelayMs(attempt, seq(r));
      assert.ok(d >= 0 && d <= BACKOFF_CAP_MS, `attempt ${attempt} r ${r}: ${d}`);
    }
  }
  assert.equal(backoffDelayMs(40, seq(1)), BACKOFF_CAP_MS);
  assert.equal(backoffDelayMs(3, seq(1), { baseMs: 100, capMs: 500 }), 500);
  // A random source out of [0, 1] is clamped, not trusted.
  assert.equal(backoffDelayMs(30, seq(7)), BACKOFF_CAP_MS);
  assert.equal(backoffDelayMs(30, seq(-1)), 0);
  assert.throws(() => backoffDelayMs(-1, seq(0.5)), RangeError);
});

test('backoffDelayMs() spreads retries over the whole window (full jitter)', () => {
  const draws = Array.from({ length: 1000 }, (_, i) => backoffDelayMs(4, seq((i + 0.5) / 1000)));
  const window = BACKOFF_BASE_MS * 16;
  assert.ok(Math.min(...draws) < window * 0.01);
  assert.ok(Math.max(...draws) > window * 0.99);
  const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
  assert.ok(Math.abs(mean - window / 2) < window * 0.01, `mean ${mean}`);
});

test('retryDelayMs() honours Retry-After up to the cap', () => {
  assert.equal(retryDelayMs(0, seq(0), 30_000), 30_000);
  assert.equal(retryDelayMs(0, seq(0), 10 * 3600_000), BACKOFF_CAP_MS);
  assert.equal(retryDelayMs(5, seq(1), 1000), BACKOFF_BASE_MS * 32);
  assert.equal(retryDelayMs(1, seq(0.5), null), BACKOFF_BASE_MS);
});

test('parseRetryAfter() reads seconds and HTTP dates', () => {
  const now = Date.parse('2026-12-01T10:00:00Z');
  assert.equal(parseRetryAfter('120', now), 120_000);
  assert.equal(parseRetryAfter(' 0 ', now), 0);
  assert.equal(parseRetryAfter('Tue, 01 Dec 2026 10:00:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('Tue, 01 Dec 2026 09:00:00 GMT', now), 0);
  assert.equal(parseRetryAfter('soon', now), null);
  assert.equal(parseRetryAfter(undefined, now), null);
});

test('pollDelayMs() stays within pollSeconds × (1 ± POLL_JITTER) and uses the whole range', () => {
  const draws = Array.from({ length: 1001 }, (_, i) => pollDelayMs(60, seq(i / 1000)));
  for (const d of draws) assert.ok(d >= 60_000 * (1 - POLL_JITTER) && d <= 60_000 * (1 + POLL_JITTER), `${d}`);
  assert.equal(Math.min(...draws), 48_000);
  assert.equal(Math.max(...draws), 72_000);
  assert.equal(pollDelayMs(60, seq(0.5)), 60_000);
  assert.equal(pollDelayMs(0, seq(0.5)), 1000, 'at least a second');
});

test('startDelayMs() is within the first seconds', () => {
  assert.equal(startDelayMs(seq(0)), 0);
  assert.ok(startDelayMs(seq(0.999999)) < START_DELAY_MS);
  assert.ok(START_DELAY_MS <= 3000);
});
