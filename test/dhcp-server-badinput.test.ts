/**
 * The DHCP address server (server mode) on loopback (high ports; replies for
 * address-less clients are redirected to the test's socket), fed malformed
 * packets, option-overload tricks, lying lengths and requests for addresses
 * outside every pool: each gets a NAK or no reply, no lease is written, and
 * a good DISCOVER is answered after each one.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.js';
import { silentLogger } from '../src/lib/log.js';
import { createDhcpServerService, type DhcpServerService } from '../src/net/dhcp-server.js';
import type { Lease, LeaseWrite } from '../src/dhcp/engine.js';
import { MemLeaseStore } from '../src/dhcp/mem-lease-store.js';
import { createPacket, encodePacket, type DhcpPacket } from '../src/protocol/dhcp/packet.js';
import { messageType, setOption } from '../src/protocol/dhcp/options.js';
import { exchangeDhcp } from './dhcp-helpers.js';

let svc: DhcpServerService;
let client: Socket;
const saved: Lease[] = [];
/** Every write is taken and recorded (no other server). */
const recording = new (class extends MemLeaseStore {
  override commit(w: LeaseWrite): boolean {
    saved.push({ ...w.lease });
    return super.commit(w);
  }
})();

before(async () => {
  client = await new Promise<Socket>((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => resolve(s));
  });
  const dir = mkdtempSync(join(tmpdir(), 'fb-dhcp-bad-'));
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({ dhcp: { mode: 'server', bindAddress: '127.0.0.1', pools: [{ start: '127.0.0.100', end: '127.0.0.199', netmask: '255.255.255.0' }] } }),
  );
  const config = loadConfig({ cwd: dir, file: join(dir, 'config.json') });
  svc = createDhcpServerService({
    config,
    serverIp: '127.0.0.1',
    httpBaseUrl: 'http://127.0.0.1:8080',
    logger: silentLogger,
    store: recording,
    leases: [],
    ports: { dhcp: 0, pxe: 0 },
    broadcastTo: { address: '127.0.0.1', port: client.address().port },
    relayPort: client.address().port,
    clientPort: client.address().port,
  });
  await svc.start();
});

after(async () => {
  await svc.close();
  client.close();
});

/** Send to the service and collect the reply with this xid (or any reply when xid is undefined), or null after waitMs. */
function exchange(bytes: Buffer, port: 'dhcp' | 'pxe', opts: { xid?: number; waitMs?: number } = {}): Promise<DhcpPacket | null> {
  return exchangeDhcp(client, client, bytes, port === 'dhcp' ? svc.ports.dhcp : svc.ports.pxe, opts);
}

let nextXid = 0x7000;
function request(type: number, edit?: (p: DhcpPacket) => void): { bytes: Buffer; xid: number } {
  const xid = nextXid++;
  const p = createPacket({ xid, chaddr: Buffer.from('525400bb0001', 'hex') });
  setOption(p, 53, Buffer.from([type]));
  edit?.(p);
  return { bytes: encodePacket(p), xid };
}

async function assertStillServing(what: string): Promise<void> {
  const good = request(1);
  const r = await exchange(good.bytes, 'dhcp', { xid: good.xid });
  assert.ok(r, `no OFFER to a good DISCOVER after ${what}`);
  assert.equal(messageType(r), 2);
  assert.match(r.yiaddr, /^127\.0\.0\.1\d\d$/);
}

test('DHCP server survives malformed packets: no reply, no lease written, and keeps answering', async () => {
  await assertStillServing('start');
  const good = request(1).bytes;
  const withOptions = (opts: number[]) => Buffer.concat([good.subarray(0, 240), Buffer.from(opts)]);
  const bad: Array<[string, Buffer]> = [
    ['zero-length', Buffer.alloc(0)],
    ['truncated header', good.subarray(0, 100)],
    ['truncated in options', good.subarray(0, 242)],
    ['wrong magic cookie', (() => { const b = Buffer.from(good); b.writeUInt32BE(0x63825364, 236); return b; })()],
    ['option length past the end', withOptions([53, 1, 1, 50, 200, 127, 0])],
    ['no length byte', withOptions([53, 1, 1, 50])],
    ['requested address of 3 bytes', withOptions([53, 1, 3, 50, 3, 127, 0, 0, 255])],
    ['bad message type length', withOptions([53, 2, 1, 1, 255])],
    ['server id of 5 bytes', withOptions([53, 1, 3, 54, 5, 127, 0, 0, 1, 1, 50, 4, 127, 0, 0, 150, 255])],
    ['overload loop attempt', (() => {
      const b = Buffer.from(withOptions([53, 1, 1, 52, 1, 3, 255]));
      Buffer.from([52, 1, 3, 52, 1, 3, 255]).copy(b, 108); // 52 inside file: must not recurse
      Buffer.from([52, 1, 1, 66, 250]).copy(b, 44); // bad length inside sname
      return b;
    })()],
    ['overload value 0', withOptions([53, 1, 1, 52, 1, 0, 255])],
    ['hlen 255', (() => { const b = Buffer.from(good); b[2] = 255; return b; })()],
    ['64 KiB of junk', Buffer.alloc(65507, 0x42)],
    ['a BOOTREPLY', (() => { const b = Buffer.from(good); b[0] = 2; return b; })()],
  ];
  const before = { malformed: svc.stats.malformed, leases: saved.length };
  for (const [what, bytes] of bad) {
    for (const port of ['dhcp', 'pxe'] as const) {
      const r = await exchange(bytes, port, { waitMs: 100 });
      assert.equal(r, null, `${what} on ${port} got a reply`);
    }
    await assertStillServing(what);
  }
  assert.ok(svc.stats.malformed - before.malformed >= bad.length - 1, `malformed counter ${svc.stats.malformed - before.malformed}`);
  // Only the good DISCOVERs (one offer hold each, for the same MAC) wrote leases.
  const written = saved.slice(before.leases);
  assert.ok(written.every((l) => l.mac === '52:54:00:bb:00:01'), `unexpected leases ${JSON.stringify(written)}`);
});

test('DHCP server NAKs or ignores requests for addresses outside every pool, and never binds them', async () => {
  const cases: Array<[string, (p: DhcpPacket) => void]> = [
    ['INIT-REBOOT for an address in the subnet but outside the pool', (p) => setOption(p, 50, Buffer.from([127, 0, 0, 50]))],
    ['INIT-REBOOT for an address on another network', (p) => setOption(p, 50, Buffer.from([10, 9, 9, 9]))],
    ['SELECTING us for an address outside the pool', (p) => {
      setOption(p, 54, Buffer.from([127, 0, 0, 1]));
      setOption(p, 50, Buffer.from([127, 0, 0, 250]));
    }],
    ['RENEWING an address never leased', (p) => {
      p.ciaddr = '127.0.0.150';
    }],
    ['relayed from a subnet no pool serves', (p) => {
      // Loopback too: a reply, if any, goes to giaddr (the test never sends off this host).
      p.giaddr = '127.0.5.1';
      setOption(p, 50, Buffer.from([127, 0, 5, 80]));
    }],
  ];
  for (const [what, edit] of cases) {
    const req = request(3, edit);
    const r = await exchange(req.bytes, 'dhcp', { xid: req.xid, waitMs: 300 });
    if (r !== null) assert.equal(messageType(r), 6, `${what}: expected a NAK or silence, got message type ${messageType(r)}`);
    assert.ok(!saved.some((l) => l.state === 'bound' && !/^127\.0\.0\.1\d\d$/.test(l.ip)), `${what}: an address outside the pool was bound`);
    await assertStillServing(what);
  }
});
