import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { MANIFEST_FORMAT, MANIFEST_VERSION, parseManifest, type Manifest } from '../model/manifest.js';
import { parseSfdiskDump, parseSfdiskJson } from './disk.js';
import { checkDiskFits, formatBytes, gptFirstUsable, planTable } from './table.js';
import { isExtendedType } from './table.js';

const fixture = (name: string): string => readFileSync(new URL(`../../test/fixtures/agent/${name}`, import.meta.url), 'utf8');

/** A manifest for a captured fixture table (every non-extended partition with a stream). */
function manifestOf(base: string, fs: (n: number) => string | null = () => 'ext4'): Manifest {
  const t = parseSfdiskJson(fixture(`${base}.json`));
  return parseManifest({
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    name: 'test',
    createdAt: '2026-01-01T00:00:00Z',
    source: { mac: null, taskId: null, disk: '/dev/loop0', diskModel: null },
    diskBytes: 100 * 2 ** 20,
    table: { type: t.type, sectorSize: t.sectorSize, id: t.id, sfdisk: fixture(`${base}.dump`) },
    partitions: t.partitions
      .filter((p) => !(t.type === 'dos' && isExtendedType(p.type)))
      .map((p) => ({ number: p.number, start: p.start, sectors: p.sectors, type: p.type, uuid: p.uuid, name: p.name, bootable: p.bootable, filesystem: fs(p.number), tool: 'raw', compression: 'zstd', file: `p${p.number}.raw.zst`, sizeBytes: p.sectors * 512, usedBytes: null, streamBytes: 1, sha256: '0'.repeat(64) })),
  });
}

const SECTORS_1G = 2 ** 30 / 512;

test('planTable(keep) replays the dump without device and last-lba, renamed for the target', () => {
  const m = manifestOf('gpt-names');
  const plan = planTable(m, 'keep', '/dev/nvme0n1', SECTORS_1G);
  assert.equal(plan.type, 'gpt');
  assert.doesNotMatch(plan.script, /^device:|^last-lba:|loop2/m);
  assert.match(plan.script, /^label: gpt$/m);
  assert.match(plan.script, /^label-id: 8D7B6821-5644-D442-9394-1243F9773758$/m);
  assert.match(plan.script, /^first-lba: 34$/m);
  assert.match(plan.script, /^\/dev\/nvme0n1p4 : start=30720, size=20480, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=[0-9A-F-]+, name="root, fs"$/m);
  assert.match(plan.script, /attrs="RequiredPartition LegacyBIOSBootable"/);
  assert.deepEqual(plan.expected.map((e) => e.number), [1, 2, 4]);
});

test('planTable(keep) keeps an MBR extended container and cuts it at the end of a smaller disk', () => {
  const m = manifestOf('dos-logical');
  const plan = planTable(m, 'keep', '/dev/sda', 100_000);
  assert.deepEqual(plan.others, [3]);
  assert.match(plan.script, /^\/dev\/sda3 : start=40960, size=59040, type=5$/m);
  assert.match(plan.script, /^\/dev\/sda2 : start=20480, size=20480, type=7, bootable$/m);
  assert.match(plan.script, /^\/dev\/sda6 : start=55296, size=20480, type=b$/m);
  assert.match(planTable(m, 'keep', '/dev/sda', SECTORS_1G).script, /^\/dev\/sda3 : start=40960, size=163840, type=5$/m);
});

test('planTable(gpt) converts MBR types, drops the bootable flag and skips the extended partition', () => {
  const m = manifestOf('dos-logical');
  const plan = planTable(m, 'gpt', '/dev/vda', SECTORS_1G);
  assert.equal(plan.type, 'gpt');
  const lines = plan.script.trim().split('\n');
  assert.deepEqual(lines.slice(0, 4), ['label: gpt', 'unit: sectors', 'first-lba: 34', 'sector-size: 512']);
  assert.deepEqual(lines.filter((l) => l.startsWith('/dev/')), [
    '/dev/vda1 : start=63, size=20000, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4',
    '/dev/vda2 : start=20480, size=20480, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7',
    '/dev/vda5 : start=43008, size=10240, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F',
    '/dev/vda6 : start=55296, size=20480, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7',
  ]);
  assert.doesNotMatch(plan.script, /bootable|type=5\b/);
});

test('planTable(gpt) maps ef to the EFI System GUID and fd to Linux RAID', () => {
  const m = manifestOf('dos-primary');
  const [p1, p2] = m.partitions;
  if (!p1 || !p2) throw new Error('fixture');
  p1.type = 'fd';
  p2.type = 'ef';
  const s = planTable(m, 'gpt', '/dev/sda', SECTORS_1G).script;
  assert.match(s, /sda1 : .*type=A19D880F-05FC-4D3B-A006-743F0F84911E/);
  assert.match(s, /sda2 : .*type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B/);
});

