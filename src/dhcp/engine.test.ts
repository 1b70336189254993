import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPacket, decodePacket, encodePacket, type DhcpOption, type DhcpPacket } from '../protocol/dhcp/packet.js';
import { bootfileName, getOption, leaseTime, MessageType, messageType, Opt, serverIdentifier } from '../protocol/dhcp/options.js';
import { LeaseEngine, type EngineDecision, type EngineReply, type Lease, type LeaseEngineOptions } from './engine.js';
import { driven, MemLeaseStore, type Driven } from './mem-lease-store.js';
import { POOL_DEFAULTS } from '../config/config.js';

const SERVER = '10.0.0.1';
const pool = { ...POOL_DEFAULTS, start: '10.0.0.100', end: '10.0.0.103', leaseSeconds: 600, router: '10.0.0.1', dns: ['10.0.0.53'], domain: 'lab.test', exclude: ['10.0.0.101'] };
const relayPool = { ...POOL_DEFAULTS, start: '10.9.0.50', end: '10.9.0.60' };

function setup(o: Partial<LeaseEngineOptions> = {}) {
  let t = 1_000_000;
  const store = new MemLeaseStore();
  const make = (leases: Lease[] = []) =>
    driven(new LeaseEngine({ serverIp: SERVER, pools: [pool, relayPool], options: [{ code: 42, value: '10.0.0.123' }], boot: null, leases, now: () => t, ...o }), store);
  const engine = make();
  return { engine, store, make, advance: (s: number) => (t += s * 1000), now: () => t };
}

function mac(n: number): Buffer {
  const b = Buffer.alloc(16);
  Buffer.from([0x52, 0x54, 0, 0, 0, n]).copy(b);
  return b;
}

function req(type: number, n: number, extra: { options?: DhcpOption[]; ciaddr?: string; giaddr?: string } = {}): DhcpPacket {
  return createPacket({
    xid: 0x1000 + n,
    chaddr: mac(n),
    ciaddr: extra.ciaddr ?? '0.0.0.0',
    giaddr: extra.giaddr ?? '0.0.0.0',
    options: [{ code: Opt.MESSAGE_TYPE, data: Buffer.from([type]) }, ...(extra.options ?? [])],
  });
}
const ip = (s: string): Buffer => Buffer.from(s.split('.').map(Number));
const opt50 = (s: string): DhcpOption => ({ code: Opt.REQUESTED_IP, data: ip(s) });
const opt54 = (s: string): DhcpOption => ({ code: Opt.SERVER_ID, data: ip(s) });
const FROM = { address: '0.0.0.0', port: 68 };
/** The proxy-mode boot answer the engine embeds for PXE clients (tests of the boot part). */
const PXE_BOOT = {
  serverIp: SERVER,
  httpBaseUrl: 'http://10.0.0.1:8080',
  bootFiles: { bios: 'undionly.kpxe', efiX64: 'snponly.efi', efiIa32: 'ipxe-ia32.efi', efiArm64: 'arm64/snponly.efi' },
  biosMenu: { enabled: false, prompt: '', timeoutSeconds: 3 },
};

function replied(d: EngineDecision): EngineReply {
  assert.ok(!('ignore' in d), `expected a reply, got: ${'ignore' in d ? d.ignore : ''}`);
  // Every reply survives an encode/decode round trip.
  decodePacket(encodePacket(d.reply));
  return d;
}

function dora(engine: Driven, n: number, extra: { giaddr?: string } = {}): string {
  const offer = replied(engine.handle(req(MessageType.DISCOVER, n, extra), FROM));
  const ack = replied(engine.handle(req(MessageType.REQUEST, n, { ...extra, options: [opt50(offer.reply.yiaddr), opt54(SERVER)] }), FROM));
  assert.equal(messageType(ack.reply), MessageType.ACK);
  return ack.reply.yiaddr;
}

