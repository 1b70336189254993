/**
 * Two DHCP servers sharing one database and the same pool (issue 15): the
 * database is opened twice (two `openStore` = two servers: on SQLite one
 * file, two connections; in the test command's PostgreSQL pass one
 * database, two pools), and randomised traffic from distinct clients goes
 * through both. What perfdhcp's `-u` checks for one server is
 * checked across both: no address is ACKed to a client while another client
 * holds it, and every row of dhcp_leases names exactly one owner (its
 * client_key is the key of its MAC and identifier).
 *
 * 1. The engines with the store the server would use (SQLite: the
 *    synchronous fast path; PostgreSQL: Kysely), driven step by step with a
 *    clock that runs: offers and leases expire, are reclaimed, released and
 *    taken again.
 * 2. The DHCP services on loopback (A on 127.0.0.1, B on 127.0.0.2),
 *    every client's DISCOVER and REQUEST sent to both as a broadcast would
 *    be, all clients at once: with the synchronous store (SQLite only) and
 *    with the asynchronous one (the same SQL through Kysely: PostgreSQL's,
 *    and on SQLite too), so the service's queue and the claims race for real.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, POOL_DEFAULTS } from '../src/config/config.js';
import { silentLogger } from '../src/lib/log.js';
import { createDhcpServerService, type DhcpServerService } from '../src/net/dhcp-server.js';
import { LeaseEngine, type EngineDecision } from '../src/dhcp/engine.js';
import { handleAsync, handleSync, newClaimStats, reclaimAsync, reclaimSync } from '../src/dhcp/commit.js';
import { clientKey, leaseKey, type Lease, type LeaseStore } from '../src/model/lease.js';
import { kyselyLeaseStore, openLeaseStore, openStore, sqliteLeaseStore, type Store } from '../src/store/index.js';
import { testDatabaseUrl, testStoreDialect } from '../src/store/temp-store.js';
import { createPacket, decodePacket, encodePacket, hardwareAddress, type DhcpOption, type DhcpPacket } from '../src/protocol/dhcp/packet.js';
import { leaseTime, MessageType, messageType, Opt, serverIdentifier } from '../src/protocol/dhcp/options.js';

/** A seeded generator (tests must replay). */
function random(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % n;
  };
}

function macOf(n: number): Buffer {
  return Buffer.from([0x52, 0x54, 0, 0x15, n >> 8, n & 0xff]);
}
function packet(type: number, n: number, xid: number, o: { options?: DhcpOption[]; ciaddr?: string } = {}): DhcpPacket {
  const chaddr = Buffer.alloc(16);
  macOf(n).copy(chaddr);
  return createPacket({ xid, chaddr, ciaddr: o.ciaddr ?? '0.0.0.0', options: [{ code: Opt.MESSAGE_TYPE, data: Buffer.from([type]) }, ...(o.options ?? [])] });
}
const ipb = (s: string): Buffer => Buffer.from(s.split('.').map(Number));
const opt50 = (s: string): DhcpOption => ({ code: Opt.REQUESTED_IP, data: ipb(s) });
const opt54 = (s: string): DhcpOption => ({ code: Opt.SERVER_ID, data: ipb(s) });
/** Half the clients send option 61 = 01+MAC (iPXE, Linux), a few another identifier: owners are keyed by both. */
function withId(n: number, options: DhcpOption[] = []): DhcpOption[] {
  if (n % 5 === 0) return [...options, { code: Opt.CLIENT_ID, data: Buffer.from([0xff, 0, 0, n >> 8, n & 0xff]) }];
  if (n % 2 === 0) return [...options, { code: Opt.CLIENT_ID, data: Buffer.concat([Buffer.from([1]), macOf(n)]) }];
  return options;
}
function keyOfClient(n: number): string {
  const mac = [...macOf(n)].map((b) => b.toString(16).padStart(2, '0')).join(':');
  const id = withId(n).find((o) => o.code === Opt.CLIENT_ID);
  return clientKey(mac, id ? id.data.toString('hex') : null);
}

