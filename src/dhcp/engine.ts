/**
 * The DHCP address server, pure: (decoded request, where it came from) ->
 * the reply and where to send it, or why it is ignored, plus the lease
 * writes that must be committed before the reply leaves. Leases live in an
 * in-memory index (by address and by client) loaded at start; handle()
 * updates the index and lists the writes, and the caller commits them
 * (src/dhcp/commit.ts) before sending, so a server killed with -9 and
 * restarted never gives one address to two clients. Time is injected (now()).
 *
 * Several servers may share one database and the same pools (issue 15).
 * Every write is conditional (model/lease.ts LeaseWrite): an OFFER or ACK
 * claims its address, and the claim loses when another server's client
 * holds the row. Then the caller reads the row back into the index
 * (refresh()) and asks handle() again, which picks another address (OFFER)
 * or NAKs (a REQUEST for an address another client holds, RFC 2131 4.3.2).
 * So the index may be stale, never wrong in a way that gives an address
 * twice. With `nodeSalt` each server's fresh scan starts at its own place in
 * a range, so servers sharing a pool rarely reach for the same address.
 *
 * RFC 2131 section 4.3, as ISC dhcpd (`authoritative`) and dnsmasq
 * (`--dhcp-authoritative`) read it:
 * - DISCOVER -> OFFER, the address held for OFFER_HOLD seconds (committed);
 * - REQUEST selecting (54 = us, 50 = the offer) -> ACK, else NAK;
 *   REQUEST with 54 = another server -> silence, our offer is dropped;
 * - REQUEST init-reboot (50, no 54) / renewing (ciaddr, unicast) /
 *   rebinding (ciaddr, broadcast) -> ACK when the address is on the
 *   client's subnet and is (or may be) its own; NAK when it is on one of
 *   our subnets but wrong (another client's, excluded, another subnet's);
 *   silence when the client's subnet is not ours;
 * - DECLINE -> the address is set aside for DECLINE_HOLD seconds;
 * - RELEASE -> the lease ends now (the client keeps its affinity to it);
 * - INFORM -> ACK with the options, no address, no lease times.
 * Allocation order: reservation (MAC) -> the client's existing lease ->
 * the requested address (50) if free in a range -> a never-used address ->
 * the longest-expired one.
 *
 * Subnet choice: giaddr (relayed) -> the subnet containing giaddr; else
 * ciaddr (renewing) -> the subnet containing ciaddr; else the subnet of the
 * server's own address (the segment it listens on).
 */
import { BOOTREPLY, BOOTREQUEST, createPacket, hardwareAddress, ipToInt, type DhcpOption, type DhcpPacket } from '../protocol/dhcp/packet.js';
import {
  clientIdentifier,
  getOption,
  leaseTime,
  MessageType,
  messageType,
  messageTypeName,
  Opt,
  requestedIp,
  serverIdentifier,
} from '../protocol/dhcp/options.js';
import { bootAnswer, bootServerIp, withBootServer, type Destination, type ProxyContext } from '../boot/proxy-answer.js';
import type { ServingNode, ServingNodeLookup } from '../model/node.js';
import { detectFirmware, type FirmwareInfo } from '../boot/firmware.js';
import { buildSubnets, intToIp, ipBuffer, subnetContaining, type OptionSetting, type PoolSettings, type Subnet } from './subnets.js';

import { clientKey, leaseKey, type Lease, type LeaseState, type LeaseWrite } from '../model/lease.js';

export type { Lease, LeaseState, LeaseWrite, LeaseStore, SyncLeaseStore, AsyncLeaseStore } from '../model/lease.js';
export { clientKey } from '../model/lease.js';

export interface Reservation {
  mac: string;
  ip: string;
  hostname: string | null;
}

