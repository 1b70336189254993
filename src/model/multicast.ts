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
