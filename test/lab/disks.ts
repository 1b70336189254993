/**
 * Disk image files for imaging tests (root: loop devices and mounts).
 *
 *   const a = await makeSourceDisk('/tmp/a.img');   // MBR: ext4 + FAT32 with known files
 *   const b = await readDiskFiles('/tmp/b.img');    // every file's sha256, per partition
 *
 * There is no udev here: after a table is written, `partx -u` makes the
 * kernel publish the partitions, and devtmpfs creates /dev/loopNpM.
 * Everything is undone in finally blocks (umount, losetup -d).
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { program, type ProgramName } from '../../src/lib/programs.js';

export function sh(cmd: ProgramName, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(program(cmd), args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function waitFor(path: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`${path} did not appear within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Attach a disk image file to a loop device with its partitions; `fn` gets the device. */
export async function withLoop<T>(file: string, fn: (dev: string) => Promise<T>): Promise<T> {
  const dev = (await sh('losetup', ['-fP', '--show', file])).trim();
  try {
    await sh('partx', ['-u', dev]).catch(() => '');
    return await fn(dev);
  } finally {
    await sh('losetup', ['-d', dev]).catch(() => '');
  }
}

/** Mount `part` (read-only unless told) on a temporary directory for `fn`. */
export async function withMount<T>(part: string, fn: (dir: string) => Promise<T>, opts: { readOnly?: boolean } = {}): Promise<T> {
  await waitFor(part);
  const dir = await mkdtemp(join(tmpdir(), 'fb-mnt-'));
  await sh('mount', [...(opts.readOnly === false ? [] : ['-o', 'ro']), part, dir]);
  try {
    return await fn(dir);
  } finally {
    await sh('umount', [dir]).catch(() => sh('umount', ['-l', dir]).catch(() => ''));
    await rm(dir, { recursive: true, force: true });
  }
}

/** sha256 of every regular file under `root` (symlinks as "link:<target>"), by relative path. */
export async function fileSums(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  async function walk(dir: string): Promise<void> {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      const rel = relative(root, p);
      if (rel === 'lost+found') continue;
      if (e.isDirectory()) await walk(p);
      else if (e.isSymbolicLink()) out.set(rel, `link:${await readlink(p)}`);
      else if (e.isFile()) out.set(rel, createHash('sha256').update(await readFile(p)).digest('hex'));
    }
  }
  await walk(root);
  return out;
}

export interface SourceDisk {
  file: string;
  bytes: number;
  /** Partition number -> relative path -> sha256. */
  sums: Map<number, Map<string, string>>;
}

/**
 * A disk image with an MBR table: partition 1 ext4 (label fbroot), partition 2
 * FAT32 (type c, label FBDATA), each holding random files (nested
 * directories, an empty file, a symlink on ext4) of about `fileMiB` MiB in all.
 */
export async function makeSourceDisk(file: string, opts: { sizeMiB?: number; fileMiB?: number } = {}): Promise<SourceDisk> {
  const sizeMiB = opts.sizeMiB ?? 128;
  const fileMiB = opts.fileMiB ?? 8;
  await sh('truncate', ['-s', `${sizeMiB}M`, file]);
  const half = Math.floor((sizeMiB - 2) / 2);
  const sums = new Map<number, Map<string, string>>();
  await withLoop(file, async (dev) => {
    await sh('sfdisk', ['-q', dev], `label: dos\nlabel-id: 0x0fb0a0a0\nstart=2048, size=${half}MiB, type=83\ntype=c\n`);
    await sh('partx', ['-u', dev]).catch(() => '');
    await waitFor(`${dev}p2`);
    await sh('mkfs.ext4', ['-q', '-F', '-L', 'fbroot', `${dev}p1`]);
    await sh('mkfs.vfat', ['-F', '32', '-s', '1', '-n', 'FBDATA', `${dev}p2`]);
    const each = Math.max(1, Math.floor((fileMiB * 1024 * 1024) / 2 / 4));
    for (const [n, fat] of [[1, false], [2, true]] as const) {
      // This host's kernel has no vfat: FAT is written with mtools, ext4 through a mount.
      const fill = async (dir: string): Promise<void> => {
        await mkdir(join(dir, 'etc', 'deep', 'er'), { recursive: true });
        await mkdir(join(dir, 'DATA'), { recursive: true });
        for (let i = 0; i < 4; i++) await writeFile(join(dir, i % 2 ? 'DATA' : 'etc/deep/er', `file${i}.bin`), randomBytes(each - i * 7));
        await writeFile(join(dir, 'etc', 'hostname'), `fleetboot-lab-${n}\n`);
        await writeFile(join(dir, 'EMPTY.TXT'), '');
        if (!fat) await symlink('etc/hostname', join(dir, 'hostname-link'));
        sums.set(n, await fileSums(dir));
      };
      if (fat) {
        const dir = await mkdtemp(join(tmpdir(), 'fb-fat-'));
        try {
          await fill(dir);
          await sh('mcopy', ['-s', '-Q', '-i', `${dev}p${n}`, ...(await readdir(dir)).map((e) => join(dir, e)), '::/']);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      } else {
        await withMount(`${dev}p${n}`, async (dir) => {
          await fill(dir);
          await sh('sync', []);
        }, { readOnly: false });
      }
    }
  });
  return { file, bytes: sizeMiB * 1024 * 1024, sums };
}

/** The files of a FAT partition (mtools copies them out; no vfat in this kernel). */
async function fatSums(part: string): Promise<Map<string, string>> {
  const dir = await mkdtemp(join(tmpdir(), 'fb-fat-'));
  try {
    await sh('mcopy', ['-s', '-n', '-Q', '-i', part, '::/*', dir]);
    return await fileSums(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface DiskContents {
  /** `sfdisk --json` of the disk. */
  table: { label: string; partitions: Array<{ node: string; start: number; size: number; type: string }> };
  /** Partition number -> relative path -> sha256, for every partition that mounts. */
  sums: Map<number, Map<string, string>>;
}

/** Read a disk image: its partition table and the files of every partition (mounted read-only). */
export async function readDiskFiles(file: string): Promise<DiskContents> {
  return withLoop(file, async (dev) => {
    const parsed: unknown = JSON.parse(await sh('sfdisk', ['--json', dev]));
    const table = (parsed as { partitiontable: DiskContents['table'] }).partitiontable;
    const sums = new Map<number, Map<string, string>>();
    for (const p of table.partitions) {
      const n = Number(/(\d+)$/.exec(p.node)?.[1]);
      const part = `${dev}p${n}`;
      await waitFor(part);
      const fs = (await sh('blkid', ['-p', '-s', 'TYPE', '-o', 'value', part]).catch(() => '')).trim();
      if (fs === 'vfat') sums.set(n, await fatSums(part));
      else sums.set(n, await withMount(part, (dir) => fileSums(dir)));
    }
    return { table, sums };
  });
}

/** The first MiB of a disk image or block device (what a deploy or a refused one must not have touched, or the MBR it wrote). */
export function firstMiB(file: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(1024 * 1024);
    readSync(fd, b, 0, b.length, 0);
    return b;
  } finally {
    closeSync(fd);
  }
}
