/**
 * The proxyDHCP's broadcast replies on a real (lab) LAN segment, no QEMU:
 *
 *   bridge namespace
 *     ├── fb      10.213.56.1   bench/proxydhcp-server.ts (Fleetboot's proxyDHCP alone)
 *     │                         NO default route, like a server whose PXE NIC is not
 *     │                         the one with the default route
 *     └── client  10.213.56.50  sends captured DISCOVERs to 255.255.255.255:67 from :68
 *
 * Replies to clients without an address go to 255.255.255.255:68. From a
 * socket bound to 0.0.0.0 that send follows the routing table and fails with
 * ENETUNREACH here (what the first UEFI HTTP boot lab run showed); the
 * service sends them from a socket bound to the server address instead
 * (src/net/proxy-dhcp.ts). About 3 s. Needs root; fails (never skips) without.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Lab, labAvailable } from './lab.js';
import { ProcessLog, REPO } from './bootenv/services.js';
import { decodePacket } from '../../src/protocol/dhcp/packet.js';
import { bootfileName, messageType, serverIdentifier, vendorClassId } from '../../src/protocol/dhcp/options.js';
import { loadFixture } from '../../src/protocol/dhcp/testdata/fixtures.js';

const SUBNET = '10.213.56';
const SERVER_IP = `${SUBNET}.1`;

/**
 * Runs in the client namespace: sends each hex payload from :68 to
 * 255.255.255.255:67, prints every reply on :68 as one JSON line, exits after
 * `want` replies or 5 s (exit 0 either way: the test judges what came).
 */
const CLIENT = `
const dgram = require('node:dgram');
const [want, ...payloads] = process.argv.slice(1);
const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
let got = 0;
s.on('message', (m, r) => {
  console.log(JSON.stringify({ from: r.address + ':' + r.port, hex: m.toString('hex') }));
  if (++got >= Number(want)) process.exit(0);
});
s.bind(68, '0.0.0.0', () => {
  s.setBroadcast(true);
  for (const p of payloads) s.send(Buffer.from(p, 'hex'), 67, '255.255.255.255');
});
setTimeout(() => process.exit(0), 5000);
`;

let lab: Lab | null = null;
let server: ProcessLog | null = null;

describe('proxyDHCP broadcast replies in a lab segment', { timeout: 60_000 }, () => {
  before(async () => {
    if (process.getuid?.() !== 0) throw new Error('proxydhcp.lab needs root (network namespaces): run the tests as root');
    if (!(await labAvailable())) throw new Error('proxydhcp.lab needs `ip netns` (iproute2)');
    lab = await Lab.create({ subnet: SUBNET });
    const fb = await lab.addHost('fb', SERVER_IP);
    await lab.addHost('client', `${SUBNET}.50`);
    // The client needs a route for its own limited broadcast; the server gets none.
    await lab.exec('client', ['ip', 'route', 'add', 'default', 'dev', 'eth0']);
    server = new ProcessLog('proxydhcp', lab.spawnIn(fb.netns, ['node', '--import', 'tsx', join(REPO, 'bench/proxydhcp-server.ts'), SERVER_IP, 'info'], { cwd: REPO }));
    if (!(await server.waitFor(/^ready$/m, 20_000))) throw new Error(`the proxyDHCP did not start:\n${server.tail()}`);
  });

  after(async () => {
    await lab?.destroy();
  });

  test('the proxy answers broadcast DISCOVERs with broadcasts from its address, with no default route', async () => {
    const l = lab;
    assert.ok(l && server, 'lab not set up');
    assert.equal((await l.exec('fb', ['ip', 'route', 'show', 'default'])).trim(), '', 'the server namespace must have no default route');
    const http = loadFixture('ovmf-http-01-client-discover-67');
    const pxe = loadFixture('ovmf-edk2-01-client-discover-67');
    const out = await l.exec('client', ['node', '-e', CLIENT, '2', http.toString('hex'), pxe.toString('hex')]);
    const replies = out.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as { from: string; hex: string });
    const byXid = new Map(replies.map((r) => {
      const p = decodePacket(Buffer.from(r.hex, 'hex'));
      return [p.xid, { from: r.from, p }] as const;
    }));
    const h = byXid.get(decodePacket(http).xid);
    assert.ok(h, `no reply to the HTTP-boot DISCOVER; got ${out}\n${server.tail(20)}`);
    assert.equal(h.from, `${SERVER_IP}:67`);
    assert.equal(messageType(h.p), 2);
    assert.equal(vendorClassId(h.p), 'HTTPClient');
    assert.equal(bootfileName(h.p), `http://${SERVER_IP}:8080/tftp/snponly.efi`);
    assert.equal(serverIdentifier(h.p), SERVER_IP);
    const x = byXid.get(decodePacket(pxe).xid);
    assert.ok(x, `no reply to the PXE DISCOVER; got ${out}\n${server.tail(20)}`);
    assert.equal(x.from, `${SERVER_IP}:67`);
    assert.equal(bootfileName(x.p), 'snponly.efi');
    assert.doesNotMatch(server.all(), /sending the DHCP reply failed/);
  });
});
