import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetbootError } from '../lib/errors.js';
import { checkStartTime, parseWhen, WHEN_EXPECTED } from './when.js';

// Local times are built with the local Date constructor, so the test holds in any time zone.
const now = new Date(2026, 11, 2, 10, 30, 15);

test('parseWhen() reads HH:MM as the next time the clock shows it', () => {
  assert.equal(parseWhen('22:00', now).getTime(), new Date(2026, 11, 2, 22, 0).getTime());
  assert.equal(parseWhen('7:05', now).getTime(), new Date(2026, 11, 3, 7, 5).getTime(), 'earlier today: tomorrow');
  assert.equal(parseWhen('10:30', now).getTime(), new Date(2026, 11, 3, 10, 30).getTime(), 'this minute has begun: tomorrow');
  assert.equal(parseWhen('10:31', now).getTime(), new Date(2026, 11, 2, 10, 31).getTime());
});

test('parseWhen() reads ISO 8601 with an offset as that instant, without one as local time', () => {
  assert.equal(parseWhen('2026-12-24T22:00:00Z', now).toISOString(), '2026-12-24T22:00:00.000Z');
  assert.equal(parseWhen('2026-12-24T22:00+01:00', now).toISOString(), '2026-12-24T21:00:00.000Z');
  assert.equal(parseWhen('2026-12-24 22:00:30.5-0500', now).toISOString(), '2026-12-25T03:00:30.500Z');
  assert.equal(parseWhen('2026-12-24T22:00', now).getTime(), new Date(2026, 11, 24, 22, 0).getTime());
  assert.equal(parseWhen('2026-12-24T22:00:09', now).getTime(), new Date(2026, 11, 24, 22, 0, 9).getTime());
});

test('parseWhen() says what it expected when TIME does not parse', () => {
  for (const bad of ['tomorrow', '25:00', '10:60', '2026-13-01T00:00', '2026-02-30T10:00', '2026-02-30T10:00Z', '2026-12-24', '2026-12-24T22:00+15:00', '', '22h']) {
    assert.throws(
      () => parseWhen(bad, now),
      (e: unknown) => e instanceof FleetbootError && e.code === 'INVALID_INPUT' && e.message.startsWith(`Invalid time ${JSON.stringify(bad)}`) && e.message.endsWith(WHEN_EXPECTED),
      bad,
    );
  }
});

test('checkStartTime() refuses the past (beyond a few seconds of skew) and more than a year ahead', () => {
  checkStartTime(new Date(now.getTime() - 4000), now);
  checkStartTime(new Date(now.getTime() + 3600_000), now);
  assert.throws(() => checkStartTime(new Date(now.getTime() - 60_000), now, '10:29'), /"10:29" .* is in the past .*expected a time from now on/);
  assert.throws(() => checkStartTime(new Date(now.getTime() + 400 * 86_400_000), now), /more than 366 days ahead/);
});
