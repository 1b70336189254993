import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeHelp, escapeLabelValue, formatExposition, formatFamily, formatValue } from './exposition.js';

test('escapeLabelValue() escapes backslash, double quote and newline, and nothing else', () => {
  assert.equal(escapeLabelValue('plain value/with:chars{}='), 'plain value/with:chars{}=');
  assert.equal(escapeLabelValue('a\\b'), 'a\\\\b');
  assert.equal(escapeLabelValue('say "hi"'), 'say \\"hi\\"');
  assert.equal(escapeLabelValue('two\nlines'), 'two\\nlines');
  assert.equal(escapeLabelValue('\\"\n'), '\\\\\\"\\n');
});

test('escapeHelp() escapes backslash and newline but leaves quotes', () => {
  assert.equal(escapeHelp('a "b" \\ c\nd'), 'a "b" \\\\ c\\nd');
});

test('formatValue() spells integers, decimals, NaN and infinities as Prometheus reads them', () => {
  assert.equal(formatValue(0), '0');
  assert.equal(formatValue(12345678901), '12345678901');
  assert.equal(formatValue(1.5), '1.5');
  assert.equal(formatValue(NaN), 'NaN');
  assert.equal(formatValue(Infinity), '+Inf');
  assert.equal(formatValue(-Infinity), '-Inf');
});

test('formatFamily() writes HELP and TYPE lines, then samples sorted, labels sorted by name', () => {
  const text = formatFamily({
    name: 'fleetboot_dhcp_answers_total',
    help: 'DHCP answers sent.\nBy kind.',
    type: 'counter',
    samples: [
      { labels: { kind: 'offer', reason: 'tftp' }, value: 2 },
      { labels: { reason: 'ipxe-script', kind: 'ack' }, value: 1 },
    ],
  });
  assert.equal(
    text,
    [
      '# HELP fleetboot_dhcp_answers_total DHCP answers sent.\\nBy kind.',
      '# TYPE fleetboot_dhcp_answers_total counter',
      'fleetboot_dhcp_answers_total{kind="ack",reason="ipxe-script"} 1',
      'fleetboot_dhcp_answers_total{kind="offer",reason="tftp"} 2',
      '',
    ].join('\n'),
  );
});

test('formatFamily() writes a sample without labels bare, and a family without samples as HELP and TYPE only', () => {
  assert.equal(formatFamily({ name: 'up', help: 'h', type: 'gauge', samples: [{ value: 1 }, ] }), '# HELP up h\n# TYPE up gauge\nup 1\n');
  assert.equal(formatFamily({ name: 'x_total', help: 'h', type: 'counter', samples: [] }), '# HELP x_total h\n# TYPE x_total counter\n');
});

test('formatFamily() escapes label values in the sample line', () => {
  const text = formatFamily({ name: 'm', help: 'h', type: 'gauge', samples: [{ labels: { file: 'a"b\\c\nd' }, value: 1 }] });
  assert.ok(text.includes('m{file="a\\"b\\\\c\\nd"} 1\n'), text);
});

test('formatFamily() refuses invalid metric and label names, and a sample given twice (TypeError)', () => {
  assert.throws(() => formatFamily({ name: '1bad', help: 'h', type: 'gauge', samples: [] }), /Metric name "1bad" is not valid/);
  assert.throws(() => formatFamily({ name: 'ok', help: 'h', type: 'gauge', samples: [{ labels: { 'bad-name': 'x' }, value: 1 }] }), /Label name "bad-name" is not valid/);
  assert.throws(() => formatFamily({ name: 'ok', help: 'h', type: 'gauge', samples: [{ labels: { __x: 'x' }, value: 1 }] }), /Label name "__x"/);
  assert.throws(() => formatFamily({ name: 'ok', help: 'h', type: 'gauge', samples: [{ labels: { a: 'x' }, value: 1 }, { labels: { a: 'x' }, value: 2 }] }), /appears twice/);
});

test('formatExposition() joins families in order and refuses a name given twice', () => {
  const a = { name: 'a', help: 'A', type: 'counter' as const, samples: [{ value: 1 }] };
  const b = { name: 'b', help: 'B', type: 'gauge' as const, samples: [{ value: 2 }] };
  assert.equal(formatExposition([b, a]), '# HELP b B\n# TYPE b gauge\nb 2\n# HELP a A\n# TYPE a counter\na 1\n');
  assert.throws(() => formatExposition([a, a]), /given twice/);
});