export interface LeaseEngineOptions {
  /** Our address: option 54, and the local subnet is the one containing it. */
  serverIp: string;
  pools: readonly PoolSettings[];
  options?: readonly OptionSetting[];
  reservations?: readonly Reservation[];
  /** Boot answers for PXE/iPXE/HTTP-boot clients; null: none. */
  boot: ProxyContext | null;
  /**
   * Nearest node (issue 15): the node that serves a client's subnet, asked
   * with the relay's giaddr, else the address offered or acknowledged, else
   * ciaddr (synchronous: src/nodes/directory.ts). A node returned gets the
   * boot answer (next-server, HTTP URLs); null or absent: this server.
   */
  servingNode?: ServingNodeLookup | null;
  /** Leases loaded from the store at start. */
  leases?: readonly Lease[];
  now?: () => number;
  offerHoldSeconds?: number;
  declineHoldSeconds?: number;
  /**
   * Servers sharing pools (one database) pass something unique to this one
   * (its address): the scan for never-used addresses starts at an offset in
   * each range derived from it, and wraps. Null or absent: at the start of
   * each range (one server).
   */
  nodeSalt?: string | null;
}

export interface EngineReply {
  reply: DhcpPacket;
  to: Destination;
  /** "DISCOVER -> OFFER" */
  step: string;
  ip: string | null;
  reason: string;
  firmware: FirmwareInfo | null;
  /** Commit these, in order, before sending: the first decides (a claim), the others tidy up. */
  writes: readonly LeaseWrite[];
  /** The boot answer points at this other node (nearest node); absent: at this server. */
  bootNode?: ServingNode;
  /**
   * Servers sharing the store (nodeSalt set): this NAK rests on what the index
   * knows of this address (another client's lease), which may be stale; the
   * caller re-reads the row and, when it differs, refreshes and asks again.
   */
  check?: string;
}
export interface EngineIgnore {
  ignore: string;
  /** Commit these (RELEASE, DECLINE, an offer dropped for another server); no reply either way. */
  writes: readonly LeaseWrite[];
  /** Set by src/dhcp/commit.ts when it gave up: the claims kept losing to other servers. */
  contended?: true;
}
export type EngineDecision = EngineReply | EngineIgnore;

export const OFFER_HOLD_SECONDS = 60;
export const DECLINE_HOLD_SECONDS = 600;
const ZERO = '0.0.0.0';
const BROADCAST_FLAG = 0x8000;
const EMPTY = Buffer.alloc(0);
/** A relay chain this long is a loop (RFC 1542 4.1.1 suggests 16 as the limit). */
const MAX_HOPS = 16;
const MIN_LEASE_SECONDS = 60;
const NO_WRITES: readonly LeaseWrite[] = Object.freeze([]);
const HELD: readonly [LeaseState, LeaseState] = ['offered', 'bound'];
const OFFERED: readonly [LeaseState, LeaseState] = ['offered', 'offered'];

type Decided = Omit<EngineReply, 'writes'> | Omit<EngineIgnore, 'writes'>;

