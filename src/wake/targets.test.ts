import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCidr } from '../dhcp/subnets.js';
import { wakeTargets, type WakeTargetInputs } from './targets.js';

const base: WakeTargetInputs = { serverIp: '10.0.0.5', serverPrefix: 24, port: 9, poolSubnets: [], extraSubnets: [], relays: [], relayPrefixLength: 24 };

test('wakeTargets(): the limited broadcast of the server segment, then each subnet\'s directed broadcast, once', () => {
  const t = wakeTargets({
    ...base,
    poolSubnets: [parseCidr('10.0.0.0/24'), parseCidr('10.1.2.0/23')],
    extraSubnets: [parseCidr('192.168.7.0/24'), parseCidr('10.1.2.0/23')],
    relays: ['10.1.3.1', '10.9.9.1', '10.9.9.2', '172.16.0.1'],
  });
  assert.deepEqual(
    t.map((x) => [x.address, x.port]),
    [
      ['255.255.255.255', 9],
      ['10.1.3.255', 9], // the /23 pool (and wake.subnets: once); relay 10.1.3.1 is inside it
      ['192.168.7.255', 9],
      ['10.9.9.255', 9], // relays 10.9.9.1 and .2: /24 assumed, once
      ['172.16.0.255', 9],
    ],
  );
  assert.match(t[0]?.reason ?? '', /limited broadcast .*10\.0\.0\.5/);
  assert.match(t[1]?.reason ?? '', /subnet 10\.1\.2\.0\/23 \(dhcp\.pools\)/);
  assert.match(t[3]?.reason ?? '', /relay 10\.9\.9\.1's subnet 10\.9\.9\.0\/24 \(wake\.relayPrefixLength\)/);
});

test('wakeTargets(): a relay on the server\'s own subnet adds nothing; the relay prefix is configurable', () => {
  assert.deepEqual(wakeTargets({ ...base, relays: ['10.0.0.1'] }).map((x) => x.address), ['255.255.255.255']);
  assert.deepEqual(wakeTargets({ ...base, relays: ['10.5.0.1'], relayPrefixLength: 16, port: 7 }).map((x) => `${x.address}:${x.port}`), ['255.255.255.255:7', '10.5.255.255:7']);
});

test('wakeTargets(): a loopback server (tests) never sends a limited broadcast', () => {
  assert.deepEqual(wakeTargets({ ...base, serverIp: '127.0.0.1', serverPrefix: 8, extraSubnets: [parseCidr('127.0.0.0/8')] }).map((x) => x.address), ['127.255.255.255']);
  assert.deepEqual(wakeTargets({ ...base, serverIp: '127.0.0.1', serverPrefix: 8 }), []);
});
