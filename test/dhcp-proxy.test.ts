/**
 * The proxyDHCP service on loopback (high ports, no broadcast: replies for
 * address-less clients are redirected to the test's socket), fed real
 * captured packets, crafted ones and junk.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { loadConfig } from '../src/config/config.js';
import { silentLogger } from '../src/lib/log.js';
import { createProxyDhcpService, type ProxyDhcpService } from '../src/net/proxy-dhcp.js';
import { createPacket, cString, decodePacket, encodePacket, type DhcpPacket } from '../src/protocol/dhcp/packet.js';
import { bootfileName, getOption, messageType, setOption } from '../src/protocol/dhcp/options.js';
import { loadFixture } from '../src/protocol/dhcp/testdata/fixtures.js';
import { exchangeDhcp } from './dhcp-helpers.js';

let svc: ProxyDhcpService;
let client: Socket; // stands in for port 68 (broadcast target) and for clients on 4011
let relay: Socket; // stands in for a relay agent's port 67

function openSocket(): Promise<Socket> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => resolve(s));
  });
}

before(async () => {
  client = await openSocket();
  relay = await openSocket();
  const config = loadConfig({ overrides: { dhcp: { bindAddress: '127.0.0.1' } }, cwd: '/tmp' });
  svc = createProxyDhcpService({
    config,
    serverIp: '127.0.0.1',
    httpBaseUrl: 'http://127.0.0.1:8080',
    logger: silentLogger,
    ports: { dhcp: 0, pxe: 0 },
    broadcastTo: { address: '127.0.0.1', port: client.address().port },
    relayPort: relay.address().port,
  });
  await svc.start();
});

after(async () => {
  await svc.close();
  client.close();
  relay.close();
});

/** Send from `from` to the service and collect the reply with this xid (or null after waitMs). */
function exchange(bytes: Buffer, port: 'dhcp' | 'pxe', opts: { xid?: number; from?: Socket; waitFor?: Socket; waitMs?: number } = {}): Promise<DhcpPacket | null> {
  const from = opts.from ?? client;
  return exchangeDhcp(from, opts.waitFor ?? from, bytes, port === 'dhcp' ? svc.ports.dhcp : svc.ports.pxe, opts);
}

let nextXid = 0x5000;
function discover(vc: string | null, arch: number | null, edit?: (p: DhcpPacket) => void): { bytes: Buffer; xid: number } {
  const xid = nextXid++;
  const p = createPacket({ xid, chaddr: Buffer.from('525400aa0001', 'hex') });
  setOption(p, 53, Buffer.from([1]));
  if (vc) setOption(p, 60, Buffer.from(vc));
  if (arch !== null) setOption(p, 93, Buffer.from([arch >> 8, arch & 0xff]));
  edit?.(p);
  return { bytes: encodePacket(p), xid };
}

async function assertStillServing(what: string): Promise<void> {
  const good = discover('PXEClient:Arch:00007:UNDI:003000', 7);
  const r = await exchange(good.bytes, 'dhcp', { xid: good.xid });
  assert.ok(r, `no answer to a good DISCOVER after ${what}`);
  assert.equal(bootFile(r), 'snponly.efi');
}

/** Option 67, else the file field. */
function bootFile(r: DhcpPacket): string {
  return bootfileName(r) ?? cString(r.file);
}

test('proxyDHCP binds the requested ports', () => {
  assert.ok(svc.ports.dhcp > 0 && svc.ports.pxe > 0 && svc.ports.dhcp !== svc.ports.pxe);
});

test('proxyDHCP answers captured DISCOVERs with the boot file for their firmware', async () => {
  const cases: Array<[string, string]> = [
    ['ovmf-edk2-01-client-discover-67', 'snponly.efi'],
    ['seabios-ipxe-01-ipxe-discover-67', 'http://127.0.0.1:8080/boot.ipxe'],
    ['ovmf-ipxe-01-ipxe-discover-67', 'http://127.0.0.1:8080/boot.ipxe'],
    ['ovmf-edk2-08-ipxe-discover-67', 'http://127.0.0.1:8080/boot.ipxe'],
  ];
  for (const [name, file] of cases) {
    const bytes = loadFixture(name);
    const xid = decodePacket(bytes).xid;
    const r = await exchange(bytes, 'dhcp', { xid });
    assert.ok(r, `no OFFER for ${name}`);
    assert.equal(messageType(r), 2);
    assert.equal(r.yiaddr, '0.0.0.0');
    assert.equal(r.siaddr, '127.0.0.1');
    assert.equal(getOption(r, 60)?.toString(), 'PXEClient');
    const f = bootFile(r);
    assert.equal(f, file, name);
  }
});

test('proxyDHCP picks the file per architecture for crafted DISCOVERs', async () => {
  for (const [vc, arch, file] of [
    ['PXEClient:Arch:00000:UNDI:002001', 0, 'undionly.kpxe'],
    ['PXEClient:Arch:00011:UNDI:003000', 11, 'arm64/snponly.efi'],
    ['HTTPClient:Arch:00016:UNDI:003001', 16, 'http://127.0.0.1:8080/tftp/snponly.efi'],
  ] as const) {
    const d = discover(vc, arch, (p) => setOption(p, 55, Buffer.from([1, 3, 43, 60, 66, 67])));
    const r = await exchange(d.bytes, 'dhcp', { xid: d.xid });
    assert.ok(r);
    assert.equal(bootfileName(r), file);
  }
});

