/**
 * DHCP option values from text, as written in the config file or in
 * `--dhcp-option CODE,VALUE` (dnsmasq's dhcp-option spirit): the common codes
 * have known types (RFC 2132 and later), anything else is hex.
 *
 *   parseOptionValue(3, '10.0.0.1')             // router: an IP list
 *   parseOptionValue(6, '10.0.0.2,10.0.0.3')    // DNS servers
 *   parseOptionValue(15, 'lab.example')         // domain name: text
 *   parseOptionValue(26, '1400')                // MTU: u16
 *   parseOptionValue(224, '0x0102ff')           // unknown code: hex (also 01:02:ff)
 *
 * Throws RangeError with the code, the expected type and the value seen.
 * Pure, no I/O.
 */

export type OptionValueType = 'ip' | 'ips' | 'text' | 'u8' | 'u16' | 'u32' | 'i32' | 'bool' | 'hex';

/** Known types by code. Anything not here takes hex. */
export const OPTION_TYPES: Readonly<Record<number, OptionValueType>> = {
  1: 'ip', // subnet mask
  2: 'i32', // time offset
  3: 'ips', // routers
  4: 'ips', // time servers
  5: 'ips', // name servers (IEN 116)
  6: 'ips', // DNS servers
  7: 'ips', // log servers
  9: 'ips', // LPR servers
  12: 'text', // host name
  13: 'u16', // boot file size
  14: 'text', // merit dump file
  15: 'text', // domain name
  16: 'ip', // swap server
  17: 'text', // root path
  18: 'text', // extensions path
  19: 'bool', // IP forwarding
  20: 'bool', // non-local source routing
  22: 'u16', // max datagram reassembly
  23: 'u8', // default IP TTL
  24: 'u32', // path MTU aging timeout
  26: 'u16', // interface MTU
  27: 'bool', // all subnets are local
  28: 'ip', // broadcast address
  29: 'bool', // perform mask discovery
  31: 'bool', // perform router discovery
  32: 'ip', // router solicitation address
  35: 'u32', // ARP cache timeout
  37: 'u8', // TCP default TTL
  38: 'u32', // TCP keepalive interval
  40: 'text', // NIS domain
  41: 'ips', // NIS servers
  42: 'ips', // NTP servers
  44: 'ips', // NetBIOS name servers
  45: 'ips', // NetBIOS datagram distribution
  46: 'u8', // NetBIOS node type
  47: 'text', // NetBIOS scope
  48: 'ips', // X font servers
  49: 'ips', // X display managers
  64: 'text', // NIS+ domain
  65: 'ips', // NIS+ servers
  66: 'text', // TFTP server name
  67: 'text', // boot file name
  69: 'ips', // SMTP servers
  70: 'ips', // POP3 servers
  72: 'ips', // WWW servers
  150: 'ips', // TFTP server addresses (Cisco)
  252: 'text', // WPAD URL
};

/** Codes the server owns: never taken from configuration. */
export const RESERVED_OPTION_CODES: ReadonlySet<number> = new Set([0, 50, 51, 52, 53, 54, 55, 57, 58, 59, 61, 82, 255]);

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function fail(code: number, type: string, value: string): never {
  throw new RangeError(`DHCP option ${code} takes ${type}: current value is ${JSON.stringify(value)}`);
}

function ipList(code: number, value: string, single: boolean): Buffer {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.length === 0 || (single && parts.length !== 1) || parts.some((p) => !IPV4.test(p))) {
    fail(code, single ? 'one IPv4 address' : 'a comma-separated list of IPv4 addresses', value);
  }
  return Buffer.from(parts.flatMap((p) => p.split('.').map(Number)));
}

function integer(code: number, value: string, min: number, max: number, type: string): number {
  const v = value.trim();
  if (!/^-?\d+$/.test(v)) fail(code, type, value);
  const n = Number(v);
  if (n < min || n > max) fail(code, type, value);
  return n;
}

/** Hex bytes: 0x0102ff, 01:02:ff or 0102ff. */
export function parseHex(code: number, value: string): Buffer {
  const v = value.trim();
  let hex: string;
  if (/^0x([0-9a-fA-F]{2})+$/.test(v)) hex = v.slice(2);
  else if (/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2})*$/.test(v)) hex = v.replace(/:/g, '');
  else if (/^([0-9a-fA-F]{2})+$/.test(v)) hex = v;
  else fail(code, 'hex bytes (0x0102ff or 01:02:ff)', value);
  return Buffer.from(hex, 'hex');
}

/** The wire bytes of option `code` from its text form. Throws RangeError for a bad code or value. */
export function parseOptionValue(code: number, value: string): Buffer {
  if (!Number.isInteger(code) || code < 1 || code > 254) throw new RangeError(`DHCP option code must be 1-254: current value is ${JSON.stringify(code)}`);
  if (RESERVED_OPTION_CODES.has(code)) throw new RangeError(`DHCP option ${code} is set by the server itself and cannot be configured`);
  const type = OPTION_TYPES[code] ?? 'hex';
  // Hex is always accepted, for a known code too (an odd vendor encoding).
  if (type !== 'hex' && type !== 'text' && /^0x([0-9a-fA-F]{2})+$/.test(value.trim())) return parseHex(code, value);
  let out: Buffer;
  switch (type) {
    case 'ip':
      out = ipList(code, value, true);
      break;
    case 'ips':
      out = ipList(code, value, false);
      break;
    case 'text':
      if (value === '') fail(code, 'non-empty text', value);
      out = Buffer.from(value, 'utf8');
      break;
    case 'u8':
      out = Buffer.from([integer(code, value, 0, 255, 'an integer 0-255')]);
      break;
    case 'bool': {
      const v = value.trim().toLowerCase();
      const b = v === '1' || v === 'true' || v === 'yes' || v === 'on' ? 1 : v === '0' || v === 'false' || v === 'no' || v === 'off' ? 0 : fail(code, 'a boolean (0/1, true/false)', value);
      out = Buffer.from([b]);
      break;
    }
    case 'u16':
      out = Buffer.alloc(2);
      out.writeUInt16BE(integer(code, value, 0, 0xffff, 'an integer 0-65535'));
      break;
    case 'u32':
      out = Buffer.alloc(4);
      out.writeUInt32BE(integer(code, value, 0, 0xffffffff, 'an integer 0-4294967295'));
      break;
    case 'i32':
      out = Buffer.alloc(4);
      out.writeInt32BE(integer(code, value, -0x80000000, 0x7fffffff, 'a signed 32-bit integer'));
      break;
    case 'hex':
      out = parseHex(code, value);
      break;
  }
  if (out.length > 1020) fail(code, 'at most 1020 bytes', value);
  return out;
}
