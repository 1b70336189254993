/**
 * The lease engine with a store it shares with another server (issue 15):
 * rows that server wrote are unknown to the engine until one of its writes
 * loses (MemLeaseStore has the conditions of src/store/leases.ts). Then the
 * engine is refreshed and the message handled again (src/dhcp/commit.ts):
 * an OFFER moves to another address, a REQUEST for an address another
 * client holds is NAKed (RFC 2131 4.3.2: the selected server that cannot
 * satisfy a REQUEST, or gets one for an address that is not the client's,
 * answers DHCPNAK), a RELEASE or DECLINE of a row no longer the client's
 * changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipToInt, type DhcpOption, type DhcpPacket } from '../protocol/dhcp/packet.js';
import { MessageType, messageType, Opt } from '../protocol/dhcp/options.js';
import { LeaseEngine, type EngineDecision, type Lease, type LeaseEngineOptions } from './engine.js';
import { MAX_TRIES } from './commit.js';
import { driven, MemLeaseStore, type Driven } from './mem-lease-store.js';
import { POOL_DEFAULTS } from '../config/config.js';
import { clientMessage, opt50, opt54, replied } from './test-packets.js';

const SERVER = '10.0.0.1';
const OTHER_SERVER = '10.0.0.2';
const pool = { ...POOL_DEFAULTS, start: '10.0.0.100', end: '10.0.0.109', leaseSeconds: 600 };
const FROM = { address: '0.0.0.0', port: 68 };

function setup(o: Partial<LeaseEngineOptions> = {}) {
  let t = 1_000_000;
  const store = new MemLeaseStore();
  const e = driven(new LeaseEngine({ serverIp: SERVER, pools: [pool], boot: null, now: () => t, ...o }), store);
  return { e, store, advance: (s: number) => (t += s * 1000), now: () => t };
}

function macText(n: number): string {
  return `52:54:00:00:00:${n.toString(16).padStart(2, '0')}`;
}
const req = (type: number, n: number, options: DhcpOption[] = [], ciaddr = '0.0.0.0'): DhcpPacket => clientMessage(0x3000, type, n, options, ciaddr);

function ignored(d: EngineDecision): string {
  assert.ok('ignore' in d, 'expected no reply');
  return d.ignore;
}
function dora(e: Driven, n: number): string {
  const offer = replied(e.handle(req(MessageType.DISCOVER, n), FROM));
  const ack = replied(e.handle(req(MessageType.REQUEST, n, [opt50(offer.reply.yiaddr), opt54(SERVER)]), FROM));
  assert.equal(messageType(ack.reply), MessageType.ACK);
  return ack.reply.yiaddr;
}
/** A row as the other server writes it: client n holds `ip` in `state` until `expiresAt`. */
function theirs(ip: string, n: number, state: Lease['state'], expiresAt: number, updatedAt = 0): Lease {
  return { ip, mac: macText(n), clientId: null, state, expiresAt, hostname: null, updatedAt };
}

test('a DISCOVER whose fresh address another server holds is offered the next one; that row is untouched', () => {
  const { e, store, now } = setup();
  store.put(theirs('10.0.0.100', 9, 'bound', now() + 600_000));
  const d = replied(e.handle(req(MessageType.DISCOVER, 1), FROM));
  assert.equal(d.reply.yiaddr, '10.0.0.101');
  assert.equal(e.stats.lostWrites, 1);
  assert.equal(store.rows.get('10.0.0.100')?.mac, macText(9), "the other server's row is kept");
  assert.equal(store.rows.get('10.0.0.101')?.mac, macText(1));
  // The engine learnt the row: it is in its index now, and no longer tried.
  assert.equal(e.engine.leases().find((l) => l.ip === '10.0.0.100')?.mac, macText(9));
  replied(e.handle(req(MessageType.DISCOVER, 2), FROM));
  assert.equal(e.stats.lostWrites, 1);
});

test('a claim may take a row another server let expire or released', () => {
  const { e, store, now } = setup();
  store.put(theirs('10.0.0.100', 9, 'bound', now() - 1));
  store.put(theirs('10.0.0.101', 8, 'released', now() + 600_000));
  assert.equal(replied(e.handle(req(MessageType.DISCOVER, 1), FROM)).reply.yiaddr, '10.0.0.100');
  assert.equal(replied(e.handle(req(MessageType.DISCOVER, 2), FROM)).reply.yiaddr, '10.0.0.101');
  assert.equal(e.stats.lostWrites, 0);
});

