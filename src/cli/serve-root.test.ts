import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALLOW_ROOT_ENV, rootRefusal } from './serve.js';

test('rootRefusal() refuses uid 0 unless --allow-root or FLEETBOOT_ALLOW_ROOT=1, and never another user', () => {
  const refused = rootRefusal(0, false, {});
  assert.ok(refused !== null);
  assert.match(refused, /^refusing to run the server as root \(uid 0\): /);
  assert.match(refused, /CAP_NET_BIND_SERVICE/);
  assert.match(refused, /scripts\/install-service\.sh/);
  assert.match(refused, /--allow-root \(or set FLEETBOOT_ALLOW_ROOT=1\)/);
  assert.equal(rootRefusal(0, true, {}), null);
  assert.equal(rootRefusal(0, false, { [ALLOW_ROOT_ENV]: '1' }), null);
  assert.match(rootRefusal(0, false, { [ALLOW_ROOT_ENV]: 'yes' }) ?? '', /\(FLEETBOOT_ALLOW_ROOT is "yes"; only "1" allows root\)/);
  assert.equal(rootRefusal(999, false, {}), null);
  assert.equal(rootRefusal(null, false, {}), null, 'no uid (Windows): nothing to refuse');
});
