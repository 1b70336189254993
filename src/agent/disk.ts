/**
 * Disks: choosing the target disk, reading its partition table with sfdisk,
 * partition device names, filesystems with blkid, and making the kernel's
 * view of the partitions match a freshly written table.
 *
 * Quirk (this host's kernel, test/fixtures/agent): the kernel does not parse
 * partition tables itself (BLKRRPART "succeeds" and creates nothing), so
 * partitions appear only through `partx -a` (BLKPG). `partx -u` (util-linux
 * 2.38) walks partition numbers 1..count and misses numbers after a gap (a
 * GPT with partitions 1, 2, 4 or MBR logicals 5, 6 after three primaries):
 * refreshPartitions() runs both and then checks every expected partition's
 * start and size in sysfs, deleting and re-adding a stale one.
 */
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TableType } from '../model/manifest.js';
import { AgentError } from './errors.js';
import { runCommand, runOk } from './exec.js';

export interface TablePartition {
  /** Partition number (1-based), from the device name's trailing digits. */
  number: number;
  /** Device node as sfdisk named it (on the source machine). */
  node: string;
  start: number;
  sectors: number;
  /** MBR hex type ("83", "c") or GPT type GUID (upper case). */
  type: string;
  uuid: string | null;
  name: string | null;
  bootable: boolean;
  attrs: string | null;
}

export interface DiskTable {
  type: TableType;
  id: string | null;
  sectorSize: number;
  firstLba: number | null;
  lastLba: number | null;
  partitions: TablePartition[];
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The partition number at the end of a device name (sda1 -> 1, nvme0n1p3 -> 3, loop0p12 -> 12). */
export function partitionNumberOf(node: string): number {
  const m = /([0-9]+)$/.exec(node);
  if (!m?.[1]) throw new AgentError(`cannot tell the partition number of ${node}`);
  return Number(m[1]);
}

/** The device of partition n of a disk: sda -> sda1; nvme0n1, mmcblk0, loop0 (ending in a digit) -> nvme0n1p1. */
export function partitionDevice(disk: string, n: number): string {
  return /[0-9]$/.test(disk) ? `${disk}p${n}` : `${disk}${n}`;
}

/** Parse `sfdisk --json DEV`. */
export function parseSfdiskJson(text: string): DiskTable {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new AgentError('sfdisk --json printed something that is not JSON');
  }
  const pt = isObj(doc) ? doc['partitiontable'] : undefined;
  if (!isObj(pt)) throw new AgentError('sfdisk --json: no "partitiontable" object');
  const label = pt['label'];
  if (label !== 'dos' && label !== 'gpt') throw new AgentError(`partition table type ${String(label)} is not supported (only dos/MBR and gpt)`);
  if (pt['unit'] !== undefined && pt['unit'] !== 'sectors') throw new AgentError(`sfdisk --json: unit ${String(pt['unit'])} is not "sectors"`);
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null);
  const s = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);
  const rawParts = pt['partitions'];
  const parts: TablePartition[] = [];
  for (const p of Array.isArray(rawParts) ? rawParts : []) {
    if (!isObj(p)) continue;
    const node = s(p['node']);
    const start = num(p['start']);
    const size = num(p['size']);
    const type = s(p['type']);
    if (node === null || start === null || size === null || type === null) throw new AgentError(`sfdisk --json: a partition lacks node/start/size/type: ${JSON.stringify(p)}`);
    parts.push({
      number: partitionNumberOf(node),
      node,
      start,
      sectors: size,
      type: label === 'gpt' ? type.toUpperCase() : type.toLowerCase(),
      uuid: s(p['uuid']),
      name: s(p['name']),
      bootable: p['bootable'] === true,
      attrs: s(p['attrs']),
    });
  }
  return {
    type: label,
    id: s(pt['id']),
    sectorSize: num(pt['sectorsize']) ?? 512,
    firstLba: num(pt['firstlba']),
    lastLba: num(pt['lastlba']),
    partitions: parts,
  };
}

export interface DumpLine {
  /** The device name before " : ", or null when the line has none. */
  device: string | null;
  /** Fields in order: [key, value]; a flag ("bootable") has value null. */
  fields: [string, string | null][];
}

export interface SfdiskDump {
  /** Header lines ("label: dos") in order. */
  header: [string, string][];
  partitions: DumpLine[];
}

/** Split "start=  2048, size=65536, type=83, name=\"a, b\", bootable" at the commas outside quotes. */
function splitFields(text: string): [string, string | null][] {
  const out: [string, string | null][] = [];
  let cur = '';
  let inQ = false;
  const push = (): void => {
    const t = cur.trim();
    cur = '';
    if (!t) return;
    const eq = t.indexOf('=');
    if (eq < 0) out.push([t, null]);
    else out.push([t.slice(0, eq).trim(), t.slice(eq + 1).trim()]);
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '\\' && inQ && i + 1 < text.length) {
      cur += c + (text[i + 1] as string);
      i++;
    } else if (c === '"') {
      inQ = !inQ;
      cur += c;
    } else if (c === ',' && !inQ) push();
    else cur += c;
  }
  push();
  return out;
}

