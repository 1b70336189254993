import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from './wait.js';

test('waitFor() returns the first value the check gives once it holds', async () => {
  let n = 0;
  assert.equal(await waitFor('n to reach 3', () => (++n >= 3 ? n : null), 2000, { intervalMs: 1 }), 3);
  assert.equal(await waitFor('an async check', async () => 'yes', 100), 'yes');
  assert.equal(await waitFor('zero is a value', () => 0, 100), 0);
});

test('waitFor() fails after its deadline, naming what did not happen and the detail', async () => {
  await assert.rejects(waitFor('the log line', () => false, 30, { detail: () => 'lines: []' }), /^Error: the log line did not happen within 30 ms\nlines: \[\]$/);
  await assert.rejects(waitFor('x', () => null, 0), /'ms' must be a positive number: current value is 0/);
});

test('waitFor() passes on a throw from the check', async () => {
  await assert.rejects(waitFor('x', () => { throw new Error('broken check'); }, 100), /broken check/);
});
