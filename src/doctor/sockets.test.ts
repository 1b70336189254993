import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgePorts, parseProcNet, socketInode, type PortFacts } from './sockets.js';

// Lines as /proc/net/udp and /proc/net/tcp print them (Linux 6.1).
const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  348: 00000000:0043 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 51234 2 0000000000000000 0
  350: 0142D50A:0045 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 51240 2 0000000000000000 0
  351: 00000000:0FAB 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 51236 2 0000000000000000 0
garbage
`;
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 60001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 60002 1 0000000000000000 20 4 30 10 -1
`;

test('parseProcNet() reads address, port, state and inode', () => {
  assert.deepEqual(parseProcNet(UDP, 'udp'), [
    { proto: 'udp', address: '0.0.0.0', port: 67, listening: true, inode: 51234 },
    { proto: 'udp', address: '10.213.66.1', port: 69, listening: true, inode: 51240 },
    { proto: 'udp', address: '0.0.0.0', port: 4011, listening: true, inode: 51236 },
  ]);
  const tcp = parseProcNet(TCP, 'tcp');
  assert.deepEqual(tcp.map((s) => [s.address, s.port, s.listening]), [['0.0.0.0', 8080, true], ['127.0.0.1', 8080, false]]);
});

test('socketInode() reads a /proc/PID/fd link', () => {
  assert.equal(socketInode('socket:[51234]'), 51234);
  assert.equal(socketInode('pipe:[1]'), null);
  assert.equal(socketInode('/dev/null'), null);
});

const facts = (over: Partial<PortFacts>): PortFacts => ({
  expected: [
    { proto: 'udp', port: 67, service: 'proxyDHCP', setting: 'dhcp.port' },
    { proto: 'udp', port: 69, service: 'TFTP', setting: 'tftp.port' },
    { proto: 'tcp', port: 8080, service: 'HTTP', setting: 'http.port' },
    { proto: 'udp', port: 4011, service: 'PXE boot server', setting: 'dhcp.pxePort' },
  ],
  sockets: [...parseProcNet(UDP, 'udp'), ...parseProcNet(TCP, 'tcp')],
  server: { pid: 100, name: 'node' },
  serverInodes: new Set([51234, 60001, 51236]),
  owners: new Map([[51240, { pid: 200, name: 'dnsmasq' }]]),
  ...over,
});

test('judgePorts(): ours is ok, another program is named, nobody is a failure', () => {
  const checks = judgePorts(facts({}));
  assert.deepEqual(checks.map((c) => [c.id, c.status]), [['port:udp/67', 'ok'], ['port:udp/69', 'fail'], ['port:tcp/8080', 'ok'], ['port:udp/4011', 'ok']]);
  const tftp = checks[1];
  assert.match(tftp?.detail ?? '', /held by dnsmasq \(pid 200\), not by Fleetboot \(pid 100\)/);
  assert.match(tftp?.fix ?? '', /stop dnsmasq.*tftp\.port/);
  const none = judgePorts(facts({ sockets: [] }));
  assert.ok(none.every((c) => c.status === 'fail' && /nothing listens/.test(c.detail)));
});

test('judgePorts(): a port shared with another program warns; unreadable sockets are "cannot tell"', () => {
  const shared = judgePorts(facts({ serverInodes: new Set([51234, 60001, 51236, 51240]), sockets: [...parseProcNet(UDP, 'udp'), { proto: 'udp', address: '10.0.0.9', port: 67, listening: true, inode: 9 }], owners: new Map([[9, { pid: 300, name: 'dhcpd' }]]) }));
  assert.equal(shared[0]?.status, 'warn');
  assert.match(shared[0]?.detail ?? '', /also by dhcpd \(pid 300\)/);
  const blind = judgePorts(facts({ serverInodes: null, owners: new Map() }));
  assert.ok(blind.every((c) => c.status === 'warn'), JSON.stringify(blind));
});
