/**
 * Client identity in the lease engine: option 61 = hardware type 1 + the MAC
 * names the same client as no option 61 from that MAC (edk2's PXE sends
 * none, iPXE and Linux clients send 01+MAC), found with OVMF guests in
 * test/lab/server-mode.e2e.test.ts, which held two leases per boot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPacket, type DhcpOption, type DhcpPacket } from '../protocol/dhcp/packet.js';
import { MessageType, messageType, Opt } from '../protocol/dhcp/options.js';
import { clientKey, LeaseEngine, type EngineDecision, type EngineReply, type Lease } from './engine.js';
import { driven, MemLeaseStore, type Driven } from './mem-lease-store.js';
import { POOL_DEFAULTS } from '../config/config.js';

const SERVER = '10.0.0.1';
const MAC = [0x52, 0x54, 0, 0xfb, 0x82, 0x0b];
const MAC_TEXT = '52:54:00:fb:82:0b';
const FROM = { address: '0.0.0.0', port: 68 };
const ID_MAC: DhcpOption = { code: Opt.CLIENT_ID, data: Buffer.from([1, ...MAC]) };
const ID_OTHER: DhcpOption = { code: Opt.CLIENT_ID, data: Buffer.from([0xff, 1, 2, 3, 4, 0, 1, 0, 1, 9, 9]) };

function engine(leases: Lease[] = []): { e: Driven; rows: Map<string, Lease> } {
  const store = new MemLeaseStore();
  for (const l of leases) store.put(l);
  const e = new LeaseEngine({
    serverIp: SERVER,
    pools: [{ ...POOL_DEFAULTS, start: '10.0.0.100', end: '10.0.0.110' }],
    boot: null,
    leases,
    now: () => 1_000_000,
  });
  return { e: driven(e, store), rows: store.rows };
}

function req(type: number, options: DhcpOption[]): DhcpPacket {
  const chaddr = Buffer.alloc(16);
  Buffer.from(MAC).copy(chaddr);
  return createPacket({ xid: 7, chaddr, options: [{ code: Opt.MESSAGE_TYPE, data: Buffer.from([type]) }, ...options] });
}

function replied(d: EngineDecision): EngineReply {
  assert.ok(!('ignore' in d), `expected a reply, got: ${'ignore' in d ? d.ignore : ''}`);
  return d;
}

const ipOpt = (code: number, s: string): DhcpOption => ({ code, data: Buffer.from(s.split('.').map(Number)) });

function dora(e: Driven, id: DhcpOption[]): string {
  const offer = replied(e.handle(req(MessageType.DISCOVER, id), FROM));
  const ack = replied(e.handle(req(MessageType.REQUEST, [...id, ipOpt(Opt.REQUESTED_IP, offer.reply.yiaddr), ipOpt(Opt.SERVER_ID, SERVER)]), FROM));
  assert.equal(messageType(ack.reply), MessageType.ACK);
  return ack.reply.yiaddr;
}

test('clientKey() treats 01+MAC as the MAC and keeps other identifiers apart', () => {
  assert.equal(clientKey(MAC_TEXT, null), `hw:${MAC_TEXT}`);
  assert.equal(clientKey(MAC_TEXT, '01525400fb820b'), `hw:${MAC_TEXT}`);
  assert.equal(clientKey(MAC_TEXT, '01525400fb820c'), 'id:01525400fb820c');
  assert.equal(clientKey(MAC_TEXT, 'ff01020304'), 'id:ff01020304');
});

test('handle() gives a machine the same address without option 61 (firmware PXE) and with 01+MAC (iPXE, Linux)', () => {
  const { e, rows } = engine();
  const first = dora(e, []);
  const second = dora(e, [ID_MAC]);
  assert.equal(second, first);
  assert.equal([...rows.values()].filter((l) => l.mac === MAC_TEXT && l.state === 'bound').length, 1, 'one bound lease for the machine');
  // And back: a later firmware boot (no option 61) still gets it.
  assert.equal(dora(e, []), first);
});

test('handle() keeps a client with another identifier apart from the bare MAC', () => {
  const { e } = engine();
  const bare = dora(e, []);
  const other = dora(e, [ID_OTHER]);
  assert.notEqual(other, bare);
});

test('handle() honours a stored lease with identifier 01+MAC for a request without one (after a restart)', () => {
  const stored: Lease = { ip: '10.0.0.105', mac: MAC_TEXT, clientId: '01525400fb820b', state: 'bound', expiresAt: 2_000_000, hostname: null, updatedAt: 900_000 };
  const { e } = engine([stored]);
  assert.equal(dora(e, []), '10.0.0.105');
});
