/**
 * The image manifest and the hardware inventory: types and pure validators,
 * shared by the server and the agent (no I/O, no server imports).
 *
 * An image is a directory holding `manifest.json` and one stream file per
 * partition (`p<N>.pcl.zst` = partclone image piped through zstd, or
 * `p<N>.raw.zst` = the raw partition bytes through zstd). `sha256` and
 * `streamBytes` are of the stored (compressed) file, which is what travels.
 */

export const MANIFEST_FORMAT = 'fleetboot-image';
export const MANIFEST_VERSION = 1;

export type TableType = 'dos' | 'gpt';

export interface ManifestPartition {
  /** Partition number (1-based, as in /dev/sda1). */
  number: number;
  /** First sector and length in sectors of `table.sectorSize` bytes. */
  start: number;
  sectors: number;
  /** MBR: hex type ("83", "c", "ef"); GPT: type GUID, upper case. */
  type: string;
  /** GPT partition GUID and name, when the table has them. */
  uuid: string | null;
  name: string | null;
  /** MBR active flag. */
  bootable: boolean;
  /** From blkid: ext4, vfat, ntfs, xfs, btrfs, swap, ... or null when none was found. */
  filesystem: string | null;
  /** The program that read the partition: partclone.<fs>, or 'raw'. */
  tool: string;
  compression: 'zstd';
  /** Stream file in the image directory (matches STREAM_FILE_PATTERN). */
  file: string;
  /** Bytes of the partition (sectors * sectorSize). */
  sizeBytes: number;
  /** Bytes in use as the tool reported them, null when unknown. */
  usedBytes: number | null;
  /** Bytes of the stored stream file. */
  streamBytes: number;
  /** sha256 (hex) of the stored stream file. */
  sha256: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: typeof MANIFEST_VERSION;
  /** Image name (set by the server at commit). */
  name: string;
  createdAt: string;
  source: { mac: string | null; taskId: number | null; disk: string | null; diskModel: string | null };
  /** The captured disk's size in bytes. */
  diskBytes: number;
  table: {
    type: TableType;
    sectorSize: number;
    /** Disk identifier (MBR: 0x1234abcd; GPT: disk GUID). */
    id: string | null;
    /** `sfdisk --dump` of the source disk, as text. */
    sfdisk: string;
    /**
     * The BIOS boot code of the source disk's first sector (its first
     * BOOT_CODE_BYTES bytes, before the disk id and the MBR table), base64;
     * absent or null when they were all zero (no BIOS boot loader). A deploy
     * that keeps the table's type writes it back, so a BIOS machine boots
     * the deployed disk (syslinux's mbr.bin, Windows' MBR, GRUB's boot.img;
     * GRUB's core.img in the gap after the MBR is not carried: see
     * src/agent/deploy.ts).
     */
    bootCode?: string | null;
  };
  partitions: ManifestPartition[];
}

/** Bytes of BIOS boot code in an MBR (or GPT's protective MBR): 0..439, before the disk id at 440. */
export const BOOT_CODE_BYTES = 440;
const BOOT_CODE_RE = /^[A-Za-z0-9+/]{587}=$/;

export class ManifestError extends Error {
  override name = 'ManifestError';
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function int(o: Record<string, unknown>, k: string, where: string, min = 0): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new ManifestError(`${where}.${k} must be an integer >= ${min}`);
  return v;
}
function strOrNull(o: Record<string, unknown>, k: string, where: string, max = 4096): string | null {
  const v = o[k];
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string' || v.length > max) throw new ManifestError(`${where}.${k} must be a string (at most ${max} characters) or null`);
  return v;
}
function str(o: Record<string, unknown>, k: string, where: string, re?: RegExp, max = 4096): string {
  const v = o[k];
  if (typeof v !== 'string' || v.length > max || (re && !re.test(v))) throw new ManifestError(`${where}.${k} is missing or malformed`);
  return v;
}

const STREAM_RE = /^p[0-9]{1,3}\.(pcl|raw)\.zst$/;
const SHA_RE = /^[0-9a-f]{64}$/;
const TOOL_RE = /^(raw|partclone\.[a-z0-9]{2,16})$/;