test('handle() offers the first free address with the configured options and commits it first', () => {
  const { engine, store } = setup();
  const d = replied(engine.handle(req(MessageType.DISCOVER, 1), FROM));
  assert.equal(messageType(d.reply), MessageType.OFFER);
  assert.equal(d.reply.yiaddr, '10.0.0.100');
  assert.equal(serverIdentifier(d.reply), SERVER);
  assert.equal(leaseTime(d.reply), 600);
  assert.deepEqual([...(getOption(d.reply, 1) ?? [])], [255, 255, 255, 0]);
  assert.deepEqual([...(getOption(d.reply, 3) ?? [])], [10, 0, 0, 1]);
  assert.deepEqual([...(getOption(d.reply, 6) ?? [])], [10, 0, 0, 53]);
  assert.equal(getOption(d.reply, 15)?.toString(), 'lab.test');
  assert.deepEqual([...(getOption(d.reply, 28) ?? [])], [10, 0, 0, 255]);
  assert.deepEqual([...(getOption(d.reply, 42) ?? [])], [10, 0, 0, 123]);
  assert.equal(getOption(d.reply, 58)?.readUInt32BE(0), 300);
  assert.equal(getOption(d.reply, 59)?.readUInt32BE(0), 525);
  assert.equal(d.to.kind, 'broadcast');
  assert.equal(store.rows.get('10.0.0.100')?.state, 'offered');
});

test('handle() skips exclusions and gives each client its own address until the pool is exhausted', () => {
  const { engine } = setup();
  assert.deepEqual([1, 2, 3].map((n) => dora(engine, n)), ['10.0.0.100', '10.0.0.102', '10.0.0.103']);
  assert.ok('ignore' in engine.handle(req(MessageType.DISCOVER, 4), FROM));
  // The same client asking again gets the same address.
  assert.equal(dora(engine, 2), '10.0.0.102');
});

test('handle() honours a free requested address (option 50) in a DISCOVER', () => {
  const { engine } = setup();
  const d = replied(engine.handle(req(MessageType.DISCOVER, 1, { options: [opt50('10.0.0.103')] }), FROM));
  assert.equal(d.reply.yiaddr, '10.0.0.103');
  const x = replied(engine.handle(req(MessageType.DISCOVER, 2, { options: [opt50('10.0.0.101')] }), FROM));
  assert.equal(x.reply.yiaddr, '10.0.0.100', 'an excluded address is not given');
});

test('handle() gives a reserved MAC its address, and no one else', () => {
  const { engine } = setup({ reservations: [{ mac: '52:54:00:00:00:07', ip: '10.0.0.20', hostname: 'r' }] });
  assert.equal(dora(engine, 7), '10.0.0.20');
  const other = replied(engine.handle(req(MessageType.DISCOVER, 8, { options: [opt50('10.0.0.20')] }), FROM));
  assert.notEqual(other.reply.yiaddr, '10.0.0.20');
  const nak = replied(engine.handle(req(MessageType.REQUEST, 8, { options: [opt50('10.0.0.20')] }), FROM));
  assert.equal(messageType(nak.reply), MessageType.NAK);
  // The reserved client asking for another address is told no, so it comes back for its own.
  const nak2 = replied(engine.handle(req(MessageType.REQUEST, 7, { options: [opt50('10.0.0.102')] }), FROM));
  assert.equal(messageType(nak2.reply), MessageType.NAK);
});

