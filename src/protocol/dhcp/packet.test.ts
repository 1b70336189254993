import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { decodePacket, encodePacket, encodedLength, createPacket, hardwareAddress, MIN_PACKET_LENGTH, cStringField } from './packet.js';
import { describePacket } from './describe.js';
import { DhcpDecodeError } from './errors.js';
import { getOption, messageType, MessageType, setOption } from './options.js';
import { loadFixtures, testdataDir } from './testdata/fixtures.js';
import { assertGolden } from '../../../test/golden.js';

const fixtures = loadFixtures();

test('fixtures are present for every firmware family', () => {
  for (const prefix of ['seabios-ipxe-', 'ovmf-edk2-', 'ovmf-ipxe-', 'ovmf-http-']) {
    assert.ok(fixtures.some((f) => f.name.startsWith(prefix) && f.name.includes('discover')), `no DISCOVER fixture for ${prefix}`);
  }
  assert.ok(fixtures.some((f) => f.name.endsWith('request-4011')), 'no boot server (4011) REQUEST fixture');
});

test('decodePacket() matches the golden description of every captured packet', () => {
  const text = fixtures.map((f) => `== ${f.name}\n${f.comments.map((c) => `# ${c}`).join('\n')}\n${describePacket(decodePacket(f.bytes))}\n`).join('\n');
  const golden = join(testdataDir, 'golden.txt');
  assertGolden(golden, text, { rerun: 'node --import tsx --test src/protocol/dhcp/packet.test.ts' });
});

test('encodePacket() re-encodes every captured packet byte-identically', () => {
  for (const f of fixtures) {
    const p = decodePacket(f.bytes);
    assert.equal(encodedLength(p), f.bytes.length, f.name);
    assert.deepEqual(encodePacket(p), f.bytes, f.name);
    // into a caller's buffer at an offset
    const target = Buffer.alloc(f.bytes.length + 10, 0xee);
    encodePacket(p, target, 5);
    assert.deepEqual(target.subarray(5, 5 + f.bytes.length), f.bytes, `${f.name} at offset`);
    assert.equal(target[4], 0xee);
  }
});

test('decodePacket() accepts an offset and length', () => {
  const f = fixtures[0];
  assert.ok(f);
  const framed = Buffer.concat([Buffer.from([1, 2, 3]), f.bytes, Buffer.from([9, 9])]);
  assert.deepEqual(encodePacket(decodePacket(framed, 3, f.bytes.length)), f.bytes);
});

test('encodePacket() pads a new packet to the 300-byte BOOTP minimum and splits long options', () => {
  const p = createPacket({ xid: 0x01020304, chaddr: Buffer.from('525400fb6101', 'hex') });
  setOption(p, 53, Buffer.from([MessageType.DISCOVER]));
  assert.equal(encodedLength(p), MIN_PACKET_LENGTH);
  const b = encodePacket(p);
  assert.equal(b.length, 300);
  const back = decodePacket(b);
  assert.equal(back.xid, 0x01020304);
  assert.equal(hardwareAddress(back), '52:54:00:fb:61:01');
  assert.equal(messageType(back), MessageType.DISCOVER);
  setOption(p, 200, Buffer.alloc(600, 7));
  const long = decodePacket(encodePacket(p));
  assert.equal(long.options.filter((o) => o.code === 200).length, 3);
  assert.deepEqual(getOption(long, 200), Buffer.alloc(600, 7), 'RFC 3396 concatenation');
});

function base(): Buffer {
  const p = createPacket({ xid: 7 });
  setOption(p, 53, Buffer.from([1]));
  return encodePacket(p);
}

function expectError(b: Buffer, re: RegExp): void {
  assert.throws(() => decodePacket(b), (e: unknown) => e instanceof DhcpDecodeError && re.test(e.message));
}

test('decodePacket() rejects a truncated header', () => {
  expectError(Buffer.alloc(0), /truncated header: need at least 240 bytes.*got 0/);
  expectError(base().subarray(0, 239), /got 239/);
});

test('decodePacket() rejects a wrong magic cookie', () => {
  const b = base();
  b.writeUInt32BE(0xdeadbeef, 236);
  expectError(b, /wrong magic cookie: expected 63825363, got deadbeef/);
});

test('decodePacket() rejects an option running past the end', () => {
  const b = Buffer.concat([base().subarray(0, 240), Buffer.from([53, 1, 1, 60, 50, 0x50, 0x58])]);
  expectError(b, /option 60 at offset 243 declares 50 bytes but only 2 remain/);
  expectError(Buffer.concat([base().subarray(0, 240), Buffer.from([53])]), /option 53 at offset 240 has no length byte/);
});

test('decodePacket() accepts a missing END', () => {
  const b = Buffer.concat([base().subarray(0, 240), Buffer.from([53, 1, 1])]);
  const p = decodePacket(b);
  assert.equal(p.hasEnd, false);
  assert.equal(messageType(p), 1);
});

test('decodePacket() reads overloaded file and sname fields once, without loops', () => {
  const b = base();
  // options: 53=1, 52=3, END
  Buffer.from([53, 1, 1, 52, 1, 3, 255]).copy(b, 240);
  // file field: 67 "x.efi", then 52 again (must not recurse), END
  Buffer.from([67, 5, ...Buffer.from('x.efi'), 52, 1, 3, 255]).copy(b, 108);
  // sname field: 66 "srv"
  Buffer.from([66, 3, ...Buffer.from('srv'), 255]).copy(b, 44);
  const p = decodePacket(b);
  assert.deepEqual(p.options.map((o) => `${o.code}${o.from ? `@${o.from}` : ''}`), ['53', '52', '67@file', '52@file', '66@sname']);
  assert.equal(getOption(p, 67)?.toString(), 'x.efi');
  assert.deepEqual(encodePacket(p), b, 'round trip keeps the overloaded fields raw');
});

test('decodePacket() rejects bad overload values and overlong options inside overloaded fields', () => {
  const b = base();
  Buffer.from([53, 1, 1, 52, 1, 9, 255]).copy(b, 240);
  expectError(b, /option 52 \(overload\) must be one byte 1-3/);
  const c = base();
  Buffer.from([53, 1, 1, 52, 1, 2, 255]).copy(c, 240);
  Buffer.from([66, 200]).copy(c, 44);
  expectError(c, /option 66 at offset 44 declares 200 bytes.*overloaded sname field/);
});

test('decodePacket() rejects absurd sizes and hardware address lengths', () => {
  expectError(Buffer.alloc(65536), /65536 bytes is larger than any DHCP message/);
  const b = base();
  b[2] = 200;
  expectError(b, /hlen 200 is larger than the 16-byte chaddr field/);
});

test('cStringField() refuses a name that does not fit', () => {
  assert.throws(() => cStringField('x'.repeat(128), 128), RangeError);
  assert.equal(cStringField('abc', 8).toString('hex'), '6162630000000000');
});
