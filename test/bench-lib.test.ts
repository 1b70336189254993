import assert from 'node:assert/strict';
import { test } from 'node:test';
import { median, pairedRatio } from '../bench/lib.js';

test('pairedRatio: geometric mean and a t interval on the logarithms', () => {
  // ln ratios 0.1 and -0.1 (mean 0, sd 0.1414, t(1) 12.706): exp(±12.706*0.1414/sqrt 2) = exp(±1.2706)
  const r = pairedRatio([Math.exp(0.1), Math.exp(-0.1)]);
  assert.equal(r.n, 2);
  assert.ok(Math.abs(r.mean - 1) < 1e-12);
  assert.ok(Math.abs(r.low - Math.exp(-1.2706)) < 1e-9);
  assert.ok(Math.abs(r.high - Math.exp(1.2706)) < 1e-9);
  // identical ratios: no spread, the interval is the point
  const same = pairedRatio([1.05, 1.05, 1.05]);
  assert.ok(Math.abs(same.mean - 1.05) < 1e-12 && Math.abs(same.low - 1.05) < 1e-12 && Math.abs(same.high - 1.05) < 1e-12);
  // geometric, not arithmetic: 2x and 0.5x average to 1x
  assert.ok(Math.abs(pairedRatio([2, 0.5]).mean - 1) < 1e-12);
  // beyond the table (df 40): t ~ 2.02
  const many = pairedRatio(Array.from({ length: 41 }, (_, i) => Math.exp(i % 2 ? 0.05 : -0.05)));
  assert.ok(many.low < 1 && many.high > 1 && many.high / many.mean < Math.exp((2.03 * 0.0506) / Math.sqrt(41)));
});

test('pairedRatio: nothing usable gives NaN, one ratio gives no interval, bad values are skipped', () => {
  assert.ok(Number.isNaN(pairedRatio([]).mean));
  const one = pairedRatio([1.2, NaN, 0, -1, Infinity]);
  assert.equal(one.n, 1);
  assert.ok(Math.abs(one.mean - 1.2) < 1e-12 && Number.isNaN(one.low) && Number.isNaN(one.high));
});

test('median: middle value, mean of the two middle ones, NaN when empty, input untouched', () => {
  const xs = [3, 1, 2];
  assert.equal(median(xs), 2);
  assert.deepEqual(xs, [3, 1, 2]);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});