/**
 * Who holds which address, as the clients were told (ACKs), and the first
 * time two clients held one address at once.
 */
class Holders {
  private readonly byIp = new Map<string, { client: number; until: number }>();
  private readonly byClient = new Map<number, string>();
  readonly violations: string[] = [];
  acks = 0;

  ack(client: number, ip: string, until: number, now: number, via: string): void {
    this.acks++;
    const h = this.byIp.get(ip);
    if (h && h.client !== client && h.until > now) this.violations.push(`${ip} ACKed to client ${client} by ${via} while client ${h.client} holds it until ${h.until} (now ${now})`);
    this.drop(client);
    this.byIp.set(ip, { client, until });
    this.byClient.set(client, ip);
  }
  drop(client: number): void {
    const ip = this.byClient.get(client);
    if (ip === undefined) return;
    this.byClient.delete(client);
    if (this.byIp.get(ip)?.client === client) this.byIp.delete(ip);
  }
  heldBy(client: number, now: number): string | undefined {
    const ip = this.byClient.get(client);
    const h = ip === undefined ? undefined : this.byIp.get(ip);
    return h && h.until > now ? ip : undefined;
  }
  /** [ip, client] of every hold still running at `now`. */
  live(now: number): [string, number][] {
    return [...this.byIp].filter(([, h]) => h.until > now).map(([ip, h]) => [ip, h.client]);
  }
}

/** Every row names one owner: its client_key is the key of its own MAC and identifier; live holds are their client's, bound. */
async function checkRows(store: Store, holders: Holders, now: number): Promise<void> {
  const rows = await store.db.selectFrom('dhcp_leases').select(['ip', 'mac', 'client_id', 'client_key', 'state']).execute();
  const byIp = new Map(rows.map((r) => [r.ip, r]));
  for (const r of rows) {
    assert.equal(r.client_key, leaseKey({ mac: r.mac, clientId: r.client_id, state: r.state as Lease['state'] }), `row ${r.ip}: client_key ${r.client_key} is not its own MAC's (${r.mac}) and identifier's`);
  }
  for (const [ip, client] of holders.live(now)) {
    const r = byIp.get(ip);
    assert.ok(r, `client ${client} holds ${ip}, which has no row`);
    assert.equal(r.client_key, keyOfClient(client), `${ip} is held by client ${client} but its row names ${r.client_key}`);
    assert.equal(r.state, 'bound', `${ip} (client ${client})`);
  }
}

