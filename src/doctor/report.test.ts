import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ago, exitStatus, formatCheck, formatReport, type Check } from './report.js';

const c = (status: Check['status'], fix: string | null = null): Check => ({ id: 'x', status, title: 'port udp/69 (TFTP)', detail: 'held by dnsmasq (pid 7)', fix });

test('formatCheck() prints one line: status, title, what was seen, and the fix of a problem', () => {
  assert.equal(formatCheck(c('fail', 'stop it')), 'FAIL  port udp/69 (TFTP): held by dnsmasq (pid 7) -> stop it');
  assert.equal(formatCheck(c('warn', 'look')), 'warn  port udp/69 (TFTP): held by dnsmasq (pid 7) -> look');
  assert.equal(formatCheck(c('ok', 'never shown')), 'ok    port udp/69 (TFTP): held by dnsmasq (pid 7)');
  assert.equal(formatCheck({ ...c('info'), detail: 'two\n  lines' }), 'info  port udp/69 (TFTP): two lines');
});

test('formatReport() ends with a summary; exitStatus() is 1 only for failures', () => {
  const report = formatReport([c('ok'), c('warn', 'x'), c('info')]);
  assert.match(report, /\nNo problem found: 1 ok, 1 warning, 0 failures\.\n$/);
  assert.equal(exitStatus([c('ok'), c('warn', 'x'), c('info')]), 0);
  assert.equal(exitStatus([c('ok'), c('fail', 'x')]), 1);
  assert.match(formatReport([c('fail', 'x'), c('fail', 'y')]), /2 checks failed: 0 ok, 0 warnings, 2 failures\.\n$/);
});

test('ago() says never, seconds, minutes, hours or days', () => {
  const now = Date.parse('2026-12-07T12:00:00Z');
  assert.equal(ago(null, now), 'never');
  assert.equal(ago('2026-12-07T11:59:48Z', now), '12 s ago');
  assert.equal(ago('2026-12-07T11:55:00Z', now), '5 min ago');
  assert.equal(ago('2026-12-07T09:00:00Z', now), '3 h ago');
  assert.equal(ago('2026-12-04T12:00:00Z', now), '3 d ago');
  assert.equal(ago('2026-12-07T12:00:05Z', now), '0 s ago');
});
