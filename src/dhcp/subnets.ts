/**
 * Address pools grouped by subnet, built once from the configuration: the
 * integer forms, exclusions and the options every reply on that subnet
 * carries (1 mask, 28 broadcast, 3 router, 6 DNS, 15 domain, 42 NTP, 26 MTU,
 * then the configured code/value options: the pool's own override the
 * global ones of the same code). Pure, no I/O.
 */
import type { DhcpOption } from '../protocol/dhcp/packet.js';
import { ipToInt } from '../protocol/dhcp/packet.js';
import { IPV4_PATTERN } from '../model/validate.js';
import { parseOptionValue } from './option-values.js';

export interface OptionSetting {
  code: number;
  value: string;
}

/** One `dhcp.pools` entry (config.ts holds the defaults and validation). */
export interface PoolSettings {
  start: string;
  end: string;
  netmask: string;
  leaseSeconds: number;
  router: string | null;
  dns: readonly string[];
  domain: string | null;
  ntp: readonly string[];
  broadcast: string | null;
  mtu: number | null;
  /** Addresses ("10.0.0.7") or ranges ("10.0.0.20-10.0.0.29") never handed out. */
  exclude: readonly string[];
  options: readonly OptionSetting[];
}

export interface Range {
  start: number;
  end: number;
}

export interface Subnet {
  /** "10.0.0.0/24", for logs. */
  label: string;
  network: number;
  mask: number;
  broadcast: number;
  /** Dynamic ranges (several pools may share one subnet). */
  ranges: Range[];
  excluded: Range[];
  leaseSeconds: number;
  /** The options every reply on this subnet carries, in wire order. */
  options: DhcpOption[];
}

export function intToIp(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function ipBuffer(...ips: string[]): Buffer {
  const b = Buffer.alloc(4 * ips.length);
  ips.forEach((ip, i) => b.writeUInt32BE(ipToInt(ip), 4 * i));
  return b;
}

/** Prefix length of a contiguous netmask, or -1. */
export function maskPrefix(mask: number): number {
  const inv = ~mask >>> 0;
  if ((inv & (inv + 1)) !== 0) return -1;
  let n = 0;
  for (let m = mask >>> 0; m & 0x80000000; m = (m << 1) >>> 0) n++;
  return n;
}

export function parseExclusion(s: string): Range {
  const [a, b] = s.split('-').map((x) => x.trim());
  if (a === undefined) throw new RangeError(`exclusion ${JSON.stringify(s)} is empty`);
  const start = ipToInt(a);
  const end = b === undefined ? start : ipToInt(b);
  if (end < start) throw new RangeError(`exclusion ${JSON.stringify(s)} ends before it starts`);
  return { start, end };
}

/**
 * Group pools into subnets (same network and mask) and precompute their
 * options. Throws RangeError/TypeError for values config validation would
 * have refused (the engine is usable without config.ts, e.g. in tests).
 */
export function buildSubnets(pools: readonly PoolSettings[], globalOptions: readonly OptionSetting[]): Subnet[] {
  const out: Subnet[] = [];
  for (const p of pools) {
    const mask = ipToInt(p.netmask);
    const prefix = maskPrefix(mask);
    if (prefix < 1 || prefix > 30) throw new RangeError(`netmask ${p.netmask} is not a contiguous mask of /1 to /30`);
    const start = ipToInt(p.start);
    const end = ipToInt(p.end);
    const network = (start & mask) >>> 0;
    if (end < start || ((end & mask) >>> 0) !== network) throw new RangeError(`pool ${p.start}-${p.end} is not one range inside ${intToIp(network)}/${prefix}`);
    const broadcast = (network | ~mask) >>> 0;
    const range = { start: Math.max(start, network + 1), end: Math.min(end, broadcast - 1) };
    const existing = out.find((s) => s.network === network && s.mask === mask);
    if (existing) {
      existing.ranges.push(range);
      existing.excluded.push(...p.exclude.map(parseExclusion));
      continue;
    }
    const byCode = new Map<number, Buffer>();
    byCode.set(1, ipBuffer(p.netmask));
    byCode.set(28, ipBuffer(p.broadcast ?? intToIp(broadcast)));
    if (p.router) byCode.set(3, ipBuffer(p.router));
    if (p.dns.length) byCode.set(6, ipBuffer(...p.dns));
    if (p.domain) byCode.set(15, Buffer.from(p.domain, 'utf8'));
    if (p.ntp.length) byCode.set(42, ipBuffer(...p.ntp));
    if (p.mtu !== null) {
      const b = Buffer.alloc(2);
      b.writeUInt16BE(p.mtu);
      byCode.set(26, b);
    }
    // Global options apply to every subnet, except a mask (each pool has its own).
    for (const o of globalOptions) if (o.code !== 1) byCode.set(o.code, parseOptionValue(o.code, o.value));
    // The pool's own fields win over the global list for the same code.
    if (p.router) byCode.set(3, ipBuffer(p.router));
    if (p.dns.length) byCode.set(6, ipBuffer(...p.dns));
    if (p.domain) byCode.set(15, Buffer.from(p.domain, 'utf8'));
    if (p.ntp.length) byCode.set(42, ipBuffer(...p.ntp));
    for (const o of p.options) byCode.set(o.code, parseOptionValue(o.code, o.value));
    out.push({
      label: `${intToIp(network)}/${prefix}`,
      network,
      mask,
      broadcast,
      ranges: [range],
      excluded: p.exclude.map(parseExclusion),
      leaseSeconds: p.leaseSeconds,
      options: [...byCode].map(([code, data]) => ({ code, data })),
    });
  }
  return out;
}

/** An IPv4 subnet: network, mask and broadcast as integers, and "10.1.2.0/24". */
export interface Cidr {
  label: string;
  network: number;
  prefix: number;
  mask: number;
  broadcast: number;
}

const DOTTED = new RegExp(IPV4_PATTERN);

/** The subnet of `ip` with a prefix length (1-30: a /31 or /32 has no broadcast address). */
export function subnetOf(ip: number, prefix: number): Cidr {
  if (!Number.isInteger(prefix) || prefix < 1 || prefix > 30) throw new RangeError(`prefix length ${prefix} is not 1-30`);
  const mask = (0xffffffff << (32 - prefix)) >>> 0;
  const network = (ip & mask) >>> 0;
  return { label: `${intToIp(network)}/${prefix}`, network, prefix, mask, broadcast: (network | ~mask) >>> 0 };
}

/** "10.1.2.0/24" (any address inside with its prefix) -> the subnet; RangeError saying what was expected. */
export function parseCidr(s: string): Cidr {
  const m = /^([0-9.]+)\/([0-9]{1,2})$/.exec(s.trim());
  if (!m || !DOTTED.test(m[1] as string)) throw new RangeError(`${JSON.stringify(s)} is not a subnet: expected ADDRESS/PREFIX such as 10.1.2.0/24`);
  return subnetOf(ipToInt(m[1] as string), Number(m[2]));
}

export function subnetContaining(subnets: readonly Subnet[], ip: number): Subnet | undefined {
  for (const s of subnets) if (((ip & s.mask) >>> 0) === s.network) return s;
  return undefined;
}
