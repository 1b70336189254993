import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetbootError } from '../lib/errors.js';
import { CAPTURE_GROUP_REFUSED, parseTaskRequest } from './task-request.js';

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
  refused({ type: 'inventory' }, /either one machine \("mac"\) or a host group \("group"\): got neither/);
  refused({ type: 'inventory', mac: '52:54:00:00:00:01', group: 'g' }, /got both/);
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