function u8(n: number): Buffer {
  return Buffer.from([n]);
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

const keyOf = leaseKey;

/** FNV-1a, 32 bits: a stable spread of node salts over a range. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Where a range's scan for never-used addresses goes on: `next`, and how many addresses it has not looked at. */
interface Cursor {
  next: number;
  left: number;
}

interface Client {
  key: string;
  mac: string;
  clientId: string | null;
}

export class LeaseEngine {
  private readonly serverIp: string;
  private readonly serverInt: number;
  private readonly subnets: Subnet[];
  private readonly boot: ProxyContext | null;
  private readonly servingNode: ServingNodeLookup | null;
  private readonly now: () => number;
  private readonly offerHold: number;
  private readonly declineHold: number;
  private readonly byIp = new Map<number, Lease>();
  private readonly byClient = new Map<string, number>();
  /** MAC -> reserved address, and the reverse. */
  private readonly reservedByMac = new Map<string, { ip: number; hostname: string | null }>();
  private readonly reservedIps = new Map<number, string>();
  /** Per range: the scan for never-used addresses (it starts at the node's offset and wraps once). */
  private readonly cursors = new Map<Subnet['ranges'][number], Cursor>();
  /** Other servers share the store (nodeSalt given): NAKs for another client's lease are checked (EngineReply.check). */
  private readonly shared: boolean;
  /** The writes of the message being handled (null: none yet). */
  private out: LeaseWrite[] | null = null;

  constructor(o: LeaseEngineOptions) {
    this.serverIp = o.serverIp;
    this.serverInt = ipToInt(o.serverIp);
    this.subnets = buildSubnets(o.pools, o.options ?? []);
    this.boot = o.boot;
    this.servingNode = o.servingNode ?? null;
    this.now = o.now ?? Date.now;
    this.offerHold = (o.offerHoldSeconds ?? OFFER_HOLD_SECONDS) * 1000;
    this.declineHold = (o.declineHoldSeconds ?? DECLINE_HOLD_SECONDS) * 1000;
    this.setReservations(o.reservations ?? []);
    for (const l of o.leases ?? []) this.index(ipToInt(l.ip), { ...l });
    const salt = o.nodeSalt ?? null;
    this.shared = salt !== null;
    for (const s of this.subnets) {
      for (const r of s.ranges) {
        const size = r.end - r.start + 1;
        const offset = salt === null || size <= 0 ? 0 : fnv1a(`${salt}/${r.start}`) % size;
        this.cursors.set(r, { next: r.start + offset, left: Math.max(size, 0) });
      }
    }
  }

  /**
   * Put a row into the index. The row found by client is its running
   * binding, else its running offer, else its newest row: with several
   * servers a client can have two (both answered its DISCOVER through a
   * relay; it took B's offer, and A's, dropped when the REQUEST for B came,
   * is the newer row), and its next DISCOVER must get the address it holds.
   */
  private index(ip: number, l: Lease): void {
    this.byIp.set(ip, l);
    if (l.state === 'declined') return;
    const k = keyOf(l);
    const cur = this.byClient.get(k);
    const held = cur === undefined ? undefined : this.byIp.get(cur);
    if (cur === ip || !held || keyOf(held) !== k) {
      this.byClient.set(k, ip);
      return;
    }
    const now = this.now();
    const rank = (x: Readonly<Lease>): number => (!this.active(x, now) ? 0 : x.state === 'bound' ? 2 : 1);
    const [a, b] = [rank(l), rank(held)];
    if (a > b || (a === b && held.updatedAt <= l.updatedAt)) this.byClient.set(k, ip);
  }

  /**
   * Replace what the index knows of one address with the store's row (null:
   * no row), after a write of ours lost to another server sharing the store.
   */
  refresh(ipText: string, row: Readonly<Lease> | null): void {
    const ip = ipToInt(ipText);
    const old = this.byIp.get(ip);
    if (old) {
      const k = keyOf(old);
      if (this.byClient.get(k) === ip) this.byClient.delete(k);
    }
    if (row === null) this.byIp.delete(ip);
    else this.index(ip, { ...row });
  }

  /** The client key of a request (its client identifier, else its MAC), or null when it is no Ethernet BOOTREQUEST. */
  clientKeyOf(req: DhcpPacket): string | null {
    if (req.op !== BOOTREQUEST || req.htype !== 1 || req.hlen !== 6) return null;
    const cid = clientIdentifier(req);
    return clientKey(hardwareAddress(req), cid && cid.length > 0 ? cid.toString('hex') : null);
  }

  /** Whether the store's row (null: none) says something else of this address than the index. */
  stale(ipText: string, row: Readonly<Lease> | null): boolean {
    const l = this.byIp.get(ipToInt(ipText));
    if (!l || !row) return !l !== !row;
    return l.state !== row.state || l.expiresAt !== row.expiresAt || l.updatedAt !== row.updatedAt || keyOf(l) !== keyOf(row);
  }

  private emit(w: LeaseWrite): void {
    if (this.out === null) this.out = [w];
    else this.out.push(w);
  }

  /**
   * Replace every reservation (at start, and when hosts change at run time).
   * The first reservation of a MAC or of an address wins; later ones that
   * clash with it are skipped and returned. A lease another client holds on
   * a newly reserved address is not revoked: that client is NAKed at its
   * next renewal, and the reserved MAC gets the address once it is free.
   */
  setReservations(list: readonly Reservation[]): Reservation[] {
    this.reservedByMac.clear();
    this.reservedIps.clear();
    const skipped: Reservation[] = [];
    for (const r of list) {
      const ip = ipToInt(r.ip);
      const mac = r.mac.toLowerCase();
      if (this.reservedByMac.has(mac) || this.reservedIps.has(ip)) {
        skipped.push(r);
        continue;
      }
      this.reservedByMac.set(mac, { ip, hostname: r.hostname });
      this.reservedIps.set(ip, mac);
    }
    return skipped;
  }

  /** How many reservations are in force. */
  reservationCount(): number {
    return this.reservedByMac.size;
  }

  /** Every lease record, by address. */
  leases(): Lease[] {
    return [...this.byIp.entries()].sort((a, b) => a[0] - b[0]).map(([, l]) => ({ ...l }));
  }

  /** The subnets served ("10.0.0.0/24"), for logs. */
  subnetLabels(): string[] {
    return this.subnets.map((s) => s.label);
  }

  /**
   * Mark offers and leases past their end as expired in the index. Returns
   * the writes to commit (each one independent: a lost one only needs a
   * refresh of its address).
   */
  reclaim(): LeaseWrite[] {
    const now = this.now();
    const writes: LeaseWrite[] = [];
    for (const l of this.byIp.values()) {
      if ((l.state === 'offered' || l.state === 'bound' || l.state === 'declined') && l.expiresAt <= now) {
        if (l.state === 'declined') l.mac = '';
        l.state = 'expired';
        l.updatedAt = now;
        writes.push({ kind: 'reclaim', lease: { ...l } });
      }
    }
    return writes;
  }

  /**
   * Decide the answer to one request that arrived on the DHCP port, against
   * the index (updated as if the writes succeed), with the writes to commit
   * before anything is sent (src/dhcp/commit.ts does that, and refreshes and
   * asks again when one loses). Throws DhcpDecodeError only when an option we
   * must read is malformed.
   */
  handle(req: DhcpPacket, arrival: { address: string; port: number }): EngineDecision {
    this.out = null;
    const d = this.decide(req, arrival);
    const r = d as Decided & { writes: readonly LeaseWrite[] };
    r.writes = this.out ?? NO_WRITES;
    this.out = null;
    return r;
  }

  private decide(req: DhcpPacket, arrival: { address: string; port: number }): Decided {
    if (req.op !== BOOTREQUEST) return { ignore: `op ${req.op} is not a BOOTREQUEST` };
    if (req.htype !== 1 || req.hlen !== 6) return { ignore: `hardware type ${req.htype}/length ${req.hlen} is not Ethernet` };
    if (req.hops > MAX_HOPS) return { ignore: `hops ${req.hops} > ${MAX_HOPS}: a relay loop` };
    const mt = messageType(req);
    if (mt === undefined) return { ignore: 'plain BOOTP (no option 53) is not served' };
    const cid = clientIdentifier(req);
    const mac = hardwareAddress(req);
    const clientId = cid && cid.length > 0 ? cid.toString('hex') : null;
    const client: Client = { mac, clientId, key: clientKey(mac, clientId) };
    switch (mt) {
      case MessageType.DISCOVER:
        return this.discover(req, client);
      case MessageType.REQUEST:
        return this.request(req, client);
      case MessageType.DECLINE:
        return this.decline(req, client);
      case MessageType.RELEASE:
        return this.release(req, client);
      case MessageType.INFORM:
        return this.inform(req, arrival);
      default:
        return { ignore: `${messageTypeName(mt)} is not a client message` };
    }
  }

  // ---- subnet and address rules ----

  /** The client's subnet: giaddr, else ciaddr (when given), else ours. */
  private subnetFor(req: DhcpPacket, useCiaddr: boolean): Subnet | undefined {
    if (req.giaddr !== ZERO) return subnetContaining(this.subnets, ipToInt(req.giaddr));
    if (useCiaddr && req.ciaddr !== ZERO) return subnetContaining(this.subnets, ipToInt(req.ciaddr));
    return subnetContaining(this.subnets, this.serverInt);
  }

  private inRange(s: Subnet, ip: number): boolean {
    return s.ranges.some((r) => ip >= r.start && ip <= r.end);
  }

  /** May this address go to this client on this subnet (ignoring current leases)? */
  private usable(s: Subnet, ip: number, c: Client): boolean {
    if (((ip & s.mask) >>> 0) !== s.network || ip === s.network || ip === s.broadcast || ip === this.serverInt) return false;
    const owner = this.reservedIps.get(ip);
    if (owner !== undefined) return owner === c.mac;
    if (!this.inRange(s, ip)) return false;
    return !s.excluded.some((r) => ip >= r.start && ip <= r.end);
  }

  private active(l: Readonly<Lease>, now: number): boolean {
    return (l.state === 'offered' || l.state === 'bound' || l.state === 'declined') && l.expiresAt > now;
  }

  /** Not held by anyone else right now. */
  private freeFor(ip: number, c: Client, now: number): boolean {
    const l = this.byIp.get(ip);
    return !l || !this.active(l, now) || keyOf(l) === c.key;
  }

  private allocate(s: Subnet, c: Client, req: DhcpPacket, now: number): number | undefined {
    const res = this.reservedByMac.get(c.mac);
    if (res && ((res.ip & s.mask) >>> 0) === s.network && this.freeFor(res.ip, c, now)) return res.ip;
    const mine = this.byClient.get(c.key);
    if (mine !== undefined && this.usable(s, mine, c) && this.freeFor(mine, c, now) && !(res && mine !== res.ip && this.reservedIps.has(mine))) return mine;
    const wanted = requestedIp(req);
    if (wanted !== undefined) {
      const w = ipToInt(wanted);
      if (this.usable(s, w, c) && this.freeFor(w, c, now)) return w;
    }
    // Never-used addresses first, so expired leases keep their owners as long as possible.
    // The cursor stays on the address it returns: once leased, it is in byIp and passed over.
    for (const r of s.ranges) {
      const cur = this.cursors.get(r);
      if (!cur) continue;
      while (cur.left > 0) {
        const ip = cur.next;
        if (!this.byIp.has(ip) && this.usable(s, ip, c)) return ip;
        cur.next = ip === r.end ? r.start : ip + 1;
        cur.left--;
      }
    }
    let best: number | undefined;
    let bestAt = Infinity;
    for (const [ip, l] of this.byIp) {
      if (!this.active(l, now) && l.expiresAt < bestAt && this.usable(s, ip, c)) {
        best = ip;
        bestAt = l.expiresAt;
      }
    }
    return best;
  }

  /**
   * Record `ip` as this client's in the index, and ask for the claim (first)
   * and the end of the client's previous lease (second).
   */
  private commit(ip: number, c: Client, state: LeaseState, expiresAt: number, hostname: string | null, now: number): Lease {
    const old = this.byIp.get(ip);
    if (old && keyOf(old) !== c.key && this.byClient.get(keyOf(old)) === ip) this.byClient.delete(keyOf(old));
    const lease: Lease = { ip: intToIp(ip), mac: c.mac, clientId: c.clientId, state, expiresAt, hostname: hostname ?? old?.hostname ?? null, updatedAt: now };
    this.emit({ kind: 'claim', lease });
    const prevIp = this.byClient.get(c.key);
    if (prevIp !== undefined && prevIp !== ip) {
      const prev = this.byIp.get(prevIp);
      if (prev && keyOf(prev) === c.key && this.active(prev, now)) {
        prev.state = 'expired';
        prev.expiresAt = now;
        prev.updatedAt = now;
        this.emit({ kind: 'end', lease: { ...prev }, owner: c.key, from: HELD });
      }
    }
    this.byIp.set(ip, lease);
    this.byClient.set(c.key, ip);
    return lease;
  }

  private leaseSeconds(s: Subnet, req: DhcpPacket): number {
    const asked = leaseTime(req);
    // A client may ask for less (RFC 2131 4.3.1), never for more than the pool gives.
    return asked !== undefined && asked >= MIN_LEASE_SECONDS && asked < s.leaseSeconds ? asked : s.leaseSeconds;
  }

  // ---- messages ----

  private discover(req: DhcpPacket, c: Client): Decided {
    const s = this.subnetFor(req, false);
    if (!s) return { ignore: req.giaddr !== ZERO ? `relay ${req.giaddr} is on no subnet of ours` : `no pool on the server's subnet (${this.serverIp})` };
    const now = this.now();
    const ip = this.allocate(s, c, req, now);
    if (ip === undefined) return { ignore: `no free address in ${s.label}` };
    const cur = this.byIp.get(ip);
    const seconds = this.leaseSeconds(s, req);
    // A client with a running lease keeps it bound (an OFFER never shortens a lease);
    // the row is claimed unchanged, which checks that no other server took it meanwhile.
    if (cur && keyOf(cur) === c.key && cur.state === 'bound' && this.active(cur, now)) this.emit({ kind: 'claim', lease: cur });
    else this.commit(ip, c, 'offered', now + this.offerHold, hostName(req), now);
    return this.answer(req, s, MessageType.OFFER, ip, seconds, 'offered');
  }

  private request(req: DhcpPacket, c: Client): Decided {
    const now = this.now();
    const sid = serverIdentifier(req);
    const wanted = requestedIp(req);
    if (sid !== undefined && sid !== this.serverIp) {
      // Selecting another server's offer: ours is free again. Unless it is the same address:
      // then the other server shares our store and its ACK takes the row over.
      const mine = this.byClient.get(c.key);
      const l = mine === undefined ? undefined : this.byIp.get(mine);
      if (l && l.state === 'offered' && keyOf(l) === c.key && l.ip !== wanted) {
        l.state = 'expired';
        l.expiresAt = now;
        l.updatedAt = now;
        this.emit({ kind: 'end', lease: { ...l }, owner: c.key, from: OFFERED });
      }
      return { ignore: `client selected server ${sid}` };
    }
    let ipText: string;
    let kind: string;
    if (sid !== undefined) {
      if (wanted === undefined) return { ignore: 'selecting REQUEST without option 50' };
      ipText = wanted;
      kind = 'selecting';
    } else if (wanted !== undefined) {
      ipText = wanted;
      kind = 'init-reboot';
    } else if (req.ciaddr !== ZERO) {
      ipText = req.ciaddr;
      kind = req.giaddr !== ZERO ? 'rebinding' : 'renewing';
    } else {
      return { ignore: 'REQUEST with neither option 50 nor ciaddr' };
    }
    const s = this.subnetFor(req, kind === 'renewing' || kind === 'rebinding');
    if (!s) return { ignore: `${kind} REQUEST for ${ipText} from a subnet that is not ours` };
    const ip = ipToInt(ipText);
    if (((ip & s.mask) >>> 0) !== s.network) return this.nak(req, `${ipText} is not on the client's subnet ${s.label}`);
    const res = this.reservedByMac.get(c.mac);
    if (res && ((res.ip & s.mask) >>> 0) === s.network && res.ip !== ip) return this.nak(req, `${c.mac} is reserved ${intToIp(res.ip)}`);
    const l = this.byIp.get(ip);
    const own = l !== undefined && keyOf(l) === c.key;
    if (kind === 'selecting' && !(own && (l.state === 'offered' || l.state === 'bound'))) {
      // Our offer may have run out while the client thought; it can still have the address if nobody took it.
      if (!this.usable(s, ip, c)) return this.nak(req, `${ipText} was not offered to this client`);
      if (!this.freeFor(ip, c, now)) return this.nak(req, `${ipText} was not offered to this client`, ipText);
    } else if (!own || l.state === 'expired' || l.state === 'released' || !this.usable(s, ip, c)) {
      if (!this.usable(s, ip, c)) return this.nak(req, `${ipText} is not an address this client may have`);
      if (!this.freeFor(ip, c, now)) return this.nak(req, `${ipText} is leased to another client`, ipText);
    }
    const seconds = this.leaseSeconds(s, req);
    this.commit(ip, c, 'bound', now + seconds * 1000, hostName(req), now);
    return this.answer(req, s, MessageType.ACK, ip, seconds, kind);
  }

  private decline(req: DhcpPacket, c: Client): Decided {
    const sid = serverIdentifier(req);
    if (sid !== undefined && sid !== this.serverIp) return { ignore: `DECLINE for server ${sid}` };
    const wanted = requestedIp(req);
    if (wanted === undefined) return { ignore: 'DECLINE without option 50' };
    const ip = ipToInt(wanted);
    const l = this.byIp.get(ip);
    if (!l || keyOf(l) !== c.key) return { ignore: `DECLINE of ${wanted}, which is not this client's` };
    const now = this.now();
    this.byClient.delete(c.key);
    const d: Lease = { ip: wanted, mac: '', clientId: null, state: 'declined', expiresAt: now + this.declineHold, hostname: null, updatedAt: now };
    this.emit({ kind: 'decline', lease: d, owner: c.key });
    this.byIp.set(ip, d);
    return { ignore: `DECLINE: ${wanted} is in use by someone else; set aside for ${this.declineHold / 1000} s` };
  }

  private release(req: DhcpPacket, c: Client): Decided {
    const sid = serverIdentifier(req);
    if (sid !== undefined && sid !== this.serverIp) return { ignore: `RELEASE for server ${sid}` };
    if (req.ciaddr === ZERO) return { ignore: 'RELEASE without ciaddr' };
    const ip = ipToInt(req.ciaddr);
    const l = this.byIp.get(ip);
    if (!l || keyOf(l) !== c.key) return { ignore: `RELEASE of ${req.ciaddr}, which is not this client's` };
    if (l.state !== 'offered' && l.state !== 'bound') return { ignore: `RELEASE of ${req.ciaddr}, which this client no longer holds (${l.state})` };
    const now = this.now();
    l.state = 'released';
    l.expiresAt = now;
    l.updatedAt = now;
    this.emit({ kind: 'end', lease: { ...l }, owner: c.key, from: HELD });
    return { ignore: `RELEASE: ${req.ciaddr} released` };
  }

  private inform(req: DhcpPacket, arrival: { address: string; port: number }): Decided {
    const s = this.subnetFor(req, true);
    if (!s) return { ignore: `INFORM from ${req.ciaddr} on a subnet that is not ours` };
    return this.answer(req, s, MessageType.ACK, null, 0, 'inform', arrival.address);
  }

  // ---- replies ----

  /** A NAK; `held`: the address another client holds by the index (checked when the store is shared). */
  private nak(req: DhcpPacket, reason: string, held?: string): Omit<EngineReply, 'writes'> {
    const options: DhcpOption[] = [
      { code: Opt.MESSAGE_TYPE, data: u8(MessageType.NAK) },
      { code: Opt.SERVER_ID, data: ipBuffer(this.serverIp) },
      { code: Opt.MESSAGE, data: Buffer.from(reason.slice(0, 200), 'latin1') },
    ];
    const relay = getOption(req, Opt.RELAY_AGENT_INFO);
    if (relay) options.push({ code: Opt.RELAY_AGENT_INFO, data: Buffer.from(relay) });
    const reply = createPacket({
      op: BOOTREPLY,
      htype: req.htype,
      hlen: req.hlen,
      xid: req.xid,
      // RFC 2131 4.3.2: a NAK through a relay has the broadcast bit set, so the relay broadcasts it.
      flags: req.giaddr !== ZERO ? req.flags | BROADCAST_FLAG : req.flags,
      giaddr: req.giaddr,
      chaddr: Buffer.from(req.chaddr),
      options,
      trailer: EMPTY,
    });
    const to: Destination = req.giaddr !== ZERO ? { address: req.giaddr, port: 67, kind: 'relay' } : { address: '255.255.255.255', port: 68, kind: 'broadcast' };
    const r: Omit<EngineReply, 'writes'> = { reply, to, step: 'REQUEST -> NAK', ip: null, reason, firmware: null };
    if (held !== undefined && this.shared) r.check = held;
    return r;
  }

  private answer(req: DhcpPacket, s: Subnet, type: number, ip: number | null, seconds: number, kind: string, informFrom?: string): Omit<EngineReply, 'writes'> {
    const options: DhcpOption[] = [
      { code: Opt.MESSAGE_TYPE, data: u8(type) },
      { code: Opt.SERVER_ID, data: ipBuffer(this.serverIp) },
    ];
    if (ip !== null) {
      options.push({ code: Opt.LEASE_TIME, data: u32(seconds) });
      options.push({ code: 58, data: u32(Math.floor(seconds / 2)) });
      options.push({ code: 59, data: u32(Math.floor((seconds * 7) / 8)) });
    }
    options.push(...s.options);
    let siaddr = ZERO;
    let file: Buffer = Buffer.alloc(128);
    let reason = ip !== null ? `${kind}: ${intToIp(ip)} for ${seconds} s from ${s.label}` : `inform: options for ${s.label}`;
    let firmware: FirmwareInfo | null = null;
    let bootNode: ServingNode | null = null;
    if (this.boot) {
      const f = detectFirmware(req);
      if (f.clientClass !== null) {
        firmware = f;
        // The client's subnet: the relay's, else the address it gets or has.
        const where = req.giaddr !== ZERO ? req.giaddr : ip !== null ? intToIp(ip) : req.ciaddr !== ZERO ? req.ciaddr : null;
        bootNode = where !== null && this.servingNode ? this.servingNode(where) : null;
        const ctx = withBootServer(this.boot, bootNode);
        const b = bootAnswer(req, f, ctx);
        if (typeof b === 'string') reason += `; ${b}`;
        else {
          siaddr = bootServerIp(ctx);
          file = b.fileField;
          // The boot options replace any configured ones with the same code (60, 43, 67).
          const codes = new Set(b.options.map((o) => o.code));
          for (let i = options.length - 1; i >= 0; i--) if (codes.has((options[i] as DhcpOption).code)) options.splice(i, 1);
          options.push(...b.options);
          reason += `; ${b.reason}`;
        }
      }
    }
    // RFC 3046 2.2: the relay agent information comes back unchanged, last.
    const relay = getOption(req, Opt.RELAY_AGENT_INFO);
    if (relay) options.push({ code: Opt.RELAY_AGENT_INFO, data: Buffer.from(relay) });

    const renewing = req.ciaddr !== ZERO && req.giaddr === ZERO;
    let to: Destination;
    if (req.giaddr !== ZERO) to = { address: req.giaddr, port: 67, kind: 'relay' };
    else if (ip === null) to = { address: req.ciaddr !== ZERO ? req.ciaddr : (informFrom ?? '255.255.255.255'), port: 68, kind: req.ciaddr !== ZERO || informFrom ? 'unicast' : 'broadcast' };
    else if (renewing) to = { address: req.ciaddr, port: 68, kind: 'unicast' };
    // A client without an address cannot be reached by unicast without an ARP entry,
    // which Node cannot add: broadcast, as RFC 2131 4.1 allows.
    else to = { address: '255.255.255.255', port: 68, kind: 'broadcast' };

    const reply = createPacket({
      op: BOOTREPLY,
      htype: req.htype,
      hlen: req.hlen,
      xid: req.xid,
      flags: req.flags,
      ciaddr: req.ciaddr,
      yiaddr: ip === null ? ZERO : intToIp(ip),
      siaddr,
      giaddr: req.giaddr,
      chaddr: Buffer.from(req.chaddr),
      file,
      options,
      trailer: EMPTY,
    });
    const reqName = messageTypeName(messageType(req));
    return { reply, to, step: `${reqName} -> ${messageTypeName(type)}`, ip: ip === null ? null : intToIp(ip), reason, firmware, ...(bootNode ? { bootNode } : {}) };
  }
}

function hostName(req: DhcpPacket): string | null {
  const h = getOption(req, Opt.HOST_NAME);
  if (!h || h.length === 0) return null;
  const s = h.toString('latin1').replace(/\0+$/, '');
  return /^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(s) ? s : null;
}