test('proxyDHCP does not answer non-PXE clients or REQUESTs on 67', async () => {
  const plain = discover('MSFT 5.0', null);
  assert.equal(await exchange(plain.bytes, 'dhcp', { xid: plain.xid, waitMs: 200 }), null);
  const req = loadFixture('ovmf-edk2-04-client-request-67');
  assert.equal(await exchange(req, 'dhcp', { xid: decodePacket(req).xid, waitMs: 200 }), null);
});

test('proxyDHCP answers relayed DISCOVERs to the relay (giaddr)', async () => {
  const d = discover('PXEClient:Arch:00000:UNDI:002001', 0, (p) => {
    p.giaddr = '127.0.0.1'; // the relay's address; the client lives on another subnet
    p.hops = 1;
  });
  const r = await exchange(d.bytes, 'dhcp', { xid: d.xid, from: relay, waitFor: relay });
  assert.ok(r, 'no reply at the relay');
  assert.equal(r.giaddr, '127.0.0.1');
  assert.equal(bootFile(r), 'undionly.kpxe');
});

test('proxyDHCP ACKs boot-server REQUESTs on 4011 and echoes option 97', async () => {
  for (const name of ['ovmf-edk2-06-client-request-4011', 'seabios-ipxe-06-ipxe-request-4011']) {
    const bytes = loadFixture(name);
    const req = decodePacket(bytes);
    const r = await exchange(bytes, 'pxe', { xid: req.xid });
    assert.ok(r, `no ACK for ${name}`);
    assert.equal(messageType(r), 5);
    assert.deepEqual(getOption(r, 97), getOption(req, 97));
  }
  const d = discover('PXEClient:Arch:00007:UNDI:003000', 7, (p) => {
    setOption(p, 53, Buffer.from([3]));
    setOption(p, 97, Buffer.from('00' + '11'.repeat(16), 'hex'));
  });
  const r = await exchange(d.bytes, 'pxe', { xid: d.xid });
  assert.ok(r);
  assert.equal(getOption(r, 97)?.toString('hex'), '00' + '11'.repeat(16));
  assert.equal(bootFile(r), 'snponly.efi');
});

test('proxyDHCP survives bad input: no reply, and keeps answering', async () => {
  const good = discover('PXEClient:Arch:00007:UNDI:003000', 7).bytes;
  const withOptions = (opts: number[]) => Buffer.concat([good.subarray(0, 240), Buffer.from(opts)]);
  const pxeVc = [60, 9, ...Buffer.from('PXEClient')];
  const bad: Array<[string, Buffer]> = [
    ['zero-length', Buffer.alloc(0)],
    ['truncated header', good.subarray(0, 100)],
    ['truncated in options', good.subarray(0, 245)],
    ['wrong magic cookie', (() => { const b = Buffer.from(good); b.writeUInt32BE(0x63825364, 236); return b; })()],
    ['option length past the end', withOptions([53, 1, 1, ...pxeVc, 93, 200, 0, 7])],
    ['no length byte', withOptions([53, 1, 1, ...pxeVc, 93])],
    ['option 93 odd length', withOptions([53, 1, 1, ...pxeVc, 93, 3, 0, 7, 0, 255])],
    ['bad message type length', withOptions([53, 2, 1, 1, ...pxeVc, 255])],
    ['overload loop attempt', (() => {
      const b = Buffer.from(withOptions([53, 1, 1, 52, 1, 3, ...pxeVc, 255]));
      Buffer.from([52, 1, 3, 52, 1, 3, 255]).copy(b, 108); // 52 inside file: must not recurse
      Buffer.from([52, 1, 1, 66, 250]).copy(b, 44); // bad length inside sname
      return b;
    })()],
    ['overload value 0', withOptions([53, 1, 1, 52, 1, 0, ...pxeVc, 255])],
    ['hlen 255', (() => { const b = Buffer.from(good); b[2] = 255; return b; })()],
    ['64 KiB of junk', Buffer.alloc(65507, 0x42)],
    ['PXE option 43 garbage on 4011', (() => {
      const p = decodePacket(good);
      setOption(p, 53, Buffer.from([3]));
      setOption(p, 43, Buffer.from([71, 9, 1]));
      return encodePacket(p);
    })()],
  ];
  const before = svc.stats.malformed;
  for (const [what, bytes] of bad) {
    for (const port of ['dhcp', 'pxe'] as const) {
      const r = await exchange(bytes, port, { waitMs: 100 });
      assert.equal(r, null, `${what} on ${port} got a reply`);
    }
    await assertStillServing(what);
  }
  assert.ok(svc.stats.malformed - before >= bad.length, `malformed counter ${svc.stats.malformed - before}`);
});
