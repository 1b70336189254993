/**
 * DHCP/BOOTP packet codec (RFC 951, RFC 2131, RFC 2132, RFC 3396): bytes <->
 * a plain object, nothing else (no I/O).
 *
 * Layout: a 236-byte BOOTP header, the magic cookie 99.130.83.99, then
 * options (code, length, data) up to END (255). Options are kept in wire
 * order; unknown ones stay raw bytes, so a decoded packet re-encodes
 * byte-identically (the round-trip test checks this on every capture).
 *
 *   const p = decodePacket(buf);                 // throws DhcpDecodeError on bad input
 *   const out = encodePacket(p);                 // Buffer, at least 300 bytes
 *   encodePacket(p, target, offset);             // into a caller's buffer
 *   encodedLength(p);
 */
import { DhcpDecodeError } from './errors.js';

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const MAGIC_COOKIE = 0x63825363;
/** 236-byte BOOTP header + 4-byte cookie. */
export const HEADER_LENGTH = 240;
/**
 * BOOTP's minimum message (RFC 951: 64-byte vend field). Several PXE ROMs and
 * the Linux kernel's in-kernel client drop anything shorter, so replies are
 * zero-padded to this (dnsmasq does the same: MIN_PACKETSZ).
 */
export const MIN_PACKET_LENGTH = 300;
/**
 * Nothing a PXE client sends comes close to this (captures are 300-600
 * bytes; an Ethernet frame holds 1472 bytes of UDP payload, jumbo frames
 * ~9000). Bigger inputs are junk and are refused before any parsing.
 */
export const MAX_PACKET_LENGTH = 9216;

export const OPTION_PAD = 0;
export const OPTION_END = 255;
export const OPTION_OVERLOAD = 52;

const SNAME_OFFSET = 44;
const SNAME_LENGTH = 64;
const FILE_OFFSET = 108;
const FILE_LENGTH = 128;
const CHADDR_LENGTH = 16;

export interface DhcpOption {
  code: number;
  /** Option payload (a view into the decoded buffer; do not mutate). Empty for PAD. */
  data: Buffer;
  /**
   * Set when the option was found in the `file` or `sname` field because of
   * option 52 (overload). Such options are not written again by the encoder:
   * the raw `file`/`sname` bytes already carry them.
   */
  from?: 'file' | 'sname';
}

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** 16 bytes; the hardware address is the first `hlen`. */
  chaddr: Buffer;
  /** 64 bytes (server host name, or options when overloaded). */
  sname: Buffer;
  /** 128 bytes (boot file name, or options when overloaded). */
  file: Buffer;
  /** In wire order: the options field, then `file`, then `sname` (RFC 2131 4.1). */
  options: DhcpOption[];
  /** False when the options field ended without END (accepted leniently); the encoder then writes none. */
  hasEnd: boolean;
  /** Bytes after END (normally the zero padding up to 300 bytes), kept for byte-identical round trips. */
  trailer: Buffer;
}

const EMPTY = Buffer.alloc(0);

