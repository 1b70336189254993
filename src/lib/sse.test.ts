import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseParser, sseBlock, sseComment, sseRetry } from './sse.js';

test('sseBlock() writes id, event and one data: line per line; refuses a line break in id or event', () => {
  assert.equal(sseBlock({ id: 'a-1', event: 'task.state', data: '{"x":1}' }), 'id: a-1\nevent: task.state\ndata: {"x":1}\n\n');
  assert.equal(sseBlock({ data: 'one\ntwo\r\nthree' }), 'data: one\ndata: two\ndata: three\n\n');
  assert.equal(sseComment('ping'), ': ping\n\n');
  assert.equal(sseRetry(3000), 'retry: 3000\n\n');
  assert.throws(() => sseBlock({ id: 'a\n1', data: '' }), /SSE id cannot hold a line break/);
  assert.throws(() => sseBlock({ event: 'x\ry', data: '' }), /SSE event/);
  assert.throws(() => sseRetry(1.5), /whole number/);
});

test('SseParser reads what sseBlock() writes, whatever the chunks', () => {
  const text = sseRetry(2000) + sseComment('hello') + sseBlock({ id: 'e-1', event: 'a', data: 'x\ny' }) + sseBlock({ data: '' }) + sseBlock({ id: 'e-2', event: 'b', data: '{}' });
  for (const size of [1, 2, 3, 7, text.length]) {
    const p = new SseParser();
    const got = [];
    for (let i = 0; i < text.length; i += size) got.push(...p.push(text.slice(i, i + size)));
    assert.deepEqual(got, [
      { id: 'e-1', event: 'a', data: 'x\ny' },
      { id: 'e-1', event: 'message', data: '' },
      { id: 'e-2', event: 'b', data: '{}' },
    ], `chunks of ${size}`);
    assert.equal(p.retry, 2000);
    assert.equal(p.lastEventId, 'e-2');
  }
});

test('SseParser as the standard says: CR, LF and CRLF lines (split across chunks), no space after the colon, an id alone dispatches nothing but is kept', () => {
  const p = new SseParser();
  assert.deepEqual(p.push('data:a\r'), []);
  assert.deepEqual(p.push('\ndata: b\r\revent:c\n\n'), [{ id: '', event: 'message', data: 'a\nb' }]);
  assert.deepEqual(p.push('id: x-9\n\n'), []);
  assert.equal(p.lastEventId, 'x-9');
  assert.deepEqual(p.push('event: c\ndata\nunknown: 1\nretry: soon\n\n'), [{ id: 'x-9', event: 'c', data: '' }]);
  assert.equal(p.retry, null);
});
