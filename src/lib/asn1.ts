/**
 * DER (ITU-T X.690, the Distinguished Encoding Rules) for the few ASN.1
 * types an X.509 certificate needs, and a reader of one TLV
 * (tag-length-value) at a time. Node's crypto signs and parses certificates
 * but cannot make one, and a certificate is only a few nested TLVs, so
 * Fleetboot encodes them itself rather than taking a dependency.
 *
 * Each value is encoded as DER asks, so that the same certificate always
 * has the same bytes and strict parsers (OpenSSL, Go, browsers) accept it:
 * - lengths in the shortest form: one byte below 128, else 0x80|n and n
 *   big-endian bytes with no leading zero (X.690 10.1, 8.1.3);
 * - INTEGERs in the fewest two's-complement bytes (a 0x00 in front of a
 *   magnitude whose top bit is set, so it stays positive; X.690 8.3.2);
 * - BOOLEAN TRUE as 0xff (X.690 11.1);
 * - SET OF with its elements sorted by their encodings (X.690 11.6);
 * - times as RFC 5280 4.1.2.5 wants them: UTCTime (YYMMDDHHMMSSZ) for
 *   1950-2049, GeneralizedTime (YYYYMMDDHHMMSSZ) from 2050, seconds always
 *   there, no fractions, always Z.
 *
 * The reader (`readTlv`) takes DER only: it refuses the indefinite length,
 * lengths not in the shortest form, high tag numbers and values running
 * past the end, with an Asn1DecodeError saying what it saw where. The
 * certificate code uses it to take a Name and a public key out of
 * certificates and keys it holds.
 */

/** Universal tags (class universal; SEQUENCE and SET with the constructed bit). */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Malformed or non-DER input to `readTlv`. */
export class Asn1DecodeError extends Error {
  override readonly name = 'Asn1DecodeError';
}

/** The length octets of a value of `n` bytes. */
export function encodeLength(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`A DER length must be a non-negative integer: current value is ${n}`);
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV: `tag` (one byte: class, constructed bit, tag number below 31), its length, `content`. */
export function tlv(tag: number, content: Uint8Array): Buffer {
  if (!Number.isInteger(tag) || tag < 0 || tag > 0xff || (tag & 0x1f) === 0x1f) {
    throw new RangeError(`A tag must be one byte with a tag number below 31: current value is ${tag}`);
  }
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content]);
}

export function sequence(...items: Uint8Array[]): Buffer {
  return tlv(TAG.SEQUENCE, Buffer.concat(items));
}

/** SET OF: the elements in the order of their encodings (X.690 11.6). */
export function setOf(...items: Uint8Array[]): Buffer {
  const sorted = items.map((i) => Buffer.from(i)).sort(Buffer.compare);
  return tlv(TAG.SET, Buffer.concat(sorted));
}

export function boolean(value: boolean): Buffer {
  return tlv(TAG.BOOLEAN, Buffer.from([value ? 0xff : 0x00]));
}

/**
 * A non-negative INTEGER: a number or bigint, or the big-endian magnitude
 * of one as bytes (a certificate serial). Leading zero bytes are dropped,
 * and one is put back when the top bit is set.
 */
export function integer(value: number | bigint | Uint8Array): Buffer {
  let bytes: Buffer;
  if (value instanceof Uint8Array) {
    bytes = Buffer.from(value);
  } else {
    const v = BigInt(value);
    if (v < 0n) throw new RangeError(`Only non-negative INTEGERs are encoded here: current value is ${v}`);
    const hex = v.toString(16);
    bytes = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  }
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  let minimal = bytes.subarray(start);
  if (minimal.length === 0) minimal = Buffer.from([0]);
  if ((minimal[0] as number) & 0x80) minimal = Buffer.concat([Buffer.from([0]), minimal]);
  return tlv(TAG.INTEGER, minimal);
}

/** An OBJECT IDENTIFIER from its dotted form ("1.2.840.10045.4.3.2"). */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((s) => (/^\d+$/.test(s) ? Number(s) : NaN));
  const [first, second] = arcs;
  if (arcs.length < 2 || first === undefined || second === undefined || arcs.some((a) => !Number.isSafeInteger(a)) || first > 2 || (first < 2 && second >= 40)) {
    throw new RangeError(`An OID must be dotted decimal arcs, the first 0-2 and the second below 40 under 0 and 1: current value is ${JSON.stringify(dotted)}`);
  }
  const out: number[] = [];
  for (const arc of [first * 40 + second, ...arcs.slice(2)]) {
    const base128: number[] = [arc % 128];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) base128.unshift((v % 128) | 0x80);
    out.push(...base128);
  }
  return tlv(TAG.OID, Buffer.from(out));
}

export function utf8String(s: string): Buffer {
  return tlv(TAG.UTF8_STRING, Buffer.from(s, 'utf8'));
}

/** IA5String: ASCII only (dNSName in a subjectAltName). */
export function ia5String(s: string): Buffer {
  if (!/^[\x00-\x7f]*$/.test(s)) throw new RangeError(`An IA5String holds ASCII only: current value is ${JSON.stringify(s)}`);
  return tlv(TAG.IA5_STRING, Buffer.from(s, 'ascii'));
}

export function octetString(bytes: Uint8Array): Buffer {
  return tlv(TAG.OCTET_STRING, bytes);
}