/** Parse `sfdisk --dump DEV` (the script format sfdisk also reads back). */
export function parseSfdiskDump(text: string): SfdiskDump {
  const header: [string, string][] = [];
  const partitions: DumpLine[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const sep = line.indexOf(' : ');
    const hdr = /^([a-z-]+):\s*(.*)$/.exec(line);
    if (sep < 0 && hdr && !line.includes('=')) {
      header.push([hdr[1] as string, (hdr[2] as string).trim()]);
      continue;
    }
    if (sep >= 0) partitions.push({ device: line.slice(0, sep).trim(), fields: splitFields(line.slice(sep + 3)) });
    else partitions.push({ device: null, fields: splitFields(line) });
  }
  return { header, partitions };
}

/** Unquote a dump field value: "EFI System" -> EFI System. */
export function unquote(v: string): string {
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) return v.slice(1, -1).replace(/\\(.)/g, '$1');
  return v;
}

export interface DiskInfo {
  /** /dev/... path. */
  path: string;
  /** Kernel name (sda, nvme0n1, loop3). */
  name: string;
  sizeBytes: number;
  sectorSize: number;
  model: string | null;
}

function readTrim(path: string): string | null {
  try {
    const t = readFileSync(path, 'utf8').trim();
    return t.length > 0 ? t : null;
  } catch {
    return null;
  }
}

const FIXED_DISK_RE = /^(sd[a-z]+|vd[a-z]+|hd[a-z]+|xvd[a-z]+|nvme[0-9]+n[0-9]+)$/;

/** Natural order of disk names: sdz before sdaa (the kernel's order), nvme0n2 before nvme0n10. */
export function naturalCompare(a: string, b: string): number {
  const key = (n: string): string => n.replace(/^(sd|vd|hd|xvd)([a-z]+)/, (_m, fam: string, letters: string) => `${fam}${letters.length}${letters}`);
  return key(a).localeCompare(key(b), 'en', { numeric: true });
}

/** Disk facts from sysfs (`sysRoot` is /sys, a fake tree in tests). */
export function diskInfo(name: string, sysRoot = '/sys', devRoot = '/dev'): DiskInfo {
  const dir = join(sysRoot, 'class', 'block', name);
  const sectors = Number(readTrim(join(dir, 'size')) ?? 'NaN');
  if (!Number.isFinite(sectors)) throw new AgentError(`${name}: no size in ${dir}`);
  const model = readTrim(join(dir, 'device', 'model'));
  return {
    path: join(devRoot, name),
    name,
    // sysfs counts 512-byte units whatever the logical sector size.
    sizeBytes: sectors * 512,
    sectorSize: Number(readTrim(join(dir, 'queue', 'logical_block_size')) ?? '512') || 512,
    model,
  };
}

/**
 * The target disk: `given` (any whole-disk block device, loop and dm
 * included), or the first fixed disk in natural name order (sd*, vd*, hd*,
 * xvd*, nvme*n*), skipping removable and zero-size ones.
 */
export function pickDisk(given: string | null, opts: { sysRoot?: string; devRoot?: string } = {}): DiskInfo {
  const sysRoot = opts.sysRoot ?? '/sys';
  const devRoot = opts.devRoot ?? '/dev';
  if (given) {
    let real: string;
    try {
      real = realpathSync(given);
    } catch {
      throw new AgentError(`disk ${given} does not exist`);
    }
    if (opts.sysRoot === undefined && !statSync(real).isBlockDevice()) throw new AgentError(`${given} is not a block device`);
    const name = basename(real);
    const dir = join(sysRoot, 'class', 'block', name);
    if (!existsSync(dir)) throw new AgentError(`${given}: the kernel knows no block device ${name}`);
    if (existsSync(join(dir, 'partition'))) throw new AgentError(`${given} is a partition, not a whole disk`);
    const info = diskInfo(name, sysRoot, devRoot);
    if (info.sizeBytes === 0) throw new AgentError(`${given} has size 0 (no medium?)`);
    return info;
  }
  let names: string[];
  try {
    names = readdirSync(join(sysRoot, 'block'));
  } catch {
    throw new AgentError(`cannot list ${join(sysRoot, 'block')}`);
  }
  for (const name of names.filter((n) => FIXED_DISK_RE.test(n)).sort(naturalCompare)) {
    const dir = join(sysRoot, 'block', name);
    if (readTrim(join(dir, 'removable')) === '1') continue;
    if (Number(readTrim(join(dir, 'size')) ?? '0') === 0) continue;
    return diskInfo(name, sysRoot, devRoot);
  }
  throw new AgentError('no fixed disk found (looked for sd*, vd*, nvme*n*, hd*, xvd* in /sys/block; removable and empty ones skipped); name one with --disk or fleetboot.disk=');
}

