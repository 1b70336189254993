/**
 * Where Wake-on-LAN packets go. A sleeping machine has no address and no
 * ARP entry, so a magic packet must reach its segment as a link-layer
 * broadcast:
 *
 * - on the server's own segment: the limited broadcast 255.255.255.255,
 *   sent from a socket bound to the server address so that it leaves by
 *   that interface (src/net/wol-socket.ts);
 * - on a subnet behind a router: that subnet's directed broadcast (e.g.
 *   10.1.2.255), routed like unicast up to the last router, which turns it
 *   into a link broadcast only if it is allowed to (Cisco `ip
 *   directed-broadcast` on the interface toward that subnet; Linux
 *   `net.ipv4.conf.<if>.bc_forwarding=1`; off by default since IOS 12.0).
 *
 * The subnets: the server-mode DHCP pools (dhcp.pools), wake.subnets, and
 * the relay agents the DHCP services have heard (their giaddr, with the
 * pool's or wake.subnets' prefix when one covers it, else
 * wake.relayPrefixLength). The server's own subnet is left to the limited
 * broadcast. Pure.
 */
import { ipToInt } from '../protocol/dhcp/packet.js';
import { intToIp, subnetOf, type Cidr } from '../dhcp/subnets.js';

export interface WakeTarget {
  address: string;
  port: number;
  /** Why this address: "limited broadcast (server's segment)", "subnet 10.1.2.0/24 (dhcp.pools)", ... */
  reason: string;
}

export interface WakeTargetInputs {
  serverIp: string;
  /** Prefix length of the server address's own subnet, or null when unknown. */
  serverPrefix: number | null;
  port: number;
  /** Subnets of the server-mode pools (empty in proxy mode). */
  poolSubnets: readonly Cidr[];
  /** wake.subnets. */
  extraSubnets: readonly Cidr[];
  /** Relay agents heard (giaddr). */
  relays: readonly string[];
  /** wake.relayPrefixLength. */
  relayPrefixLength: number;
}

const contains = (s: Cidr, ip: number): boolean => ((ip & s.mask) >>> 0) === s.network;

/** The targets, each address once, the limited broadcast first. */
export function wakeTargets(i: WakeTargetInputs): WakeTarget[] {
  const out: WakeTarget[] = [];
  const seen = new Set<string>();
  const add = (address: string, reason: string): void => {
    if (seen.has(address)) return;
    seen.add(address);
    out.push({ address, port: i.port, reason });
  };
  const server = ipToInt(i.serverIp);
  // A loopback server (tests) must never broadcast: its limited broadcast would leave by a real interface.
  const loopback = i.serverIp.startsWith('127.');
  if (!loopback) add('255.255.255.255', `limited broadcast (the server's segment, from ${i.serverIp})`);
  const own = i.serverPrefix !== null && i.serverPrefix >= 1 && i.serverPrefix <= 30 ? subnetOf(server, i.serverPrefix) : null;
  const covered = (s: Cidr): boolean => !loopback && (contains(s, server) || (own !== null && own.network === s.network && own.mask === s.mask));
  const listed: Array<[Cidr, string]> = [...i.poolSubnets.map((s): [Cidr, string] => [s, 'dhcp.pools']), ...i.extraSubnets.map((s): [Cidr, string] => [s, 'wake.subnets'])];
  for (const [s, from] of listed) if (!covered(s)) add(intToIp(s.broadcast), `directed broadcast of subnet ${s.label} (${from})`);
  for (const g of i.relays) {
    const ip = ipToInt(g);
    const known = listed.find(([s]) => contains(s, ip));
    if (known) continue;
    const s = subnetOf(ip, i.relayPrefixLength);
    if (!covered(s)) add(intToIp(s.broadcast), `directed broadcast of relay ${g}'s subnet ${s.label} (wake.relayPrefixLength)`);
  }
  return out;
}
