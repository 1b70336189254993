/**
 * PXE vendor options: the sub-options of option 43 when option 60 is
 * "PXEClient" (PXE specification 2.1, section 2.2.5).
 *
 *   6  discovery control (bit 0: no broadcast discovery, bit 1: no multicast,
 *      bit 2: only servers from sub-option 8, bit 3: use the boot file name in
 *      the packet, no menu or discovery)
 *   8  boot servers: repeated { type u16, count u8, count x IPv4 }
 *   9  boot menu: repeated { type u16, length u8, description }
 *   10 menu prompt: { timeout u8 (0 = no prompt, 255 = wait for a key), text }
 *   71 boot item: { type u16, layer u16 } (type 0 = local boot)
 *
 * Other sub-options are kept raw in `other`.
 */
import { DhcpDecodeError } from './errors.js';
import { decodeSubOptions, encodeSubOptions, type SubOption } from './options.js';

export const PxeSub = {
  DISCOVERY_CONTROL: 6,
  BOOT_SERVERS: 8,
  BOOT_MENU: 9,
  MENU_PROMPT: 10,
  BOOT_ITEM: 71,
} as const;

export const DiscoveryControl = {
  NO_BROADCAST: 1,
  NO_MULTICAST: 2,
  ONLY_LISTED_SERVERS: 4,
  USE_BOOT_FILE: 8,
} as const;

/** Boot server / menu item type 0 means "boot from local disk" (PXE 2.1 table 2-1). */
export const PXE_TYPE_LOCAL_BOOT = 0;

export interface PxeBootServer {
  type: number;
  addresses: string[];
}
export interface PxeMenuItem {
  type: number;
  description: string;
}
export interface PxeMenuPrompt {
  timeout: number;
  prompt: string;
}
export interface PxeBootItem {
  type: number;
  layer: number;
}

export interface PxeVendorOptions {
  discoveryControl?: number;
  bootServers?: PxeBootServer[];
  bootMenu?: PxeMenuItem[];
  menuPrompt?: PxeMenuPrompt;
  bootItem?: PxeBootItem;
  /** Sub-options not listed above, in order. */
  other: SubOption[];
}

function fail(msg: string): never {
  throw new DhcpDecodeError(`option 43 (PXE) ${msg}`, 0);
}

/** Decode option 43's PXE sub-options. Throws DhcpDecodeError on malformed contents. */
export function decodePxeOptions(data: Buffer): PxeVendorOptions {
  const out: PxeVendorOptions = { other: [] };
  for (const s of decodeSubOptions(43, data)) {
    const d = s.data;
    switch (s.code) {
      case PxeSub.DISCOVERY_CONTROL:
        if (d.length !== 1) fail(`sub-option 6 (discovery control) must be 1 byte, got ${d.length}`);
        out.discoveryControl = d[0] as number;
        break;
      case PxeSub.BOOT_SERVERS: {
        const servers: PxeBootServer[] = [];
        let i = 0;
        while (i < d.length) {
          if (i + 3 > d.length) fail(`sub-option 8 (boot servers) entry at ${i} is truncated`);
          const type = d.readUInt16BE(i);
          const count = d[i + 2] as number;
          if (i + 3 + 4 * count > d.length) fail(`sub-option 8 (boot servers) entry at ${i} lists ${count} address(es) but only ${d.length - i - 3} bytes remain`);
          const addresses: string[] = [];
          for (let k = 0; k < count; k++) {
            const a = i + 3 + 4 * k;
            addresses.push(`${d[a]}.${d[a + 1]}.${d[a + 2]}.${d[a + 3]}`);
          }
          servers.push({ type, addresses });
          i += 3 + 4 * count;
        }
        out.bootServers = servers;
        break;
      }
      case PxeSub.BOOT_MENU: {
        const items: PxeMenuItem[] = [];
        let i = 0;
        while (i < d.length) {
          if (i + 3 > d.length) fail(`sub-option 9 (boot menu) entry at ${i} is truncated`);
          const n = d[i + 2] as number;
          if (i + 3 + n > d.length) fail(`sub-option 9 (boot menu) entry at ${i} declares ${n} bytes but only ${d.length - i - 3} remain`);
          items.push({ type: d.readUInt16BE(i), description: d.toString('latin1', i + 3, i + 3 + n) });
          i += 3 + n;
        }
        out.bootMenu = items;
        break;
      }
      case PxeSub.MENU_PROMPT:
        if (d.length < 1) fail('sub-option 10 (menu prompt) is empty');
        out.menuPrompt = { timeout: d[0] as number, prompt: d.toString('latin1', 1) };
        break;
      case PxeSub.BOOT_ITEM:
        if (d.length !== 4) fail(`sub-option 71 (boot item) must be 4 bytes, got ${d.length}`);
        out.bootItem = { type: d.readUInt16BE(0), layer: d.readUInt16BE(2) };
        break;
      default:
        out.other.push(s);
    }
  }
  return out;
}

function ipBytes(ip: string): number[] {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) throw new TypeError(`Not an IPv4 address: ${ip}`);
  return parts;
}

/**
 * Encode PXE sub-options in the order 6, 8, 9, 10, 71, then `other`, with a
 * closing END (255) as the PXE spec shows and dnsmasq sends. The whole option
 * must fit 255 bytes (one option 43); a bigger menu throws RangeError.
 */
export function encodePxeOptions(o: Omit<PxeVendorOptions, 'other'> & { other?: SubOption[] }): Buffer {
  const subs: SubOption[] = [];
  if (o.discoveryControl !== undefined) subs.push({ code: PxeSub.DISCOVERY_CONTROL, data: Buffer.from([o.discoveryControl & 0xff]) });
  if (o.bootServers) {
    const bytes: number[] = [];
    for (const s of o.bootServers) {
      bytes.push(s.type >> 8, s.type & 0xff, s.addresses.length);
      for (const a of s.addresses) bytes.push(...ipBytes(a));
    }
    subs.push({ code: PxeSub.BOOT_SERVERS, data: Buffer.from(bytes) });
  }
  if (o.bootMenu) {
    const parts: Buffer[] = [];
    for (const m of o.bootMenu) {
      const t = Buffer.from(m.description, 'latin1');
      if (t.length > 255) throw new RangeError(`PXE menu item '${m.description}' is longer than 255 bytes`);
      parts.push(Buffer.from([m.type >> 8, m.type & 0xff, t.length]), t);
    }
    subs.push({ code: PxeSub.BOOT_MENU, data: Buffer.concat(parts) });
  }
  if (o.menuPrompt) {
    subs.push({ code: PxeSub.MENU_PROMPT, data: Buffer.concat([Buffer.from([o.menuPrompt.timeout & 0xff]), Buffer.from(o.menuPrompt.prompt, 'latin1')]) });
  }
  if (o.bootItem) {
    const d = Buffer.alloc(4);
    d.writeUInt16BE(o.bootItem.type, 0);
    d.writeUInt16BE(o.bootItem.layer, 2);
    subs.push({ code: PxeSub.BOOT_ITEM, data: d });
  }
  if (o.other) subs.push(...o.other);
  const body = encodeSubOptions(subs);
  if (body.length + 1 > 255) throw new RangeError(`PXE vendor options need ${body.length + 1} bytes; option 43 holds 255 (shorten the menu)`);
  return Buffer.concat([body, Buffer.from([255])]);
}