test('a selecting REQUEST for our offer that another server gave away after it ran out is NAKed', () => {
  const { e, store, advance, now } = setup();
  const offered = replied(e.handle(req(MessageType.DISCOVER, 1), FROM)).reply.yiaddr;
  advance(61); // past the offer hold
  store.put(theirs(offered, 9, 'bound', now() + 600_000, now()));
  const d = replied(e.handle(req(MessageType.REQUEST, 1, [opt50(offered), opt54(SERVER)]), FROM));
  assert.equal(messageType(d.reply), MessageType.NAK);
  assert.equal(e.stats.lostWrites, 1);
  assert.equal(store.rows.get(offered)?.mac, macText(9));
  // The client starts over and gets another address.
  assert.notEqual(dora(e, 1), offered);
});

test('an init-reboot REQUEST for an address another server bound to another client is NAKed, not ACKed', () => {
  const { e, store, now } = setup();
  store.put(theirs('10.0.0.105', 9, 'bound', now() + 600_000));
  const d = replied(e.handle(req(MessageType.REQUEST, 1, [opt50('10.0.0.105')]), FROM));
  assert.equal(messageType(d.reply), MessageType.NAK);
  assert.match(d.reason, /leased to another client/);
  // The same client through us: its own row, ACK (the other server's lease carries over).
  const mine = replied(e.handle(req(MessageType.REQUEST, 9, [opt50('10.0.0.105')]), FROM));
  assert.equal(messageType(mine.reply), MessageType.ACK);
});

test(`after ${MAX_TRIES} lost claims the message is ignored and counted`, () => {
  const { e, store, now } = setup();
  let n = 20;
  // Another server wins every race: just before each claim it takes that very address.
  store.beforeCommit = (w) => {
    if (w.kind === 'claim') store.put(theirs(w.lease.ip, n++, 'offered', now() + 60_000));
  };
  const d = e.handle(req(MessageType.DISCOVER, 1), FROM);
  assert.match(ignored(d), new RegExp(`lost to another server sharing the store ${MAX_TRIES} times`));
  assert.equal('contended' in d && d.contended, true);
  assert.equal(e.stats.gaveUp, 1);
  assert.equal(e.stats.lostWrites, MAX_TRIES);
  store.beforeCommit = null;
  assert.equal(replied(e.handle(req(MessageType.DISCOVER, 1), FROM)).reply.yiaddr, '10.0.0.103', 'the next try takes the next free address');
});

test("a claim that loses after the client's previous lease was ended in the index restores that lease", () => {
  const { e, store, now } = setup();
  const a = dora(e, 1);
  store.put(theirs('10.0.0.107', 9, 'bound', now() + 600_000));
  // The client asks for another address; the claim loses, so its old lease must stay bound.
  const nak = replied(e.handle(req(MessageType.REQUEST, 1, [opt50('10.0.0.107')]), FROM));
  assert.equal(messageType(nak.reply), MessageType.NAK);
  assert.equal(e.stats.lostWrites, 1);
  assert.equal(store.rows.get(a)?.state, 'bound');
  const renew = replied(e.handle(req(MessageType.REQUEST, 1, [], a), FROM));
  assert.equal(messageType(renew.reply), MessageType.ACK, 'the old lease is still the client’s');
});

test("the end of the client's previous lease may lose without undoing the ACK", () => {
  const { e, store, now } = setup();
  const a = dora(e, 1);
  // Meanwhile the client released it through the other server.
  store.put({ ...(store.row(a) as Lease), state: 'released', expiresAt: now() });
  const d = replied(e.handle(req(MessageType.REQUEST, 1, [opt50('10.0.0.108')]), FROM));
  assert.equal(messageType(d.reply), MessageType.ACK);
  assert.equal(e.stats.lostWrites, 1);
  assert.equal(store.rows.get('10.0.0.108')?.state, 'bound');
  assert.equal(store.rows.get(a)?.state, 'released');
});

