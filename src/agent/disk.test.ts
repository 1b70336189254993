/**
 * sfdisk parsing against output captured from loop devices
 * (test/fixtures/agent/*.json|.dump: sfdisk 2.38 on Debian 12), device
 * names, blkid output and disk choice on a fake /sys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { naturalCompare, parseBlkidExport, parseSfdiskDump, parseSfdiskJson, partitionDevice, partitionNumberOf, pickDisk, unquote } from './disk.js';

const fixture = (name: string): string => readFileSync(new URL(`../../test/fixtures/agent/${name}`, import.meta.url), 'utf8');

test('parseSfdiskJson() reads an MBR table with a bootable FAT32 partition', () => {
  const t = parseSfdiskJson(fixture('dos-primary.json'));
  assert.equal(t.type, 'dos');
  assert.equal(t.id, '0x1f84c0e0');
  assert.equal(t.sectorSize, 512);
  assert.deepEqual(t.partitions.map((p) => [p.number, p.start, p.sectors, p.type, p.bootable]), [
    [1, 2048, 65536, '83', false],
    [2, 67584, 129024, 'c', true],
  ]);
});

test('parseSfdiskJson() numbers MBR logical partitions from their device names', () => {
  const t = parseSfdiskJson(fixture('dos-logical.json'));
  assert.deepEqual(t.partitions.map((p) => p.number), [1, 2, 3, 5, 6]);
  assert.equal(t.partitions[2]?.type, '5');
  assert.equal(t.partitions[0]?.start, 63);
});

test('parseSfdiskJson() reads GPT names, uuids, attrs and a numbering gap', () => {
  const t = parseSfdiskJson(fixture('gpt-names.json'));
  assert.equal(t.type, 'gpt');
  assert.equal(t.firstLba, 34);
  assert.equal(t.lastLba, 204766);
  assert.deepEqual(t.partitions.map((p) => p.number), [1, 2, 4]);
  const esp = t.partitions[1];
  assert.equal(esp?.type, 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B');
  assert.equal(esp?.name, 'EFI System Partition');
  assert.equal(esp?.attrs, 'RequiredPartition LegacyBIOSBootable');
  assert.equal(t.partitions[2]?.name, 'root, fs');
  assert.match(t.partitions[2]?.uuid ?? '', /^[0-9A-F-]{36}$/);
});

test('parseSfdiskJson() refuses other labels and garbage', () => {
  assert.throws(() => parseSfdiskJson('{"partitiontable":{"label":"sun","partitions":[]}}'), /not supported/);
  assert.throws(() => parseSfdiskJson('nope'), /not JSON/);
});

test('parseSfdiskDump() keeps header order and quoted fields with commas', () => {
  const d = parseSfdiskDump(fixture('gpt-names.dump'));
  assert.deepEqual(d.header.map(([k]) => k), ['label', 'label-id', 'device', 'unit', 'first-lba', 'last-lba', 'sector-size']);
  assert.equal(d.partitions.length, 3);
  const p4 = d.partitions[2];
  assert.equal(p4?.device, '/dev/loop2p4');
  assert.deepEqual(p4?.fields.map(([k]) => k), ['start', 'size', 'type', 'uuid', 'name']);
  assert.equal(unquote(p4?.fields[4]?.[1] ?? ''), 'root, fs');
  const mbr = parseSfdiskDump(fixture('dos-primary.dump'));
  assert.deepEqual(mbr.partitions[1]?.fields, [['start', '67584'], ['size', '129024'], ['type', 'c'], ['bootable', null]]);
});

test('partitionDevice() and partitionNumberOf() follow the kernel naming', () => {
  assert.equal(partitionDevice('/dev/sda', 1), '/dev/sda1');
  assert.equal(partitionDevice('/dev/vdb', 12), '/dev/vdb12');
  assert.equal(partitionDevice('/dev/nvme0n1', 1), '/dev/nvme0n1p1');
  assert.equal(partitionDevice('/dev/loop0', 3), '/dev/loop0p3');
  assert.equal(partitionDevice('/dev/mmcblk0', 1), '/dev/mmcblk0p1');
  assert.equal(partitionNumberOf('/dev/nvme0n1p15'), 15);
  assert.equal(partitionNumberOf('/dev/sda2'), 2);
  assert.throws(() => partitionNumberOf('/dev/sda'), /partition number/);
});

test('parseBlkidExport() reads KEY=VALUE lines', () => {
  const kv = parseBlkidExport('DEVNAME=/dev/loop0p2\nUUID=FDBA-CE2E\nVERSION=FAT32\nTYPE=vfat\nUSAGE=filesystem\n');
  assert.equal(kv['TYPE'], 'vfat');
  assert.equal(kv['VERSION'], 'FAT32');
});

test('naturalCompare() orders disk names as people do', () => {
  assert.deepEqual(['sdaa', 'sdb', 'sda', 'nvme0n10', 'nvme0n2'].sort(naturalCompare), ['nvme0n2', 'nvme0n10', 'sda', 'sdb', 'sdaa']);
});

function fakeSys(disks: Record<string, { size: number; removable?: boolean; model?: string; partitionOf?: string }>): string {
  const root = mkdtempSync(join(tmpdir(), 'fleetboot-sys-'));
  const put = (p: string, v: string): void => {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), v + '\n');
  };
  for (const [name, d] of Object.entries(disks)) {
    if (d.partitionOf) {
      put(`class/block/${name}/partition`, '1');
      put(`class/block/${name}/size`, String(d.size));
      continue;
    }
    for (const base of ['block', 'class/block']) {
      put(`${base}/${name}/size`, String(d.size));
      put(`${base}/${name}/removable`, d.removable ? '1' : '0');
      put(`${base}/${name}/queue/logical_block_size`, '512');
      if (d.model) put(`${base}/${name}/device/model`, d.model + '   ');
    }
  }
  return root;
}

test('pickDisk() takes the first fixed disk, skipping removable, empty, loop, ram, sr and dm', () => {
  const root = fakeSys({ loop0: { size: 2048 }, ram0: { size: 2048 }, sr0: { size: 2048 }, 'dm-0': { size: 2048 }, sda: { size: 4096, removable: true }, sdb: { size: 0 }, sdc: { size: 8192, model: 'QEMU HARDDISK' }, vda: { size: 1 << 20 } });
  try {
    const d = pickDisk(null, { sysRoot: root });
    assert.equal(d.path, '/dev/sdc');
    assert.equal(d.sizeBytes, 8192 * 512);
    assert.equal(d.model, 'QEMU HARDDISK');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('pickDisk() prefers nvme in natural order and fails clearly without disks', () => {
  const root = fakeSys({ nvme0n1: { size: 100 }, nvme1n1: { size: 100 } });
  const empty = fakeSys({ loop0: { size: 100 } });
  try {
    assert.equal(pickDisk(null, { sysRoot: root }).name, 'nvme0n1');
    assert.throws(() => pickDisk(null, { sysRoot: empty }), /no fixed disk found/);
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(empty, { recursive: true, force: true });
  }
});
