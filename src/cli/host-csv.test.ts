import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csvFields, parseHostCsv } from './host-csv.js';

test('CSV fields: plain, quoted, quotes inside quotes, empty ones, an unclosed quote', () => {
  assert.deepEqual(csvFields('a,b,,c'), ['a', 'b', '', 'c']);
  assert.deepEqual(csvFields('"a,1", "say ""hi""" ,x'), ['a,1', 'say "hi"', 'x']);
  assert.deepEqual(csvFields(''), ['']);
  assert.equal(csvFields('"open,x'), null);
});

test('a host CSV with a header in any order, groups split on ; or |, comments and blank lines skipped', () => {
  const text = '\uFEFFname,MAC,groups,address\r\n# a comment\r\npc1,52:54:00:00:00:01,room-1;lab|all,10.0.0.5\r\n\r\n,52-54-00-00-00-02,,\n';
  assert.deepEqual(parseHostCsv(text), [
    { mac: '52:54:00:00:00:01', name: 'pc1', groups: ['room-1', 'lab', 'all'], ip: '10.0.0.5' },
    { mac: '52-54-00-00-00-02' },
  ]);
});

test('a host CSV without a header takes mac,name,ip,entry,groups', () => {
  assert.deepEqual(parseHostCsv('525400000003,pc3,,debian,g1\n'), [{ mac: '525400000003', name: 'pc3', entry: 'debian', groups: ['g1'] }]);
});

test('bad CSV says which line and what was expected', () => {
  assert.throws(() => parseHostCsv('mac,colour\n'), /line 1: unknown column "colour": expected mac, name, ip, entry, groups/);
  assert.throws(() => parseHostCsv('name\npc\n'), /line 1: the header has no mac column/);
  assert.throws(() => parseHostCsv('mac,name\n525400000001,a,b\n'), /line 2: 3 fields, expected at most 2/);
  assert.throws(() => parseHostCsv('name,mac\npc,\n'), /line 2: no MAC address/);
  assert.throws(() => parseHostCsv('mac\n"52:54\n'), /line 2: a quoted field is not closed/);
});
