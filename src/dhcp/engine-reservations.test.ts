import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DhcpOption, DhcpPacket } from '../protocol/dhcp/packet.js';
import { MessageType, messageType, Opt } from '../protocol/dhcp/options.js';
import { LeaseEngine, type EngineDecision } from './engine.js';
import { driven, MemLeaseStore } from './mem-lease-store.js';
import { POOL_DEFAULTS } from '../config/config.js';
import { clientMessage, opt50, opt54, replied } from './test-packets.js';

const SERVER = '10.0.0.1';
const pool = { ...POOL_DEFAULTS, start: '10.0.0.100', end: '10.0.0.110', leaseSeconds: 600 };
const FROM = { address: '0.0.0.0', port: 68 };

function setup() {
  let t = 1_000_000;
  const engine = driven(new LeaseEngine({ serverIp: SERVER, pools: [pool], boot: null, now: () => t }), new MemLeaseStore());
  return { engine, advance: (s: number) => (t += s * 1000) };
}

const req = (type: number, n: number, options: DhcpOption[] = [], ciaddr = '0.0.0.0'): DhcpPacket => clientMessage(0x2000, type, n, options, ciaddr);


test('setReservations() at run time: the reserved MAC is offered its address, another MAC asking for it is refused', () => {
  const { engine } = setup();
  // Before: MAC 7 gets a pool address.
  assert.equal(replied(engine.handle(req(MessageType.DISCOVER, 7), FROM)).reply.yiaddr, '10.0.0.100');
  assert.deepEqual(engine.engine.setReservations([{ mac: '52:54:00:00:00:07', ip: '10.0.0.20', hostname: 'pc7' }]), []);
  assert.equal(engine.engine.reservationCount(), 1);
  const offer = replied(engine.handle(req(MessageType.DISCOVER, 7), FROM));
  assert.equal(messageType(offer.reply), MessageType.OFFER);
  assert.equal(offer.reply.yiaddr, '10.0.0.20');
  const ack = replied(engine.handle(req(MessageType.REQUEST, 7, [opt50('10.0.0.20'), opt54(SERVER)]), FROM));
  assert.equal(messageType(ack.reply), MessageType.ACK);
  assert.equal(ack.reply.yiaddr, '10.0.0.20');
  // Another MAC: a DISCOVER asking for it gets something else, a REQUEST for it a NAK.
  const other = replied(engine.handle(req(MessageType.DISCOVER, 8, [opt50('10.0.0.20')]), FROM));
  assert.notEqual(other.reply.yiaddr, '10.0.0.20');
  const nak = replied(engine.handle(req(MessageType.REQUEST, 8, [opt50('10.0.0.20')]), FROM));
  assert.equal(messageType(nak.reply), MessageType.NAK);
});

test('setReservations() replaces the list: a removed reservation no longer binds the MAC or the address', () => {
  const { engine } = setup();
  engine.engine.setReservations([{ mac: '52:54:00:00:00:07', ip: '10.0.0.105', hostname: null }]);
  assert.equal(replied(engine.handle(req(MessageType.DISCOVER, 8, [opt50('10.0.0.105')]), FROM)).reply.yiaddr, '10.0.0.100');
  engine.engine.setReservations([]);
  assert.equal(engine.engine.reservationCount(), 0);
  assert.equal(replied(engine.handle(req(MessageType.DISCOVER, 9, [opt50('10.0.0.105')]), FROM)).reply.yiaddr, '10.0.0.105');
});

test('setReservations() keeps the first of clashing reservations and returns the others', () => {
  const { engine } = setup();
  const skipped = engine.engine.setReservations([
    { mac: '52:54:00:00:00:01', ip: '10.0.0.21', hostname: null },
    { mac: '52:54:00:00:00:02', ip: '10.0.0.21', hostname: null },
    { mac: '52:54:00:00:00:01', ip: '10.0.0.22', hostname: null },
  ]);
  assert.equal(skipped.length, 2);
  assert.equal(engine.engine.reservationCount(), 1);
  assert.equal(replied(engine.handle(req(MessageType.DISCOVER, 1), FROM)).reply.yiaddr, '10.0.0.21');
});

test('setReservations() on an address another client holds: it is NAKed at renewal, then the reserved MAC gets it', () => {
  const { engine } = setup();
  const offer = replied(engine.handle(req(MessageType.DISCOVER, 3), FROM));
  assert.equal(offer.reply.yiaddr, '10.0.0.100');
  replied(engine.handle(req(MessageType.REQUEST, 3, [opt50('10.0.0.100'), opt54(SERVER)]), FROM));
  engine.engine.setReservations([{ mac: '52:54:00:00:00:07', ip: '10.0.0.100', hostname: null }]);
  // The holder keeps the lease until it renews; the reserved MAC is not given a held address.
  assert.notEqual(replied(engine.handle(req(MessageType.DISCOVER, 7), FROM)).reply.yiaddr, '10.0.0.100');
  const renew = replied(engine.handle(req(MessageType.REQUEST, 3, [], '10.0.0.100'), { address: '10.0.0.100', port: 68 }));
  assert.equal(messageType(renew.reply), MessageType.NAK);
  engine.handle(req(MessageType.RELEASE, 3, [opt54(SERVER)], '10.0.0.100'), FROM);
  assert.equal(replied(engine.handle(req(MessageType.DISCOVER, 7), FROM)).reply.yiaddr, '10.0.0.100');
});
