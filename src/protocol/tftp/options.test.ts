import { test } from 'node:test';
import assert from 'node:assert/strict';
import { negotiate, type NegotiationLimits } from './options.js';
import type { TftpOption } from './packet.js';

const LIMITS: NegotiationLimits = { maxBlksize: 1468, maxWindowsize: 64 };

function opts(...pairs: [string, string][]): TftpOption[] {
  return pairs.map(([name, value]) => ({ name, value }));
}
function rrq(options: TftpOption[], fileSize: number | null = 1000) {
  return negotiate({ op: 'RRQ', options, fileSize }, LIMITS);
}

test('negotiate() without options gives RFC 1350 defaults and no OACK', () => {
  const n = rrq([]);
  assert.deepEqual(n, { blksize: 512, windowsize: 1, timeoutS: null, tsize: null, oack: [], ignored: [] });
});

test('negotiate() answers curl-style tsize/blksize/timeout with the real size', () => {
  const n = rrq(opts(['tsize', '0'], ['blksize', '1468'], ['timeout', '6']), 987654);
  assert.equal(n.blksize, 1468);
  assert.equal(n.timeoutS, 6);
  assert.equal(n.tsize, 987654);
  assert.deepEqual(n.oack, opts(['tsize', '987654'], ['blksize', '1468'], ['timeout', '6']));
});

test('negotiate() clamps blksize and windowsize to the server limits', () => {
  const n = rrq(opts(['blksize', '65464'], ['windowsize', '65535']));
  assert.equal(n.blksize, 1468);
  assert.equal(n.windowsize, 64);
  assert.deepEqual(n.oack, opts(['blksize', '1468'], ['windowsize', '64']));
  // Above the RFC 2348 range: still a request for "big", clamped.
  assert.equal(rrq(opts(['blksize', '70000'])).blksize, 1468);
});

test('negotiate() ignores absurd values and keeps the defaults', () => {
  for (const [name, value] of [
    ['blksize', '0'],
    ['blksize', '7'],
    ['blksize', '-1'],
    ['blksize', 'abc'],
    ['blksize', ''],
    ['blksize', '1e3'],
    ['blksize', ' 512'],
    ['blksize', '99999999999999999999'],
    ['windowsize', '0'],
    ['windowsize', 'x'],
    ['timeout', '0'],
    ['timeout', '256'],
    ['timeout', '300'],
    ['tsize', 'big'],
  ] as const) {
    const n = rrq(opts([name, value]));
    assert.deepEqual(n.oack, [], `${name}=${value}`);
    assert.equal(n.blksize, 512);
    assert.equal(n.windowsize, 1);
    assert.equal(n.timeoutS, null);
    assert.equal(n.ignored.length, 1);
  }
});

test('negotiate() accepts the RFC bounds', () => {
  assert.equal(rrq(opts(['blksize', '8'])).blksize, 8);
  assert.equal(rrq(opts(['timeout', '1'])).timeoutS, 1);
  assert.equal(rrq(opts(['timeout', '255'])).timeoutS, 255);
  assert.equal(rrq(opts(['windowsize', '1'])).windowsize, 1);
});

test('negotiate() matches names case-insensitively and echoes the client spelling', () => {
  const n = rrq(opts(['BLKSIZE', '1024'], ['WindowSize', '8']));
  assert.deepEqual(n.oack, opts(['BLKSIZE', '1024'], ['WindowSize', '8']));
});

test('negotiate() ignores unknown and repeated options', () => {
  const n = rrq(opts(['multicast', ''], ['blksize', '1024'], ['blksize', '8'], ['utimeout', '1000']));
  assert.equal(n.blksize, 1024);
  assert.deepEqual(n.oack, opts(['blksize', '1024']));
  assert.deepEqual(
    n.ignored.map((i) => i.reason),
    ['unknown option', 'repeated', 'unknown option'],
  );
});

test('negotiate() ignores tsize when the size is unknown and echoes it on WRQ', () => {
  assert.deepEqual(rrq(opts(['tsize', '0']), null).oack, []);
  const w = negotiate({ op: 'WRQ', options: opts(['tsize', '4096']), fileSize: null }, LIMITS);
  assert.deepEqual(w.oack, opts(['tsize', '4096']));
});

test('negotiate() refuses impossible limits', () => {
  assert.throws(() => negotiate({ op: 'RRQ', options: [], fileSize: 0 }, { maxBlksize: 70000, maxWindowsize: 1 }), RangeError);
  assert.throws(() => negotiate({ op: 'RRQ', options: [], fileSize: 0 }, { maxBlksize: 512, maxWindowsize: 0 }), RangeError);
});
