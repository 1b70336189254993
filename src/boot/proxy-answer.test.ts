import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPacket, cString, decodePacket, encodePacket, type DhcpPacket } from '../protocol/dhcp/packet.js';
import { bootfileName, getOption, messageType, serverIdentifier, setOption, vendorClassId } from '../protocol/dhcp/options.js';
import { decodePxeOptions, encodePxeOptions } from '../protocol/dhcp/pxe.js';
import { loadFixture } from '../protocol/dhcp/testdata/fixtures.js';
import { clientSubnetAddress, decideProxyAnswer, MENU_TYPE_NETWORK, withBootServer, type Arrival, type ProxyContext, type ProxyReply, type ProxyDecision } from './proxy-answer.js';

const ctx: ProxyContext = {
  serverIp: '10.0.0.5',
  httpBaseUrl: 'http://10.0.0.5:8080',
  bootFiles: { bios: 'undionly.kpxe', efiX64: 'snponly.efi', efiIa32: 'ipxe-ia32.efi', efiArm64: 'arm64/snponly.efi' },
  biosMenu: { enabled: false, prompt: 'Press F8 for the boot menu', timeoutSeconds: 3 },
};
const on67: Arrival = { port: 'dhcp', address: '0.0.0.0', sourcePort: 68 };

function fixture(name: string): DhcpPacket {
  return decodePacket(loadFixture(name));
}
function reply(d: ProxyDecision): ProxyReply {
  if ('ignore' in d) assert.fail(`ignored: ${d.ignore}`);
  return d;
}
function discover(vc: string, arch: number | null, extra: Array<[number, Buffer]> = []): DhcpPacket {
  const p = createPacket({ xid: 0x1234, chaddr: Buffer.from('525400000001', 'hex') });
  setOption(p, 53, Buffer.from([1]));
  setOption(p, 60, Buffer.from(vc));
  if (arch !== null) setOption(p, 93, Buffer.from([arch >> 8, arch & 0xff]));
  for (const [c, d] of extra) setOption(p, c, d);
  return p;
}

test('decideProxyAnswer() offers snponly.efi over TFTP to edk2 (captured DISCOVER)', () => {
  const r = reply(decideProxyAnswer(fixture('ovmf-edk2-01-client-discover-67'), on67, ctx));
  assert.equal(messageType(r.reply), 2);
  assert.equal(r.file, 'snponly.efi');
  assert.equal(cString(r.reply.file), 'snponly.efi');
  assert.equal(r.reply.yiaddr, '0.0.0.0');
  assert.equal(r.reply.siaddr, '10.0.0.5');
  assert.equal(serverIdentifier(r.reply), '10.0.0.5');
  assert.equal(vendorClassId(r.reply), 'PXEClient');
  assert.equal(getOption(r.reply, 97)?.length, 17, 'option 97 echoed');
  assert.equal(decodePxeOptions(getOption(r.reply, 43) ?? Buffer.alloc(0)).discoveryControl, 8);
  assert.equal(bootfileName(r.reply), 'snponly.efi', 'edk2 lists 67 in option 55');
  assert.deepEqual(r.to, { address: '255.255.255.255', port: 68, kind: 'broadcast' });
  assert.equal(r.reason, 'x64 UEFI firmware, not iPXE -> snponly.efi over TFTP');
  assert.equal(r.reply.xid, fixture('ovmf-edk2-01-client-discover-67').xid);
  // encodable, and at least 300 bytes
  assert.ok(encodePacket(r.reply).length >= 300);
});

