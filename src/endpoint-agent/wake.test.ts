import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { decodeMagicPacket } from '../protocol/wol.js';
import { broadcastOf, sendWake, wakeTargets } from './wake.js';

test('broadcastOf() computes the subnet broadcast', () => {
  assert.equal(broadcastOf('10.1.2.3', '255.255.255.0'), '10.1.2.255');
  assert.equal(broadcastOf('172.16.5.9', '255.255.240.0'), '172.16.15.255');
  assert.equal(broadcastOf('10.0.0.1', '255.255.255.255'), null);
  assert.equal(broadcastOf('10.0.0.1', '255.255.255.254'), null);
  assert.equal(broadcastOf('bad', '255.0.0.0'), null);
});

test('wakeTargets() uses each non-loopback IPv4 interface: its broadcast and 255.255.255.255', () => {
  const t = wakeTargets({
    lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' }],
    veth0: [
      { address: '10.9.0.5', netmask: '255.255.255.0', family: 'IPv4', mac: '0a:00:00:00:00:01', internal: false, cidr: '10.9.0.5/24' },
      { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '0a:00:00:00:00:01', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
    ],
  });
  assert.deepEqual(t, [
    { from: '10.9.0.5', to: '10.9.0.255' },
    { from: '10.9.0.5', to: '255.255.255.255' },
  ]);
});

test('sendWake() sends repeats × MACs magic packets to every target and says where', async () => {
  const sent: Array<{ to: string; port: number; macs: string[] }> = [];
  const r = await sendWake(['52:54:00:00:00:01', '52:54:00:00:00:02'], 7, 3, [{ from: '10.9.0.5', to: '10.9.0.255' }, { from: '10.9.0.5', to: '255.255.255.255' }], async (_from, to, port, packets) => {
    sent.push({ to, port, macs: packets.map((p) => decodeMagicPacket(p).mac) });
  });
  assert.equal(r.sent, 12);
  assert.equal(sent.length, 2);
  assert.deepEqual(sent[0]?.macs, ['52:54:00:00:00:01', '52:54:00:00:00:02', '52:54:00:00:00:01', '52:54:00:00:00:02', '52:54:00:00:00:01', '52:54:00:00:00:02']);
  assert.equal(sent[1]?.port, 7);
  assert.match(r.message, /sent 12 magic packets .* port 7: 10\.9\.0\.255 via 10\.9\.0\.5, 255\.255\.255\.255 via 10\.9\.0\.5/);
  const none = await sendWake(['52:54:00:00:00:01'], 9, 1, []);
  assert.equal(none.sent, 0);
  assert.match(none.message, /no IPv4 interface/);
});
