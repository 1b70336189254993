import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  ControlCode,
  DATA_HEADER_BYTES,
  DATA_WORD,
  MAX_NAK_BITS,
  decodeAnnounce,
  decodeControl,
  decodeDone,
  decodeJoin,
  decodeStatus,
  encodeAnnounce,
  encodeControl,
  encodeDone,
  encodeJoin,
  encodeStatus,
  messageType,
  parseSessionIdHex,
  sameSession,
  sessionIdHex,
  writeDataHeader,
  type Announce,
} from './codec.js';

const session = { hi: 0xdeadbeef, lo: 0x01020304 };
const receiver = { hi: 7, lo: 0xffffffff };

test('session ids: hex round trip, and only 16 lower-case hex digits parse', () => {
  assert.equal(sessionIdHex(session), 'deadbeef01020304');
  assert.deepEqual(parseSessionIdHex('deadbeef01020304'), session);
  for (const bad of ['', 'DEADBEEF01020304', 'deadbeef0102030', 'deadbeef010203045', 'xyz']) assert.equal(parseSessionIdHex(bad), null);
});

test('ANNOUNCE round trip, with a size beyond 32 bits and a label cut on a character boundary', () => {
  const a: Announce = {
    session,
    state: 1,
    digestIsSha256: true,
    digestFinal: false,
    blockSize: 1440,
    objectBytes: 5 * 2 ** 32 + 17,
    window: 8192,
    head: 12345,
    rateKbps: 800_000,
    joined: 3,
    expected: 8,
    digest: randomBytes(32),
    label: 'é'.repeat(150),
  };
  const d = decodeAnnounce(encodeAnnounce(a));
  assert.ok(d);
  assert.equal(d.objectBytes, a.objectBytes);
  assert.equal(d.digestFinal, false);
  assert.equal(d.digestIsSha256, true);
  assert.deepEqual(d.digest, a.digest);
  assert.equal(d.label, 'é'.repeat(100)); // 200 bytes at most, never half a character
});

test('DATA header: one word says "DATA of this version", then session, block and sequence', () => {
  const buf = Buffer.alloc(DATA_HEADER_BYTES + 4);
  writeDataHeader(buf, 0, session, 0xfffffffe, 42);
  assert.equal(buf.readUInt32BE(0), DATA_WORD);
  assert.ok(sameSession(buf, session));
  assert.ok(!sameSession(buf, { hi: session.hi, lo: 0 }));
  assert.equal(buf.readUInt32BE(12), 0xfffffffe);
  assert.equal(buf.readUInt32BE(16), 42);
});

test('JOIN, STATUS, DONE and CONTROL round trip', () => {
  assert.deepEqual(decodeJoin(encodeJoin({ session, receiver, contig: 9, window: 8192 })), { session, receiver, contig: 9, window: 8192 });
  const naks = new Uint8Array(MAX_NAK_BITS / 8);
  naks[0] = 0b101;
  naks[1023] = 0x80;
  const st = decodeStatus(encodeStatus({ session, receiver, contig: 10, highest: 9000, received: 5, seqLost: 1, rxDropped: 2, nakBase: 10, nakBits: MAX_NAK_BITS, naks }));
  assert.ok(st);
  assert.equal(st.nakBits, MAX_NAK_BITS);
  assert.equal(st.naks[0], 0b101);
  assert.equal(st.naks[1023], 0x80);
  assert.deepEqual(decodeDone(encodeDone({ session, receiver, result: 1, reason: 'sha256 mismatch' })), { session, receiver, result: 1, reason: 'sha256 mismatch' });
  assert.deepEqual(decodeControl(encodeControl({ session, receiver, code: ControlCode.dropped, reason: 'too slow' })), { session, receiver, code: ControlCode.dropped, reason: 'too slow' });
  assert.throws(() => encodeStatus({ session, receiver, contig: 0, highest: 0, received: 0, seqLost: 0, rxDropped: 0, nakBase: 0, nakBits: MAX_NAK_BITS + 1, naks }), /at most 8192/);
});

test('STATUS carries the highest sequence number taken after its bitmap, or leaves it out', () => {
  const base = { session, receiver, contig: 3, highest: 40, received: 30, seqLost: 2, rxDropped: 0, nakBase: 3, nakBits: 11, naks: new Uint8Array([0xff, 0x07]) };
  const withSeq = encodeStatus({ ...base, maxSeq: 0xfffffffe });
  const without = encodeStatus(base);
  assert.equal(withSeq.length, without.length + 4);
  assert.equal(decodeStatus(withSeq)?.maxSeq, 0xfffffffe);
  assert.equal(decodeStatus(without)?.maxSeq, undefined);
  assert.deepEqual([...(decodeStatus(withSeq)?.naks ?? [])], [0xff, 0x07]);
  // One to three bytes more than the bitmap: neither form.
  for (const extra of [1, 2, 3]) assert.equal(decodeStatus(Buffer.concat([without, Buffer.alloc(extra)])), null, `${extra} byte(s) more`);
  assert.equal(decodeStatus(Buffer.concat([withSeq, Buffer.alloc(1)])), null);
});

test('malformed datagrams decode to null, never throw', () => {
  const good = [
    encodeAnnounce({ session, state: 0, digestIsSha256: true, digestFinal: true, blockSize: 1440, objectBytes: 1, window: 1, head: 0, rateKbps: 0, joined: 0, expected: 0, digest: Buffer.alloc(32), label: 'x' }),
    encodeJoin({ session, receiver, contig: 0, window: 1 }),
    encodeStatus({ session, receiver, contig: 0, highest: 0, received: 0, seqLost: 0, rxDropped: 0, nakBase: 0, nakBits: 9, naks: new Uint8Array(2) }),
    encodeDone({ session, receiver, result: 0, reason: '' }),
    encodeControl({ session, receiver, code: ControlCode.bye, reason: 'ok' }),
  ];
  const decoders = [decodeAnnounce, decodeJoin, decodeStatus, decodeDone, decodeControl];
  for (const [i, buf] of good.entries()) {
    for (let len = 0; len < buf.length; len++) for (const d of decoders) assert.equal(d(buf.subarray(0, len)), null, `type ${i + 1} cut to ${len}`);
    for (const d of decoders) assert.equal(d(Buffer.concat([buf, Buffer.alloc(1)])), null, `type ${i + 1} with a byte more`);
    const wrongVersion = Buffer.from(buf);
    wrongVersion[2] = 2;
    assert.equal(messageType(wrongVersion), 0);
  }
  // Semantically impossible values.
  const zeroBlock = Buffer.from(good[0] as Buffer);
  zeroBlock.writeUInt16BE(0, 14);
  assert.equal(decodeAnnounce(zeroBlock), null);
  const huge = Buffer.from(good[0] as Buffer);
  huge.writeUInt32BE(0xffffffff, 16); // beyond 2^53
  assert.equal(decodeAnnounce(huge), null);
  const backwards = Buffer.from(good[2] as Buffer);
  backwards.writeUInt32BE(5, 20); // contig 5, highest 0
  assert.equal(decodeStatus(backwards), null);
  const badCode = Buffer.from(good[4] as Buffer);
  badCode[20] = 99;
  assert.equal(decodeControl(badCode), null);
  // Random bytes: no throw.
  for (let i = 0; i < 2000; i++) {
    const b = randomBytes(1 + (i % 120));
    if (i % 2) b.writeUInt16BE(0x464d, 0);
    if (i % 3 && b.length > 2) b[2] = 1;
    for (const d of decoders) d(b);
  }
});