test('RELEASE and DECLINE of a row another server gave to another client change nothing', () => {
  const { e, store, advance, now } = setup();
  const a = dora(e, 1);
  const b = dora(e, 2);
  advance(601);
  store.put(theirs(a, 9, 'bound', now() + 600_000, now()));
  store.put(theirs(b, 8, 'bound', now() + 600_000, now()));
  // The engine still thinks a and b are clients 1's and 2's (expired: RELEASE says "no longer holds").
  assert.match(ignored(e.handle(req(MessageType.RELEASE, 1, [opt54(SERVER)], a), FROM)), /not this client's|no longer holds/);
  assert.match(ignored(e.handle(req(MessageType.DECLINE, 2, [opt50(b), opt54(SERVER)]), FROM)), /not this client's/);
  assert.equal(store.rows.get(a)?.mac, macText(9));
  assert.equal(store.rows.get(b)?.state, 'bound');
});

test('RELEASE through us of a lease the client holds is taken; a second RELEASE is ignored', () => {
  const { e, store } = setup();
  const a = dora(e, 1);
  assert.match(ignored(e.handle(req(MessageType.RELEASE, 1, [opt54(SERVER)], a), FROM)), /released/);
  assert.equal(store.rows.get(a)?.state, 'released');
  assert.match(ignored(e.handle(req(MessageType.RELEASE, 1, [opt54(SERVER)], a), FROM)), /no longer holds/);
});

test('reclaim() does not expire a lease another server renewed; the engine learns the renewal', () => {
  const { e, store, advance, now } = setup();
  const a = dora(e, 1);
  const b = dora(e, 2);
  advance(601);
  store.put({ ...(store.row(a) as Lease), expiresAt: now() + 600_000, updatedAt: now() });
  assert.equal(e.reclaim(), 1);
  assert.equal(store.rows.get(a)?.state, 'bound');
  assert.equal(store.rows.get(b)?.state, 'expired');
  assert.equal(e.stats.lostWrites, 1);
  assert.equal(e.engine.leases().find((l) => l.ip === a)?.state, 'bound');
  // So nobody else is offered it.
  for (let n = 3; n < 12; n++) {
    const d = e.handle(req(MessageType.DISCOVER, n), FROM);
    if (!('ignore' in d)) assert.notEqual(d.reply.yiaddr, a);
  }
});

test('a REQUEST selecting another server for the address we offered too leaves our row for that server', () => {
  const { e, store } = setup();
  const offered = replied(e.handle(req(MessageType.DISCOVER, 1), FROM)).reply.yiaddr;
  ignored(e.handle(req(MessageType.REQUEST, 1, [opt50(offered), opt54(OTHER_SERVER)]), FROM));
  assert.equal(store.rows.get(offered)?.state, 'offered', 'the other server binds it with its claim (same client)');
  // Another address selected elsewhere: our offer is dropped.
  ignored(e.handle(req(MessageType.REQUEST, 1, [opt50('10.0.0.199'), opt54(OTHER_SERVER)]), FROM));
  assert.equal(store.rows.get(offered)?.state, 'expired');
});

test('refresh() with no row forgets the address', () => {
  const { e } = setup();
  const a = dora(e, 1);
  e.engine.refresh(a, null);
  assert.equal(e.engine.leases().length, 0);
});

test('nodeSalt: engines start their scans at different places and each still covers the whole range', () => {
  const big = { ...POOL_DEFAULTS, start: '10.0.1.0', end: '10.0.1.199', leaseSeconds: 600 };
  const first = (salt: string | null): string => {
    const e = driven(new LeaseEngine({ serverIp: '10.0.1.250', pools: [big], boot: null, now: () => 1, nodeSalt: salt }), new MemLeaseStore());
    return replied(e.handle(req(MessageType.DISCOVER, 1), FROM)).reply.yiaddr;
  };
  assert.equal(first(null), '10.0.1.1', 'no salt: the start of the range (the network address is skipped)');
  const starts = new Set(['10.0.2.1', '10.0.2.2', '10.0.2.3', '10.0.2.4'].map(first));
  assert.equal(starts.size, 4, `four servers, four different first addresses: ${[...starts].join(' ')}`);
  const e = driven(new LeaseEngine({ serverIp: '10.0.1.250', pools: [big], boot: null, now: () => 1, nodeSalt: '10.0.2.9' }), new MemLeaseStore());
  const got = new Set<number>();
  for (let n = 0; n < 199; n++) got.add(ipToInt(replied(e.handle(req(MessageType.DISCOVER, n + 1), FROM)).reply.yiaddr));
  assert.equal(got.size, 199, 'every usable address once (200 minus the network address)');
  assert.ok('ignore' in e.handle(req(MessageType.DISCOVER, 250), FROM), 'then the pool is full');
});

test('servers sharing the store: a NAK for another client’s lease is checked against the row first (a stale index is refreshed)', () => {
  for (const nodeSalt of [SERVER, null]) {
    const { e, store, now } = setup({ nodeSalt });
    const a = dora(e, 1);
    // Through the other server: client 1 released a, and client 9 got it.
    store.put(theirs(a, 9, 'bound', now() + 600_000, now()));
    const d = replied(e.handle(req(MessageType.REQUEST, 9, [], a), FROM));
    if (nodeSalt === null) {
      assert.equal(messageType(d.reply), MessageType.NAK, 'one server: the index is the truth');
    } else {
      assert.equal(messageType(d.reply), MessageType.ACK, 'shared: the row says it is client 9’s');
      assert.equal(store.rows.get(a)?.mac, macText(9));
      // And a real conflict is still a NAK after the check.
      const nak = replied(e.handle(req(MessageType.REQUEST, 1, [], a), FROM));
      assert.equal(messageType(nak.reply), MessageType.NAK);
    }
  }
});
