import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetbootError } from '../lib/errors.js';
import { CAPTURE_GROUP_REFUSED, CAPTURE_MACS_REFUSED, macListText, MULTICAST_ONE_REFUSED, parseTaskRequest } from './task-request.js';

const refused = (value: unknown, re: RegExp, allowAt = true): void => {
  assert.throws(() => parseTaskRequest(value, { allowAt }), (e: unknown) => e instanceof FleetbootError && e.code === 'INVALID_INPUT' && re.test(e.message), JSON.stringify(value));
};

test('parseTaskRequest() normalises a valid request and leaves absent fields out', () => {
  assert.deepEqual(parseTaskRequest({ type: 'deploy', mac: '52-54-00-AA-00-01', image: 'win11', table: 'gpt', wake: true, at: '22:00' }, { allowAt: true }), {
    type: 'deploy',
    mac: '52:54:00:aa:00:01',
    image: 'win11',
    table: 'gpt',
    wake: true,
    at: '22:00',
  });
  assert.deepEqual(parseTaskRequest({ type: 'inventory', group: 'lab12', wake: false, image: null, disk: null }, { allowAt: false }), { type: 'inventory', group: 'lab12' });
});

test('parseTaskRequest() refuses what does not go together, saying what was expected and seen', () => {
  refused({ type: 'capture', group: 'lab12', image: 'x' }, new RegExp(CAPTURE_GROUP_REFUSED.slice(0, 30)));
  refused({ type: 'inventory' }, /names one machine \("mac"\), a list of machines \("macs"\) or a host group \("group"\): got none of them/);
  refused({ type: 'inventory', mac: '52:54:00:00:00:01', group: 'g' }, /got "mac" and "group"$/);
  refused({ type: 'inventory', mac: 'nope' }, /Invalid MAC address "nope"/);
  refused({ type: 'inventory', group: '../x' }, /Invalid group name "\.\.\/x"/);
  refused({ type: 'deploy', group: 'g' }, /needs an image name/);
  refused({ type: 'inventory', group: 'g', image: 'x' }, /takes no image/);
  refused({ type: 'inventory', group: 'g', disk: '/dev/sda' }, /takes no disk/);
  refused({ type: 'deploy', group: 'g', image: 'x', disk: '/etc/passwd' }, /Invalid disk "\/etc\/passwd"/);
  refused({ type: 'inventory', group: 'g', table: 'gpt' }, /"table" applies to deploy tasks only/);
  refused({ type: 'inventory', group: 'g', revision: 2 }, /takes no revision/);
  refused({ type: 'deploy', group: 'g', image: 'x', revision: 0 }, /Invalid revision 0/);
  refused({ type: 'inventory', group: 'g', wake: 'yes' }, /"wake" must be true or false: got "yes"/);
  refused({ type: 'inventory', group: 'g', at: '22:00' }, /takes no start time/, false);
  refused({ type: 'register', mac: '52:54:00:00:00:01' }, /Invalid task type "register": expected one of capture, deploy, inventory/);
  refused({ type: 'inventory', group: 'g', extra: 1 }, /Unknown field "extra"/);
  refused('inventory', /must be an object/);
});

const M = (n: number): string => `52:54:00:00:02:${n.toString(16).padStart(2, '0')}`;

test('parseTaskRequest() takes a list of MACs ("macs"), normalised, in the order given', () => {
  assert.deepEqual(parseTaskRequest({ type: 'inventory', macs: ['52-54-00-00-02-02', '525400000201'], wake: true }, { allowAt: false }), {
    type: 'inventory',
    macs: [M(2), M(1)],
    wake: true,
  });
  assert.deepEqual(parseTaskRequest({ type: 'deploy', macs: [M(1), M(2), M(3)], image: 'win11', multicast: true }, { allowAt: true }), {
    type: 'deploy',
    macs: [M(1), M(2), M(3)],
    image: 'win11',
    multicast: {},
  });
  const many = Array.from({ length: 1000 }, (_, i) => `52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`);
  assert.equal(parseTaskRequest({ type: 'inventory', macs: many }, { allowAt: false }).macs?.length, 1000);
});

test('parseTaskRequest() refuses a bad list of MACs, naming what was wrong', () => {
  refused({ type: 'inventory', macs: [M(1)] }, /"macs" names 2 to 1000 machines: got 1 \(for one machine use "mac"\)/);
  refused({ type: 'inventory', macs: [] }, /"macs" names 2 to 1000 machines: got 0$/);
  refused({ type: 'inventory', macs: Array.from({ length: 1001 }, () => M(1)) }, /got 1001/);
  refused({ type: 'inventory', macs: M(1) }, /"macs" must be a list of MAC addresses: got "52:54:00:00:02:01"/);
  refused({ type: 'inventory', macs: [M(1), 'nope', 7] }, /Invalid MAC addresses "nope", 7 in "macs": expected six hex bytes/);
  refused({ type: 'inventory', macs: [M(1), '52-54-00-00-02-01', M(2), M(3), M(3)] }, /"macs" names 52:54:00:00:02:01, 52:54:00:00:02:03 more than once: each machine gets one task/);
  refused({ type: 'inventory', macs: [M(1), M(2)], group: 'g' }, /got "macs" and "group"$/);
  refused({ type: 'inventory', mac: M(3), macs: [M(1), M(2)], group: 'g' }, /got "mac" and "macs" and "group"$/);
  refused({ type: 'capture', macs: [M(1), M(2)], image: 'x' }, new RegExp(CAPTURE_MACS_REFUSED.slice(0, 40)));
});

test('parseTaskRequest() takes "multicast" for a deploy to a group or a list of MACs, not to one machine', () => {
  assert.deepEqual(parseTaskRequest({ type: 'deploy', group: 'g', image: 'x', multicast: { maxWaitSeconds: 60, minReceivers: 2 } }, { allowAt: true }).multicast, { maxWaitSeconds: 60, minReceivers: 2 });
  refused({ type: 'deploy', mac: M(1), image: 'x', multicast: true }, new RegExp(`^${MULTICAST_ONE_REFUSED.replace(/[()]/g, '\\$&')}$`));
  refused({ type: 'inventory', macs: [M(1), M(2)], multicast: true }, /"multicast" applies to deploy tasks to several machines \(a group or a list of MACs: one session for them all\), not to inventory tasks/);
  assert.deepEqual(parseTaskRequest({ type: 'deploy', mac: M(1), image: 'x', multicast: false }, { allowAt: true }), { type: 'deploy', mac: M(1), image: 'x' });
});

test('macListText() lists a few MACs and counts the rest', () => {
  assert.equal(macListText([M(1), M(2)]), `${M(1)} ${M(2)}`);
  assert.equal(macListText([M(1), M(2), M(3), M(4), M(5), M(6)]), `${M(1)} ${M(2)} ${M(3)} ${M(4)} and 2 more`);
  assert.equal(macListText([M(1), M(2), M(3)], 2), `${M(1)} ${M(2)} and 1 more`);
});
