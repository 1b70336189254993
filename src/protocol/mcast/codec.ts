/**
 * Fleetboot's multicast imaging protocol (FBMC, version 1): the wire format.
 * Pure: encoders and decoders only, no sockets, no clocks.
 *
 * One session carries one object (a file, or an image's partition streams
 * one after another) from one sender to its receivers. Every datagram starts
 * with the same 12 bytes, and every datagram names its session:
 *
 *   0  u16 magic 0x464d ("FM")   2 u8 version (1)   3 u8 type
 *   4  u32 session id, high      8 u32 session id, low   (64 random bits)
 *
 * Types (S = sender, G = the group, R = one receiver, by unicast):
 *   ANNOUNCE  S->G (and S->R)  what the session carries and where it is
 *   DATA      S->G             one block of the object
 *   JOIN      R->S             a receiver asks in (with what it already holds)
 *   STATUS    R->S             progress, loss counters and the blocks it lacks
 *   DONE      R->S             finished: verified, or failed with a reason
 *   CONTROL   S->R             accepted, dropped (too slow), refused, cancelled, bye
 *
 * Blocks are numbered from 0; block b holds object bytes [b*blockSize,
 * (b+1)*blockSize). A DATA datagram is 20 bytes of header and at most
 * blockSize bytes; the default block size keeps datagrams within a 1500
 * byte MTU (no IP fragmentation, WDS's known failure).
 *
 * Decoders never throw on bad input: they return null (with no partial
 * result), and the caller counts the datagram as malformed.
 */

export const FBMC_MAGIC = 0x464d;
export const FBMC_VERSION = 1;
export const HEADER_BYTES = 12;
export const DATA_HEADER_BYTES = 20;
/** 1500 (Ethernet MTU) - 20 (IPv4) - 8 (UDP) - 20 (DATA header) - 12 spare for tunnels and options. */
export const DEFAULT_BLOCK_SIZE = 1440;
export const MAX_BLOCK_SIZE = 65507 - DATA_HEADER_BYTES;
/** Blocks a STATUS may name as missing (a 1 KiB bitmap). */
export const MAX_NAK_BITS = 8192;
export const MAX_TEXT_BYTES = 200;

export const MsgType = { announce: 1, data: 2, join: 3, status: 4, done: 5, control: 6 } as const;
export type MsgTypeName = keyof typeof MsgType;

/** ANNOUNCE states. */
export const SessionState = { waiting: 0, sending: 1, finished: 2, cancelled: 3 } as const;
export type SessionStateName = keyof typeof SessionState;

/** DONE results. */
export const DoneResult = { verified: 0, digestMismatch: 1, writeFailed: 2, gaveUp: 3 } as const;

/** CONTROL codes. */
export const ControlCode = { accepted: 1, dropped: 3, refused: 4, cancelled: 5, bye: 6 } as const;

export interface SessionId {
  hi: number;
  lo: number;
}

export function sessionIdHex(id: SessionId): string {
  return id.hi.toString(16).padStart(8, '0') + id.lo.toString(16).padStart(8, '0');
}

export function parseSessionIdHex(hex: string): SessionId | null {
  if (!/^[0-9a-f]{16}$/.test(hex)) return null;
  return { hi: parseInt(hex.slice(0, 8), 16), lo: parseInt(hex.slice(8), 16) };
}

export interface Announce {
  session: SessionId;
  state: number;
  /** The digest is the sha256 of the object's bytes (the receiver checks it); otherwise only the object's identity. */
  digestIsSha256: boolean;
  /** The digest is known (a sender may hash the object while it sends it the first time). */
  digestFinal: boolean;
  blockSize: number;
  objectBytes: number;
  /** Blocks a receiver holds out of order, at most (its window). */
  window: number;
  /** The next new block of the current sweep. */
  head: number;
  rateKbps: number;
  joined: number;
  expected: number;
  digest: Buffer;
  label: string;
}

export interface Join {
  session: SessionId;
  receiver: SessionId;
  /** Blocks [0, contig) the receiver already holds (a restarted receiver). */
  contig: number;
  /** Blocks it can hold out of order. */
  window: number;
}

export interface Status {
  session: SessionId;
  receiver: SessionId;
  /** Blocks [0, contig) are delivered. */
  contig: number;
  /** One past the highest block seen. */
  highest: number;
  /** DATA datagrams received (counts wrap at 2^32). */
  received: number;
  /** DATA datagrams lost, by the sender's sequence numbers. */
  seqLost: number;
  /** Datagrams the receiver's kernel dropped for want of buffer space. */
  rxDropped: number;
  /** Bit i of `naks` set = block nakBase+i is missing. */
  nakBase: number;
  nakBits: number;
  naks: Uint8Array;
  /**
   * The highest DATA sequence number the receiver has taken, when it has
   * taken any (a u32 after the bitmap; absent in a STATUS without it). The
   * sender resends a block only to a receiver that has seen a datagram sent
   * after the block's last copy: until then that copy may still be on its
   * way, or in the receiver's socket buffer.
   */
  maxSeq?: number;
}

