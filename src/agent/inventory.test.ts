import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseInventory } from '../model/manifest.js';
import { collectInventory, collectInventoryWithSource, parseCpuinfo, smbiosMemoryBytes } from './inventory.js';

const CPUINFO = [0, 1, 2, 3]
  .map((i) => `processor\t: ${i}\nvendor_id\t: GenuineIntel\nmodel name\t: QEMU Virtual CPU version 2.5+\nphysical id\t: ${i < 2 ? 0 : 1}\ncore id\t\t: ${i % 2}\ncpu cores\t: 2\nflags\t\t: fpu vme\n`)
  .join('\n');

/** A fake root with /proc and /sys as a QEMU guest (-smp 4,sockets=2 -m 1024, e1000, virtio disk) shows them. */
function fakeRoot(opts: { efi?: boolean; smbios17?: Buffer[]; memBlocks?: number }): string {
  const root = mkdtempSync(join(tmpdir(), 'fleetboot-inv-'));
  const put = (p: string, v: string | Buffer): void => {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), v);
  };
  put('proc/cpuinfo', CPUINFO);
  put('proc/meminfo', 'MemTotal:        1004584 kB\nMemFree:          900000 kB\n');
  if (opts.memBlocks) {
    put('sys/devices/system/memory/block_size_bytes', '8000000\n');
    for (let i = 0; i < opts.memBlocks; i++) put(`sys/devices/system/memory/memory${i}/state`, 'online\n');
    put('sys/devices/system/memory/memory99/state', 'offline\n');
  }
  for (const [i, raw] of (opts.smbios17 ?? []).entries()) put(`sys/firmware/dmi/entries/17-${i}/raw`, raw);
  put('sys/block/vda/size', '20971520\n');
  put('sys/block/vda/queue/rotational', '1\n');
  put('sys/block/vda/serial', 'disk-serial-1\n');
  put('sys/block/sda/size', '2097152\n');
  put('sys/block/sda/queue/rotational', '0\n');
  put('sys/block/sda/device/model', 'QEMU HARDDISK   \n');
  put('sys/block/loop0/size', '100\n');
  put('sys/bus/pci/drivers/e1000/.keep', '');
  put('sys/devices/pci0000:00/0000:00:03.0/.keep', '');
  put('sys/class/net/ens3/address', '52:54:00:12:34:56\n');
  put('sys/class/net/ens3/speed', '1000\n');
  symlinkSync(join(root, 'sys/devices/pci0000:00/0000:00:03.0'), join(root, 'sys/class/net/ens3/device'));
  symlinkSync('../../../bus/pci/drivers/e1000', join(root, 'sys/devices/pci0000:00/0000:00:03.0/driver'));
  put('sys/class/net/lo/address', '00:00:00:00:00:00\n');
  put('sys/class/net/br0/address', '52:54:00:aa:bb:cc\n');
  put('sys/class/dmi/id/sys_vendor', 'QEMU\n');
  put('sys/class/dmi/id/product_name', 'Standard PC (i440FX + PIIX, 1996)\n');
  put('sys/class/dmi/id/product_serial', '\n');
  put('sys/class/dmi/id/product_uuid', 'AB7F0C1E-1111-2222-3333-444455556666\n');
  put('sys/class/dmi/id/bios_vendor', 'SeaBIOS\n');
  put('sys/class/dmi/id/bios_version', '1.16.2-debian-1.16.2-1\n');
  if (opts.efi) mkdirSync(join(root, 'sys/firmware/efi'), { recursive: true });
  return root;
}

/** An SMBIOS type 17 structure (formatted area only) with a Size word and an Extended Size dword. */
function type17(size: number, extended = 0): Buffer {
  const b = Buffer.alloc(0x28);
  b[0] = 17;
  b[1] = 0x28;
  b.writeUInt16LE(size, 0x0c);
  b.writeUInt32LE(extended, 0x1c);
  return b;
}

test('collectInventory() reads a fake QEMU guest: CPU, disks, NICs, SMBIOS, firmware', () => {
  const root = fakeRoot({ efi: true });
  try {
    const inv = collectInventory(root, new Date('2026-01-02T03:04:05Z'));
    assert.deepEqual(parseInventory(inv), inv);
    assert.deepEqual(inv.cpu, { model: 'QEMU Virtual CPU version 2.5+', sockets: 2, cores: 4, threads: 4 });
    assert.equal(inv.memoryBytes, 1004584 * 1024);
    assert.deepEqual(inv.disks, [
      { name: 'sda', sizeBytes: 2 ** 30, model: 'QEMU HARDDISK', serial: null, rotational: false },
      { name: 'vda', sizeBytes: 10 * 2 ** 30, model: null, serial: 'disk-serial-1', rotational: true },
    ]);
    assert.deepEqual(inv.nics, [{ name: 'ens3', mac: '52:54:00:12:34:56', driver: 'e1000', speedMbps: 1000 }]);
    assert.deepEqual(inv.smbios, { manufacturer: 'QEMU', product: 'Standard PC (i440FX + PIIX, 1996)', serial: null, uuid: 'ab7f0c1e-1111-2222-3333-444455556666', biosVendor: 'SeaBIOS', biosVersion: '1.16.2-debian-1.16.2-1' });
    assert.equal(inv.firmware, 'uefi');
    assert.equal(inv.collectedAt, '2026-01-02T03:04:05.000Z');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('collectInventory() memory: SMBIOS type 17 first, then online memory blocks, then MemTotal', () => {
  const smbios = fakeRoot({ smbios17: [type17(1024), type17(0)], memBlocks: 8 });
  const blocks = fakeRoot({ memBlocks: 8 });
  try {
    assert.deepEqual(collectInventoryWithSource(smbios).memorySource, 'smbios');
    assert.equal(collectInventory(smbios).memoryBytes, 2 ** 30);
    assert.equal(collectInventoryWithSource(blocks).memorySource, 'memory-blocks');
    assert.equal(collectInventory(blocks).memoryBytes, 8 * 128 * 2 ** 20);
    assert.equal(collectInventory(blocks).firmware, 'bios');
  } finally {
    rmSync(smbios, { recursive: true, force: true });
    rmSync(blocks, { recursive: true, force: true });
  }
});

test('smbiosMemoryBytes() decodes MB, KB and extended sizes and skips empty slots', () => {
  assert.equal(smbiosMemoryBytes([type17(2048), type17(0x8000 | 512)]), 2048 * 2 ** 20 + 512 * 1024);
  assert.equal(smbiosMemoryBytes([type17(0x7fff, 65536)]), 64 * 2 ** 30);
  assert.equal(smbiosMemoryBytes([type17(0), type17(0xffff)]), null);
  assert.equal(smbiosMemoryBytes([]), null);
});

test('parseCpuinfo() without topology fields gives threads only', () => {
  assert.deepEqual(parseCpuinfo('processor\t: 0\nBogoMIPS\t: 48.00\n\nprocessor\t: 1\nBogoMIPS\t: 48.00\n'), { model: null, sockets: null, cores: null, threads: 2 });
});