/** Read the disk's table: `sfdisk --json` for the values, `sfdisk --dump` for the text kept in the manifest. */
export async function readTable(dev: string): Promise<{ table: DiskTable; dump: string }> {
  const j = await runCommand('sfdisk', ['--json', dev]);
  if (j.code !== 0) {
    if (/does not contain a recognized partition table/.test(j.stderr)) throw new AgentError(`${dev} has no partition table (a disk without one cannot be captured)`);
    throw new AgentError(`sfdisk --json ${dev} failed: ${j.stderr.trim().split('\n').pop() ?? ''}`);
  }
  const table = parseSfdiskJson(j.stdout);
  const dump = await runOk('sfdisk', ['--dump', dev]);
  return { table, dump };
}

/** Parse `blkid -p -o export` output into its KEY=VALUE pairs. */
export function parseBlkidExport(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}

/** The filesystem on a partition (blkid's TYPE, e.g. ext4, vfat, ntfs, swap), or null when blkid finds none. */
export async function filesystemOf(part: string): Promise<{ type: string | null; version: string | null }> {
  const r = await runCommand('blkid', ['-p', '-o', 'export', part]);
  if (r.code !== 0) return { type: null, version: null };
  const kv = parseBlkidExport(r.stdout);
  return { type: kv['TYPE']?.toLowerCase() ?? null, version: kv['VERSION'] ?? null };
}

/** What a partition should look like in sysfs: start and size in 512-byte units. */
export interface ExpectedPartition {
  number: number;
  start512: number;
  size512: number;
}

function kernelPartitions(name: string, sysRoot: string): Map<number, { start: number; size: number }> {
  const out = new Map<number, { start: number; size: number }>();
  let entries: string[] = [];
  try {
    entries = readdirSync(join(sysRoot, 'block', name));
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!e.startsWith(name)) continue;
    const n = Number(readTrim(join(sysRoot, 'block', name, e, 'partition')) ?? 'NaN');
    if (!Number.isInteger(n)) continue;
    out.set(n, { start: Number(readTrim(join(sysRoot, 'block', name, e, 'start')) ?? '-1'), size: Number(readTrim(join(sysRoot, 'block', name, e, 'size')) ?? '-1') });
  }
  return out;
}

/**
 * Make the kernel's partitions of `disk` match `expected` (after a new table
 * was written, or before a capture): re-read, partx, then verify each one's
 * start/size in sysfs and wait for its /dev node. Throws when they do not.
 */
export async function refreshPartitions(disk: DiskInfo, expected: ExpectedPartition[], opts: { timeoutMs?: number; removeOthers?: boolean; ignore?: number[] } = {}): Promise<void> {
  const sysRoot = '/sys';
  const matches = (): { stale: number[]; missing: number[]; extra: number[] } => {
    const k = kernelPartitions(disk.name, sysRoot);
    const stale: number[] = [];
    const missing: number[] = [];
    for (const e of expected) {
      const have = k.get(e.number);
      if (!have) missing.push(e.number);
      else if (have.start !== e.start512 || have.size !== e.size512) stale.push(e.number);
    }
    const extra = [...k.keys()].filter((n) => !expected.some((e) => e.number === n) && !(opts.ignore ?? []).includes(n));
    return { stale, missing, extra };
  };
  let m = matches();
  if (m.stale.length || m.missing.length || (opts.removeOthers && m.extra.length)) {
    await runCommand('blockdev', ['--rereadpt', disk.path]);
    m = matches();
  }
  if (m.stale.length || (opts.removeOthers && m.extra.length)) {
    for (const n of [...m.stale, ...(opts.removeOthers ? m.extra : [])]) await runCommand('partx', ['-d', '--nr', String(n), disk.path]);
    m = matches();
  }
  if (m.missing.length || m.stale.length) {
    await runCommand('partx', ['-u', disk.path]);
    await runCommand('partx', ['-a', disk.path]);
    m = matches();
  }
  if (m.stale.length || m.missing.length) {
    throw new AgentError(`${disk.path}: the kernel's partitions do not match the table (missing: ${m.missing.join(',') || 'none'}, wrong start/size: ${m.stale.join(',') || 'none'}); is a partition in use?`);
  }
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  for (const e of expected) {
    const node = partitionDevice(disk.path, e.number);
    while (!existsSync(node)) {
      if (Date.now() > deadline) throw new AgentError(`partition node ${node} did not appear (no devtmpfs on /dev?)`);
      await sleep(100);
    }
  }
}