test('handle() NAKs wrong addresses on our subnet and stays silent for foreign subnets', () => {
  const { engine } = setup();
  dora(engine, 1);
  const taken = replied(engine.handle(req(MessageType.REQUEST, 2, { options: [opt50('10.0.0.100')] }), FROM));
  assert.equal(messageType(taken.reply), MessageType.NAK, "another client's address");
  assert.equal(taken.to.kind, 'broadcast');
  const wrongNet = replied(engine.handle(req(MessageType.REQUEST, 2, { options: [opt50('192.168.1.5')] }), FROM));
  assert.equal(messageType(wrongNet.reply), MessageType.NAK, 'an address from another network on our segment');
  const outside = replied(engine.handle(req(MessageType.REQUEST, 2, { options: [opt50('10.0.0.50')] }), FROM));
  assert.equal(messageType(outside.reply), MessageType.NAK, 'outside every range');
  const foreign = engine.handle(req(MessageType.REQUEST, 2, { options: [opt50('172.16.0.9')], giaddr: '172.16.0.1' }), FROM);
  assert.ok('ignore' in foreign, 'a relay on a subnet we do not serve');
  const renewForeign = engine.handle(req(MessageType.REQUEST, 2, { ciaddr: '172.16.0.9' }), FROM);
  assert.ok('ignore' in renewForeign);
  // Init-reboot for a free address in range: authoritative, ACK.
  const free = replied(engine.handle(req(MessageType.REQUEST, 3, { options: [opt50('10.0.0.103')] }), FROM));
  assert.equal(messageType(free.reply), MessageType.ACK);
});

test('handle() renews (unicast to ciaddr) and rebinds (through a relay) a bound lease', () => {
  const { engine, store, advance, now } = setup();
  const a = dora(engine, 1);
  advance(400);
  const renew = replied(engine.handle(req(MessageType.REQUEST, 1, { ciaddr: a }), FROM));
  assert.equal(messageType(renew.reply), MessageType.ACK);
  assert.deepEqual(renew.to, { address: a, port: 68, kind: 'unicast' });
  assert.equal(store.rows.get(a)?.expiresAt, now() + 600_000);
  const b = dora(engine, 2, { giaddr: '10.9.0.1' });
  assert.equal(b, '10.9.0.50');
  const rebind = replied(engine.handle(req(MessageType.REQUEST, 2, { ciaddr: b, giaddr: '10.9.0.1' }), FROM));
  assert.equal(messageType(rebind.reply), MessageType.ACK);
  assert.equal(rebind.to.kind, 'relay');
  // A renewal of another client's address is refused.
  const theft = replied(engine.handle(req(MessageType.REQUEST, 3, { ciaddr: a }), FROM));
  assert.equal(messageType(theft.reply), MessageType.NAK);
});

test('handle() serves relayed clients from the subnet of giaddr, to giaddr:67, echoing option 82', () => {
  const { engine } = setup();
  const o82: DhcpOption = { code: Opt.RELAY_AGENT_INFO, data: Buffer.from([1, 3, 0x61, 0x62, 0x63]) };
  const d = replied(engine.handle(req(MessageType.DISCOVER, 1, { giaddr: '10.9.0.1', options: [o82] }), FROM));
  assert.equal(d.reply.yiaddr, '10.9.0.50');
  assert.deepEqual(d.to, { address: '10.9.0.1', port: 67, kind: 'relay' });
  assert.equal(d.reply.giaddr, '10.9.0.1');
  assert.deepEqual(getOption(d.reply, Opt.RELAY_AGENT_INFO), o82.data);
  assert.equal(d.reply.options.at(-1)?.code, Opt.RELAY_AGENT_INFO, 'option 82 comes last');
  assert.equal(getOption(d.reply, 3), undefined, 'no router configured for the relayed pool');
});

test('handle() frees our offer when the client selects another server', () => {
  const { engine, store } = setup();
  const offer = replied(engine.handle(req(MessageType.DISCOVER, 1), FROM));
  const d = engine.handle(req(MessageType.REQUEST, 1, { options: [opt50('10.0.0.200'), opt54('10.0.0.2')] }), FROM);
  assert.ok('ignore' in d);
  assert.equal(store.rows.get(offer.reply.yiaddr)?.state, 'expired');
});

