/**
 * TFTP packets (RFC 1350, RFC 2347 OACK): bytes <-> objects, nothing else.
 *
 * Every packet kind has the same three functions: `encodingLength(p)`,
 * `encode(p, buf?, offset?)` and `decode(buf)`. Decoding never throws anything
 * but `TftpDecodeError`, whose `reason` says what was wrong.
 *
 * Strings (file name, mode, option names and values) are decoded as latin1:
 * one character per byte, so any byte sequence survives a round trip. The
 * server decides how to turn a file name into a path (see lib/safe-path.ts).
 */

export const Opcode = {
  RRQ: 1,
  WRQ: 2,
  DATA: 3,
  ACK: 4,
  ERROR: 5,
  OACK: 6,
} as const;
export type OpcodeName = keyof typeof Opcode;

/** RFC 1350 + RFC 2347 error codes. */
export const ErrorCode = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const;

/** An option as it appeared on the wire: original case and order kept. */
export interface TftpOption {
  name: string;
  value: string;
}

export interface RequestPacket {
  op: 'RRQ' | 'WRQ';
  filename: string;
  /** As sent (RFC 1350 modes are case-insensitive: compare lowercased). */
  mode: string;
  options: TftpOption[];
}
export interface DataPacket {
  op: 'DATA';
  /** Wire block number, 0-65535. */
  block: number;
  data: Uint8Array;
}
export interface AckPacket {
  op: 'ACK';
  block: number;
}
export interface ErrorPacket {
  op: 'ERROR';
  code: number;
  message: string;
}
export interface OackPacket {
  op: 'OACK';
  options: TftpOption[];
}
export type TftpPacket = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket;

export type TftpDecodeReason =
  | 'TRUNCATED' // shorter than the packet kind's fixed part
  | 'BAD_OPCODE' // opcode not 1-6
  | 'UNTERMINATED_STRING' // file name or mode without its NUL
  | 'EMPTY_FILENAME';

/** A packet that cannot be decoded. `reason` is stable; `message` says what was seen. */
export class TftpDecodeError extends Error {
  readonly reason: TftpDecodeReason;
  constructor(reason: TftpDecodeReason, message: string) {
    super(message);
    this.name = 'TftpDecodeError';
    this.reason = reason;
  }
}

const OPNAMES: readonly (OpcodeName | undefined)[] = [undefined, 'RRQ', 'WRQ', 'DATA', 'ACK', 'ERROR', 'OACK'];

/** The opcode of a packet, or null when it has fewer than 2 bytes. */
export function peekOpcode(buf: Uint8Array): number | null {
  return buf.length < 2 ? null : ((buf[0] ?? 0) << 8) | (buf[1] ?? 0);
}

function view(buf: Uint8Array): Buffer {
  return Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
}

function strLen(s: string): number {
  // latin1: one byte per character (characters above U+00FF are truncated by Buffer.write).
  return s.length + 1;
}

function optionsLength(options: readonly TftpOption[]): number {
  let n = 0;
  for (const o of options) n += strLen(o.name) + strLen(o.value);
  return n;
}

/** Bytes needed to encode `p`. */
export function encodingLength(p: TftpPacket): number {
  switch (p.op) {
    case 'RRQ':
    case 'WRQ':
      return 2 + strLen(p.filename) + strLen(p.mode) + optionsLength(p.options);
    case 'DATA':
      return 4 + p.data.length;
    case 'ACK':
      return 4;
    case 'ERROR':
      return 4 + Buffer.byteLength(p.message, 'utf8') + 1;
    case 'OACK':
      return 2 + optionsLength(p.options);
  }
}

function checkBlock(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new RangeError(`${what} must be an integer 0-65535: current value is ${n}`);
}

function putString(buf: Buffer, at: number, s: string, encoding: 'latin1' | 'utf8'): number {
  if (s.includes('\0')) throw new TypeError(`TFTP strings cannot contain NUL: ${JSON.stringify(s)}`);
  at += buf.write(s, at, encoding);
  buf[at++] = 0;
  return at;
}

/**
 * Encode `p` into `buf` at `offset` (a new buffer of the exact size when
 * `buf` is omitted). Returns the bytes written as a view of `buf`.
 */
