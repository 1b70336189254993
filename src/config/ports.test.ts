import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from './config.js';
import { concretePort, outboundPorts, requiredPorts } from './ports.js';

test('requiredPorts() lists proxyDHCP, PXE, TFTP, TFTP data, multicast sessions, HTTP and HTTPS from the live config', () => {
  const c = loadConfig({ cwd: '/tmp', overrides: { http: { port: 9090 }, https: { port: 9443 }, tftp: { dataPorts: { from: 64001, to: 65000 } } } });
  const ports = requiredPorts(c).map((p) => `${p.proto}/${Array.isArray(p.port) ? p.port.join('-') : p.port}`);
  assert.deepEqual(ports, ['udp/67', 'udp/4011', 'udp/69', 'udp/64001-65000', 'udp/63001-63100', 'tcp/9090', 'tcp/9443']);
  assert.deepEqual(requiredPorts(c).at(-1), { proto: 'tcp', port: 9443, service: 'HTTPS', why: 'the REST API, the web console and the endpoint agents, over TLS', setting: 'https.port' });
});

test('requiredPorts() leaves out HTTPS when it is off', () => {
  const c = loadConfig({ cwd: '/tmp', overrides: { https: { enabled: false } } });
  assert.ok(!requiredPorts(c).some((p) => p.service === 'HTTPS'));
  assert.equal(requiredPorts(c).at(-1)?.service, 'HTTP');
});

test('requiredPorts() leaves out DHCP when the proxy is off', () => {
  const c = loadConfig({ cwd: '/tmp', overrides: { dhcp: { mode: 'off' } } });
  assert.ok(!requiredPorts(c).some((p) => p.service === 'proxyDHCP'));
});

test('requiredPorts() lists the DHCP server and PXE ports in server mode', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fbports-'));
  writeFileSync(join(dir, 'c.json'), JSON.stringify({ dhcp: { mode: 'server', pools: [{ start: '10.0.0.100', end: '10.0.0.199' }] } }));
  const c = loadConfig({ cwd: dir, file: join(dir, 'c.json') });
  const names = requiredPorts(c).map((p) => p.service);
  assert.deepEqual(names.slice(0, 2), ['DHCP server', 'PXE boot server']);
});

test('multicast.ports: a range or one port, never overlapping tftp.dataPorts', () => {
  const c = loadConfig({ cwd: '/tmp', overrides: { multicast: { ports: '9000' } } });
  assert.ok(requiredPorts(c).some((p) => p.service === 'multicast sessions' && p.port === 9000));
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { multicast: { ports: '64050-64060' }, tftp: { dataPorts: { from: 64001, to: 65000 } } } }), /must not overlap 'tftp.dataPorts'/);
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { multicast: { ports: '70000' } } }), /port range/);
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { multicast: { addresses: '10.0.0.0/24' } } }), /not a multicast address/);
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { multicast: { addresses: '224.0.0.0/24' } } }), /224\.0\.0\.0\/24/);
});

test('concretePort() puts ephemeral ports where each system has them, and leaves the others alone', () => {
  assert.deepEqual(concretePort(null, 'linux'), [32768, 60999]);
  assert.deepEqual(concretePort(null, 'windows'), [49152, 65535]);
  assert.equal(concretePort(69, 'windows'), 69);
  assert.deepEqual(concretePort([64001, 65000], 'linux'), [64001, 65000]);
});

test('outboundPorts() lists what the server sends that is no reply: DHCP answers, TFTP data, multicast sessions, Wake-on-LAN', () => {
  const show = (c: ReturnType<typeof loadConfig>) =>
    outboundPorts(c).map((o) => `${o.match} ${o.proto}/${o.port === null ? 'ephemeral' : Array.isArray(o.port) ? o.port.join('-') : o.port}${o.helper ? ` helper ${o.helper.name}@${o.helper.requestPort}` : ''}`);
  assert.deepEqual(show(loadConfig({ cwd: '/tmp' })), [
    'sport udp/67',
    'sport udp/ephemeral helper tftp@69',
    'sport udp/63001-63100',
    'dport udp/9',
  ]);
  const custom = loadConfig({ cwd: '/tmp', overrides: { dhcp: { mode: 'off' }, tftp: { port: 1069, dataPorts: { from: 6969, to: 6969 } }, wake: { port: 7 } } });
  assert.deepEqual(show(custom), ['sport udp/6969 helper tftp@1069', 'sport udp/63001-63100', 'dport udp/7']);
  assert.deepEqual(show(loadConfig({ cwd: '/tmp', overrides: { tftp: { enabled: false }, dhcp: { mode: 'off' } } })), ['sport udp/63001-63100', 'dport udp/9']);
});