export interface Done {
  session: SessionId;
  receiver: SessionId;
  result: number;
  reason: string;
}

export interface Control {
  session: SessionId;
  receiver: SessionId;
  code: number;
  reason: string;
}

function header(buf: Buffer, type: number, s: SessionId): void {
  buf.writeUInt16BE(FBMC_MAGIC, 0);
  buf[2] = FBMC_VERSION;
  buf[3] = type;
  buf.writeUInt32BE(s.hi >>> 0, 4);
  buf.writeUInt32BE(s.lo >>> 0, 8);
}

/** The message type of a datagram of this protocol and version, or 0. */
export function messageType(buf: Buffer): number {
  if (buf.length < HEADER_BYTES || buf.readUInt16BE(0) !== FBMC_MAGIC || buf[2] !== FBMC_VERSION) return 0;
  return buf[3] as number;
}

export function sessionOf(buf: Buffer): SessionId {
  return { hi: buf.readUInt32BE(4), lo: buf.readUInt32BE(8) };
}

export function sameSession(buf: Buffer, s: SessionId): boolean {
  return buf.readUInt32BE(4) === s.hi >>> 0 && buf.readUInt32BE(8) === s.lo >>> 0;
}

function text(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= MAX_TEXT_BYTES) return b;
  // Cut on a character boundary.
  let end = MAX_TEXT_BYTES;
  while (end > 0 && ((b[end] as number) & 0xc0) === 0x80) end--;
  return b.subarray(0, end);
}

function u64(buf: Buffer, off: number): number {
  const hi = buf.readUInt32BE(off);
  if (hi > 0x1fffff) return -1; // beyond Number.MAX_SAFE_INTEGER
  return hi * 0x1_0000_0000 + buf.readUInt32BE(off + 4);
}

export function encodeAnnounce(a: Announce): Buffer {
  const label = text(a.label);
  const buf = Buffer.alloc(74 + label.length);
  header(buf, MsgType.announce, a.session);
  buf[12] = a.state;
  buf[13] = (a.digestIsSha256 ? 1 : 0) | (a.digestFinal ? 2 : 0);
  buf.writeUInt16BE(a.blockSize, 14);
  buf.writeUInt32BE(Math.floor(a.objectBytes / 0x1_0000_0000), 16);
  buf.writeUInt32BE(a.objectBytes % 0x1_0000_0000, 20);
  buf.writeUInt32BE(a.window, 24);
  buf.writeUInt32BE(a.head, 28);
  buf.writeUInt32BE(Math.min(0xffffffff, Math.round(a.rateKbps)), 32);
  buf.writeUInt16BE(Math.min(0xffff, a.joined), 36);
  buf.writeUInt16BE(Math.min(0xffff, a.expected), 38);
  a.digest.copy(buf, 40, 0, 32);
  buf.writeUInt16BE(label.length, 72);
  label.copy(buf, 74);
  return buf;
}

export function decodeAnnounce(buf: Buffer): Announce | null {
  if (messageType(buf) !== MsgType.announce || buf.length < 74) return null;
  const labelLen = buf.readUInt16BE(72);
  const blockSize = buf.readUInt16BE(14);
  const objectBytes = u64(buf, 16);
  const state = buf[12] as number;
  if (labelLen > MAX_TEXT_BYTES || buf.length !== 74 + labelLen || blockSize === 0 || blockSize > MAX_BLOCK_SIZE || objectBytes < 0 || state > 3) return null;
  const window = buf.readUInt32BE(24);
  if (window === 0 || Math.ceil(objectBytes / blockSize) > 0xffffffff) return null;
  return {
    session: sessionOf(buf),
    state,
    digestIsSha256: ((buf[13] as number) & 1) === 1,
    digestFinal: ((buf[13] as number) & 2) === 2,
    blockSize,
    objectBytes,
    window,
    head: buf.readUInt32BE(28),
    rateKbps: buf.readUInt32BE(32),
    joined: buf.readUInt16BE(36),
    expected: buf.readUInt16BE(38),
    digest: Buffer.from(buf.subarray(40, 72)),
    label: buf.toString('utf8', 74, 74 + labelLen),
  };
}

/** Writes a DATA header at `off` (the payload follows at off + DATA_HEADER_BYTES). */
export function writeDataHeader(buf: Buffer, off: number, s: SessionId, block: number, seq: number): void {
  buf.writeUInt32BE(0x464d0100 | MsgType.data, off);
  buf.writeUInt32BE(s.hi >>> 0, off + 4);
  buf.writeUInt32BE(s.lo >>> 0, off + 8);
  buf.writeUInt32BE(block >>> 0, off + 12);
  buf.writeUInt32BE(seq >>> 0, off + 16);
}

/** First word of every DATA datagram of this version (magic, version, type), for a one-comparison check. */
export const DATA_WORD = (0x464d0100 | MsgType.data) >>> 0;