test('handle() sets a declined address aside, then reuses it after the hold', () => {
  const { engine, store, advance } = setup({ declineHoldSeconds: 100 });
  const a = dora(engine, 1);
  assert.ok('ignore' in engine.handle(req(MessageType.DECLINE, 1, { options: [opt50(a), opt54(SERVER)] }), FROM));
  assert.equal(store.rows.get(a)?.state, 'declined');
  assert.notEqual(dora(engine, 1), a, 'the decliner gets another address');
  dora(engine, 2);
  assert.ok('ignore' in engine.handle(req(MessageType.DISCOVER, 3), FROM), 'pool full while the declined one is held');
  advance(101);
  assert.equal(dora(engine, 3), a);
});

test('handle() releases on RELEASE and the client gets the same address back', () => {
  const { engine, store } = setup();
  const a = dora(engine, 1);
  assert.ok('ignore' in engine.handle(req(MessageType.RELEASE, 1, { ciaddr: a, options: [opt54(SERVER)] }), FROM));
  assert.equal(store.rows.get(a)?.state, 'released');
  assert.ok('ignore' in engine.handle(req(MessageType.RELEASE, 2, { ciaddr: a }), FROM), "a RELEASE of someone else's address is ignored");
  assert.equal(dora(engine, 1), a);
});

test('handle() answers INFORM with options, no address and no lease time', () => {
  const { engine } = setup();
  const d = replied(engine.handle(req(MessageType.INFORM, 1, { ciaddr: '10.0.0.77' }), { address: '10.0.0.77', port: 68 }));
  assert.equal(messageType(d.reply), MessageType.ACK);
  assert.equal(d.reply.yiaddr, '0.0.0.0');
  assert.equal(leaseTime(d.reply), undefined);
  assert.ok(getOption(d.reply, 3));
  assert.deepEqual(d.to, { address: '10.0.0.77', port: 68, kind: 'unicast' });
});

test('reclaim() expires old leases; expired addresses go to new clients only when no fresh one is left', () => {
  const { engine, store, advance } = setup();
  const a = dora(engine, 1);
  dora(engine, 2);
  advance(601);
  assert.equal(engine.reclaim(), 2);
  assert.equal(store.rows.get(a)?.state, 'expired');
  assert.equal(dora(engine, 3), '10.0.0.103', 'a fresh address first');
  assert.equal(dora(engine, 4), a, 'then the longest-expired one');
  assert.equal(dora(engine, 1), '10.0.0.102', 'the old owner of a now taken address gets another');
});

test('handle() keeps leases across a restart: a new engine from the saved rows honours them', () => {
  const { engine, store, make } = setup();
  const a = dora(engine, 1);
  const offered = replied(engine.handle(req(MessageType.DISCOVER, 2), FROM)).reply.yiaddr;
  const again = make([...store.rows.values()]);
  const other = replied(again.handle(req(MessageType.DISCOVER, 3), FROM));
  assert.ok(![a, offered].includes(other.reply.yiaddr), 'neither the bound nor the offered address is given away');
  const renew = replied(again.handle(req(MessageType.REQUEST, 1, { ciaddr: a }), FROM));
  assert.equal(messageType(renew.reply), MessageType.ACK);
});

test('handle() gives PXE clients the boot answer of proxy mode inside the lease reply', () => {
  const { engine } = setup({
    boot: PXE_BOOT,
  });
  const pxe = [{ code: Opt.VENDOR_CLASS_ID, data: Buffer.from('PXEClient:Arch:00007:UNDI:003016') }, { code: Opt.CLIENT_ARCH, data: Buffer.from([0, 7]) }];
  const d = replied(engine.handle(req(MessageType.DISCOVER, 1, { options: pxe }), FROM));
  assert.equal(d.reply.yiaddr, '10.0.0.100');
  assert.equal(d.reply.siaddr, SERVER);
  assert.equal(d.reply.file.toString('latin1').replace(/\0+$/, ''), 'snponly.efi');
  assert.equal(getOption(d.reply, Opt.VENDOR_CLASS_ID)?.toString(), 'PXEClient');
  const ipxe = [...pxe, { code: Opt.USER_CLASS, data: Buffer.from('iPXE') }];
  const i = replied(engine.handle(req(MessageType.DISCOVER, 2, { options: ipxe }), FROM));
  assert.equal(bootfileName(i.reply), 'http://10.0.0.1:8080/boot.ipxe');
  const plain = replied(engine.handle(req(MessageType.DISCOVER, 3), FROM));
  assert.equal(plain.reply.siaddr, '0.0.0.0');
  assert.equal(getOption(plain.reply, Opt.VENDOR_CLASS_ID), undefined);
});

