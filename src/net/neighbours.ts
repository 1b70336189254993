/**
 * Which MAC the server's own network stack knows for an IPv4 address: the
 * kernel's neighbour (ARP) table, /proc/net/arp of the server's network
 * namespace. A client on the same segment that has just opened a TCP
 * connection to us is in it (the kernel resolved it to answer), so a boot
 * request claiming another MAC than the one its address resolves to did not
 * come from that machine. Behind a router the entry is the router's; the
 * caller only compares for addresses on its own segments, and treats "not
 * found" as "cannot tell".
 */
import { readFile } from 'node:fs/promises';

const FLAG_COMPLETE = 0x2;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Parse /proc/net/arp: complete entries only, address -> lower-case MAC. */
export function parseArpTable(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6) continue;
    const [ip, , flags, mac] = f as [string, string, string, string];
    const mac2 = mac.toLowerCase();
    if ((Number.parseInt(flags, 16) & FLAG_COMPLETE) === 0 || !MAC_RE.test(mac2) || mac2 === '00:00:00:00:00:00') continue;
    out.set(ip, mac2);
  }
  return out;
}

/** The MAC of `ip` in the neighbour table, or null (not there, not IPv4, table unreadable). */
export async function neighbourMac(ip: string, file = '/proc/net/arp'): Promise<string | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return null;
  }
  return parseArpTable(text).get(ip) ?? null;
}