/** Two servers' stores on one database: one SQLite file opened twice, or one new PostgreSQL database (the test command's PostgreSQL pass). */
async function openShared(): Promise<{ stores: Store[]; close(): Promise<void> }> {
  const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'fleetboot-dhcp-shared-')));
  const dbDir = dirs[0] as string;
  const url = await testDatabaseUrl(dbDir);
  // On SQLite both open the first directory's fleetboot.db.
  const stores = [await openStore(dbDir, { url }), await openStore(url ? (dirs[1] as string) : dbDir, { url })];
  return {
    stores,
    async close() {
      for (const s of stores) await s.close();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}

test('two lease engines on one database never ACK one address to two clients (random traffic, expiry, release, reclaim)', async (t) => {
  const shared = await openShared();
  const stores = shared.stores;
  try {
    let now = 1_700_000_000_000;
    const pool = { ...POOL_DEFAULTS, start: '10.0.0.100', end: '10.0.0.139', leaseSeconds: 120 };
    const servers = (['10.0.0.1', '10.0.0.2'] as const).map((ip, i) => {
      const store = openLeaseStore(stores[i] as Store);
      const engine = new LeaseEngine({ serverIp: ip, pools: [pool], boot: null, now: () => now, nodeSalt: ip, offerHoldSeconds: 30 });
      const stats = newClaimStats();
      const from = { address: '0.0.0.0', port: 68 };
      return {
        ip,
        engine,
        stats,
        handle: async (p: DhcpPacket): Promise<EngineDecision> => (store.sync ? handleSync(engine, store, p, from, stats) : handleAsync(engine, store, p, from, stats)),
        reclaim: async (): Promise<number> => (store.sync ? reclaimSync(engine, store, stats) : reclaimAsync(engine, store, stats)),
      };
    });
    const rnd = random(15);
    const CLIENTS = 50;
    const holders = new Holders();
    const offers = new Map<number, Map<string, string>>(); // client -> server -> offered address
    let xid = 1;
    const ackOf = (d: EngineDecision): { ip: string; until: number } | 'nak' | null => {
      if ('ignore' in d) return null;
      const mt = messageType(d.reply);
      if (mt === MessageType.NAK) return 'nak';
      assert.equal(mt, MessageType.ACK);
      return { ip: d.reply.yiaddr, until: now + (leaseTime(d.reply) ?? 0) * 1000 };
    };
    const both = () => (rnd(2) === 0 ? servers : [servers[1], servers[0]]) as typeof servers;
    for (let step = 0; step < 6000; step++) {
      now += 250 + rnd(500);
      if (step % 200 === 0) for (const s of servers) await s.reclaim();
      const c = rnd(CLIENTS);
      const held = holders.heldBy(c, now);
      const pending = offers.get(c);
      if (pending && pending.size > 0) {
        // SELECTING: broadcast a REQUEST for one offer; the chosen server answers, the other drops its offer.
        const [sid, ip] = [...pending][rnd(pending.size)] as [string, string];
        offers.delete(c);
        const p = packet(MessageType.REQUEST, c, xid++, { options: withId(c, [opt50(ip), opt54(sid)]) });
        for (const s of both()) {
          const a = ackOf(await s.handle(p));
          if (s.ip !== sid) assert.equal(a, null, 'the server not selected stays silent');
          else if (a === 'nak') holders.drop(c);
          else if (a) holders.ack(c, a.ip, a.until, now, s.ip);
        }
      } else if (held !== undefined && rnd(10) < 6) {
        // RENEWING through one server (unicast), or REBINDING through the other.
        const s = servers[rnd(2)] as (typeof servers)[number];
        const a = ackOf(await s.handle(packet(MessageType.REQUEST, c, xid++, { options: withId(c), ciaddr: held })));
        if (a === 'nak') holders.drop(c);
        else if (a) holders.ack(c, a.ip, a.until, now, s.ip);
      } else if (held !== undefined && rnd(10) < 3) {
        // RELEASE: the client stops using it first.
        holders.drop(c);
        const s = servers[rnd(2)] as (typeof servers)[number];
        await s.handle(packet(MessageType.RELEASE, c, xid++, { options: withId(c, [opt54(s.ip)]), ciaddr: held }));
      } else if (held === undefined && rnd(4) === 0) {
        // INIT-REBOOT for an address the client remembers (maybe not its own any more): both servers hear it.
        const ip = `10.0.0.${100 + rnd(40)}`;
        const p = packet(MessageType.REQUEST, c, xid++, { options: withId(c, [opt50(ip)]) });
        for (const s of both()) {
          const a = ackOf(await s.handle(p));
          if (a === 'nak') holders.drop(c);
          else if (a) holders.ack(c, a.ip, a.until, now, s.ip);
        }
      } else if (held === undefined) {
        // DISCOVER, broadcast: both servers may offer.
        const p = packet(MessageType.DISCOVER, c, xid++, { options: withId(c) });
        const got = new Map<string, string>();
        for (const s of both()) {
          const d = await s.handle(p);
          if (!('ignore' in d)) got.set(s.ip, d.reply.yiaddr);
        }
        offers.set(c, got);
      }
      assert.deepEqual(holders.violations, []);
    }
    await checkRows(stores[0] as Store, holders, now);
    const lost = servers.map((s) => s.stats.lostWrites);
    t.diagnostic(`ACKs ${holders.acks}; lost writes A ${lost[0]}, B ${lost[1]}; gave up ${servers.map((s) => s.stats.gaveUp).join('/')}; leases held at the end ${holders.live(now).length}`);
    assert.ok(holders.acks > 1000, `ACKs: ${holders.acks}`);
    assert.ok((lost[0] ?? 0) + (lost[1] ?? 0) > 0, 'the servers did race for addresses (else this test proves nothing)');
  } finally {
    await shared.close();
  }
});

test('two servers claiming the same free addresses at the same moment: exactly one wins each', async () => {
  const shared = await openShared();
  try {
    const [a, b] = shared.stores.map((s) => kyselyLeaseStore(s.db));
    const now = Date.now();
    const claim = (n: number, ip: string) => ({ kind: 'claim' as const, lease: { ip, mac: [...macOf(n)].map((x) => x.toString(16).padStart(2, '0')).join(':'), clientId: null, state: 'offered' as const, expiresAt: now + 60_000, hostname: null, updatedAt: now } });
    const ips = Array.from({ length: 200 }, (_, i) => `10.1.${i >> 8}.${i & 0xff}`);
    const results = await Promise.all(ips.map((ip, i) => Promise.all([a?.commit(claim(2 * i, ip)), b?.commit(claim(2 * i + 1, ip))])));
    const winners = results.map(([x, y]) => Number(x) + Number(y));
    assert.deepEqual(winners.filter((w) => w !== 1), [], 'each address has exactly one winner');
    const rows = await (shared.stores[0] as Store).db.selectFrom('dhcp_leases').select(['ip', 'mac', 'client_key']).execute();
    assert.equal(rows.length, ips.length);
    for (const [i, ip] of ips.entries()) {
      const r = rows.find((x) => x.ip === ip);
      const won = results[i]?.[0] ? 2 * i : 2 * i + 1;
      assert.equal(r?.client_key, keyOfClientNoId(won), `${ip}: the row is the winner's`);
    }
  } finally {
    await shared.close();
  }
});

/**
 * Two lease engines, A (10.0.0.1) and B (10.0.0.2), on the shared store's
 * two connections and one pool, each handling a message as the PostgreSQL
 * path does (handleAsync); `now` is the engines' clock.
 */
function twoEngines(shared: { stores: Store[] }, now: () => number) {
  const pool = { ...POOL_DEFAULTS, start: '10.0.0.100', end: '10.0.0.139', leaseSeconds: 600 };
  const from = { address: '0.0.0.0', port: 68 };
  const server = (ip: string, i: number): ((p: DhcpPacket) => Promise<EngineDecision>) => {
    const store = kyselyLeaseStore((shared.stores[i] as Store).db);
    // Different salts: each server's fresh-address scan starts elsewhere in the pool.
    const engine = new LeaseEngine({ serverIp: ip, pools: [pool], boot: null, now, nodeSalt: ip, offerHoldSeconds: 30 });
    return (p) => handleAsync(engine, store, p, from, newClaimStats());
  };
  const offered = (d: EngineDecision): string => ('reply' in d && d.reply ? d.reply.yiaddr : assert.fail(`no reply: ${JSON.stringify(d)}`));
  return { A: server('10.0.0.1', 0), B: server('10.0.0.2', 1), offered };
}

test("a client bound by A that DISCOVERs again and is answered by B keeps its address (B reads the client's rows first)", async () => {
  const shared = await openShared();
  try {
    const { A, B, offered } = twoEngines(shared, () => 1_700_000_000_000);
    // The iPXE stage: A's OFFER and ACK.
    const ip = offered(await A(packet(MessageType.DISCOVER, 7, 1, { options: withId(7) })));
    offered(await A(packet(MessageType.REQUEST, 7, 2, { options: withId(7, [opt50(ip), opt54('10.0.0.1')]) })));
    // The operating system's DHCP client (no option 50), answered by B, which never saw the client.
    const again = offered(await B(packet(MessageType.DISCOVER, 7, 3, { options: withId(7) })));
    assert.equal(again, ip, "B offers the address A bound to the client, not a fresh one of B's");
  } finally {
    await shared.close();
  }
});

test("a client both servers offered to, that took B's offer, is offered B's address by A next time (a bound lease beats A's dropped offer)", async () => {
  const shared = await openShared();
  try {
    let now = 1_700_000_000_000;
    const { A, B, offered } = twoEngines(shared, () => now);
    // A relay sends the iPXE DISCOVER to both at once: neither sees the other's offer, each offers an address of its own.
    const discover = packet(MessageType.DISCOVER, 8, 1, { options: withId(8) });
    const [fromB, fromA] = (await Promise.all([B(discover), A(discover)])).map(offered) as [string, string];
    assert.notEqual(fromA, fromB, 'two offers of two addresses (the race this test is about)');
    // The client selects B's offer; the relay sends the REQUEST to both: B ACKs, then A drops its offer (a newer row).
    const select = packet(MessageType.REQUEST, 8, 2, { options: withId(8, [opt50(fromB), opt54('10.0.0.2')]) });
    now += 5;
    const ack = await B(select);
    assert.ok('reply' in ack && ack.reply && messageType(ack.reply) === MessageType.ACK && ack.reply.yiaddr === fromB, `B ACKs its offer: ${JSON.stringify(ack)}`);
    now += 5;
    assert.ok('ignore' in (await A(select)));
    // The boot environment's DHCP client, answered by A: the address the client holds, not A's dropped offer.
    now += 1000;
    const again = offered(await A(packet(MessageType.DISCOVER, 8, 3, { options: withId(8) })));
    assert.equal(again, fromB, `A offers the address B bound to the client (${fromB}), not its own dropped offer (${fromA})`);
  } finally {
    await shared.close();
  }
});

function keyOfClientNoId(n: number): string {
  return clientKey([...macOf(n)].map((b) => b.toString(16).padStart(2, '0')).join(':'), null);
}

// ---- 2. the services on loopback ----

interface Harness {
  services: DhcpServerService[];
  ips: string[];
  client: Socket;
  /** xid -> who hears replies with it. */
  waiting: Map<number, (p: DhcpPacket) => void>;
}

async function startServices(stores: Store[], leaseStores: LeaseStore[]): Promise<Harness> {
  const client = await new Promise<Socket>((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => resolve(s));
  });
  const waiting = new Map<number, (p: DhcpPacket) => void>();
  client.on('message', (msg) => {
    let p: DhcpPacket;
    try {
      p = decodePacket(msg);
    } catch {
      return;
    }
    waiting.get(p.xid)?.(p);
  });
  const ips = ['127.0.0.1', '127.0.0.2'];
  const services: DhcpServerService[] = [];
  for (const [i, ip] of ips.entries()) {
    const config = loadConfig({ overrides: { dataDir: (stores[i] as Store).dataDir, dhcp: { mode: 'server', bindAddress: ip, pools: [{ ...POOL_DEFAULTS, start: '127.0.0.100', end: '127.0.0.139' }] } } });
    const store = leaseStores[i] as LeaseStore;
    const svc = createDhcpServerService({
      config,
      serverIp: ip,
      httpBaseUrl: `http://${ip}:8080`,
      logger: silentLogger,
      store,
      leases: await store.load(),
      nodeSalt: ip,
      ports: { dhcp: 0, pxe: 0 },
      broadcastTo: { address: '127.0.0.1', port: client.address().port },
      relayPort: client.address().port,
      clientPort: client.address().port,
    });
    await svc.start();
    services.push(svc);
  }
  return { services, ips, client, waiting };
}

