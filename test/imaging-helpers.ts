/**
 * Test helpers for the imaging API and CLI tests: an image committed through
 * the real image store (streams received and committed as a capture's are), and an inventory.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { commitCapture, receiveStream } from '../src/imaging/image-store.js';
import type { Inventory, Manifest } from '../src/model/manifest.js';
import { createTask, finishTask, type Store } from '../src/store/index.js';
import type { ImageInfo } from '../src/store/images.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * Commit image `name` captured from host `mac` (which must exist and have no
 * active task): a capture task, two uploaded streams, the commit, the task done.
 */
export async function makeImage(
  store: Store,
  name: string,
  mac: string,
  opts: { approval?: boolean; keepRevisions?: number; fill?: number } = {},
): Promise<{ info: ImageInfo; taskId: number; streams: Buffer[]; revision: number; manifestSha256: string }> {
  const task = await createTask(store.db, { type: 'capture', mac, image: name });
  const p1 = Buffer.alloc(300_000, opts.fill ?? 1);
  const p2 = Buffer.from('a small fat partition stream');
  // As the agent's uploads arrive (PUT /agent/v1/task/streams/:file), counted and hashed by the server.
  await receiveStream(store, task.id, 'p1.pcl.zst', Readable.from([p1]), { maxBytes: 1024 ** 3 });
  await receiveStream(store, task.id, 'p2.raw.zst', Readable.from([p2]), { maxBytes: 1024 ** 3 });
  const manifest: Manifest = {
    format: 'fleetboot-image',
    version: 1,
    name: '',
    createdAt: new Date().toISOString(),
    source: { mac: null, taskId: null, disk: '/dev/sda', diskModel: 'QEMU HARDDISK' },
    diskBytes: 2 * 1024 ** 3,
    table: { type: 'dos', sectorSize: 512, id: '0x1234abcd', sfdisk: 'label: dos\n' },
    partitions: [
      {
        number: 1,
        start: 2048,
        sectors: 2_097_152,
        type: '83',
        uuid: null,
        name: null,
        bootable: true,
        filesystem: 'ext4',
        tool: 'partclone.ext4',
        compression: 'zstd',
        file: 'p1.pcl.zst',
        sizeBytes: 2_097_152 * 512,
        usedBytes: 123_456_789,
        streamBytes: p1.length,
        sha256: sha256(p1),
      },
      {
        number: 2,
        start: 2_099_200,
        sectors: 204_800,
        type: 'c',
        uuid: null,
        name: null,
        bootable: false,
        filesystem: null,
        tool: 'raw',
        compression: 'zstd',
        file: 'p2.raw.zst',
        sizeBytes: 204_800 * 512,
        usedBytes: null,
        streamBytes: p2.length,
        sha256: sha256(p2),
      },
    ],
  };
  const c = await commitCapture(store, task.id, name, manifest, { mac: task.mac, maxBytes: 1024 ** 3, approval: opts.approval ?? false, keepRevisions: opts.keepRevisions ?? 3 });
  await finishTask(store.db, task.id, 'done');
  if (c.info === null) throw new Error(`image ${name} has no current revision after the commit`);
  return { info: c.info, taskId: task.id, streams: [p1, p2], revision: c.revision, manifestSha256: c.manifestSha256 };
}

export function sampleInventory(mac: string): Inventory {
  return {
    collectedAt: '2026-01-02T03:04:05.000Z',
    cpu: { model: 'QEMU Virtual CPU version 2.5+', sockets: 1, cores: 2, threads: 2 },
    memoryBytes: 2 * 1024 ** 3,
    disks: [
      { name: 'sda', sizeBytes: 8 * 1024 ** 3, model: 'QEMU HARDDISK', serial: 'QM00001', rotational: true },
      { name: 'nvme0n1', sizeBytes: 512 * 1024 ** 3, model: 'NVMe disk', serial: null, rotational: false },
    ],
    nics: [{ name: 'eth0', mac, driver: 'e1000', speedMbps: 1000 }],
    smbios: { manufacturer: 'QEMU', product: 'Standard PC (i440FX + PIIX, 1996)', serial: 'SN-123', uuid: '8d2a1b3c-0000-4000-8000-000000000001', biosVendor: 'SeaBIOS', biosVersion: '1.16.2' },
    firmware: 'bios',
  };
}