test('planTable(gpt) fails clearly for a partition before the first usable LBA or an unknown type', () => {
  const m = manifestOf('dos-primary');
  const p1 = m.partitions[0];
  if (!p1) throw new Error('fixture');
  p1.start = 1;
  p1.sectors = 2047;
  p1.sizeBytes = 2047 * 512;
  assert.throws(() => planTable(m, 'gpt', '/dev/sda', SECTORS_1G), /partition 1 starts at sector 1, before GPT's first usable sector 34/);
  const m2 = manifestOf('dos-primary');
  (m2.partitions[0] as { type: string }).type = 'a5';
  assert.throws(() => planTable(m2, 'gpt', '/dev/sda', SECTORS_1G), /partition 1 has MBR type a5, which has no known GPT equivalent/);
  assert.equal(gptFirstUsable(4096), 6);
});

test('planTable(mbr) converts GPT types and refuses what MBR cannot hold', () => {
  const m = manifestOf('gpt', (n) => (n === 2 ? 'vfat' : 'ext4'));
  const s = planTable(m, 'mbr', '/dev/sdb', SECTORS_1G).script;
  assert.match(s, /^label: dos$/m);
  assert.match(s, /^\/dev\/sdb1 : start=2048, size=65536, type=83$/m);
  assert.match(s, /^\/dev\/sdb2 : start=67584, size=129024, type=c$/m);
  // BIOS boot partition: no MBR equivalent.
  assert.throws(() => planTable(manifestOf('gpt-names'), 'mbr', '/dev/sdb', SECTORS_1G), /partition 1 is a BIOS boot partition/);
  // A partition number above 4 (logicals 5, 6 of a GPT-typed layout), or more than 4 partitions.
  const logical = manifestOf('dos-logical');
  logical.table.type = 'gpt';
  for (const p of logical.partitions) p.type = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
  assert.throws(() => planTable(logical, 'mbr', '/dev/sdb', SECTORS_1G), /partition 5 cannot be an MBR primary partition/);
  const five = manifestOf('dos-logical');
  five.table.type = 'gpt';
  five.partitions.push({ ...(five.partitions[3] as Manifest['partitions'][number]), number: 7, start: 80000, file: 'p7.raw.zst' });
  assert.throws(() => planTable(five, 'mbr', '/dev/sdb', SECTORS_1G), /5 partitions; an MBR table holds at most 4/);
  // Beyond 2 TiB.
  const big = manifestOf('gpt');
  const p2 = big.partitions[1];
  if (!p2) throw new Error('fixture');
  p2.start = 2 ** 32 - 100;
  assert.throws(() => planTable(big, 'mbr', '/dev/sdb', 2 ** 33), /beyond sector 2\^32/);
});

test('checkDiskFits() refuses a small disk with both sizes in the message', () => {
  const m = manifestOf('dos-primary'); // last partition ends at sector 196608 (96 MiB)
  assert.throws(() => checkDiskFits(m, 'keep', { path: '/dev/sda', sizeBytes: 64 * 2 ** 20, sectorSize: 512 }), { message: 'disk /dev/sda is 64.0 MiB, image needs 96.0 MiB' });
  checkDiskFits(m, 'keep', { path: '/dev/sda', sizeBytes: 96 * 2 ** 20, sectorSize: 512 });
  // GPT keeps 33 sectors at the end for its backup: the same disk is too small.
  assert.throws(() => checkDiskFits(m, 'gpt', { path: '/dev/sda', sizeBytes: 96 * 2 ** 20, sectorSize: 512 }), /is 100663296 bytes, image needs 100680192 bytes/);
  assert.throws(() => checkDiskFits(m, 'keep', { path: '/dev/sda', sizeBytes: 2 ** 30, sectorSize: 4096 }), /4096-byte sectors/);
  assert.equal(formatBytes(10.2 * 2 ** 30), '10.2 GiB');
  assert.equal(formatBytes(8 * 2 ** 30), '8.0 GiB');
});

test('the dump fixtures parse into the same partitions as the json fixtures', () => {
  for (const base of ['dos-primary', 'dos-logical', 'gpt', 'gpt-names']) {
    const j = parseSfdiskJson(fixture(`${base}.json`));
    const d = parseSfdiskDump(fixture(`${base}.dump`));
    assert.deepEqual(d.partitions.map((l) => Number(l.fields.find(([k]) => k === 'start')?.[1])), j.partitions.map((p) => p.start), base);
  }
});