test('uefi.secureBoot: x64 UEFI PXE firmware gets the signed shim; HTTP boot, BIOS and iPXE clients do not', () => {
  const sb: ProxyContext = { ...ctx, secureBootLoader: 'shimx64.efi' };
  const r = reply(decideProxyAnswer(fixture('ovmf-edk2-01-client-discover-67'), on67, sb));
  assert.equal(r.file, 'shimx64.efi');
  assert.equal(r.reply.siaddr, '10.0.0.5');
  assert.match(r.reason, /-> shimx64\.efi over TFTP \(uefi\.secureBoot/);
  assert.equal(reply(decideProxyAnswer(fixture('ovmf-http-01-client-discover-67'), on67, sb)).file, 'http://10.0.0.5:8080/tftp/snponly.efi');
  assert.equal(reply(decideProxyAnswer(fixture('ovmf-edk2-08-ipxe-discover-67'), on67, sb)).file, 'http://10.0.0.5:8080/boot.ipxe');
});

test('decideProxyAnswer() offers the EFI binary as an http:// URL to edk2 HTTP boot (captured DISCOVER)', () => {
  const req = fixture('ovmf-http-01-client-discover-67');
  const r = reply(decideProxyAnswer(req, on67, ctx));
  const url = 'http://10.0.0.5:8080/tftp/snponly.efi';
  assert.equal(messageType(r.reply), 2);
  assert.equal(r.file, url);
  assert.equal(r.reason, `x64 UEFI HTTP boot firmware -> ${url}`);
  // edk2 HttpBootDxe takes an offer as an HTTP offer only with option 60
  // "HTTPClient" (HttpBootDhcp4.c), and the URI from option 67 / file.
  assert.equal(vendorClassId(r.reply), 'HTTPClient');
  assert.equal(bootfileName(r.reply), url);
  assert.equal(cString(r.reply.file), url);
  assert.equal(getOption(r.reply, 43), undefined, 'no PXE vendor options for HTTP boot');
  assert.deepEqual(getOption(r.reply, 97), getOption(req, 97), 'option 97 echoed (all zeros from OVMF)');
  assert.equal(r.reply.yiaddr, '0.0.0.0');
  assert.equal(r.reply.siaddr, '10.0.0.5');
  assert.equal(serverIdentifier(r.reply), '10.0.0.5');
  assert.equal(r.reply.xid, req.xid);
  assert.equal(r.reply.flags & 0x8000, 0x8000);
  assert.deepEqual(r.to, { address: '255.255.255.255', port: 68, kind: 'broadcast' });
});

test('decideProxyAnswer() still gives edk2 HTTP boot the OFFER it accepted in the capture', () => {
  // ovmf-http-02 is Fleetboot's own OFFER, recorded while OVMF went on to
  // download the URL and run it (capture.ts, run ovmf-http): byte for byte
  // a reply known to work. Same server address, URL and files as then.
  const captureCtx: ProxyContext = { ...ctx, serverIp: '10.213.61.3', httpBaseUrl: 'http://10.213.61.3:8080', bootFiles: { ...ctx.bootFiles, efiX64: 'snponly.efi' } };
  const r = reply(decideProxyAnswer(fixture('ovmf-http-01-client-discover-67'), on67, captureCtx));
  assert.deepEqual(
    encodePacket(r.reply),
    loadFixture('ovmf-http-02-proxy-offer-68'),
    'the OFFER differs from the one OVMF accepted (testdata/ovmf-http-02-proxy-offer-68.hex); if intended, re-capture: node --import tsx src/protocol/dhcp/testdata/capture.ts ovmf-http',
  );
});

test('decideProxyAnswer() gives iPXE clients the HTTP script, never a binary', () => {
  for (const name of ['seabios-ipxe-01-ipxe-discover-67', 'ovmf-ipxe-01-ipxe-discover-67', 'ovmf-edk2-08-ipxe-discover-67', 'ovmf-http-06-ipxe-discover-67']) {
    const r = reply(decideProxyAnswer(fixture(name), on67, ctx));
    assert.equal(r.file, 'http://10.0.0.5:8080/boot.ipxe', name);
    assert.equal(bootfileName(r.reply), 'http://10.0.0.5:8080/boot.ipxe');
    assert.match(r.reason, /already iPXE/);
  }
});

test('decideProxyAnswer() picks the file per architecture', () => {
  const cases: Array<[string, number | null, string]> = [
    ['PXEClient:Arch:00000:UNDI:002001', 0, 'undionly.kpxe'],
    ['PXEClient:Arch:00006:UNDI:003000', 6, 'ipxe-ia32.efi'],
    ['PXEClient:Arch:00007:UNDI:003000', 7, 'snponly.efi'],
    ['PXEClient:Arch:00009:UNDI:003000', 9, 'snponly.efi'],
    ['PXEClient:Arch:00011:UNDI:003000', 11, 'arm64/snponly.efi'],
    ['PXEClient:Arch:00011:UNDI:003000', null, 'arm64/snponly.efi'],
    ['HTTPClient:Arch:00016:UNDI:003001', 16, 'http://10.0.0.5:8080/tftp/snponly.efi'],
    ['HTTPClient:Arch:00019:UNDI:003001', 19, 'http://10.0.0.5:8080/tftp/arm64/snponly.efi'],
  ];
  for (const [vc, arch, file] of cases) {
    const r = reply(decideProxyAnswer(discover(vc, arch), on67, ctx));
    assert.equal(r.file, file, `${vc} / ${arch}`);
  }
  const http = reply(decideProxyAnswer(discover('HTTPClient:Arch:00016:UNDI:003001', 16), on67, ctx));
  assert.equal(vendorClassId(http.reply), 'HTTPClient');
  assert.equal(getOption(http.reply, 43), undefined, 'no PXE options for HTTP boot');
  assert.equal(bootfileName(http.reply), 'http://10.0.0.5:8080/tftp/snponly.efi');
});

test('decideProxyAnswer() ignores what a proxy must not answer', () => {
  const cases: Array<[DhcpPacket, Arrival, RegExp]> = [
    [discover('MSFT 5.0', null), on67, /not a PXE or HTTP boot client/],
    [createPacket(), on67, /plain BOOTP/],
    [fixture('seabios-ipxe-02-proxy-offer-68'), on67, /not a BOOTREQUEST/],
    [fixture('ovmf-edk2-04-client-request-67'), on67, /REQUEST on port 67/],
    // edk2's HTTP boot selects the address server's offer and takes the URL
    // from our OFFER: it never asks the proxy again (ovmf-http-*: no 4011).
    [fixture('ovmf-http-04-client-request-67'), on67, /REQUEST on port 67/],
    [discover('PXEClient:Arch:00010:UNDI:003000', 10), on67, /no boot file for ARM32 UEFI/],
    [discover('PXEClient', null), on67, /no boot file for unknown architecture/],
  ];
  for (const [p, a, re] of cases) {
    const d = decideProxyAnswer(p, a, ctx);
    assert.ok('ignore' in d && re.test(d.ignore), `${re}: ${JSON.stringify(d)}`);
  }
  const release = discover('PXEClient', 0);
  setOption(release, 53, Buffer.from([7]));
  assert.ok('ignore' in decideProxyAnswer(release, on67, ctx));
});

test('decideProxyAnswer() ACKs boot server requests on 4011 back to the sender', () => {
  const edk2 = reply(decideProxyAnswer(fixture('ovmf-edk2-06-client-request-4011'), { port: 'pxe', address: '10.213.61.194', sourcePort: 4011 }, ctx));
  assert.equal(messageType(edk2.reply), 5);
  assert.equal(edk2.file, 'snponly.efi');
  assert.deepEqual(edk2.to, { address: '10.213.61.194', port: 4011, kind: 'unicast' });
  assert.equal(edk2.reply.ciaddr, '10.213.61.194');
  assert.equal(edk2.reply.yiaddr, '0.0.0.0');
  assert.ok(getOption(edk2.reply, 97), 'option 97 echoed');
  const ipxe = reply(decideProxyAnswer(fixture('seabios-ipxe-06-ipxe-request-4011'), { port: 'pxe', address: '10.213.61.193', sourcePort: 68 }, ctx));
  assert.deepEqual(ipxe.to, { address: '10.213.61.193', port: 68, kind: 'unicast' });
  assert.equal(ipxe.file, 'http://10.0.0.5:8080/boot.ipxe');
  // no source address: fall back to ciaddr
  const viaCiaddr = reply(decideProxyAnswer(fixture('ovmf-edk2-06-client-request-4011'), { port: 'pxe', address: '0.0.0.0', sourcePort: 4011 }, ctx));
  assert.equal(viaCiaddr.to.address, '10.213.61.194');
});

test('decideProxyAnswer() answers relayed requests to giaddr:67', () => {
  const p = fixture('ovmf-edk2-01-client-discover-67');
  p.giaddr = '192.168.77.1';
  p.hops = 1;
  const r = reply(decideProxyAnswer(p, { port: 'dhcp', address: '192.168.77.1', sourcePort: 67 }, ctx));
  assert.deepEqual(r.to, { address: '192.168.77.1', port: 67, kind: 'relay' });
  assert.equal(r.reply.giaddr, '192.168.77.1');
  assert.equal(r.reply.flags & 0x8000, 0x8000);
});

test('decideProxyAnswer() offers a BIOS PXE menu and honours the chosen item', () => {
  const menuCtx: ProxyContext = { ...ctx, biosMenu: { enabled: true, prompt: 'F8 for menu', timeoutSeconds: 5 } };
  const bios = discover('PXEClient:Arch:00000:UNDI:002001', 0);
  const offer = reply(decideProxyAnswer(bios, on67, menuCtx));
  assert.equal(offer.file, '');
  const pxe = decodePxeOptions(getOption(offer.reply, 43) ?? Buffer.alloc(0));
  assert.equal(pxe.discoveryControl, 3);
  assert.deepEqual(pxe.bootServers, [{ type: MENU_TYPE_NETWORK, addresses: ['10.0.0.5'] }]);
  assert.deepEqual(pxe.bootMenu?.map((m) => m.type), [MENU_TYPE_NETWORK, 0]);
  assert.deepEqual(pxe.menuPrompt, { timeout: 5, prompt: 'F8 for menu' });

  const ask = (type: number) => {
    const r = discover('PXEClient:Arch:00000:UNDI:002001', 0, [[43, encodePxeOptions({ bootItem: { type, layer: 0 } })]]);
    setOption(r, 53, Buffer.from([3]));
    r.ciaddr = '10.0.0.77';
    return decideProxyAnswer(r, { port: 'pxe', address: '10.0.0.77', sourcePort: 4011 }, menuCtx);
  };
  const net = reply(ask(MENU_TYPE_NETWORK));
  assert.equal(net.file, 'undionly.kpxe');
  assert.deepEqual(decodePxeOptions(getOption(net.reply, 43) ?? Buffer.alloc(0)).bootItem, { type: MENU_TYPE_NETWORK, layer: 0 });
  const local = ask(0);
  assert.ok('ignore' in local && /local disk/.test(local.ignore));
  // iPXE and UEFI never get the menu
  assert.equal(reply(decideProxyAnswer(fixture('seabios-ipxe-01-ipxe-discover-67'), on67, menuCtx)).file, 'http://10.0.0.5:8080/boot.ipxe');
  assert.equal(reply(decideProxyAnswer(fixture('ovmf-edk2-01-client-discover-67'), on67, menuCtx)).file, 'snponly.efi');
});

test('nearest node: withBootServer() points next-server, the PXE menu and the HTTP URLs at the serving node; option 54 stays ours', () => {
  const b = withBootServer(ctx, { name: 'node-b', address: '10.0.9.2', httpBaseUrl: 'http://10.0.9.2:8080' });
  assert.equal(withBootServer(ctx, null), ctx);
  const tftp = reply(decideProxyAnswer(fixture('ovmf-edk2-01-client-discover-67'), on67, b));
  assert.equal(tftp.file, 'snponly.efi');
  assert.equal(tftp.reply.siaddr, '10.0.9.2');
  assert.equal(serverIdentifier(tftp.reply), '10.0.0.5');
  assert.match(tftp.reason, /\(served by node node-b, 10\.0\.9\.2\)$/);
  assert.equal(reply(decideProxyAnswer(fixture('ovmf-http-01-client-discover-67'), on67, b)).file, 'http://10.0.9.2:8080/tftp/snponly.efi');
  assert.equal(reply(decideProxyAnswer(fixture('ovmf-edk2-08-ipxe-discover-67'), on67, b)).file, 'http://10.0.9.2:8080/boot.ipxe');
  // The BIOS menu names B as the boot server to ask on 4011.
  const menu = reply(decideProxyAnswer(discover('PXEClient:Arch:00000:UNDI:002001', 0), on67, { ...b, biosMenu: { ...ctx.biosMenu, enabled: true } }));
  const pxe = decodePxeOptions(getOption(menu.reply, 43) ?? Buffer.alloc(0));
  assert.deepEqual(pxe.bootServers?.[0]?.addresses, ['10.0.9.2']);
});

test('nearest node: clientSubnetAddress() is giaddr, else ciaddr, else the source of a 4011 request, else null (our segment)', () => {
  const p = discover('PXEClient', 7);
  assert.equal(clientSubnetAddress(p, on67), null);
  assert.equal(clientSubnetAddress({ ...p, ciaddr: '10.0.9.5' }, on67), '10.0.9.5');
  assert.equal(clientSubnetAddress({ ...p, ciaddr: '10.0.9.5', giaddr: '10.0.8.1' }, on67), '10.0.8.1');
  assert.equal(clientSubnetAddress(p, { port: 'pxe', address: '10.0.9.6', sourcePort: 4011 }), '10.0.9.6');
  assert.equal(clientSubnetAddress(p, { port: 'pxe', address: '0.0.0.0', sourcePort: 68 }), null);
});
