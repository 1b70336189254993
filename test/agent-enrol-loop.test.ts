/**
 * A deploy with enrol, the imaging agent's side, on loop devices (root):
 * disk A (MBR: p1 an ext4 data partition, p2 an ext4 Linux root whose
 * etc/os-release is Debian's relative link, p3 FAT32) is captured with
 * `main.ts capture`, then deployed to disk B with `deploy --enrol FILE`:
 * var/lib/fleetboot-agent/enrol.json is on p2 only (0600, in a 0700
 * directory, the JSON given), p1 untouched; A's MBR boot code is in the
 * manifest and written back to B. An image with no Linux root
 * (ext4 without os-release, FAT32) deploys with a warning naming every
 * partition tried; an enrol the agent does not accept fails the deploy
 * before anything is written. Then through a real Fleetboot (HTTP and
 * HTTPS on 127.0.0.1): `task deploy --enrol` of that captured image, the
 * agent run with `run --url`: the file holds the server's HTTPS URL, its
 * CA's SHA-256 and a token whose sha256 is the task's MAC-bound token, and
 * the task's message says where it went.
 */
import { openTestStore } from '../src/store/temp-store.js';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, closeSync, writeSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { firstMiB } from './lab/disks.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { program, type ProgramName } from '../src/lib/programs.js';
import { start } from './imaging-helpers.js';
import { createHost, createTask, getTask, openStore } from '../src/store/index.js';

const root = new URL('..', import.meta.url).pathname;
const MiB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;
const work = mkdtempSync(join(tmpdir(), 'fleetboot-enrol-loop-'));
const loops: string[] = [];
const mounts: string[] = [];
const BOOT_CODE = Buffer.from(Array.from({ length: 440 }, (_, i) => (i * 7 + 3) & 0xff));
const SPEC = { server: 'https://10.0.2.1:8443', caSha256: '5e'.repeat(32), token: 'Zb3_p-0123456789abcdefghijklmnopq' };

