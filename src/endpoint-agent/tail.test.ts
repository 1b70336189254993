import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { TailBuffer } from './tail.js';

test('TailBuffer keeps everything while it fits', () => {
  const t = new TailBuffer(16);
  t.push(Buffer.from('hello '));
  t.push(Buffer.from('world'));
  assert.equal(t.text(), 'hello world');
  assert.equal(t.truncated, false);
});

test('TailBuffer keeps the last bytes across many small and large writes', () => {
  const t = new TailBuffer(10);
  let all = '';
  for (let i = 0; i < 100; i++) {
    const s = `${i},`;
    all += s;
    t.push(Buffer.from(s));
    assert.equal(t.bytes().toString(), all.slice(-10));
  }
  t.push(Buffer.from('x'.repeat(25) + '0123456789'));
  assert.equal(t.text(), '0123456789');
  assert.equal(t.truncated, true);
  assert.equal(t.total, all.length + 35);
});

test('TailBuffer replaces a character cut at the front by one U+FFFD', () => {
  const t = new TailBuffer(5);
  t.push(Buffer.from('aé€')); // 61 c3a9 e282ac: 6 bytes, the first byte dropped... keep 'é€' whole
  assert.equal(t.text(), 'é€');
  t.push(Buffer.from('b')); // keeps a9 e2 82 ac 62: the é is cut
  assert.equal(t.text(), '\ufffd€b');
  t.push(Buffer.from('c')); // e2 82 ac 62 63
  assert.equal(t.text(), '€bc');
  t.push(Buffer.from('d')); // 82 ac 62 63 64: two continuation bytes
  assert.equal(t.text(), '\ufffdbcd');
  assert.ok(Buffer.byteLength(t.text()) <= 5 + 3);
});

test('TailBuffer refuses a bad capacity', () => {
  assert.throws(() => new TailBuffer(0), RangeError);
});
