/** Multicast addresses and settings: pure checks shared by the config, the API and the CLI. */
import { IPV4_PATTERN } from './validate.js';

const IPV4 = new RegExp(IPV4_PATTERN);

function ipv4ToNumber(address: string): number {
  if (!IPV4.test(address)) return NaN;
  return address.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

/** Why `address` cannot carry a session (null when it can): IPv4 224.0.0.0/4, outside 224.0.0.0/24 (link-local control: routers, IGMP). */
export function multicastAddressProblem(address: string): string | null {
  const n = ipv4ToNumber(address);
  if (Number.isNaN(n)) return `expected an IPv4 multicast address such as 239.255.42.1, got ${JSON.stringify(address)}`;
  if (n >>> 28 !== 0xe) return `${address} is not a multicast address (expected 224.0.0.0 to 239.255.255.255)`;
  if (n >>> 8 === 0xe00000) return `${address} is in 224.0.0.0/24, reserved for routing protocols and IGMP on the local segment`;
  return null;
}

/**
 * True when a group's MAC address (its low 23 bits) is that of a 224.0.0.x
 * group: switches flood those to every port whatever IGMP snooping says
 * (x.0.0.y and x.128.0.y for every first octet 224-239).
 */
export function aliasesLinkLocal(address: string): boolean {
  const n = ipv4ToNumber(address);
  return !Number.isNaN(n) && (n & 0x7fff00) === 0;
}

/**
 * The first group address and port of the configured ranges that no running
 * session holds, skipping addresses that alias 224.0.0.x: sessions on
 * different addresses may share a port (receivers bind the group address),
 * so addresses are used up first. `network`/`prefix` describe the address
 * range (a subnet of 224.0.0.0/4).
 */
export function pickEndpoint(
  range: { network: number; prefix: number },
  ports: { from: number; to: number },
  used: ReadonlyArray<{ address: string; port: number }>,
): { address: string; port: number } | null {
  const taken = new Set(used.map((u) => `${u.address}:${u.port}`));
  const size = 2 ** (32 - range.prefix);
  for (let port = ports.from; port <= ports.to; port++) {
    for (let i = 0; i < size; i++) {
      const n = (range.network + i) >>> 0;
      const address = `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
      if (aliasesLinkLocal(address) || multicastAddressProblem(address) !== null) continue;
      if (!taken.has(`${address}:${port}`)) return { address, port };
    }
  }
  return null;
}

/** "64001-65000" or "9000" -> { from, to }; null when it is not such a range of ports 1-65535. */
export function parseMulticastPorts(s: string): { from: number; to: number } | null {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(s.trim());
  if (!m) return null;
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  return from >= 1 && to <= 65535 && from <= to ? { from, to } : null;
}

/** The highest rate ceiling a session takes, Mbit/s (also multicast.maxRateMbps's upper bound). */
export const MAX_RATE_MBPS = 100_000;