function sh(cmd: ProgramName, args: string[], input = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(program(cmd), args, { maxBuffer: 16 * MiB, env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
}

function agent(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/agent/main.ts'), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

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

async function withMount<T>(part: string, fn: (dir: string) => T | Promise<T>, ro = false): Promise<T> {
  const mnt = mkdtempSync(join(work, 'mnt-'));
  await sh('mount', ro ? ['-o', 'ro', part, mnt] : [part, mnt]);
  mounts.push(mnt);
  try {
    return await fn(mnt);
  } finally {
    await sh('umount', [mnt]);
    mounts.splice(mounts.indexOf(mnt), 1);
  }
}

/** A blank disk file of `mib` MiB with this sfdisk script, attached; its device. */
async function disk(name: string, mib: number, script: string | null): Promise<string> {
  const f = join(work, name);
  writeFileSync(f, '');
  await sh('truncate', ['-s', String(mib * MiB), f]);
  if (script !== null) await sh('sfdisk', ['-q', f], script);
  return attach(f);
}

after(async () => {
  for (const m of mounts) await sh('umount', [m]).catch(() => undefined);
  for (const l of loops.reverse()) await sh('losetup', ['-d', l]).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

const skip = isRoot ? false : 'needs root (loop devices, mount)';
const enrolFile = join(work, 'enrol-spec.json');
writeFileSync(enrolFile, JSON.stringify(SPEC));

test('deploy --enrol writes var/lib/fleetboot-agent/enrol.json (0600, directory 0700) into the Linux root only', { skip }, async () => {
  const a = await disk('a.img', 80, 'label: dos\nstart=2048, size=32768, type=83\nstart=34816, size=49152, type=83, bootable\nstart=83968, type=c\n');
  for (const n of [1, 2, 3]) await waitNode(`${a}p${n}`);
  // A BIOS boot loader's code in the MBR (bytes 0..439): the deploy writes it back.
  const fd = openSync(a, 'r+');
  writeSync(fd, BOOT_CODE, 0, 440, 0);
  closeSync(fd);
  await sh('mkfs.ext4', ['-q', '-F', `${a}p1`]);
  await sh('mkfs.ext4', ['-q', '-F', `${a}p2`]);
  await sh('mkfs.vfat', ['-F', '32', `${a}p3`]);
  await withMount(`${a}p1`, (m) => writeFileSync(join(m, 'data.txt'), 'not a root\n'));
  await withMount(`${a}p2`, (m) => {
    mkdirSync(join(m, 'etc'));
    mkdirSync(join(m, 'usr/lib'), { recursive: true });
    writeFileSync(join(m, 'usr/lib/os-release'), 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n');
    // As on Debian: etc/os-release is a relative link (it resolves inside the mount).
    symlinkSync('../usr/lib/os-release', join(m, 'etc/os-release'));
    writeFileSync(join(m, 'etc/fstab'), 'UUID=x / ext4 errors=remount-ro 0 1\n');
  });
  const image = join(work, 'images', 'linux');
  mkdirSync(join(work, 'images'), { recursive: true });
  const cap = await agent(['capture', '--disk', a, '--out', image]);
  assert.equal(cap.code, 0, cap.stderr);

  const m = JSON.parse(readFileSync(join(image, 'manifest.json'), 'utf8')) as { table: { bootCode?: string } };
  assert.equal(m.table.bootCode, BOOT_CODE.toString('base64'));

  const b = await disk('b.img', 96, null);
  const r = await agent(['deploy', '--disk', b, '--from', image, '--enrol', enrolFile]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(firstMiB(b).subarray(0, 440).equals(BOOT_CODE), 'the MBR boot code was not written back');
  assert.equal(firstMiB(b).readUInt16LE(510), 0xaa55);
  const summary = JSON.parse(r.stdout) as { enrol?: { written: string | null; message: string } };
  assert.deepEqual(summary.enrol, { written: `${b}p2`, message: `enrolment token written to ${b}p2 (ext4, /var/lib/fleetboot-agent/enrol.json)` });
  await withMount(
    `${b}p2`,
    (m) => {
      const dir = join(m, 'var/lib/fleetboot-agent');
      const file = join(dir, 'enrol.json');
      assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), SPEC);
      assert.equal(lstatSync(file).mode & 0o7777, 0o600);
      assert.ok(lstatSync(file).isFile());
      assert.equal(statSync(file).uid, 0);
      assert.equal(statSync(dir).mode & 0o7777, 0o700);
      assert.equal(statSync(join(m, 'var/lib')).mode & 0o7777, 0o755);
      assert.equal(readlinkSync(join(m, 'etc/os-release')), '../usr/lib/os-release', 'the deployed files changed');
    },
    true,
  );
  await withMount(`${b}p1`, (m) => assert.equal(existsSync(join(m, 'var')), false, 'written to the data partition too'), true);
  // Nothing is left mounted by the agent.
  assert.doesNotMatch(readFileSync('/proc/mounts', 'utf8'), new RegExp(`^${b}p`, 'm'));
});

test('an image with no Linux root deploys with a warning naming every partition tried', { skip }, async () => {
  const a = await disk('c.img', 64, 'label: dos\nstart=2048, size=32768, type=83\nstart=34816, type=c\n');
  await waitNode(`${a}p2`);
  await sh('mkfs.ext4', ['-q', '-F', `${a}p1`]);
  await sh('mkfs.vfat', ['-F', '32', `${a}p2`]);
  await withMount(`${a}p1`, (m) => writeFileSync(join(m, 'data.txt'), 'no os-release here\n'));
  const image = join(work, 'images', 'nolinux');
  const cap = await agent(['capture', '--disk', a, '--out', image]);
  assert.equal(cap.code, 0, cap.stderr);
  const b = await disk('d.img', 64, null);
  const r = await agent(['deploy', '--disk', b, '--from', image, '--enrol', enrolFile]);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { enrol?: { written: string | null; message: string } };
  assert.deepEqual(summary.enrol, {
    written: null,
    message: `warning: no Linux root filesystem among the deployed partitions (tried ${b}p1 (ext4: no etc/os-release), ${b}p2 (vfat)): no enrolment token was written; the machine's agent will not enrol by itself`,
  });
  await withMount(`${b}p1`, (m) => assert.equal(existsSync(join(m, 'var')), false), true);
});

test('an enrol the agent does not accept fails the deploy before anything is written', { skip }, async () => {
  const image = join(work, 'images', 'linux');
  const b = await disk('e.img', 96, null);
  const before = firstMiB(b);
  const bad = join(work, 'bad-enrol.json');
  writeFileSync(bad, JSON.stringify({ ...SPEC, server: 'https://10.0.2.1:8443/$(reboot)' }));
  const r = await agent(['deploy', '--disk', b, '--from', image, '--enrol', bad]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /^fleetboot-imager: the server's enrolment data is refused \(nothing was written\): enrol\.server must be https:\/\/HOST:PORT/);
  assert.ok(firstMiB(b).equals(before), 'the disk was written');
});

test('run --url: a deploy task with enrol through a real server writes its HTTPS URL, CA and a MAC-bound token', { skip }, async () => {
  const dir = mkdtempSync(join(work, 'server-'));
  mkdirSync(join(dir, 'bootenv'));
  writeFileSync(join(dir, 'bootenv', 'vmlinuz'), 'kernel');
  writeFileSync(join(dir, 'bootenv', 'initrd.img'), 'initrd');
  const fb = await start(dir);
  const store = await openTestStore(dir);
  try {
    const macA = '52:54:00:e8:00:01';
    const macB = '52:54:00:e8:00:02';
    await createHost(store.db, { mac: macA, name: 'source' });
    await createHost(store.db, { mac: macB, name: 'target' });
    const pxe = async (mac: string): Promise<{ task: string; token: string }> => {
      const script = await (await fetch(`${fb.url}/boot/decide?mac=${mac.replace(/:/g, '-')}&platform=pcbios`)).text();
      const task = /fleetboot\.task=(\d+)/.exec(script)?.[1];
      const token = /fleetboot\.token=([0-9a-f]+)/.exec(script)?.[1];
      assert.ok(task && token, `no task in the boot script:\n${script}`);
      return { task, token };
    };
    // The Linux disk of the first test, captured through the server.
    const aDev = loops[0] ?? '';
    const cap = await createTask(store.db, { type: 'capture', mac: macA, image: 'deb', options: { disk: aDev } });
    const a = await pxe(macA);
    const rc = await agent(['run', '--url', fb.url, '--task', a.task, '--token', a.token]);
    assert.equal(rc.code, 0, rc.stderr + rc.stdout);
    assert.equal((await getTask(store.db, cap.id))?.state, 'done');

    const b = await disk('f.img', 96, null);
    const dep = await createTask(store.db, { type: 'deploy', mac: macB, image: 'deb', options: { disk: b }, enrol: true });
    const p = await pxe(macB);
    const rd = await agent(['run', '--url', fb.url, '--task', p.task, '--token', p.token]);
    assert.equal(rd.code, 0, rd.stderr + rd.stdout);
    const t = await getTask(store.db, dep.id);
    assert.equal(t?.state, 'done', t?.error ?? '');
    assert.equal(t?.message, `enrolment token written to ${b}p2 (ext4, /var/lib/fleetboot-agent/enrol.json)`);
    const ca = fb.tls?.info().ca;
    assert.ok(ca && fb.httpsPort !== null, 'the server runs without HTTPS');
    const written = await withMount(`${b}p2`, (m) => JSON.parse(readFileSync(join(m, 'var/lib/fleetboot-agent/enrol.json'), 'utf8')) as { server: string; caSha256: string; token: string }, true);
    assert.equal(written.server, `https://127.0.0.1:${fb.httpsPort}`);
    assert.equal(written.caSha256, ca.sha256);
    const row = await store.db.selectFrom('agent_enrol_tokens').selectAll().where('task_id', '=', dep.id).executeTakeFirstOrThrow();
    assert.equal(row.token_hash, createHash('sha256').update(written.token).digest('hex'));
    assert.deepEqual([row.mac_bound, row.uses_left, row.revoked_at], [1, 1, null]);
  } finally {
    await store.close();
    await fb.close();
  }
});
