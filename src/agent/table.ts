/**
 * The partition table a deploy writes: the size check done before anything
 * is written, and the sfdisk script for 'keep' (the captured dump, fitted to
 * the new disk), 'gpt' (an MBR layout converted) and 'mbr' (a GPT layout
 * converted). Pure: no I/O.
 */
import { gptTailSectors, requiredDiskBytes, type Manifest, type ManifestPartition, type TableType } from '../model/manifest.js';
import { partitionDevice, parseSfdiskDump, partitionNumberOf, type ExpectedPartition } from './disk.js';
import { AgentError } from './errors.js';

export type TableChoice = 'keep' | 'gpt' | 'mbr';

/** The table type a deploy writes for a choice. */
export function targetTableType(m: Manifest, choice: TableChoice): TableType {
  if (choice === 'keep') return m.table.type;
  return choice === 'gpt' ? 'gpt' : 'dos';
}

/** "8.0 GiB", "512.0 MiB", "1.5 TiB": binary units, one decimal. */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${v.toFixed(1)} ${units[i] as string}`;
}

/**
 * Throws a clear AgentError when the image does not fit: "disk /dev/sda is
 * 8.0 GiB, image needs 10.2 GiB". Also refuses a different sector size.
 */
export function checkDiskFits(m: Manifest, choice: TableChoice, disk: { path: string; sizeBytes: number; sectorSize: number }): void {
  if (disk.sectorSize !== m.table.sectorSize) {
    throw new AgentError(`disk ${disk.path} has ${disk.sectorSize}-byte sectors, the image was captured with ${m.table.sectorSize}-byte sectors`);
  }
  const need = requiredDiskBytes(m, targetTableType(m, choice));
  if (disk.sizeBytes < need) {
    let needText = formatBytes(need);
    let haveText = formatBytes(disk.sizeBytes);
    if (needText === haveText) {
      needText = `${need} bytes`;
      haveText = `${disk.sizeBytes} bytes`;
    }
    throw new AgentError(`disk ${disk.path} is ${haveText}, image needs ${needText}`);
  }
}

/** First usable LBA of a GPT with 128 entries: protective MBR + header + entry array. */
export function gptFirstUsable(sectorSize: number): number {
  return 2 + Math.ceil((128 * 128) / sectorSize);
}

const GUID = {
  linux: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
  swap: '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F',
  msData: 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7',
  efi: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  raid: 'A19D880F-05FC-4D3B-A006-743F0F84911E',
  lvm: 'E6D6D379-F507-44C2-A23C-238F2A3DF928',
  winRe: 'DE94BBA4-06D1-4D40-A16A-BFD50179D6AC',
  biosBoot: '21686148-6449-6E6F-744E-656564454649',
  linuxRootX64: '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709',
  linuxHome: '933AC7E1-2EB4-4F13-B844-0E14E2AEF915',
} as const;

/** MBR type (hex, lower case, no 0x) -> GPT type GUID. */
const MBR_TO_GPT: Record<string, string> = {
  '83': GUID.linux,
  '82': GUID.swap,
  '7': GUID.msData,
  '1': GUID.msData,
  '4': GUID.msData,
  '6': GUID.msData,
  b: GUID.msData,
  c: GUID.msData,
  e: GUID.msData,
  ef: GUID.efi,
  fd: GUID.raid,
  '8e': GUID.lvm,
  '27': GUID.winRe,
};

const EXTENDED_TYPES = new Set(['5', 'f', '85']);

export function isExtendedType(type: string): boolean {
  return EXTENDED_TYPES.has(type.toLowerCase().replace(/^0x/, ''));
}

function mbrType(t: string): string {
  return t.toLowerCase().replace(/^0x/, '').replace(/^0+(?=.)/, '');
}

/** GPT type GUID -> MBR type, for a partition (FAT data partitions become c, NTFS 7). */
function gptToMbrType(p: ManifestPartition): string {
  const t = p.type.toUpperCase();
  switch (t) {
    case GUID.linux:
    case GUID.linuxRootX64:
    case GUID.linuxHome:
      return '83';
    case GUID.swap:
      return '82';
    case GUID.msData:
      return p.filesystem === 'vfat' ? 'c' : '7';
    case GUID.efi:
      return 'ef';
    case GUID.raid:
      return 'fd';
    case GUID.lvm:
      return '8e';
    case GUID.winRe:
      return '27';
    case GUID.biosBoot:
      throw new AgentError(`partition ${p.number} is a BIOS boot partition (GPT only): it has no MBR equivalent; deploy with --table keep or gpt`);
    default:
      throw new AgentError(`partition ${p.number} has GPT type ${t}, which has no known MBR equivalent; deploy with --table keep or gpt`);
  }
}

export interface TablePlan {
  type: TableType;
  /** The sfdisk script to feed on stdin. */
  script: string;
  /** The partitions the kernel must show afterwards (the manifest's, in 512-byte units). */
  expected: ExpectedPartition[];
  /** Other partition numbers the table holds (MBR extended containers). */
  others: number[];
}

function expectedOf(m: Manifest): ExpectedPartition[] {
  const f = m.table.sectorSize / 512;
  return m.partitions.map((p) => ({ number: p.number, start512: p.start * f, size512: p.sectors * f }));
}

/**
 * The sfdisk script that writes the image's table onto `disk` (a device path,
 * `diskSectors` long) for a choice. Throws an AgentError when the layout
 * cannot be converted.
 */
export function planTable(m: Manifest, choice: TableChoice, disk: string, diskSectors: number): TablePlan {
  const ss = m.table.sectorSize;
  const type = targetTableType(m, choice);
  if (type === m.table.type) return keepPlan(m, disk, diskSectors);
  const lines: string[] = [`label: ${type}`, 'unit: sectors'];
  if (type === 'gpt') {
    const first = gptFirstUsable(ss);
    lines.push(`first-lba: ${first}`);
    lines.push(`sector-size: ${ss}`, '');
    const lastUsable = diskSectors - gptTailSectors(ss) - 1;
    for (const p of [...m.partitions].sort((a, b) => a.number - b.number)) {
      if (p.start < first) throw new AgentError(`partition ${p.number} starts at sector ${p.start}, before GPT's first usable sector ${first}: the MBR layout cannot be converted to GPT; deploy with --table keep`);
      if (p.start + p.sectors - 1 > lastUsable) throw new AgentError(`partition ${p.number} ends past GPT's last usable sector ${lastUsable} of ${disk}`);
      const guid = MBR_TO_GPT[mbrType(p.type)];
      if (!guid) throw new AgentError(`partition ${p.number} has MBR type ${p.type}, which has no known GPT equivalent; deploy with --table keep`);
      // The MBR bootable flag has no GPT meaning: dropped.
      lines.push(`${partitionDevice(disk, p.number)} : start=${p.start}, size=${p.sectors}, type=${guid}`);
    }
  } else {
    lines.push(`sector-size: ${ss}`, '');
    if (m.partitions.length > 4) throw new AgentError(`the image has ${m.partitions.length} partitions; an MBR table holds at most 4 primary partitions; deploy with --table keep or gpt`);
    const limit = 2 ** 32;
    for (const p of [...m.partitions].sort((a, b) => a.number - b.number)) {
      if (p.number > 4) throw new AgentError(`partition ${p.number} cannot be an MBR primary partition (numbers 1-4); deploy with --table keep or gpt`);
      if (p.start + p.sectors > limit) throw new AgentError(`partition ${p.number} ends beyond sector 2^32 (2 TiB with 512-byte sectors), out of MBR's reach; deploy with --table keep or gpt`);
      lines.push(`${partitionDevice(disk, p.number)} : start=${p.start}, size=${p.sectors}, type=${gptToMbrType(p)}`);
    }
  }
  return { type, script: lines.join('\n') + '\n', expected: expectedOf(m), others: [] };
}

