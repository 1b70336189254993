import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import * as der from './asn1.js';

const hex = (b: Buffer): string => b.toString('hex');

test('encodeLength() uses the short form below 128 and the shortest long form above', () => {
  const cases: Array<[number, string]> = [
    [0, '00'],
    [127, '7f'], // the last short form
    [128, '8180'], // the first long form: 0x81, one length byte
    [255, '81ff'],
    [256, '820100'], // two length bytes
    [65535, '82ffff'],
    [65536, '83010000'],
  ];
  for (const [n, want] of cases) assert.equal(hex(der.encodeLength(n)), want, `length ${n}`);
  assert.throws(() => der.encodeLength(-1), RangeError);
  assert.throws(() => der.encodeLength(1.5), RangeError);
});

test('readTlv() reads back TLVs whose lengths sit on each boundary of the length encoding', () => {
  for (const n of [0, 1, 126, 127, 128, 129, 254, 255, 256, 257, 65534, 65535, 65536]) {
    const value = randomBytes(n);
    const encoded = Buffer.concat([Buffer.from([0xee]), der.octetString(value), Buffer.from([0xee])]);
    const t = der.readTlv(encoded, 1);
    assert.equal(t.tag, der.TAG.OCTET_STRING);
    assert.equal(t.start, 1);
    assert.ok(t.content.equals(value), `value of ${n} bytes`);
    assert.equal(t.end, encoded.length - 1, `end of ${n} bytes`);
    // One byte fewer than the length says: refused, never read past the end.
    assert.throws(() => der.readTlv(encoded.subarray(0, encoded.length - 2), 1), der.Asn1DecodeError, `truncated ${n}`);
  }
});

test('readTlv() refuses what DER does not allow, saying what it saw', () => {
  assert.throws(() => der.readTlv(Buffer.from('0480', 'hex')), /indefinite length/);
  assert.throws(() => der.readTlv(Buffer.from('04817f', 'hex')), /longer form than DER's shortest/); // 127 in the long form
  assert.throws(() => der.readTlv(Buffer.from('0482007f', 'hex')), /longer form/); // a leading zero length byte
  assert.throws(() => der.readTlv(Buffer.from('0485', 'hex')), /length of 5 bytes/);
  assert.throws(() => der.readTlv(Buffer.from('1f01', 'hex')), /high tag number/);
  assert.throws(() => der.readTlv(Buffer.from('04', 'hex')), /ends before its length/);
  assert.throws(() => der.readTlv(Buffer.from('0482ff', 'hex')), /ends inside its 2-byte length/);
  assert.throws(() => der.readTlv(Buffer.alloc(0)), /A TLV was expected at byte 0/);
  assert.throws(() => der.expectTlv(der.integer(1), 0, der.TAG.SEQUENCE, 'A SEQUENCE'), /A SEQUENCE was expected at byte 0 \(tag 0x30\): found tag 0x2/);
});

test('readTlv() on random bytes only ever throws Asn1DecodeError', () => {
  for (let i = 0; i < 5000; i++) {
    const buf = randomBytes(1 + (i % 40));
    try {
      const t = der.readTlv(buf);
      assert.ok(t.end <= buf.length);
    } catch (err) {
      assert.ok(err instanceof der.Asn1DecodeError, `${buf.toString('hex')}: ${String(err)}`);
    }
  }
});

test('integer() is minimal and positive', () => {
  assert.equal(hex(der.integer(0)), '020100');
  assert.equal(hex(der.integer(2)), '020102');
  assert.equal(hex(der.integer(127)), '02017f');
  assert.equal(hex(der.integer(128)), '02020080'); // top bit set: a 0x00 in front keeps it positive
  assert.equal(hex(der.integer(256)), '02020100');
  assert.equal(hex(der.integer(2n ** 64n)), '0209010000000000000000');
  assert.equal(hex(der.integer(Buffer.from('000000ff', 'hex'))), '020200ff'); // leading zeros dropped, one put back
  assert.equal(hex(der.integer(Buffer.from('0000', 'hex'))), '020100');
  assert.throws(() => der.integer(-1), RangeError);
});

test('oid() encodes arcs in base 128 (X.690 8.19)', () => {
  assert.equal(hex(der.oid('1.2.840.10045.4.3.2')), '06082a8648ce3d040302'); // ecdsa-with-SHA256
  assert.equal(hex(der.oid('2.5.29.17')), '0603551d11'); // subjectAltName
  assert.equal(hex(der.oid('1.3.6.1.5.5.7.3.1')), '06082b06010505070301'); // serverAuth
  assert.equal(hex(der.oid('2.999')), '06028837'); // first arc 2: 80 + 999 = 1079 in two bytes
  for (const bad of ['1', '3.1', '1.40', 'a.b', '1..2']) assert.throws(() => der.oid(bad), RangeError, bad);
});

test('namedBits() drops trailing zero bits (keyUsage)', () => {
  assert.equal(hex(der.namedBits([0])), '03020780'); // digitalSignature: 7 unused bits
  assert.equal(hex(der.namedBits([5, 6])), '03020106'); // keyCertSign + cRLSign
  assert.equal(hex(der.namedBits([0, 8])), '0303078080'); // into a second byte
  assert.equal(hex(der.namedBits([])), '030100');
});

test('time() is UTCTime through 2049 and GeneralizedTime from 2050, in whole seconds', () => {
  assert.equal(der.time(new Date('2049-12-31T23:59:59.999Z')).toString('latin1'), '\x17\x0d491231235959Z');
  assert.equal(der.time(new Date('2050-01-01T00:00:00Z')).toString('latin1'), '\x18\x0f20500101000000Z');
  assert.equal(der.time(new Date('1999-02-03T04:05:06Z')).toString('latin1'), '\x17\x0d990203040506Z');
  assert.throws(() => der.time(new Date('1949-12-31T00:00:00Z')), RangeError);
  assert.throws(() => der.time(new Date(NaN)), RangeError);
});

test('setOf() sorts its elements by their encodings, sequence() keeps the order', () => {
  const a = der.integer(1);
  const b = der.integer(2);
  assert.equal(hex(der.setOf(b, a)), `3106${hex(a)}${hex(b)}`);
  assert.equal(hex(der.sequence(b, a)), `3006${hex(b)}${hex(a)}`);
  const kids = der.readChildren(der.readTlv(der.sequence(b, a)).content);
  assert.deepEqual(kids.map((k) => hex(k.content)), ['02', '01']);
});

test('boolean(), explicit(), implicit(), ia5String() and bitString()', () => {
  assert.equal(hex(der.boolean(true)), '0101ff');
  assert.equal(hex(der.explicit(0, der.integer(2))), 'a003020102');
  assert.equal(hex(der.implicit(2, Buffer.from('a'))), '820161');
  assert.throws(() => der.ia5String('é'), RangeError);
  assert.throws(() => der.bitString(Buffer.alloc(0), 1), RangeError);
  assert.throws(() => der.tlv(0x1f, Buffer.alloc(0)), RangeError);
});
