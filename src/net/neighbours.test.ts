import { strict as assert } from 'node:assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { neighbourMac, parseArpTable } from './neighbours.js';

const TABLE = `IP address       HW type     Flags       HW address            Mask     Device
10.0.0.7         0x1         0x2         52:54:00:AA:BB:01     *        br0
10.0.0.8         0x1         0x0         00:00:00:00:00:00     *        br0
10.0.0.9         0x1         0x6         52:54:00:aa:bb:02     *        br0
garbage
`;

test('parseArpTable() keeps complete entries, lower-cased', () => {
  const t = parseArpTable(TABLE);
  assert.equal(t.get('10.0.0.7'), '52:54:00:aa:bb:01');
  assert.equal(t.get('10.0.0.8'), undefined, 'an incomplete entry says nothing');
  assert.equal(t.get('10.0.0.9'), '52:54:00:aa:bb:02');
  assert.equal(t.size, 2);
});

test('neighbourMac() reads the table file; null when unknown or unreadable', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fb-arp-'));
  const f = join(dir, 'arp');
  writeFileSync(f, TABLE);
  assert.equal(await neighbourMac('10.0.0.7', f), '52:54:00:aa:bb:01');
  assert.equal(await neighbourMac('10.0.0.99', f), null);
  assert.equal(await neighbourMac('10.0.0.7', join(dir, 'missing')), null);
});
