import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bindError } from './bind-error.js';

const err = (code: string, message: string): Error => Object.assign(new Error(message), { code });

test('bindError() names the socket and port, and says what to do for EACCES below 1024 and for EADDRINUSE', () => {
  const denied = bindError('TFTP socket', '0.0.0.0', 69, err('EACCES', 'bind Permission denied'));
  assert.equal(denied.code, 'IO');
  assert.match(denied.message, /^Cannot bind TFTP socket 0\.0\.0\.0:69: bind Permission denied: ports below 1024 need root or the capability CAP_NET_BIND_SERVICE .*README "Run as a service"/);
  assert.doesNotMatch(bindError('TFTP socket', '0.0.0.0', 6969, err('EACCES', 'denied')).message, /CAP_NET_BIND_SERVICE/);
  assert.match(bindError('DHCP socket', '0.0.0.0', 67, err('EADDRINUSE', 'bind EADDRINUSE 0.0.0.0:67')).message, /another program holds this port \(see `ss -lunp`\)$/);
  assert.equal(bindError('x', '1.2.3.4', 1, new Error('odd')).message, 'Cannot bind x 1.2.3.4:1: odd');
});
