import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateTracker, etaSeconds, nextRate } from './rate.js';

test('nextRate() has no rate after one sample and the interval rate after two', () => {
  const a = nextRate(undefined, 0, 0);
  assert.equal(a.rateBps, null);
  const b = nextRate(a, 3_000_000, 3000);
  assert.equal(b.rateBps, 1_000_000);
  assert.equal(etaSeconds(b, 10_000_000), 7);
});

test('nextRate() smooths a burst', () => {
  let s = nextRate(nextRate(undefined, 0, 0), 3_000_000, 3000);
  s = nextRate(s, 3_000_000 + 30_000_000, 6000); // 10 MB/s for one interval
  assert.ok(s.rateBps !== null && s.rateBps > 1_000_000 && s.rateBps < 10_000_000, String(s.rateBps));
});

test('nextRate() restarts the count when the bytes go backwards and ignores reports too close together', () => {
  const s = nextRate(nextRate(undefined, 0, 0), 1000, 1000);
  assert.equal(nextRate(s, 1100, 1100), s);
  const back = nextRate(s, 10, 2000);
  assert.deepEqual(back.last, { bytes: 10, atMs: 2000 });
  assert.equal(back.rateBps, s.rateBps);
});

test('RateTracker.report() gives rounded rate and ETA per task', () => {
  const r = new RateTracker();
  assert.deepEqual(r.report(1, 0, 100, 0), { rateBps: null, etaSeconds: null });
  assert.deepEqual(r.report(1, 50, 100, 1000), { rateBps: 50, etaSeconds: 1 });
  assert.deepEqual(r.report(2, 0, null, 0), { rateBps: null, etaSeconds: null });
  r.forget(1);
  assert.deepEqual(r.report(1, 60, 100, 2000), { rateBps: null, etaSeconds: null });
});
