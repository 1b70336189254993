/**
 * The imaging agent on loop devices (root): a disk with an MBR table, an
 * ext4 and a FAT32 partition holding known files is captured into a local
 * image directory with `main.ts capture`; deployed to a larger blank disk as
 * GPT (every file's sha256 compared); refused on a smaller disk before
 * anything is written; refused with a checksum error naming the partition
 * when a stored stream has one byte flipped; deployed again keeping the MBR.
 * Then the same through a real Fleetboot server on 127.0.0.1 (port 0):
 * `main.ts run --url` captures disk A as an image and deploys it to disk B.
 *
 * This host's kernel cannot mount vfat: FAT contents are written and read
 * with mtools (`mcopy -i PARTITION`).
 */
import { openTestStore, testStoreOverrides } from '../src/store/temp-store.js';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, cpSync } from 'node:fs';
import { firstMiB } from './lab/disks.js';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { program, type ProgramName } from '../src/lib/programs.js';
import { parseManifest } from '../src/model/manifest.js';
import { loadConfig } from '../src/config/config.js';
import { silentLogger } from '../src/lib/log.js';
import { startFleetboot, type RunningFleetboot } from '../src/server.js';
import { createHost, createTask, getImage, getTask, openStore, type Store } from '../src/store/index.js';

const execFileP = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
const MiB = 1024 * 1024;
const work = mkdtempSync(join(tmpdir(), 'fleetboot-imager-loop-'));
const loops: string[] = [];
const mounts: string[] = [];

