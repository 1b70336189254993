import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { RateLimiter } from './rate-limit.js';

test('RateLimiter.take() allows the burst, then refills at perMinute', () => {
  let now = 0;
  const r = new RateLimiter({ burst: 3, perMinute: 6, now: () => now });
  assert.deepEqual([r.take('a'), r.take('a'), r.take('a')].map((x) => x.allowed), [true, true, true]);
  const denied = r.take('a');
  assert.equal(denied.allowed, false);
  assert.equal(!denied.allowed && denied.retryAfterSeconds, 10);
  assert.equal(r.take('b').allowed, true, 'another key has its own bucket');
  now += 10_000;
  assert.equal(r.take('a').allowed, true);
  assert.equal(r.take('a').allowed, false);
});

test('RateLimiter.take() over many requests allows burst + elapsed refill, no more', () => {
  let now = 0;
  const r = new RateLimiter({ burst: 20, perMinute: 10, now: () => now });
  let allowed = 0;
  for (let i = 0; i < 2000; i++) {
    if (r.take('10.0.0.5').allowed) allowed++;
    now += 30; // 2,000 requests over 60 s
  }
  assert.ok(allowed >= 20 && allowed <= 30, `allowed ${allowed}`);
});

test('RateLimiter keeps at most maxKeys keys', () => {
  let now = 0;
  const r = new RateLimiter({ burst: 1, perMinute: 1, now: () => now, maxKeys: 10 });
  for (let i = 0; i < 1000; i++) r.take(`k${i}`);
  assert.equal(r.take('k999').allowed, false, 'a recent key is still limited');
  now += 1;
  assert.throws(() => new RateLimiter({ burst: 0, perMinute: 1 }), /'burst' must be a positive integer: current value is 0/);
});