/**
 * 'keep': the captured `sfdisk --dump`, minus what ties it to the old disk:
 * the `device:` line, GPT's `last-lba:` (sfdisk refuses one past the end of a
 * smaller disk and leaves a larger disk's tail unused with it; without it
 * sfdisk puts the backup GPT at the real end), and the old device names
 * (sfdisk takes the partition number from the name's trailing digits, so they
 * are renamed to the target's). An MBR extended container that reached past
 * the end of the new disk is cut at the end (its logicals fit: checked).
 */
function keepPlan(m: Manifest, disk: string, diskSectors: number): TablePlan {
  const dump = parseSfdiskDump(m.table.sfdisk);
  const label = dump.header.find(([k]) => k === 'label')?.[1];
  if (label !== m.table.type) throw new AgentError(`the manifest's sfdisk dump has label ${String(label)}, the manifest says ${m.table.type}`);
  const out: string[] = [];
  for (const [k, v] of dump.header) {
    if (k === 'device' || k === 'last-lba') continue;
    if (k === 'sector-size' && Number(v) !== m.table.sectorSize) throw new AgentError(`the manifest's sfdisk dump has sector-size ${v}, the manifest says ${m.table.sectorSize}`);
    out.push(`${k}: ${v}`);
  }
  out.push('');
  const others: number[] = [];
  for (const line of dump.partitions) {
    if (line.device === null) throw new AgentError('the manifest\'s sfdisk dump has a partition line without a device name');
    const n = partitionNumberOf(line.device);
    const fields = line.fields.map(([k, v]): [string, string | null] => [k, v]);
    const type = fields.find(([k]) => k === 'type')?.[1] ?? '';
    if (m.table.type === 'dos' && isExtendedType(type)) {
      others.push(n);
      const startF = fields.find(([k]) => k === 'start');
      const sizeF = fields.find(([k]) => k === 'size');
      const start = Number(startF?.[1]);
      const size = Number(sizeF?.[1]);
      if (sizeF && Number.isFinite(start) && Number.isFinite(size) && start + size > diskSectors) sizeF[1] = String(diskSectors - start);
    } else if (!m.partitions.some((p) => p.number === n)) {
      throw new AgentError(`the manifest's sfdisk dump has partition ${n}, which the image has no stream for`);
    }
    out.push(`${partitionDevice(disk, n)} : ${fields.map(([k, v]) => (v === null ? k : `${k}=${v}`)).join(', ')}`);
  }
  for (const p of m.partitions) {
    if (!dump.partitions.some((l) => l.device !== null && partitionNumberOf(l.device) === p.number)) throw new AgentError(`partition ${p.number} is in the manifest but not in its sfdisk dump`);
  }
  return { type: m.table.type, script: out.join('\n') + '\n', expected: expectedOf(m), others };
}