function ipAt(b: Buffer, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

/** Parse dotted-quad IPv4 into a 32-bit unsigned number; throws TypeError on anything else. */
export function ipToInt(ip: string): number {
  let n = 0;
  let parts = 0;
  let cur = -1;
  for (let i = 0; i <= ip.length; i++) {
    const c = i < ip.length ? ip.charCodeAt(i) : 46; // '.' sentinel
    if (c === 46) {
      if (cur < 0 || cur > 255) break;
      n = n * 256 + cur;
      parts++;
      cur = -1;
    } else if (c >= 48 && c <= 57) {
      cur = cur < 0 ? c - 48 : cur * 10 + (c - 48);
      if (cur > 255) break;
    } else {
      break;
    }
  }
  if (parts !== 4) throw new TypeError(`Not an IPv4 address: ${JSON.stringify(ip)}`);
  return n >>> 0;
}

/** Read options from buf[start, end). Returns the index after END (or `end`) and whether END was seen. */
function readOptions(
  buf: Buffer,
  start: number,
  end: number,
  out: DhcpOption[],
  from: 'file' | 'sname' | undefined,
): { next: number; sawEnd: boolean } {
  let i = start;
  while (i < end) {
    const code = buf[i] as number;
    if (code === OPTION_PAD) {
      out.push(from ? { code, data: EMPTY, from } : { code, data: EMPTY });
      i++;
      continue;
    }
    if (code === OPTION_END) return { next: i + 1, sawEnd: true };
    if (i + 1 >= end) {
      throw new DhcpDecodeError(`option ${code} at offset ${i} has no length byte${from ? ` (in overloaded ${from} field)` : ''}`, i);
    }
    const len = buf[i + 1] as number;
    if (i + 2 + len > end) {
      throw new DhcpDecodeError(
        `option ${code} at offset ${i} declares ${len} bytes but only ${end - i - 2} remain${from ? ` in the overloaded ${from} field` : ''}`,
        i,
      );
    }
    const data = buf.subarray(i + 2, i + 2 + len);
    out.push(from ? { code, data, from } : { code, data });
    i += 2 + len;
  }
  return { next: end, sawEnd: false };
}

/**
 * Decode a DHCP packet. Throws DhcpDecodeError, with what was expected and
 * what was seen, for: a truncated header, a wrong magic cookie, an option
 * running past the end, an impossible hlen or overload value, absurd sizes.
 * A missing END is accepted (several firmwares omit it; the options simply
 * run to the end of the packet).
 */
export function decodePacket(input: Buffer, offset = 0, length: number = input.length - offset): DhcpPacket {
  if (length < 0 || offset < 0 || offset + length > input.length) {
    throw new RangeError(`decodePacket: offset ${offset} + length ${length} outside a ${input.length}-byte buffer`);
  }
  if (length > MAX_PACKET_LENGTH) {
    throw new DhcpDecodeError(`packet of ${length} bytes is larger than any DHCP message (limit ${MAX_PACKET_LENGTH})`, 0);
  }
  if (length < HEADER_LENGTH) {
    throw new DhcpDecodeError(`truncated header: need at least ${HEADER_LENGTH} bytes (BOOTP header + magic cookie), got ${length}`, length);
  }
  const b = offset === 0 && length === input.length ? input : input.subarray(offset, offset + length);
  const cookie = b.readUInt32BE(236);
  if (cookie !== MAGIC_COOKIE) {
    throw new DhcpDecodeError(`wrong magic cookie: expected 63825363, got ${cookie.toString(16).padStart(8, '0')}`, 236);
  }
  const hlen = b[2] as number;
  if (hlen > CHADDR_LENGTH) {
    throw new DhcpDecodeError(`hlen ${hlen} is larger than the ${CHADDR_LENGTH}-byte chaddr field`, 2);
  }
  const options: DhcpOption[] = [];
  const main = readOptions(b, HEADER_LENGTH, b.length, options, undefined);
  const p: DhcpPacket = {
    op: b[0] as number,
    htype: b[1] as number,
    hlen,
    hops: b[3] as number,
    xid: b.readUInt32BE(4),
    secs: b.readUInt16BE(8),
    flags: b.readUInt16BE(10),
    ciaddr: ipAt(b, 12),
    yiaddr: ipAt(b, 16),
    siaddr: ipAt(b, 20),
    giaddr: ipAt(b, 24),
    chaddr: b.subarray(28, 28 + CHADDR_LENGTH),
    sname: b.subarray(SNAME_OFFSET, SNAME_OFFSET + SNAME_LENGTH),
    file: b.subarray(FILE_OFFSET, FILE_OFFSET + FILE_LENGTH),
    options,
    hasEnd: main.sawEnd,
    trailer: main.sawEnd ? b.subarray(main.next) : EMPTY,
  };
  // Option 52 (RFC 2132 9.3): more options live in `file` (1), `sname` (2) or both (3).
  // Only the options field is searched for it, and the overloaded fields are read
  // once each without looking at any 52 inside them: no recursion, so no loops.
  let overload: number | undefined;
  for (const o of options) {
    if (o.code === OPTION_OVERLOAD) {
      if (o.data.length !== 1 || (o.data[0] as number) < 1 || (o.data[0] as number) > 3) {
        throw new DhcpDecodeError(`option 52 (overload) must be one byte 1-3, got ${o.data.length} byte(s) [${[...o.data].join(',')}]`, HEADER_LENGTH);
      }
      if (overload !== undefined) throw new DhcpDecodeError('option 52 (overload) appears more than once', HEADER_LENGTH);
      overload = o.data[0] as number;
    }
  }
  if (overload !== undefined) {
    if (overload & 1) readOptions(b, FILE_OFFSET, FILE_OFFSET + FILE_LENGTH, options, 'file');
    if (overload & 2) readOptions(b, SNAME_OFFSET, SNAME_OFFSET + SNAME_LENGTH, options, 'sname');
  }
  return p;
}

function optionsLength(p: DhcpPacket): number {
  let n = 0;
  for (const o of p.options) {
    if (o.from) continue;
    if (o.code === OPTION_PAD || o.code === OPTION_END) n += 1;
    else if (o.data.length === 0) n += 2;
    // RFC 3396: a value longer than 255 bytes goes out as several instances.
    else n += o.data.length + 2 * Math.ceil(o.data.length / 255);
  }
  return n;
}

/** Bytes encodePacket() will write (at least MIN_PACKET_LENGTH). */
export function encodedLength(p: DhcpPacket): number {
  const n = HEADER_LENGTH + optionsLength(p) + (p.hasEnd ? 1 : 0) + p.trailer.length;
  return n < MIN_PACKET_LENGTH ? MIN_PACKET_LENGTH : n;
}

function copyField(name: string, src: Buffer, dst: Buffer, at: number, size: number): void {
  if (src.length > size) throw new RangeError(`${name} is ${src.length} bytes; the field holds ${size}`);
  src.copy(dst, at);
  if (src.length < size) dst.fill(0, at + src.length, at + size);
}

/**
 * Encode a packet into `target` at `offset` (allocated when not given) and
 * return the written slice. Zero-pads to 300 bytes. Throws RangeError/TypeError
 * for values that cannot be encoded (programmer mistakes).
 */
export function encodePacket(p: DhcpPacket, target?: Buffer, offset = 0): Buffer {
  const len = encodedLength(p);
  const b = target ?? Buffer.allocUnsafe(len);
  if (offset < 0 || offset + len > b.length) throw new RangeError(`encodePacket needs ${len} bytes at offset ${offset}; buffer has ${b.length}`);
  if (p.hlen > CHADDR_LENGTH) throw new RangeError(`hlen ${p.hlen} exceeds ${CHADDR_LENGTH}`);
  b[offset] = p.op;
  b[offset + 1] = p.htype;
  b[offset + 2] = p.hlen;
  b[offset + 3] = p.hops;
  b.writeUInt32BE(p.xid >>> 0, offset + 4);
  b.writeUInt16BE(p.secs, offset + 8);
  b.writeUInt16BE(p.flags, offset + 10);
  b.writeUInt32BE(ipToInt(p.ciaddr), offset + 12);
  b.writeUInt32BE(ipToInt(p.yiaddr), offset + 16);
  b.writeUInt32BE(ipToInt(p.siaddr), offset + 20);
  b.writeUInt32BE(ipToInt(p.giaddr), offset + 24);
  copyField('chaddr', p.chaddr, b, offset + 28, CHADDR_LENGTH);
  copyField('sname', p.sname, b, offset + SNAME_OFFSET, SNAME_LENGTH);
  copyField('file', p.file, b, offset + FILE_OFFSET, FILE_LENGTH);
  b.writeUInt32BE(MAGIC_COOKIE, offset + 236);
  let i = offset + HEADER_LENGTH;
  for (const o of p.options) {
    if (o.from) continue;
    if (o.code < 0 || o.code > 255 || !Number.isInteger(o.code)) throw new RangeError(`option code ${o.code} is not 0-255`);
    if (o.code === OPTION_PAD || o.code === OPTION_END) {
      b[i++] = o.code;
      continue;
    }
    const d = o.data;
    if (d.length === 0) {
      b[i++] = o.code;
      b[i++] = 0;
      continue;
    }
    for (let at = 0; at < d.length; at += 255) {
      const n = Math.min(255, d.length - at);
      b[i++] = o.code;
      b[i++] = n;
      d.copy(b, i, at, at + n);
      i += n;
    }
  }
  if (p.hasEnd) b[i++] = OPTION_END;
  p.trailer.copy(b, i);
  i += p.trailer.length;
  const end = offset + len;
  if (i < end) b.fill(0, i, end);
  return b.subarray(offset, end);
}

/** A blank packet with every field zeroed, END present, no options. */
export function createPacket(fields: Partial<DhcpPacket> = {}): DhcpPacket {
  return {
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 0,
    secs: 0,
    flags: 0,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr: '0.0.0.0',
    chaddr: Buffer.alloc(CHADDR_LENGTH),
    sname: Buffer.alloc(SNAME_LENGTH),
    file: Buffer.alloc(FILE_LENGTH),
    options: [],
    hasEnd: true,
    trailer: EMPTY,
    ...fields,
  };
}

/** The client hardware address as aa:bb:cc:..., from the first hlen bytes of chaddr. */
export function hardwareAddress(p: DhcpPacket): string {
  let s = '';
  for (let i = 0; i < p.hlen; i++) {
    const v = p.chaddr[i] as number;
    s += (i ? ':' : '') + (v < 16 ? '0' : '') + v.toString(16);
  }
  return s;
}

/** A zero-terminated string field (sname/file) as text; latin1, cut at the first NUL. */
export function cString(field: Buffer): string {
  const nul = field.indexOf(0);
  return field.toString('latin1', 0, nul < 0 ? field.length : nul);
}

/** A field of `size` bytes holding `text` zero-terminated; throws RangeError when it does not fit. */
export function cStringField(text: string, size: number): Buffer {
  if (Buffer.byteLength(text, 'latin1') >= size) throw new RangeError(`'${text}' does not fit a ${size}-byte field with its terminating NUL`);
  const b = Buffer.alloc(size);
  b.write(text, 'latin1');
  return b;
}
