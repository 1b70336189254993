import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOptionValue } from './option-values.js';
import { loadConfig } from '../config/config.js';
import { parseDhcpOptionFlag, parseDhcpRange } from '../cli/serve.js';

test('parseOptionValue() knows the types of common codes', () => {
  assert.deepEqual([...parseOptionValue(3, '10.0.0.1')], [10, 0, 0, 1]);
  assert.deepEqual([...parseOptionValue(6, '10.0.0.2, 10.0.0.3')], [10, 0, 0, 2, 10, 0, 0, 3]);
  assert.equal(parseOptionValue(15, 'lab.example').toString(), 'lab.example');
  assert.deepEqual([...parseOptionValue(26, '1400')], [0x05, 0x78]);
  assert.deepEqual([...parseOptionValue(35, '60')], [0, 0, 0, 60]);
  assert.deepEqual([...parseOptionValue(23, '64')], [64]);
  assert.deepEqual([...parseOptionValue(19, 'false')], [0]);
  assert.deepEqual([...parseOptionValue(224, '0x0102ff')], [1, 2, 255]);
  assert.deepEqual([...parseOptionValue(224, '01:02:ff')], [1, 2, 255]);
  assert.deepEqual([...parseOptionValue(3, '0x0a000001')], [10, 0, 0, 1], 'hex for a typed code');
});

test('parseOptionValue() refuses bad values and server-owned codes with what was seen', () => {
  assert.throws(() => parseOptionValue(3, '10.0.0'), /option 3 takes a comma-separated list of IPv4 addresses: current value is "10.0.0"/);
  assert.throws(() => parseOptionValue(1, '255.255.255.0,1.2.3.4'), /one IPv4 address/);
  assert.throws(() => parseOptionValue(26, '70000'), /0-65535/);
  assert.throws(() => parseOptionValue(224, 'zz'), /hex bytes/);
  assert.throws(() => parseOptionValue(54, '10.0.0.1'), /set by the server/);
  assert.throws(() => parseOptionValue(0, '1'), /1-254/);
});

test('parseDhcpRange() and parseDhcpOptionFlag() read the serve flags', () => {
  const p = parseDhcpRange('10.0.0.100,10.0.0.200,255.255.0.0,120');
  assert.deepEqual([p.start, p.end, p.netmask, p.leaseSeconds], ['10.0.0.100', '10.0.0.200', '255.255.0.0', 120]);
  assert.equal(parseDhcpRange('10.0.0.100,10.0.0.200').netmask, '255.255.255.0');
  assert.throws(() => parseDhcpRange('10.0.0.100'), /START,END/);
  assert.deepEqual(parseDhcpOptionFlag('6,10.0.0.2,10.0.0.3'), { code: 6, value: '10.0.0.2,10.0.0.3' });
  assert.throws(() => parseDhcpOptionFlag('router'), /CODE,VALUE/);
});

test('loadConfig() validates server-mode pools, options and reservations', () => {
  const c = loadConfig({
    cwd: '/tmp',
    overrides: {
      dhcp: {
        mode: 'server',
        pools: [{ start: '10.0.0.100', end: '10.0.0.200', router: '10.0.0.1' } as never],
        options: [{ code: 6, value: '10.0.0.53' }],
        reservations: [{ mac: '52-54-00-AA-BB-01', ip: '10.0.0.20' } as never],
      },
    },
  });
  assert.equal(c.dhcp.pools[0]?.netmask, '255.255.255.0');
  assert.equal(c.dhcp.pools[0]?.leaseSeconds, 3600);
  assert.deepEqual(c.dhcp.reservations[0], { mac: '52:54:00:aa:bb:01', ip: '10.0.0.20', hostname: null });
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { dhcp: { mode: 'server' } } }), /needs at least one pool/);
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { dhcp: { pools: [{ start: '10.0.0.100', end: '10.0.1.5' } as never] } } }), /not one range/);
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { dhcp: { options: [{ code: 3, value: 'x' }] } } }), /dhcp.options\[0\]/);
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { dhcp: { pools: [{ start: '10.0.0.1', end: '10.0.0.2', routr: '1.2.3.4' } as never] } } }), /routr/);
});
