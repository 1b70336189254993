import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createActivityTracker } from './activity.js';

test('createActivityTracker() keeps the newest answer of each boot subsystem', () => {
  const a = createActivityTracker();
  assert.deepEqual(a.snapshot(), { dhcp: null, tftp: null, http: null });
  a.note({ kind: 'dhcp', at: '2026-12-07T10:00:02.000Z' });
  a.note({ kind: 'dhcp', at: '2026-12-07T10:00:01.000Z' }); // late, older: ignored
  a.note({ kind: 'tftp', at: '2026-12-07T10:00:03.000Z' });
  a.note({ kind: 'decision', at: '2026-12-07T10:00:04.000Z' });
  a.note({ kind: 'task', at: '2026-12-07T10:00:05.000Z' });
  assert.deepEqual(a.snapshot(), { dhcp: '2026-12-07T10:00:02.000Z', tftp: '2026-12-07T10:00:03.000Z', http: null });
  a.note({ kind: 'http', at: '2026-12-07T10:00:06.000Z' });
  assert.equal(a.snapshot().http, '2026-12-07T10:00:06.000Z');
});