export function encode(p: TftpPacket, buf?: Buffer, offset = 0): Buffer {
  const len = encodingLength(p);
  const out = buf ?? Buffer.allocUnsafe(len);
  if (out.length - offset < len) throw new RangeError(`buffer too small: need ${len} bytes at offset ${offset}, have ${out.length - offset}`);
  let at = offset;
  at = out.writeUInt16BE(Opcode[p.op], at);
  switch (p.op) {
    case 'RRQ':
    case 'WRQ':
      at = putString(out, at, p.filename, 'latin1');
      at = putString(out, at, p.mode, 'latin1');
      for (const o of p.options) {
        at = putString(out, at, o.name, 'latin1');
        at = putString(out, at, o.value, 'latin1');
      }
      break;
    case 'DATA':
      checkBlock(p.block, 'DATA block');
      at = out.writeUInt16BE(p.block, at);
      out.set(p.data, at);
      at += p.data.length;
      break;
    case 'ACK':
      checkBlock(p.block, 'ACK block');
      at = out.writeUInt16BE(p.block, at);
      break;
    case 'ERROR':
      checkBlock(p.code, 'ERROR code');
      at = out.writeUInt16BE(p.code, at);
      at = putString(out, at, p.message, 'utf8');
      break;
    case 'OACK':
      for (const o of p.options) {
        at = putString(out, at, o.name, 'latin1');
        at = putString(out, at, o.value, 'latin1');
      }
      break;
  }
  return out.subarray(offset, at);
}

/** NUL-terminated strings from `start` to the end of `buf`; `rest` is an unterminated tail (or null). */
function splitStrings(buf: Buffer, start: number): { strings: string[]; rest: string | null } {
  const strings: string[] = [];
  let at = start;
  while (at < buf.length) {
    const nul = buf.indexOf(0, at);
    if (nul < 0) return { strings, rest: buf.toString('latin1', at) };
    strings.push(buf.toString('latin1', at, nul));
    at = nul + 1;
  }
  return { strings, rest: null };
}

/**
 * Options after the mode. Lenient on purpose, because boot ROMs are not
 * always tidy: an empty option name ends the list (some clients pad the
 * request with NULs), a name without a value and an unterminated tail are
 * dropped. Duplicate names are all kept; negotiation uses the first.
 */
function decodeOptions(strings: readonly string[]): TftpOption[] {
  const options: TftpOption[] = [];
  for (let i = 0; i + 1 < strings.length; i += 2) {
    const name = strings[i] as string;
    if (name === '') break;
    options.push({ name, value: strings[i + 1] as string });
  }
  return options;
}

/** Decode one packet. Throws TftpDecodeError with a specific reason. */
export function decode(input: Uint8Array): TftpPacket {
  const buf = view(input);
  const op = peekOpcode(buf);
  if (op === null) throw new TftpDecodeError('TRUNCATED', `packet of ${buf.length} byte(s) has no opcode`);
  const name = OPNAMES[op];
  if (name === undefined) throw new TftpDecodeError('BAD_OPCODE', `opcode must be 1-6: current value is ${op}`);
  switch (name) {
    case 'RRQ':
    case 'WRQ': {
      const { strings } = splitStrings(buf, 2);
      const [filename, mode] = strings;
      if (filename === undefined) throw new TftpDecodeError('UNTERMINATED_STRING', `${name} file name has no NUL terminator`);
      if (mode === undefined) throw new TftpDecodeError('UNTERMINATED_STRING', `${name} mode is missing or has no NUL terminator`);
      if (filename === '') throw new TftpDecodeError('EMPTY_FILENAME', `${name} with an empty file name`);
      return { op: name, filename, mode, options: decodeOptions(strings.slice(2)) };
    }
    case 'DATA':
      if (buf.length < 4) throw new TftpDecodeError('TRUNCATED', `DATA needs at least 4 bytes: got ${buf.length}`);
      return { op: 'DATA', block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case 'ACK':
      // Trailing bytes after the block number are ignored (seen from padding clients).
      if (buf.length < 4) throw new TftpDecodeError('TRUNCATED', `ACK needs 4 bytes: got ${buf.length}`);
      return { op: 'ACK', block: buf.readUInt16BE(2) };
    case 'ERROR': {
      if (buf.length < 4) throw new TftpDecodeError('TRUNCATED', `ERROR needs at least 4 bytes: got ${buf.length}`);
      // A missing NUL after the message is tolerated: the message is whatever follows.
      const nul = buf.indexOf(0, 4);
      const message = buf.toString('utf8', 4, nul < 0 ? buf.length : nul);
      return { op: 'ERROR', code: buf.readUInt16BE(2), message };
    }
    case 'OACK': {
      const { strings } = splitStrings(buf, 2);
      return { op: 'OACK', options: decodeOptions(strings) };
    }
  }
}

/** The block number of an ACK, without allocating, or -1 if `buf` is not an ACK. The server's hot path. */
export function ackBlock(buf: Uint8Array): number {
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== Opcode.ACK) return -1;
  return ((buf[2] as number) << 8) | (buf[3] as number);
}

/** Write a DATA header (opcode 3, block) into the first 4 bytes of `hdr`. */
export function writeDataHeader(hdr: Uint8Array, block: number): void {
  hdr[0] = 0;
  hdr[1] = Opcode.DATA;
  hdr[2] = (block >>> 8) & 0xff;
  hdr[3] = block & 0xff;
}

/** An ERROR packet ready to send. */
export function errorPacket(code: number, message: string): Buffer {
  return encode({ op: 'ERROR', code, message });
}
