import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttemptWindow } from './attempt-window.js';

test('AttemptWindow allows `limit` events per window and says when the next one is allowed', () => {
  let now = 1_000_000;
  const w = new AttemptWindow({ limit: 5, windowMs: 60_000, now: () => now });
  for (let i = 0; i < 5; i++) {
    assert.deepEqual(w.check('a'), { allowed: true }, `attempt ${i + 1}`);
    w.record('a');
    now += 1000;
  }
  // Five events at t0..t0+4 s; now t0+5 s: the oldest leaves the window at t0+60 s.
  assert.deepEqual(w.check('a'), { allowed: false, retryAfterSeconds: 55 });
  assert.deepEqual(w.check('b'), { allowed: true }, 'keys are counted apart');
  now += 54_500;
  assert.deepEqual(w.check('a'), { allowed: false, retryAfterSeconds: 1 }, 'never 0 while refused');
  now += 500;
  assert.deepEqual(w.check('a'), { allowed: true }, 'the oldest has left');
  w.record('a');
  assert.deepEqual(w.check('a'), { allowed: false, retryAfterSeconds: 1 }, 'the next oldest (t0+1 s) leaves at t0+61 s');
});

test('AttemptWindow is a sliding window, not a bucket: a steady trickle is refused too', () => {
  let now = 0;
  const w = new AttemptWindow({ limit: 5, windowMs: 60_000, now: () => now });
  let allowed = 0;
  for (let t = 0; t < 60_000; t += 5_000) {
    now = t;
    if (w.check('k').allowed) {
      allowed++;
      w.record('k');
    }
  }
  assert.equal(allowed, 5, 'five in any minute, however spread');
});

test('AttemptWindow.clear() forgets a key; old keys and the oldest beyond maxKeys are dropped', () => {
  let now = 0;
  const w = new AttemptWindow({ limit: 1, windowMs: 1000, now: () => now, maxKeys: 3 });
  w.record('a');
  assert.equal(w.check('a').allowed, false);
  w.clear('a');
  assert.equal(w.check('a').allowed, true);
  for (const k of ['a', 'b', 'c', 'd']) w.record(k);
  assert.equal(w.size, 3);
  assert.equal(w.check('a').allowed, true, 'the least recently touched went first');
  assert.equal(w.check('d').allowed, false);
  now = 1000;
  assert.equal(w.check('d').allowed, true);
  assert.equal(w.size, 2, 'a key whose events all left the window is dropped when seen');
});

test('AttemptWindow.forgive() takes back the newest event only', () => {
  let now = 0;
  const w = new AttemptWindow({ limit: 2, windowMs: 60_000, now: () => now });
  w.record('k');
  now = 10_000;
  w.record('k');
  assert.deepEqual(w.check('k'), { allowed: false, retryAfterSeconds: 50 });
  w.forgive('k');
  assert.deepEqual(w.check('k'), { allowed: true });
  w.record('k');
  assert.deepEqual(w.check('k'), { allowed: false, retryAfterSeconds: 50 }, 'the older event is still counted');
  w.forgive('k');
  w.forgive('k');
  w.forgive('k');
  assert.equal(w.size, 0);
});

test('AttemptWindow refuses bad options', () => {
  assert.throws(() => new AttemptWindow({ limit: 0, windowMs: 1 }), /'limit' must be a positive integer: current value is 0/);
  assert.throws(() => new AttemptWindow({ limit: 1, windowMs: 0 }), /'windowMs' must be positive: current value is 0/);
});