async function sh(cmd: ProgramName, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(program(cmd), args, { encoding: 'buffer', maxBuffer: 64 * MiB, env: { ...process.env, MTOOLS_SKIP_CHECK: '1', ...opts.env } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message} ${stderr.toString()}`));
      else resolve(stdout.toString('latin1'));
    });
    child.stdin?.on('error', () => undefined); // tools that never read stdin
    child.stdin?.end(opts.input ?? '');
  });
}

async function agent(args: string[]): Promise<{ code: number; stdout: string; stderr: string; seconds: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/agent/main.ts'), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, seconds: (Date.now() - t0) / 1000 }));
  });
}

/** Attach a disk file as a loop device and make its partition nodes appear (no udev here). */
async function attach(file: string): Promise<string> {
  const dev = (await sh('losetup', ['-fP', '--show', file])).trim();
  loops.push(dev);
  await sh('partx', ['-a', dev]).catch(() => undefined);
  return dev;
}

async function waitNode(node: string): Promise<void> {
  for (let i = 0; i < 100 && !existsSync(node); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(existsSync(node), `${node} did not appear`);
}

function sha(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

function walk(dir: string, base = dir, out = new Map<string, string>()): Map<string, string> {
  for (const name of readdirSync(dir)) {
    if (dir === base && name === 'lost+found') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, base, out);
    else out.set(relative(base, p), sha(readFileSync(p)));
  }
  return out;
}

async function ext4Files(part: string): Promise<Map<string, string>> {
  const mnt = mkdtempSync(join(work, 'mnt-'));
  await sh('mount', ['-o', 'ro', part, mnt]);
  mounts.push(mnt);
  try {
    return walk(mnt);
  } finally {
    await sh('umount', [mnt]);
    mounts.splice(mounts.indexOf(mnt), 1);
  }
}

/** Every file on a FAT partition (mtools: mdir -/ lists recursively), with its sha256. */
async function fatFiles(part: string, names: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const n of names) {
    const data = await new Promise<Buffer>((resolve, reject) =>
      execFile(program('mcopy'), ['-n', '-i', part, `::/${n}`, '-'], { encoding: 'buffer', maxBuffer: 64 * MiB, env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
    out.set(n, sha(data));
  }
  return out;
}

after(async () => {
  for (const m of mounts) await sh('umount', [m]).catch(() => undefined);
  for (const l of loops.reverse()) await sh('losetup', ['-d', l]).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

// Disk A: 96 MiB, MBR: p1 ext4 (48 MiB), p2 FAT32 (bootable, to the end).
const A_SIZE = 96 * MiB;
const P1 = { start: 2048, sectors: 48 * 2048 };
const P2_START = P1.start + P1.sectors;
const FAT_NAMES = ['BOOT/EFI/GRUBX64.EFI', 'BOOT/big.bin', 'readme.txt'];
let aDev = '';
let aExt4 = new Map<string, string>();
let aFat = new Map<string, string>();
const imageDir = join(work, 'images', 'golden');

test('capture --out writes an image directory whose manifest describes disk A', async () => {
  const aFile = join(work, 'a.img');
  writeFileSync(aFile, '');
  await sh('truncate', ['-s', String(A_SIZE), aFile]);
  await sh('sfdisk', ['-q', aFile], { input: `label: dos\nstart=${P1.start}, size=${P1.sectors}, type=83\nstart=${P2_START}, type=c, bootable\n` });
  aDev = await attach(aFile);
  await waitNode(`${aDev}p1`);
  await waitNode(`${aDev}p2`);
  await sh('mkfs.ext4', ['-q', '-F', `${aDev}p1`]);
  await sh('mkfs.vfat', ['-F', '32', `${aDev}p2`]);
  // ext4: nested directories, random and compressible data.
  const mnt = mkdtempSync(join(work, 'mnt-'));
  await sh('mount', [`${aDev}p1`, mnt]);
  mounts.push(mnt);
  try {
    mkdirSync(join(mnt, 'etc/deep/er'), { recursive: true });
    mkdirSync(join(mnt, 'home/user'), { recursive: true });
    writeFileSync(join(mnt, 'home/user/random.bin'), randomBytes(6 * MiB));
    writeFileSync(join(mnt, 'etc/deep/er/text.txt'), 'fleetboot imaging test line\n'.repeat(100_000));
    writeFileSync(join(mnt, 'etc/hostname'), 'machine-a\n');
    writeFileSync(join(mnt, 'empty'), '');
  } finally {
    await sh('umount', [mnt]);
    mounts.splice(mounts.indexOf(mnt), 1);
  }
  // FAT32 through mtools.
  const src = join(work, 'fatsrc');
  mkdirSync(join(src, 'BOOT/EFI'), { recursive: true });
  writeFileSync(join(src, 'BOOT/EFI/GRUBX64.EFI'), randomBytes(700_000));
  writeFileSync(join(src, 'BOOT/big.bin'), randomBytes(3 * MiB));
  writeFileSync(join(src, 'readme.txt'), 'hello from the FAT partition\n');
  await sh('mcopy', ['-s', '-i', `${aDev}p2`, join(src, 'BOOT'), join(src, 'readme.txt'), '::/']);
  aExt4 = await ext4Files(`${aDev}p1`);
  aFat = await fatFiles(`${aDev}p2`, FAT_NAMES);
  assert.equal(aExt4.size, 4);

  mkdirSync(join(work, 'images'));
  const r = await agent(['capture', '--disk', aDev, '--out', imageDir]);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { seconds: number; dataMB: number; streamMB: number };
  const m = parseManifest(JSON.parse(readFileSync(join(imageDir, 'manifest.json'), 'utf8')));
  assert.equal(m.name, 'golden');
  assert.equal(m.table.type, 'dos');
  assert.equal(m.diskBytes, A_SIZE);
  assert.match(m.table.sfdisk, /type=c, bootable/);
  assert.deepEqual(m.partitions.map((p) => [p.number, p.start, p.filesystem, p.tool, p.file, p.bootable]), [
    [1, P1.start, 'ext4', 'partclone.extfs', 'p1.pcl.zst', false],
    [2, P2_START, 'vfat', 'partclone.fat', 'p2.pcl.zst', true],
  ]);
  for (const p of m.partitions) {
    const data = readFileSync(join(imageDir, p.file));
    assert.equal(data.length, p.streamBytes, p.file);
    assert.equal(sha(data), p.sha256, p.file);
    assert.ok(p.usedBytes !== null && p.usedBytes > 0 && p.usedBytes < p.sizeBytes, `${p.file} usedBytes ${String(p.usedBytes)}`);
  }
  // Only the staging-free image directory is left.
  assert.deepEqual(readdirSync(join(work, 'images')), ['golden']);
  console.log(`capture: ${summary.dataMB} MB of partition data in ${summary.seconds} s (${(summary.dataMB / summary.seconds).toFixed(1)} MB/s), stream ${summary.streamMB} MB; p1 ${m.partitions[0]?.streamBytes} bytes, p2 ${m.partitions[1]?.streamBytes} bytes`);
});

let bFile = '';
let bDev = '';

test('deploy --table gpt onto a larger blank disk gives the same files', async () => {
  bFile = join(work, 'b.img');
  writeFileSync(bFile, '');
  await sh('truncate', ['-s', String(160 * MiB), bFile]);
  bDev = await attach(bFile);
  const r = await agent(['deploy', '--disk', bDev, '--from', imageDir, '--table', 'gpt']);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { seconds: number; dataMB: number };
  console.log(`deploy (gpt): ${summary.dataMB} MB of partition data in ${summary.seconds} s (${(summary.dataMB / summary.seconds).toFixed(1)} MB/s)`);
  const t = JSON.parse(await sh('sfdisk', ['--json', bDev])) as { partitiontable: { label: string; partitions: { start: number; size: number; type: string }[] } };
  assert.equal(t.partitiontable.label, 'gpt');
  assert.deepEqual(t.partitiontable.partitions.map((p) => [p.start, p.size, p.type]), [
    [P1.start, P1.sectors, '0FC63DAF-8483-4772-8E79-3D69D8477DE4'],
    [P2_START, A_SIZE / 512 - P2_START, 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7'],
  ]);
  assert.deepEqual(await ext4Files(`${bDev}p1`), aExt4);
  assert.deepEqual(await fatFiles(`${bDev}p2`, FAT_NAMES), aFat);
});

test('deploy onto a smaller disk fails before writing anything', async () => {
  const cFile = join(work, 'c.img');
  writeFileSync(cFile, Buffer.alloc(MiB, 0xa5));
  await sh('truncate', ['-s', String(64 * MiB), cFile]);
  const cDev = await attach(cFile);
  const before = firstMiB(cFile);
  const r = await agent(['deploy', '--disk', cDev, '--from', imageDir, '--table', 'keep']);
  assert.notEqual(r.code, 0);
  assert.equal(r.stderr.trim(), `fleetboot-imager: disk ${cDev} is 64.0 MiB, image needs 96.0 MiB`);
  assert.ok(firstMiB(cFile).equals(before), 'the first MiB of the small disk changed');
});

test('deploy fails naming the partition when one byte of a stored stream is flipped', async () => {
  const bad = join(work, 'images', 'corrupt');
  cpSync(imageDir, bad, { recursive: true });
  const f = join(bad, 'p1.pcl.zst');
  const data = readFileSync(f);
  const at = Math.floor(data.length / 2);
  data[at] = (data[at] as number) ^ 0x01;
  writeFileSync(f, data);
  const r = await agent(['deploy', '--disk', bDev, '--from', bad, '--table', 'gpt']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /^fleetboot-imager: partition 1 \(p1\.pcl\.zst\): checksum mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}\n$/);
  assert.doesNotMatch(r.stdout, /"ok":true/);
});

test('deploy --table keep writes the captured MBR (same disk id, bootable flag) and the same files', async () => {
  const r = await agent(['deploy', '--disk', bDev, '--from', imageDir, '--table', 'keep']);
  assert.equal(r.code, 0, r.stderr);
  const dumpA = await sh('sfdisk', ['--dump', aDev]);
  const dumpB = await sh('sfdisk', ['--dump', bDev]);
  const strip = (d: string, dev: string): string => d.replaceAll(dev, 'DEV');
  assert.equal(strip(dumpB, bDev), strip(dumpA, aDev));
  assert.deepEqual(await ext4Files(`${bDev}p1`), aExt4);
  assert.deepEqual(await fatFiles(`${bDev}p2`, FAT_NAMES), aFat);
});

/** A Fleetboot server on 127.0.0.1:0 with a (fake) boot environment, so PXE decisions hand out task tokens. */
async function withServer(fn: (fb: RunningFleetboot, store: Store, dataDir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(work, 'server-'));
  mkdirSync(join(dir, 'bootenv'));
  writeFileSync(join(dir, 'bootenv', 'vmlinuz'), 'kernel');
  writeFileSync(join(dir, 'bootenv', 'initrd.img'), 'initrd');
  const config = loadConfig({ overrides: { ...(await testStoreOverrides(dir)), dataDir: dir, serverIp: '127.0.0.1', http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0 }, tftp: { enabled: false }, dhcp: { mode: 'off' } } });
  const fb = await startFleetboot(config, { logger: silentLogger, ipxeDir: join(dir, 'no-ipxe') });
  const store = await openTestStore(dir);
  try {
    await fn(fb, store, dir);
  } finally {
    await store.close();
    await fb.close();
  }
}

/** PXE-boot `mac`: the task id and token its boot environment would get on the kernel command line. */
async function pxe(fb: RunningFleetboot, mac: string): Promise<{ task: string; token: string }> {
  const script = await (await fetch(`${fb.url}/boot/decide?mac=${mac.replace(/:/g, '-')}&platform=pcbios`)).text();
  const task = /fleetboot\.task=(\d+)/.exec(script)?.[1];
  const token = /fleetboot\.token=([0-9a-f]+)/.exec(script)?.[1];
  assert.ok(task && token, `no task in the boot script:\n${script}`);
  return { task, token };
}

test('run --url: capture into a real server, then deploy that image to another disk (gpt)', async () => {
  await withServer(async (fb, store, dataDir) => {
    const macA = '52:54:00:ab:00:01';
    const macB = '52:54:00:ab:00:02';
    await createHost(store.db, { mac: macA, name: 'machine-a' });
    await createHost(store.db, { mac: macB, name: 'machine-b' });

    const cap = await createTask(store.db, { type: 'capture', mac: macA, image: 'srv-golden', options: { disk: aDev } });
    const a = await pxe(fb, macA);
    assert.equal(Number(a.task), cap.id);
    const rc = await agent(['run', '--url', fb.url, '--task', a.task, '--token', a.token]);
    assert.equal(rc.code, 0, rc.stderr + rc.stdout);
    const capTask = await getTask(store.db, cap.id);
    assert.equal(capTask?.state, 'done', capTask?.error ?? '');
    const img = await getImage(store.db, 'srv-golden');
    assert.ok(img);
    assert.deepEqual(img.manifest.partitions.map((p) => [p.number, p.filesystem, p.tool]), [
      [1, 'ext4', 'partclone.extfs'],
      [2, 'vfat', 'partclone.fat'],
    ]);
    assert.equal(img.manifest.source.taskId, cap.id);
    assert.equal(img.manifest.source.mac, macA);
    console.log(`server capture: ${rc.seconds.toFixed(1)} s (agent process, incl. startup)`);

    // Blank B again, then deploy the server's image as GPT.
    await sh('wipefs', ['-a', bDev]);
    const dep = await createTask(store.db, { type: 'deploy', mac: macB, image: 'srv-golden', options: { disk: bDev, table: 'gpt' } });
    const b = await pxe(fb, macB);
    const rd = await agent(['run', '--url', fb.url, '--task', b.task, '--token', b.token]);
    assert.equal(rd.code, 0, rd.stderr + rd.stdout);
    const depTask = await getTask(store.db, dep.id);
    assert.equal(depTask?.state, 'done', depTask?.error ?? '');
    console.log(`server deploy: ${rd.seconds.toFixed(1)} s (agent process, incl. startup)`);
    const t = JSON.parse(await sh('sfdisk', ['--json', bDev])) as { partitiontable: { label: string } };
    assert.equal(t.partitiontable.label, 'gpt');
    assert.deepEqual(await ext4Files(`${bDev}p1`), aExt4);
    assert.deepEqual(await fatFiles(`${bDev}p2`, FAT_NAMES), aFat);

    // One byte flipped in the server's stored copy of partition 2: the deploy task fails naming it.
    const imgDir = readdirSync(join(dataDir, 'images'), { withFileTypes: true }).find((d) => d.isDirectory() && !d.name.startsWith('.'));
    assert.ok(imgDir, 'no image directory on the server');
    const stream = join(dataDir, 'images', imgDir.name, 'p2.pcl.zst');
    const bytes = readFileSync(stream);
    const at = Math.floor(bytes.length / 3);
    bytes[at] = (bytes[at] as number) ^ 0x40;
    writeFileSync(stream, bytes);
    const bad = await createTask(store.db, { type: 'deploy', mac: macB, image: 'srv-golden', options: { disk: bDev, table: 'gpt' } });
    const c = await pxe(fb, macB);
    const rb = await agent(['run', '--url', fb.url, '--task', c.task, '--token', c.token]);
    assert.notEqual(rb.code, 0, 'the agent reported success for a corrupt stream');
    const badTask = await getTask(store.db, bad.id);
    assert.equal(badTask?.state, 'failed');
    assert.match(badTask?.error ?? '', /partition 2 \(p2\.pcl\.zst\): checksum mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}/);
  });
});
