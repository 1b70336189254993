import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { formatLogLine, prettyDestination } from './log-pretty.js';
import { createLogger, resolveLogFormat } from './log.js';

/** 2026-12-02 14:05:09.123 in local time, as pino writes it (epoch ms). */
const T = new Date(2026, 11, 2, 14, 5, 9, 123).getTime();

test('formatLogLine() prints time, level, subsystem, message, then key=value', () => {
  const line = JSON.stringify({ level: 30, time: T, pid: 42, hostname: 'h', subsystem: 'http', msg: 'HTTP listening', port: 8080, baseUrl: 'http://10.0.0.5:8080' });
  assert.equal(formatLogLine(line), '14:05:09.123 INFO  http    HTTP listening port=8080 baseUrl=http://10.0.0.5:8080');
});

test('formatLogLine() quotes strings only when needed and flattens objects and arrays', () => {
  const line = JSON.stringify({
    level: 40,
    time: T,
    subsystem: 'dhcp',
    msg: 'odd',
    why: 'two words',
    empty: '',
    eq: 'a=b',
    ok: true,
    none: null,
    copied: ['undionly.kpxe', 'snponly.efi'],
    mixed: [1, { a: 2 }],
    ports: { dhcp: 67, pxe: 4011 },
    deep: { a: { b: { c: 1 } } },
  });
  assert.equal(
    formatLogLine(line),
    '14:05:09.123 WARN  dhcp    odd why="two words" empty="" eq="a=b" ok=true none=null copied=undionly.kpxe,snponly.efi mixed=[1,{"a":2}] ports.dhcp=67 ports.pxe=4011 deep.a.b={"c":1}',
  );
});

test('formatLogLine() shows an error by its message (and its type unless plain Error)', () => {
  const err = { type: 'TypeError', message: 'bad thing', stack: 'TypeError: bad thing\n    at x' };
  assert.equal(formatLogLine(JSON.stringify({ level: 50, time: T, msg: 'failed', err })), '14:05:09.123 ERROR         failed err="TypeError: bad thing"');
  assert.equal(formatLogLine(JSON.stringify({ level: 50, time: T, msg: 'failed', err: { ...err, type: 'Error' } })), '14:05:09.123 ERROR         failed err="bad thing"');
});

test('formatLogLine() colours the level when asked and passes non-JSON lines through', () => {
  assert.equal(formatLogLine(JSON.stringify({ level: 60, time: T, msg: 'x' }), { colors: true }), '14:05:09.123 \x1b[1;31mFATAL\x1b[0m         x');
  assert.equal(formatLogLine('not json {'), 'not json {');
  assert.equal(formatLogLine('[1,2]'), '[1,2]');
});

test('prettyDestination() writes one line per event, synchronously, through a pino logger', () => {
  const lines: string[] = [];
  const sink = { write: (s: string) => lines.push(s) };
  const dest = prettyDestination(sink);
  dest.write(`${JSON.stringify({ level: 30, time: T, msg: 'a' })}\n${JSON.stringify({ level: 20, time: T, msg: 'b' })}\n`);
  assert.deepEqual(lines, ['14:05:09.123 INFO          a\n', '14:05:09.123 DEBUG         b\n']);

  const out: string[] = [];
  const w = new Writable({ write(chunk: Buffer, _enc, cb) { out.push(chunk.toString()); cb(); } });
  const log = createLogger('info', w, { format: 'pretty' }).child({ subsystem: 'tftp' });
  log.info({ file: 'undionly.kpxe', bytes: 70_000 }, 'sent');
  log.debug('hidden');
  assert.equal(out.length, 1);
  assert.match(out[0] ?? '', /^\d\d:\d\d:\d\d\.\d{3} INFO  tftp    sent file=undionly\.kpxe bytes=70000\n$/);
});

test("resolveLogFormat() makes 'auto' pretty on a terminal only; createLogger() stays JSON by default", () => {
  assert.equal(resolveLogFormat('auto', { isTTY: true }), 'pretty');
  assert.equal(resolveLogFormat('auto', { isTTY: false }), 'json');
  assert.equal(resolveLogFormat('auto', {}), 'json');
  assert.equal(resolveLogFormat('json', { isTTY: true }), 'json');
  assert.equal(resolveLogFormat('pretty', {}), 'pretty');
  const out: string[] = [];
  const w = new Writable({ write(chunk: Buffer, _enc, cb) { out.push(chunk.toString()); cb(); } });
  createLogger('info', w).info({ a: 1 }, 'hello');
  createLogger('info', w, { format: 'auto' }).info('auto on a non-terminal');
  assert.equal((JSON.parse(out[0] ?? '') as { msg: string; a: number }).msg, 'hello');
  assert.equal((JSON.parse(out[1] ?? '') as { msg: string }).msg, 'auto on a non-terminal');
});