/** A BIT STRING of whole bytes, or with `unusedBits` (0-7) of the last byte unused. */
export function bitString(bytes: Uint8Array, unusedBits = 0): Buffer {
  if (!Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7 || (bytes.length === 0 && unusedBits !== 0)) {
    throw new RangeError(`A BIT STRING leaves 0-7 bits of its last byte unused (0 when empty): current value is ${unusedBits}`);
  }
  return tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

/**
 * A named-bit BIT STRING (keyUsage) with bits `bits` set (bit 0 is the top
 * bit of the first byte): DER drops the trailing zero bits (X.690 11.2.2).
 */
export function namedBits(bits: readonly number[]): Buffer {
  if (bits.some((b) => !Number.isInteger(b) || b < 0)) throw new RangeError(`Bit numbers must be non-negative integers: current value is ${JSON.stringify(bits)}`);
  if (bits.length === 0) return bitString(Buffer.alloc(0));
  const last = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(last / 8) + 1);
  for (const b of bits) bytes[Math.floor(b / 8)] = (bytes[Math.floor(b / 8)] as number) | (0x80 >> b % 8);
  return bitString(bytes, 7 - (last % 8));
}

/** A certificate time (RFC 5280 4.1.2.5): UTCTime through 2049, GeneralizedTime from 2050; whole seconds, UTC. */
export function time(date: Date): Buffer {
  const t = date.getTime();
  if (!Number.isFinite(t)) throw new RangeError('A certificate time must be a valid date: current value is an invalid Date');
  const year = date.getUTCFullYear();
  if (year < 1950 || year > 9999) throw new RangeError(`A certificate time must be in the years 1950-9999: current value is ${date.toISOString()}`);
  const two = (n: number): string => String(n).padStart(2, '0');
  const rest = `${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}Z`;
  if (year < 2050) return tlv(TAG.UTC_TIME, Buffer.from(`${two(year % 100)}${rest}`, 'ascii'));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(`${year}${rest}`, 'ascii'));
}

/** [n] EXPLICIT: a context-specific constructed TLV around one encoded value. */
export function explicit(n: number, encoded: Uint8Array): Buffer {
  return tlv(0xa0 | contextNumber(n), encoded);
}

/** [n] IMPLICIT of a primitive type: the content under a context-specific tag. */
export function implicit(n: number, content: Uint8Array): Buffer {
  return tlv(0x80 | contextNumber(n), content);
}

function contextNumber(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw new RangeError(`A context tag number must be 0-30: current value is ${n}`);
  return n;
}

/** One TLV read from a buffer. */
export interface Tlv {
  /** The identifier byte. */
  tag: number;
  /** Where the TLV starts. */
  start: number;
  /** The value (a view of the input, not a copy). */
  content: Buffer;
  /** Where the next TLV starts. */
  end: number;
}

/** The longest length this reader takes: 4 length bytes (4 GiB), far more than any certificate. */
const MAX_LENGTH_BYTES = 4;

/** The TLV at `offset`: DER only (see the header). */
export function readTlv(buf: Buffer, offset = 0): Tlv {
  const at = (what: string): string => `${what} at byte ${offset}`;
  if (offset < 0 || offset >= buf.length) throw new Asn1DecodeError(`${at('A TLV was expected')}: the input has ${buf.length} bytes`);
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new Asn1DecodeError(`${at(`Tag 0x${tag.toString(16)}`)} uses the high tag number form, which no certificate field needs`);
  if (offset + 1 >= buf.length) throw new Asn1DecodeError(`${at('The TLV')} ends before its length`);
  const first = buf[offset + 1] as number;
  let length: number;
  let header: number;
  if (first < 0x80) {
    length = first;
    header = 2;
  } else {
    const n = first & 0x7f;
    if (n === 0) throw new Asn1DecodeError(`${at('The TLV')} has the indefinite length (0x80), which DER does not allow`);
    if (n > MAX_LENGTH_BYTES) throw new Asn1DecodeError(`${at('The TLV')} has a length of ${n} bytes; at most ${MAX_LENGTH_BYTES} are taken`);
    if (offset + 2 + n > buf.length) throw new Asn1DecodeError(`${at('The TLV')} ends inside its ${n}-byte length`);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + (buf[offset + 2 + i] as number);
    if (buf[offset + 2] === 0 || length < 0x80) throw new Asn1DecodeError(`${at('The TLV')} has its length ${length} in a longer form than DER's shortest`);
    header = 2 + n;
  }
  const end = offset + header + length;
  if (end > buf.length) throw new Asn1DecodeError(`${at('The TLV')} says ${length} bytes of value, but only ${buf.length - offset - header} follow`);
  return { tag, start: offset, content: buf.subarray(offset + header, end), end };
}

/** The TLVs that fill `content` (the elements of a SEQUENCE or SET), each checked by readTlv. */
export function readChildren(content: Buffer): Tlv[] {
  const out: Tlv[] = [];
  for (let off = 0; off < content.length; ) {
    const t = readTlv(content, off);
    out.push(t);
    off = t.end;
  }
  return out;
}

/** The TLV at `offset`, which must have tag `tag` (for messages: `what` it should be). */
export function expectTlv(buf: Buffer, offset: number, tag: number, what: string): Tlv {
  const t = readTlv(buf, offset);
  if (t.tag !== tag) throw new Asn1DecodeError(`${what} was expected at byte ${offset} (tag 0x${tag.toString(16)}): found tag 0x${t.tag.toString(16)}`);
  return t;
}