/** Validate an untrusted manifest (from an agent or from disk). Throws ManifestError naming the field. */
export function parseManifest(input: unknown): Manifest {
  if (!isObj(input)) throw new ManifestError('manifest must be a JSON object');
  if (input['format'] !== MANIFEST_FORMAT) throw new ManifestError(`manifest.format must be "${MANIFEST_FORMAT}"`);
  if (input['version'] !== MANIFEST_VERSION) throw new ManifestError(`manifest.version ${String(input['version'])} is not supported (this build reads ${MANIFEST_VERSION})`);
  const src = input['source'];
  const table = input['table'];
  const parts = input['partitions'];
  if (!isObj(src)) throw new ManifestError('manifest.source must be an object');
  if (!isObj(table)) throw new ManifestError('manifest.table must be an object');
  if (!Array.isArray(parts) || parts.length === 0 || parts.length > 128) throw new ManifestError('manifest.partitions must be a list of 1-128 partitions');
  const tableType = table['type'];
  if (tableType !== 'dos' && tableType !== 'gpt') throw new ManifestError('manifest.table.type must be "dos" or "gpt"');
  const sectorSize = int(table, 'sectorSize', 'manifest.table', 512);
  if (![512, 1024, 2048, 4096].includes(sectorSize)) throw new ManifestError('manifest.table.sectorSize must be 512, 1024, 2048 or 4096');
  const taskId = src['taskId'];
  const m: Manifest = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    name: str(input, 'name', 'manifest', /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$|^$/, 64),
    createdAt: str(input, 'createdAt', 'manifest', undefined, 64),
    source: {
      mac: strOrNull(src, 'mac', 'manifest.source', 17),
      taskId: taskId === null || taskId === undefined ? null : int(src, 'taskId', 'manifest.source', 1),
      disk: strOrNull(src, 'disk', 'manifest.source', 256),
      diskModel: strOrNull(src, 'diskModel', 'manifest.source', 256),
    },
    diskBytes: int(input, 'diskBytes', 'manifest', 1),
    table: { type: tableType, sectorSize, id: strOrNull(table, 'id', 'manifest.table', 64), sfdisk: str(table, 'sfdisk', 'manifest.table', undefined, 1 << 20) },
    partitions: [],
  };
  const bootCode = table['bootCode'];
  if (bootCode !== null && bootCode !== undefined) {
    if (typeof bootCode !== 'string' || !BOOT_CODE_RE.test(bootCode)) throw new ManifestError(`manifest.table.bootCode must be the base64 of ${BOOT_CODE_BYTES} bytes (588 characters) or null`);
    m.table.bootCode = bootCode;
  }
  const numbers = new Set<number>();
  const files = new Set<string>();
  for (const [i, p] of parts.entries()) {
    const w = `manifest.partitions[${i}]`;
    if (!isObj(p)) throw new ManifestError(`${w} must be an object`);
    const part: ManifestPartition = {
      number: int(p, 'number', w, 1),
      start: int(p, 'start', w, 1),
      sectors: int(p, 'sectors', w, 1),
      type: str(p, 'type', w, /^[0-9A-Fa-f-]{1,36}$/, 36),
      uuid: strOrNull(p, 'uuid', w, 36),
      name: strOrNull(p, 'name', w, 72),
      bootable: p['bootable'] === true,
      filesystem: strOrNull(p, 'filesystem', w, 32),
      tool: str(p, 'tool', w, TOOL_RE, 32),
      compression: 'zstd',
      file: str(p, 'file', w, STREAM_RE, 32),
      sizeBytes: int(p, 'sizeBytes', w, 1),
      usedBytes: p['usedBytes'] === null || p['usedBytes'] === undefined ? null : int(p, 'usedBytes', w),
      streamBytes: int(p, 'streamBytes', w),
      sha256: str(p, 'sha256', w, SHA_RE, 64),
    };
    if (p['compression'] !== 'zstd') throw new ManifestError(`${w}.compression must be "zstd"`);
    if (part.number > 128) throw new ManifestError(`${w}.number must be at most 128`);
    if (numbers.has(part.number)) throw new ManifestError(`${w}: partition ${part.number} appears twice`);
    if (files.has(part.file)) throw new ManifestError(`${w}: stream file ${part.file} appears twice`);
    if (part.sizeBytes !== part.sectors * sectorSize) throw new ManifestError(`${w}.sizeBytes must equal sectors * sectorSize`);
    if ((part.tool === 'raw') !== part.file.endsWith('.raw.zst')) throw new ManifestError(`${w}: tool ${part.tool} does not match stream file ${part.file}`);
    numbers.add(part.number);
    files.add(part.file);
    m.partitions.push(part);
  }
  const sorted = [...m.partitions].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1] as ManifestPartition;
    const cur = sorted[i] as ManifestPartition;
    if (cur.start < prev.start + prev.sectors) throw new ManifestError(`manifest: partitions ${prev.number} and ${cur.number} overlap`);
  }
  return m;
}

