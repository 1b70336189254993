import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodeMagicPacket, encodeMagicPacket, encodedLength, macBytes, MAGIC_PACKET_BYTES, WolDecodeError } from './wol.js';

// The magic packet for 52:54:00:12:34:56: six 0xff, then the MAC sixteen times.
const FIXTURE = Buffer.from(
  [
    'ffffffffffff', // sync stream
    ...Array.from({ length: 16 }, () => '525400123456'),
  ].join(''),
  'hex',
);

test('encodeMagicPacket() writes six 0xff then the MAC sixteen times (102 bytes)', () => {
  assert.equal(FIXTURE.length, MAGIC_PACKET_BYTES);
  assert.deepEqual(encodeMagicPacket('52:54:00:12:34:56'), FIXTURE);
  assert.deepEqual(encodeMagicPacket('52-54-00-12-34-56'), FIXTURE);
  assert.deepEqual(encodeMagicPacket('525400123456'), FIXTURE);
  assert.deepEqual(encodeMagicPacket(Buffer.from('525400123456', 'hex')), FIXTURE);
  assert.equal(encodedLength(), 102);
});

test('encodeMagicPacket() writes into a caller buffer at an offset, with an optional SecureOn password', () => {
  const buf = Buffer.alloc(120, 0xaa);
  const out = encodeMagicPacket('52:54:00:12:34:56', { buf, offset: 10, password: Buffer.from([1, 2, 3, 4]) });
  assert.equal(out.length, 106);
  assert.deepEqual(buf.subarray(10, 112), FIXTURE);
  assert.deepEqual([...buf.subarray(112, 116)], [1, 2, 3, 4]);
  assert.equal(buf[9], 0xaa);
  assert.throws(() => encodeMagicPacket('52:54:00:12:34:56', { buf: Buffer.alloc(50) }), RangeError);
  assert.throws(() => encodeMagicPacket('52:54:00:12:34:56', { password: Buffer.alloc(5) }), /4 or 6 bytes/);
  assert.throws(() => macBytes('52:54:00:12:34'), /expected six hex bytes/);
  assert.throws(() => macBytes('52:54-00:12:34:56'), /expected six hex bytes/);
});

test('decodeMagicPacket() round-trips and says what is wrong with a bad packet', () => {
  assert.deepEqual(decodeMagicPacket(FIXTURE), { mac: '52:54:00:12:34:56', password: null });
  const pw = Buffer.from('a1b2c3d4e5f6', 'hex');
  assert.deepEqual(decodeMagicPacket(encodeMagicPacket('aa:bb:cc:dd:ee:ff', { password: pw })), { mac: 'aa:bb:cc:dd:ee:ff', password: pw });
  assert.throws(() => decodeMagicPacket(FIXTURE.subarray(0, 101)), /102 bytes .*got 101/);
  const noSync = Buffer.from(FIXTURE);
  noSync[3] = 0xfe;
  assert.throws(() => decodeMagicPacket(noSync), /byte 3 is 0xfe/);
  const badRep = Buffer.from(FIXTURE);
  badRep[6 + 6 * 7] = 0x00;
  assert.throws(() => decodeMagicPacket(badRep), /repetition 8 is 00:54:00:12:34:56, not 52:54:00:12:34:56/);
});

test('decodeMagicPacket() fuzz: random MACs round-trip, random bytes only ever throw WolDecodeError', () => {
  for (let i = 0; i < 500; i++) {
    const mac = randomBytes(6);
    assert.deepEqual(decodeMagicPacket(encodeMagicPacket(mac)).mac, mac.toString('hex').replace(/(..)(?!$)/g, '$1:'));
    const junk = randomBytes(i % 3 === 0 ? 102 : i % 200);
    if (i % 5 === 0) junk.fill(0xff, 0, Math.min(6, junk.length));
    try {
      decodeMagicPacket(junk);
    } catch (err) {
      assert.ok(err instanceof WolDecodeError, String(err));
    }
  }
});
