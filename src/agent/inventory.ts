/**
 * Hardware inventory from /proc and /sys (Linux), `root` parameterised so
 * tests run it against a fake tree.
 *
 * Memory: QEMU's `-m 1024` is best matched by SMBIOS type 17 (memory
 * devices: QEMU writes one per DIMM with the exact size), read from
 * /sys/firmware/dmi/entries/17-*\/raw (root only); then by the online memory
 * blocks in /sys/devices/system/memory (block_size_bytes x online blocks:
 * exact for sizes that are multiples of the block size, 128 MiB on x86-64);
 * then /proc/meminfo MemTotal (what the kernel manages: some MiB below -m,
 * firmware and kernel reservations taken off). `memorySource` in the
 * collectInventoryWithSource() says which was used.
 */
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Inventory } from '../model/manifest.js';

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function readTrim(path: string): string | null {
  const t = read(path)?.trim();
  return t ? t : null;
}

function list(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

/** CPU facts from /proc/cpuinfo (x86 fields; other architectures give threads only). */
export function parseCpuinfo(text: string): Inventory['cpu'] {
  let threads = 0;
  let model: string | null = null;
  const sockets = new Set<string>();
  const cores = new Set<string>();
  const coresPerSocket = new Map<string, number>();
  for (const block of text.split(/\n\s*\n/)) {
    const kv = new Map<string, string>();
    for (const line of block.split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) kv.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
    }
    if (!kv.has('processor')) continue;
    threads++;
    model ??= kv.get('model name') ?? kv.get('Model') ?? kv.get('cpu model') ?? null;
    const phys = kv.get('physical id');
    if (phys !== undefined) {
      sockets.add(phys);
      const coreId = kv.get('core id');
      if (coreId !== undefined) cores.add(`${phys}/${coreId}`);
      const cc = Number(kv.get('cpu cores'));
      if (Number.isInteger(cc) && cc > 0) coresPerSocket.set(phys, cc);
    }
  }
  let coreCount: number | null = null;
  if (cores.size > 0) coreCount = cores.size;
  else if (coresPerSocket.size > 0) coreCount = [...coresPerSocket.values()].reduce((a, b) => a + b, 0);
  return { model: model ? model.replace(/\s+/g, ' ') : null, sockets: sockets.size > 0 ? sockets.size : null, cores: coreCount, threads: Math.max(1, threads) };
}

/** Sum of SMBIOS type 17 (memory device) sizes from raw structures, or null when none gives a size. */
export function smbiosMemoryBytes(raws: Buffer[]): number | null {
  let total = 0;
  let found = false;
  for (const b of raws) {
    if (b.length < 0x0e || b[0] !== 17) continue;
    const size = b.readUInt16LE(0x0c);
    if (size === 0 || size === 0xffff) continue; // empty slot / unknown
    found = true;
    if (size === 0x7fff && b.length >= 0x20) total += (b.readUInt32LE(0x1c) & 0x7fffffff) * 1024 * 1024;
    else if (size & 0x8000) total += (size & 0x7fff) * 1024;
    else total += size * 1024 * 1024;
  }
  return found ? total : null;
}

export function memoryBytes(root: string): { bytes: number; source: 'smbios' | 'memory-blocks' | 'meminfo' } {
  const dmi = join(root, 'sys/firmware/dmi/entries');
  const raws: Buffer[] = [];
  for (const e of list(dmi).filter((n) => n.startsWith('17-'))) {
    try {
      raws.push(readFileSync(join(dmi, e, 'raw')));
    } catch {
      /* not root, or gone */
    }
  }
  const fromSmbios = smbiosMemoryBytes(raws);
  if (fromSmbios) return { bytes: fromSmbios, source: 'smbios' };
  const memDir = join(root, 'sys/devices/system/memory');
  const bs = readTrim(join(memDir, 'block_size_bytes'));
  if (bs) {
    const blockSize = parseInt(bs, 16);
    const online = list(memDir).filter((n) => /^memory\d+$/.test(n) && readTrim(join(memDir, n, 'state')) === 'online').length;
    if (blockSize > 0 && online > 0) return { bytes: blockSize * online, source: 'memory-blocks' };
  }
  const m = /^MemTotal:\s+(\d+)\s*kB/m.exec(read(join(root, 'proc/meminfo')) ?? '');
  return { bytes: m?.[1] ? Number(m[1]) * 1024 : 1, source: 'meminfo' };
}

const VIRTUAL_DISK_RE = /^(loop|ram|zram|dm-|md|sr|fd|nbd|mtdblock)/;

export function disks(root: string): Inventory['disks'] {
  const out: Inventory['disks'] = [];
  const sys = join(root, 'sys/block');
  for (const name of list(sys).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))) {
    if (VIRTUAL_DISK_RE.test(name)) continue;
    const d = join(sys, name);
    const rot = readTrim(join(d, 'queue/rotational'));
    out.push({
      name,
      sizeBytes: Number(readTrim(join(d, 'size')) ?? '0') * 512,
      model: readTrim(join(d, 'device/model')),
      serial: readTrim(join(d, 'device/serial')) ?? readTrim(join(d, 'serial')),
      rotational: rot === '1' ? true : rot === '0' ? false : null,
    });
  }
  return out;
}

export function nics(root: string): Inventory['nics'] {
  const out: Inventory['nics'] = [];
  const sys = join(root, 'sys/class/net');
  for (const name of list(sys).sort()) {
    const d = join(sys, name);
    // Physical interfaces only: they have a device link (lo, bridges, veths do not).
    if (!existsSync(join(d, 'device'))) continue;
    const mac = readTrim(join(d, 'address'))?.toLowerCase() ?? '';
    if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) continue;
    let driver: string | null = null;
    try {
      driver = basename(readlinkSync(join(d, 'device/driver')));
    } catch {
      driver = null;
    }
    const speed = Number(readTrim(join(d, 'speed')) ?? 'NaN');
    out.push({ name, mac, driver, speedMbps: Number.isInteger(speed) && speed > 0 ? speed : null });
  }
  return out;
}

/** SMBIOS UUID (lower case) and serial, as the inventory records them: the identity part. */
export function readSmbiosIdentity(root = '/'): { smbiosUuid: string | null; smbiosSerial: string | null } {
  const dmi = (f: string): string | null => readTrim(join(root, 'sys/class/dmi/id', f));
  return { smbiosUuid: dmi('product_uuid')?.toLowerCase() ?? null, smbiosSerial: dmi('product_serial') };
}

/** The inventory, and which source gave the memory size. */
export function collectInventoryWithSource(root = '/', now = new Date()): { inventory: Inventory; memorySource: string } {
  const dmi = (f: string): string | null => readTrim(join(root, 'sys/class/dmi/id', f));
  const mem = memoryBytes(root);
  const id = readSmbiosIdentity(root);
  const inventory: Inventory = {
    collectedAt: now.toISOString(),
    cpu: parseCpuinfo(read(join(root, 'proc/cpuinfo')) ?? ''),
    memoryBytes: mem.bytes,
    disks: disks(root),
    nics: nics(root),
    smbios: {
      manufacturer: dmi('sys_vendor'),
      product: dmi('product_name'),
      serial: id.smbiosSerial,
      uuid: id.smbiosUuid,
      biosVendor: dmi('bios_vendor'),
      biosVersion: dmi('bios_version'),
    },
    firmware: existsSync(join(root, 'sys/firmware/efi')) ? 'uefi' : 'bios',
  };
  return { inventory, memorySource: mem.source };
}

export function collectInventory(root = '/', now = new Date()): Inventory {
  return collectInventoryWithSource(root, now).inventory;
}