function receiverMsg(buf: Buffer, type: number, session: SessionId, receiver: SessionId): void {
  header(buf, type, session);
  buf.writeUInt32BE(receiver.hi >>> 0, 12);
  buf.writeUInt32BE(receiver.lo >>> 0, 16);
}

function receiverOf(buf: Buffer): SessionId {
  return { hi: buf.readUInt32BE(12), lo: buf.readUInt32BE(16) };
}

export function encodeJoin(j: Join): Buffer {
  const buf = Buffer.alloc(28);
  receiverMsg(buf, MsgType.join, j.session, j.receiver);
  buf.writeUInt32BE(j.contig, 20);
  buf.writeUInt32BE(j.window, 24);
  return buf;
}

export function decodeJoin(buf: Buffer): Join | null {
  if (messageType(buf) !== MsgType.join || buf.length !== 28) return null;
  const window = buf.readUInt32BE(24);
  if (window === 0) return null;
  return { session: sessionOf(buf), receiver: receiverOf(buf), contig: buf.readUInt32BE(20), window };
}

export function encodeStatus(st: Status): Buffer {
  if (st.nakBits > MAX_NAK_BITS) throw new RangeError(`at most ${MAX_NAK_BITS} missing blocks per status, got ${st.nakBits}`);
  const bytes = Math.ceil(st.nakBits / 8);
  const buf = Buffer.alloc(46 + bytes + (st.maxSeq === undefined ? 0 : 4));
  receiverMsg(buf, MsgType.status, st.session, st.receiver);
  buf.writeUInt32BE(st.contig >>> 0, 20);
  buf.writeUInt32BE(st.highest >>> 0, 24);
  buf.writeUInt32BE(st.received >>> 0, 28);
  buf.writeUInt32BE(st.seqLost >>> 0, 32);
  buf.writeUInt32BE(st.rxDropped >>> 0, 36);
  buf.writeUInt32BE(st.nakBase >>> 0, 40);
  buf.writeUInt16BE(st.nakBits, 44);
  buf.set(st.naks.subarray(0, bytes), 46);
  if (st.maxSeq !== undefined) buf.writeUInt32BE(st.maxSeq >>> 0, 46 + bytes);
  return buf;
}

export function decodeStatus(buf: Buffer): Status | null {
  if (messageType(buf) !== MsgType.status || buf.length < 46) return null;
  const nakBits = buf.readUInt16BE(44);
  const bytes = Math.ceil(nakBits / 8);
  // The bitmap's length follows from nakBits, so the optional maxSeq after it is unambiguous.
  const withSeq = buf.length === 50 + bytes;
  if (nakBits > MAX_NAK_BITS || (buf.length !== 46 + bytes && !withSeq)) return null;
  const contig = buf.readUInt32BE(20);
  const highest = buf.readUInt32BE(24);
  const nakBase = buf.readUInt32BE(40);
  if (highest < contig || nakBase < contig) return null;
  return {
    session: sessionOf(buf),
    receiver: receiverOf(buf),
    contig,
    highest,
    received: buf.readUInt32BE(28),
    seqLost: buf.readUInt32BE(32),
    rxDropped: buf.readUInt32BE(36),
    nakBase,
    nakBits,
    naks: new Uint8Array(buf.buffer, buf.byteOffset + 46, bytes),
    ...(withSeq ? { maxSeq: buf.readUInt32BE(46 + bytes) } : {}),
  };
}

function encodeCoded(type: number, session: SessionId, receiver: SessionId, code: number, reason: string): Buffer {
  const r = text(reason);
  const buf = Buffer.alloc(22 + r.length);
  receiverMsg(buf, type, session, receiver);
  buf[20] = code;
  buf[21] = r.length;
  r.copy(buf, 22);
  return buf;
}

function decodeCoded(buf: Buffer, type: number): { session: SessionId; receiver: SessionId; code: number; reason: string } | null {
  if (messageType(buf) !== type || buf.length < 22) return null;
  const len = buf[21] as number;
  if (len > MAX_TEXT_BYTES || buf.length !== 22 + len) return null;
  return { session: sessionOf(buf), receiver: receiverOf(buf), code: buf[20] as number, reason: buf.toString('utf8', 22, 22 + len) };
}

export function encodeDone(d: Done): Buffer {
  return encodeCoded(MsgType.done, d.session, d.receiver, d.result, d.reason);
}

export function decodeDone(buf: Buffer): Done | null {
  const c = decodeCoded(buf, MsgType.done);
  return c && c.code <= 3 ? { session: c.session, receiver: c.receiver, result: c.code, reason: c.reason } : null;
}

export function encodeControl(c: Control): Buffer {
  return encodeCoded(MsgType.control, c.session, c.receiver, c.code, c.reason);
}

export function decodeControl(buf: Buffer): Control | null {
  const c = decodeCoded(buf, MsgType.control);
  return c && Object.values(ControlCode).includes(c.code as 1) ? c : null;
}

/** Blocks in an object of `bytes` bytes. */
export function blockCount(bytes: number, blockSize: number): number {
  return Math.ceil(bytes / blockSize);
}