/** Sectors GPT keeps free at the end of the disk (backup header + 128 entries of 128 bytes). */
export function gptTailSectors(sectorSize: number): number {
  return 1 + Math.ceil((128 * 128) / sectorSize);
}

/**
 * The smallest disk (bytes) the image fits on when written with `table`:
 * the end of the last partition, plus GPT's backup area for a GPT target.
 */
export function requiredDiskBytes(m: Manifest, table: TableType): number {
  const ss = m.table.sectorSize;
  const end = Math.max(...m.partitions.map((p) => p.start + p.sectors));
  return (end + (table === 'gpt' ? gptTailSectors(ss) : 0)) * ss;
}

/** Hardware inventory, as the agent collects it (Linux: /proc, /sys, SMBIOS via /sys/class/dmi/id). */
export interface Inventory {
  collectedAt: string;
  cpu: { model: string | null; sockets: number | null; cores: number | null; threads: number };
  memoryBytes: number;
  disks: { name: string; sizeBytes: number; model: string | null; serial: string | null; rotational: boolean | null }[];
  nics: { name: string; mac: string; driver: string | null; speedMbps: number | null }[];
  smbios: {
    manufacturer: string | null;
    product: string | null;
    serial: string | null;
    uuid: string | null;
    biosVendor: string | null;
    biosVersion: string | null;
  };
  /** Firmware the boot environment runs on. */
  firmware: 'bios' | 'uefi' | null;
}

/** Validate an untrusted inventory (from an agent). Throws ManifestError naming the field. */
export function parseInventory(input: unknown): Inventory {
  if (!isObj(input)) throw new ManifestError('inventory must be a JSON object');
  const cpu = input['cpu'];
  const smbios = input['smbios'];
  const disks = input['disks'];
  const nics = input['nics'];
  if (!isObj(cpu)) throw new ManifestError('inventory.cpu must be an object');
  if (!isObj(smbios)) throw new ManifestError('inventory.smbios must be an object');
  if (!Array.isArray(disks) || disks.length > 256) throw new ManifestError('inventory.disks must be a list (at most 256)');
  if (!Array.isArray(nics) || nics.length > 256) throw new ManifestError('inventory.nics must be a list (at most 256)');
  const optInt = (o: Record<string, unknown>, k: string, w: string): number | null => (o[k] === null || o[k] === undefined ? null : int(o, k, w));
  const optBool = (o: Record<string, unknown>, k: string): boolean | null => (typeof o[k] === 'boolean' ? o[k] : null);
  const fw = input['firmware'];
  return {
    collectedAt: str(input, 'collectedAt', 'inventory', undefined, 64),
    cpu: { model: strOrNull(cpu, 'model', 'inventory.cpu', 256), sockets: optInt(cpu, 'sockets', 'inventory.cpu'), cores: optInt(cpu, 'cores', 'inventory.cpu'), threads: int(cpu, 'threads', 'inventory.cpu', 1) },
    memoryBytes: int(input, 'memoryBytes', 'inventory', 1),
    disks: disks.map((d, i) => {
      const w = `inventory.disks[${i}]`;
      if (!isObj(d)) throw new ManifestError(`${w} must be an object`);
      return { name: str(d, 'name', w, /^[A-Za-z0-9._-]{1,64}$/), sizeBytes: int(d, 'sizeBytes', w), model: strOrNull(d, 'model', w, 256), serial: strOrNull(d, 'serial', w, 256), rotational: optBool(d, 'rotational') };
    }),
    nics: nics.map((n, i) => {
      const w = `inventory.nics[${i}]`;
      if (!isObj(n)) throw new ManifestError(`${w} must be an object`);
      return { name: str(n, 'name', w, /^[A-Za-z0-9._@-]{1,32}$/), mac: str(n, 'mac', w, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/), driver: strOrNull(n, 'driver', w, 64), speedMbps: optInt(n, 'speedMbps', w) };
    }),
    smbios: {
      manufacturer: strOrNull(smbios, 'manufacturer', 'inventory.smbios', 256),
      product: strOrNull(smbios, 'product', 'inventory.smbios', 256),
      serial: strOrNull(smbios, 'serial', 'inventory.smbios', 256),
      uuid: strOrNull(smbios, 'uuid', 'inventory.smbios', 64),
      biosVendor: strOrNull(smbios, 'biosVendor', 'inventory.smbios', 256),
      biosVersion: strOrNull(smbios, 'biosVersion', 'inventory.smbios', 256),
    },
    firmware: fw === 'bios' || fw === 'uefi' ? fw : null,
  };
}
