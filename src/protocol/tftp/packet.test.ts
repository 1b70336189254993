import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  ackBlock,
  decode,
  encode,
  encodingLength,
  errorPacket,
  peekOpcode,
  TftpDecodeError,
  writeDataHeader,
  type TftpPacket,
} from './packet.js';

/** Hex with spaces/newlines and `#` comments allowed. */
function hex(s: string): Buffer {
  return Buffer.from(
    s
      .split('\n')
      .map((l) => l.replace(/#.*/, ''))
      .join('')
      .replace(/\s+/g, ''),
    'hex',
  );
}

/**
 * Real requests, captured with tcpdump on lo (UDP payloads) from the clients
 * installed in the lab: curl 7.88.1, atftp 0.8, tftp-hpa 5.2.
 */
const CAPTURES = {
  // curl -s tftp://127.0.0.1:P/undionly.kpxe --tftp-blksize 1468
  // curl always adds tsize 0 and timeout 6.
  curl: hex(`
    0001                                  # RRQ
    756e64696f6e6c792e6b70786500          # "undionly.kpxe"
    6f6374657400                          # "octet"
    7473697a6500 3000                     # tsize 0
    626c6b73697a6500 3134363800           # blksize 1468
    74696d656f757400 3600                 # timeout 6
  `),
  // atftp --option "blksize 1468" --option "tsize 0" --option "windowsize 16" -g -r pxelinux.cfg/default
  atftp: hex(`
    0001                                          # RRQ
    7078656c696e75782e6366672f64656661756c7400    # "pxelinux.cfg/default"
    6f6374657400                                  # "octet"
    7473697a6500 3000                             # tsize 0
    626c6b73697a6500 3134363800                   # blksize 1468
    77696e646f7773697a6500 313600                 # windowsize 16
  `),
  // tftp -m binary 127.0.0.1 P -c get boot/ipxe.efi (tftp-hpa's client sends no options)
  tftpHpa: hex(`
    0001                          # RRQ
    626f6f742f697078652e65666900  # "boot/ipxe.efi"
    6f6374657400                  # "octet"
  `),
};

function roundTrip(p: TftpPacket): void {
  const bytes = encode(p);
  assert.equal(bytes.length, encodingLength(p));
  assert.deepEqual(decode(bytes), p);
}

test('decode() reads curl RRQ with tsize, blksize and timeout', () => {
  assert.deepEqual(decode(CAPTURES.curl), {
    op: 'RRQ',
    filename: 'undionly.kpxe',
    mode: 'octet',
    options: [
      { name: 'tsize', value: '0' },
      { name: 'blksize', value: '1468' },
      { name: 'timeout', value: '6' },
    ],
  });
});

test('decode() reads atftp RRQ with windowsize', () => {
  const p = decode(CAPTURES.atftp);
  assert.equal(p.op, 'RRQ');
  assert.ok(p.op === 'RRQ');
  assert.equal(p.filename, 'pxelinux.cfg/default');
  assert.deepEqual(p.options.at(-1), { name: 'windowsize', value: '16' });
});

test('decode() reads tftp-hpa RRQ without options', () => {
  assert.deepEqual(decode(CAPTURES.tftpHpa), { op: 'RRQ', filename: 'boot/ipxe.efi', mode: 'octet', options: [] });
});

test('encode() reproduces the captured requests byte for byte', () => {
  for (const [name, bytes] of Object.entries(CAPTURES)) {
    assert.deepEqual(encode(decode(bytes)), bytes, name);
  }
});

test('encode() and decode() round-trip every packet kind', () => {
  roundTrip({ op: 'RRQ', filename: 'a/b.efi', mode: 'netascii', options: [{ name: 'BlkSize', value: '1428' }] });
  roundTrip({ op: 'WRQ', filename: 'x', mode: 'octet', options: [] });
  roundTrip({ op: 'DATA', block: 65535, data: Buffer.from('hello') });
  roundTrip({ op: 'DATA', block: 0, data: Buffer.alloc(0) });
  roundTrip({ op: 'ACK', block: 0 });
  roundTrip({ op: 'ACK', block: 4242 });
  roundTrip({ op: 'ERROR', code: 1, message: 'File not found' });
  roundTrip({ op: 'OACK', options: [{ name: 'tsize', value: '123456' }, { name: 'blksize', value: '1468' }] });
  roundTrip({ op: 'OACK', options: [] });
});

test('encode() writes into a caller buffer at an offset', () => {
  const buf = Buffer.alloc(10, 0xff);
  const out = encode({ op: 'ACK', block: 0x0102 }, buf, 3);
  assert.deepEqual(out, hex('0004 0102'));
  assert.deepEqual(buf, hex('ffffff 00040102 ffffff'));
  assert.throws(() => encode({ op: 'ACK', block: 1 }, buf, 8), RangeError);
});

test('encode() refuses out-of-range block numbers and NUL in strings', () => {
  assert.throws(() => encode({ op: 'ACK', block: 65536 }), RangeError);
  assert.throws(() => encode({ op: 'DATA', block: -1, data: Buffer.alloc(0) }), RangeError);
  assert.throws(() => encode({ op: 'RRQ', filename: 'a\0b', mode: 'octet', options: [] }), TypeError);
});

test('encode() of ERROR and OACK matches the RFC layouts', () => {
  assert.deepEqual(errorPacket(1, 'File not found'), hex('0005 0001 46696c65206e6f7420666f756e64 00'));
  assert.deepEqual(
    encode({ op: 'OACK', options: [{ name: 'blksize', value: '1468' }] }),
    hex('0006 626c6b73697a6500 3134363800'),
  );
});

function decodeError(bytes: Buffer): TftpDecodeError {
  try {
    decode(bytes);
  } catch (err) {
    assert.ok(err instanceof TftpDecodeError);
    return err;
  }
  assert.fail('decode() did not throw');
}

test('decode() names what is wrong with malformed packets', () => {
  assert.equal(decodeError(Buffer.alloc(0)).reason, 'TRUNCATED');
  assert.equal(decodeError(hex('00')).reason, 'TRUNCATED');
  assert.equal(decodeError(hex('0000')).reason, 'BAD_OPCODE');
  assert.equal(decodeError(hex('0007 0000')).reason, 'BAD_OPCODE');
  assert.equal(decodeError(hex('ffff')).message, 'opcode must be 1-6: current value is 65535');
  assert.equal(decodeError(hex('0001')).reason, 'UNTERMINATED_STRING'); // RRQ with nothing
  assert.equal(decodeError(hex('0001 6162')).reason, 'UNTERMINATED_STRING'); // "ab" without NUL
  assert.equal(decodeError(hex('0001 616200')).reason, 'UNTERMINATED_STRING'); // no mode
  assert.equal(decodeError(hex('0001 6162 00 6f63')).reason, 'UNTERMINATED_STRING'); // mode without NUL
  assert.equal(decodeError(hex('0001 00 6f6374657400')).reason, 'EMPTY_FILENAME');
  assert.equal(decodeError(hex('0003 00')).reason, 'TRUNCATED');
  assert.equal(decodeError(hex('0004 00')).reason, 'TRUNCATED');
  assert.equal(decodeError(hex('0005 00')).reason, 'TRUNCATED');
});

test('decode() tolerates untidy option lists', () => {
  // Trailing NUL padding, a name without value, and an unterminated tail are dropped.
  const padded = decode(hex('0001 6100 6f6374657400 7473697a6500 3000 0000 0000'));
  assert.ok(padded.op === 'RRQ');
  assert.deepEqual(padded.options, [{ name: 'tsize', value: '0' }]);
  const odd = decode(hex('0001 6100 6f6374657400 626c6b73697a6500'));
  assert.ok(odd.op === 'RRQ');
  assert.deepEqual(odd.options, []);
  const tail = decode(hex('0001 6100 6f6374657400 7473697a6500 3000 626c6b'));
  assert.ok(tail.op === 'RRQ');
  assert.deepEqual(tail.options, [{ name: 'tsize', value: '0' }]);
  // ACK with trailing bytes, ERROR without NUL.
  assert.deepEqual(decode(hex('0004 0007 dead')), { op: 'ACK', block: 7 });
  assert.deepEqual(decode(hex('0005 0008 6e6f')), { op: 'ERROR', code: 8, message: 'no' });
});

test('decode() keeps non-ASCII file name bytes as latin1 so they round-trip', () => {
  const bytes = hex('0001 c3a9ff00 6f6374657400');
  const p = decode(bytes);
  assert.ok(p.op === 'RRQ');
  assert.equal(p.filename, '\u00c3\u00a9\u00ff');
  assert.deepEqual(encode(p), bytes);
});

test('decode() of DATA returns a view, not a copy', () => {
  const bytes = hex('0003 0001 010203');
  const p = decode(bytes);
  assert.ok(p.op === 'DATA');
  assert.equal(p.data.buffer, bytes.buffer);
});

test('ackBlock() reads ACKs and rejects anything else', () => {
  assert.equal(ackBlock(hex('0004 ffff')), 65535);
  assert.equal(ackBlock(hex('0004 0000')), 0);
  assert.equal(ackBlock(hex('0004 00')), -1);
  assert.equal(ackBlock(hex('0003 0001')), -1);
  assert.equal(ackBlock(hex('0104 0001')), -1);
});

test('writeDataHeader() writes opcode 3 and the block number', () => {
  const h = Buffer.alloc(4);
  writeDataHeader(h, 0xabcd);
  assert.deepEqual(h, hex('0003 abcd'));
});

test('peekOpcode() needs two bytes', () => {
  assert.equal(peekOpcode(hex('00')), null);
  assert.equal(peekOpcode(hex('0006')), 6);
});

test('decode() never throws anything but TftpDecodeError on random input', () => {
  for (let i = 0; i < 5000; i++) {
    const len = i % 40;
    const b = randomBytes(len);
    if (len >= 2 && i % 3 === 0) b[0] = 0; // bias toward valid opcodes
    if (len >= 2 && i % 3 === 0) b[1] = (i % 7) + 1;
    try {
      const p = decode(b);
      // Whatever decodes must re-encode and decode to the same thing.
      if (p.op !== 'ERROR') assert.deepEqual(decode(encode(p)), p);
    } catch (err) {
      assert.ok(err instanceof TftpDecodeError, String(err));
    }
  }
});
