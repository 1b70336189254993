/** For tests: sample records the store's tests share. */
import type { Manifest } from '../model/manifest.js';

const MAC = '52:54:00:00:00:01';

export function sampleManifest(name: string): Manifest {
  return {
    format: 'fleetboot-image',
    version: 1,
    name,
    createdAt: '2026-01-01T00:00:00.000Z',
    source: { mac: MAC, taskId: null, disk: '/dev/sda', diskModel: null },
    diskBytes: 10 * 1024 * 1024,
    table: { type: 'dos', sectorSize: 512, id: '0x1234abcd', sfdisk: 'label: dos\n' },
    partitions: [
      { number: 1, start: 2048, sectors: 2048, type: '83', uuid: null, name: null, bootable: false, filesystem: 'ext4', tool: 'partclone.ext4', compression: 'zstd', file: 'p1.pcl.zst', sizeBytes: 2048 * 512, usedBytes: null, streamBytes: 0, sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
    ],
  };
}