/** Send `p` to the servers (all: a broadcast) and collect replies with its xid for `waitMs`, or until `want` arrived. */
function exchange(h: Harness, p: DhcpPacket, to: number[], want: number, waitMs: number): Promise<DhcpPacket[]> {
  return new Promise((resolve) => {
    const got: DhcpPacket[] = [];
    const done = (): void => {
      clearTimeout(timer);
      h.waiting.delete(p.xid);
      resolve(got);
    };
    const timer = setTimeout(done, waitMs);
    h.waiting.set(p.xid, (r) => {
      got.push(r);
      if (got.length >= want) done();
    });
    const bytes = encodePacket(p);
    for (const i of to) h.client.send(bytes, (h.services[i] as DhcpServerService).ports.dhcp, h.ips[i]);
  });
}

async function trafficThroughBoth(t: { diagnostic(s: string): void }, async: boolean): Promise<void> {
  const shared = await openShared();
  const stores = shared.stores;
  const leaseStores: LeaseStore[] = stores.map((s) => (async || s.sqlite === null ? kyselyLeaseStore(s.db) : sqliteLeaseStore(s.sqlite)));
  const h = await startServices(stores, leaseStores);
  try {
    const holders = new Holders();
    const CLIENTS = 48;
    const rnd = random(async ? 151 : 152);
    let nextXid = 0x150000;
    const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const ack = (c: number, r: DhcpPacket, via: string): void => {
      assert.equal(hardwareAddress(r), [...macOf(c)].map((b) => b.toString(16).padStart(2, '0')).join(':'));
      holders.ack(c, r.yiaddr, Date.now() + (leaseTime(r) ?? 0) * 1000, Date.now(), via);
    };
    async function client(c: number): Promise<void> {
      for (let round = 0; round < 4; round++) {
        await delay(rnd(30));
        const offers = await exchange(h, packet(MessageType.DISCOVER, c, nextXid++, { options: withId(c) }), [0, 1], 2, 300);
        const offer = offers[rnd(Math.max(offers.length, 1))];
        if (!offer) continue;
        const sid = serverIdentifier(offer) as string;
        const req = packet(MessageType.REQUEST, c, nextXid++, { options: withId(c, [opt50(offer.yiaddr), opt54(sid)]) });
        const [r] = await exchange(h, req, [0, 1], 1, 1000);
        if (!r) continue;
        assert.equal(serverIdentifier(r), sid, 'only the selected server answers');
        if (messageType(r) !== MessageType.ACK) {
          holders.drop(c);
          continue;
        }
        ack(c, r, sid);
        // Renew through either server, sometimes release.
        const held = r.yiaddr;
        const s = rnd(2);
        const [renewed] = await exchange(h, packet(MessageType.REQUEST, c, nextXid++, { options: withId(c), ciaddr: held }), [s], 1, 1000);
        if (renewed && messageType(renewed) === MessageType.ACK) ack(c, renewed, h.ips[s] as string);
        else holders.drop(c);
        if (rnd(3) === 0) {
          holders.drop(c);
          const rs = rnd(2);
          await exchange(h, packet(MessageType.RELEASE, c, nextXid++, { options: withId(c, [opt54(h.ips[rs] as string)]), ciaddr: held }), [rs], 1, 20);
        }
      }
    }
    await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c + 1)));
    assert.deepEqual(holders.violations, []);
    // Wait for the queues (the last RELEASEs) before reading the rows.
    await delay(100);
    await checkRows(stores[0] as Store, holders, Date.now());
    const st = h.services.map((s) => s.stats);
    t.diagnostic(`ACKs ${holders.acks}; replied ${st.map((s) => s.replied).join('/')}; lost writes ${st.map((s) => s.lostWrites).join('/')}; gave up ${st.map((s) => s.gaveUp).join('/')}; overloaded ${st.map((s) => s.overloaded).join('/')}`);
    assert.ok(holders.acks > CLIENTS * 2, `ACKs: ${holders.acks}`);
    for (const s of st) assert.equal(s.overloaded, 0);
  } finally {
    for (const s of h.services) await s.close();
    h.client.close();
    await shared.close();
  }
}

const onPostgres = testStoreDialect() === 'postgres';

test('two DHCP services on one database, synchronous store: concurrent clients through both, no address given twice', { skip: onPostgres && 'SQLite only' }, async (t) => {
  await trafficThroughBoth(t, false);
});

test('two DHCP services on one database, asynchronous store (Kysely, as on PostgreSQL): no address given twice', async (t) => {
  await trafficThroughBoth(t, true);
});
