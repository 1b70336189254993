/**
 * Wake-on-LAN magic packets (AMD's "Magic Packet" white paper, 1995): six
 * bytes 0xFF, then the target's MAC sixteen times (102 bytes), optionally
 * followed by a SecureOn password of 4 or 6 bytes. Network cards look for
 * that pattern anywhere in a frame; sent as a UDP datagram (port 9,
 * "discard", by custom; 7 on some tools) to a broadcast address, so that the
 * switch floods it to a machine that has no address and no ARP entry.
 * Pure: bytes <-> structs, no I/O, nothing else of ours.
 */

export const WOL_PORT = 9;
/** Sync stream + 16 repetitions of the MAC. */
export const MAGIC_PACKET_BYTES = 6 + 16 * 6;

export class WolDecodeError extends Error {
  override readonly name = 'WolDecodeError';
}

/** A MAC as 6 bytes: a Buffer of 6, or text (aa:bb:cc:dd:ee:ff, aa-bb-..., aabbccddeeff). */
export function macBytes(mac: string | Uint8Array): Buffer {
  if (typeof mac !== 'string') {
    if (mac.length !== 6) throw new RangeError(`A MAC address has 6 bytes: got ${mac.length}`);
    return Buffer.from(mac);
  }
  const hex = /^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/i.test(mac) ? mac.replace(/[:-]/g, '') : '';
  if (hex.length !== 12) throw new RangeError(`Invalid MAC address ${JSON.stringify(mac)}: expected six hex bytes such as 52:54:00:12:34:56`);
  return Buffer.from(hex, 'hex');
}

/** Lower-case colon form of 6 bytes. */
export function macText(b: Uint8Array): string {
  return Buffer.from(b).toString('hex').replace(/(..)(?!$)/g, '$1:');
}

/**
 * The magic packet for `mac`, written into `buf` at `offset` when given
 * (it must have room), else into a new buffer. `password`: a SecureOn
 * password of 4 or 6 bytes, appended.
 */
export function encodeMagicPacket(mac: string | Uint8Array, opts: { password?: Uint8Array; buf?: Buffer; offset?: number } = {}): Buffer {
  const m = macBytes(mac);
  const pw = opts.password;
  if (pw !== undefined && pw.length !== 4 && pw.length !== 6) throw new RangeError(`A SecureOn password has 4 or 6 bytes: got ${pw.length}`);
  const len = encodedLength(pw?.length ?? 0);
  const offset = opts.offset ?? 0;
  const buf = opts.buf ?? Buffer.alloc(len);
  if (buf.length - offset < len) throw new RangeError(`No room for a ${len}-byte magic packet at offset ${offset} of a ${buf.length}-byte buffer`);
  buf.fill(0xff, offset, offset + 6);
  for (let i = 0; i < 16; i++) m.copy(buf, offset + 6 + i * 6);
  if (pw) Buffer.from(pw).copy(buf, offset + MAGIC_PACKET_BYTES);
  return opts.buf ? buf.subarray(offset, offset + len) : buf;
}

/** Bytes of a magic packet with a password of `passwordBytes` (0, 4 or 6). */
export function encodedLength(passwordBytes = 0): number {
  return MAGIC_PACKET_BYTES + passwordBytes;
}

export interface MagicPacket {
  /** Lower-case colon form. */
  mac: string;
  password: Buffer | null;
}

/**
 * Read a magic packet (the whole datagram: 102, 106 or 108 bytes). Throws
 * WolDecodeError saying what is wrong.
 */
export function decodeMagicPacket(b: Uint8Array): MagicPacket {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length !== MAGIC_PACKET_BYTES && buf.length !== MAGIC_PACKET_BYTES + 4 && buf.length !== MAGIC_PACKET_BYTES + 6) {
    throw new WolDecodeError(`A magic packet has ${MAGIC_PACKET_BYTES} bytes (or 4 or 6 more for a SecureOn password): got ${buf.length}`);
  }
  for (let i = 0; i < 6; i++) {
    if (buf[i] !== 0xff) throw new WolDecodeError(`A magic packet starts with six bytes 0xff: byte ${i} is 0x${(buf[i] ?? 0).toString(16).padStart(2, '0')}`);
  }
  const mac = buf.subarray(6, 12);
  for (let i = 1; i < 16; i++) {
    const rep = buf.subarray(6 + i * 6, 12 + i * 6);
    if (!rep.equals(mac)) throw new WolDecodeError(`A magic packet repeats the MAC 16 times: repetition ${i + 1} is ${macText(rep)}, not ${macText(mac)}`);
  }
  return { mac: macText(mac), password: buf.length > MAGIC_PACKET_BYTES ? Buffer.from(buf.subarray(MAGIC_PACKET_BYTES)) : null };
}
