import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LiveEvent } from '../model/events.js';
import { eventLine, eventText, kindFilter } from './events.js';

const base = { id: 'r-1', at: '2026-12-10T10:00:00.123Z' };
const A = '52:54:00:aa:00:01';

test('eventText() says what happened, for each kind', () => {
  const cases: Array<[LiveEvent, string]> = [
    [
      { ...base, kind: 'task.progress', taskId: 7, mac: A, phase: 'transfer', bytesDone: 1024 ** 3, bytesTotal: 4 * 1024 ** 3, partition: 2, rateBps: 100 * 1024 ** 2, etaSeconds: 31, message: 'p2' },
      `task #7 ${A} transfer, 1.0 GiB / 4.0 GiB (25.0%), 100 MiB/s, ETA 31s: p2`,
    ],
    [{ ...base, kind: 'task.progress', taskId: 7, mac: A, phase: 'inventory', bytesDone: 0, bytesTotal: null, partition: null, rateBps: null, etaSeconds: null, message: null }, `task #7 ${A} inventory, 0 B`],
    [{ ...base, kind: 'task.state', taskId: 7, mac: A, type: 'deploy', image: 'win11', from: null, state: 'queued', error: null, jobId: 3 }, `task #7 deploy win11 ${A}: created, queued`],
    [{ ...base, kind: 'task.state', taskId: 7, mac: A, type: 'inventory', image: null, from: 'running', state: 'failed', error: 'disk gone', jobId: null }, `task #7 inventory ${A}: running -> failed (disk gone)`],
    [{ ...base, kind: 'host.pending', mac: A, name: null, ip: '10.0.0.5', via: 'boot-menu' }, `host ${A} registered from 10.0.0.5 from the boot menu: waits for approval`],
    [{ ...base, kind: 'host.changed', mac: A, change: 'approved', name: 'pc1', status: 'approved' }, `host ${A} (pc1) approved`],
    [{ ...base, kind: 'host.imported', added: 30, skipped: 2, groupsCreated: ['lab'] }, '30 hosts imported, 2 already there; groups made: lab'],
    [
      { ...base, kind: 'dhcp.lease', ip: '10.0.0.50', mac: A, clientId: null, hostname: 'pc1', state: 'bound', expiresAt: '2026-12-10T11:00:00.000Z', updatedAt: base.at, active: true },
      `10.0.0.50 bound ${A} (pc1) until 2026-12-10 11:00:00Z`,
    ],
    [{ ...base, kind: 'boot.event', mac: null, ip: '10.0.0.5', step: 'tftp', summary: 'TFTP sent ipxe.efi (1000 bytes)', detail: {} }, '10.0.0.5 tftp: TFTP sent ipxe.efi (1000 bytes)'],
    [{ ...base, kind: 'multicast.session', sessionId: 2, jobId: 3, image: 'win11', revision: 4, state: 'sending', error: null }, 'multicast session #2 (win11 revision 4): sending'],
    [{ ...base, kind: 'multicast.member', sessionId: 2, taskId: 9, state: 'dropped', reason: 'too slow' }, 'multicast session #2: task #9 dropped (too slow)'],
  ];
  for (const [e, text] of cases) assert.equal(eventText(e), text, e.kind);
  assert.equal(eventLine(cases[5]?.[0] as LiveEvent), `2026-12-10 10:00:00Z      host.changed       host ${A} (pc1) approved`);
});

test('kindFilter(): kinds and families; an unknown one is refused naming the known', () => {
  const all = kindFilter([]);
  assert.ok(all('dhcp.lease'));
  const f = kindFilter(['task', 'dhcp.lease']);
  assert.deepEqual(['task.state', 'task.progress', 'dhcp.lease', 'host.pending', 'taskx.y'].map(f), [true, true, true, false, false]);
  assert.throws(() => kindFilter(['tasks']), /--kind "tasks" is not an event kind: expected one of task.progress, .*, or task, host, dhcp, boot, multicast/);
});
