import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateMeter, etaSeconds, formatDuration, formatRate } from './progress.js';

test('RateMeter.rate() is bytes per second over the window', () => {
  const m = new RateMeter(10_000);
  assert.equal(m.rate(), null);
  m.add(0, 0);
  assert.equal(m.rate(), null);
  m.add(50_000_000, 1000);
  assert.equal(m.rate(), 50_000_000);
  m.add(60_000_000, 2000);
  assert.equal(m.rate(), 30_000_000);
  // Samples older than the window drop out: the rate follows the recent speed.
  m.add(60_000_000, 30_000);
  m.add(70_000_000, 31_000);
  assert.equal(m.rate(), 10_000_000);
});

test('etaSeconds() rounds up and is null without a total or a rate', () => {
  assert.equal(etaSeconds(0, 100, 30), 4);
  assert.equal(etaSeconds(100, 100, 30), 0);
  assert.equal(etaSeconds(0, null, 30), null);
  assert.equal(etaSeconds(0, 100, null), null);
  assert.equal(etaSeconds(0, 100, 0), null);
});

test('formatRate() and formatDuration() print console units', () => {
  assert.equal(formatRate(12_345_678), '12.3 MB/s');
  assert.equal(formatRate(1_500_000_000), '1.50 GB/s');
  assert.equal(formatRate(900), '0.9 kB/s');
  assert.equal(formatRate(null), '-');
  assert.equal(formatDuration(62), '1:02');
  assert.equal(formatDuration(3723), '1:02:03');
  assert.equal(formatDuration(null), '-');
});