test('handle() never throws anything but DhcpDecodeError on random option soup', () => {
  const { engine } = setup();
  let seed = 42;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const codes = [50, 51, 53, 54, 55, 57, 60, 61, 82, 93, 77, 175, 12];
  for (let k = 0; k < 3000; k++) {
    const options: DhcpOption[] = [];
    for (let j = rnd(6); j > 0; j--) {
      const code = codes[rnd(codes.length)] as number;
      options.push({ code, data: Buffer.from(Array.from({ length: rnd(8) }, () => rnd(256))) });
    }
    const p = createPacket({
      op: rnd(3),
      xid: k,
      hops: rnd(20),
      chaddr: mac(rnd(5)),
      ciaddr: rnd(2) ? '0.0.0.0' : `10.0.0.${100 + rnd(5)}`,
      giaddr: rnd(3) ? '0.0.0.0' : ['10.9.0.1', '172.16.0.1'][rnd(2)] as string,
      options: [{ code: 53, data: Buffer.from([1 + rnd(9)]) }, ...options],
    });
    try {
      const d = engine.handle(p, FROM);
      if (!('ignore' in d)) decodePacket(encodePacket(d.reply));
    } catch (err) {
      assert.equal((err as Error).name, 'DhcpDecodeError', `packet ${k}: ${(err as Error).stack}`);
    }
  }
});

test('handle() points a PXE client at the node serving its subnet (nearest node): asked with giaddr, else the address given', () => {
  const asked: string[] = [];
  const nodeB = { name: 'node-b', address: '10.9.0.2', httpBaseUrl: 'http://10.9.0.2:8080' };
  const { engine } = setup({
    boot: PXE_BOOT,
    servingNode: (a) => {
      asked.push(a);
      return a.startsWith('10.9.0.') ? nodeB : null;
    },
  });
  const pxe = [{ code: Opt.VENDOR_CLASS_ID, data: Buffer.from('PXEClient:Arch:00007:UNDI:003016') }, { code: Opt.CLIENT_ARCH, data: Buffer.from([0, 7]) }];
  // Relayed from B's subnet: next-server is B, option 54 stays ours.
  const d = replied(engine.handle(req(MessageType.DISCOVER, 1, { options: pxe, giaddr: '10.9.0.1' }), FROM));
  assert.deepEqual(asked, ['10.9.0.1']);
  assert.equal(d.reply.siaddr, '10.9.0.2');
  assert.equal(serverIdentifier(d.reply), SERVER);
  assert.equal(d.bootNode?.name, 'node-b');
  assert.match(d.reason, /served by node node-b, 10\.9\.0\.2/);
  // iPXE gets B's script URL.
  const ipxe = [...pxe, { code: Opt.USER_CLASS, data: Buffer.from('iPXE') }];
  const i = replied(engine.handle(req(MessageType.DISCOVER, 2, { options: ipxe, giaddr: '10.9.0.1' }), FROM));
  assert.equal(bootfileName(i.reply), 'http://10.9.0.2:8080/boot.ipxe');
  // On our own segment: asked with the address offered; not B's, so ours.
  asked.length = 0;
  const own = replied(engine.handle(req(MessageType.DISCOVER, 3, { options: pxe }), FROM));
  assert.deepEqual(asked, [own.reply.yiaddr]);
  assert.equal(own.reply.siaddr, SERVER);
  assert.equal(own.bootNode, undefined);
  // A client without a boot class is never looked up.
  asked.length = 0;
  replied(engine.handle(req(MessageType.DISCOVER, 4), FROM));
  assert.deepEqual(asked, []);
});
