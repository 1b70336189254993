/**
 * The boot environment (scripts/build-bootenv.sh) boots and runs its agent:
 * built with test/fixtures/bootenv-probe.ts as the agent, booted once in QEMU
 * straight from the kernel (-kernel/-initrd/-append, no PXE) on a lab
 * network with dnsmasq handing out addresses, three disks (virtio, AHCI/SATA,
 * NVMe) and two NICs (e1000, named by BOOTIF=, and virtio-net). The probe
 * POSTs what it saw to a small listener in the server's namespace; the guest
 * must then power off (fleetboot.onexit=poweroff). About a minute under TCG.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { program } from '../src/lib/programs.js';
import { Lab, labAvailable, sh } from './lab/lab.js';
import { CACHE_DIR, QemuGuest, missingQemuPrerequisites, withTimeout } from './lab/qemu.js';
import { ProcessLog, REPO, startExistingDhcp } from './lab/bootenv/services.js';

const SUBNET = '10.213.73';
const MAC_E1000 = '52:54:00:fb:73:01';
const MAC_VIRTIO = '52:54:00:fb:73:02';
const MiB = 1024 * 1024;

interface ProbeReport {
  cmdline: Record<string, string>;
  uptimeSeconds: number;
  node: string;
  kernel: string;
  productName: string;
  disks: Array<{ name: string; bytes: number; model: string }>;
  blkid: Record<string, Record<string, string>>;
  sfdiskDump: string;
  tools: Array<{ argv: string[]; code: number | null; output: string }>;
  pipelines: Array<{ device: string; filesystem: string; tool: string; toolCode: number | null; zstdCode: number | null; bytes: number; sha256: string; stderr: string }>;
  modules: string[];
  interfaces: Record<string, Array<{ address: string; family: string; mac: string }>>;
}

/** Run the build script; resolves with its printed output paths and how long it took. */
function buildBootEnv(out: string): Promise<{ vmlinuz: string; initrd: string; json: string; seconds: number; stderr: string }> {
  const started = Date.now();
  const script = join(REPO, 'scripts/build-bootenv.sh');
  return new Promise((resolve, reject) => {
    execFile(program('bash'), [script, '--agent-entry', join(REPO, 'test/fixtures/bootenv-probe.ts'), '--out', out], { cwd: REPO, maxBuffer: 4 * MiB, timeout: 10 * 60_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${script} failed: ${err.message}\n${stderr}`));
      const [vmlinuz, initrd, json] = stdout.trim().split('\n').slice(-3);
      if (!vmlinuz || !initrd || !json) return reject(new Error(`${script} printed no output paths:\n${stdout}\n${stderr}`));
      resolve({ vmlinuz, initrd, json, seconds: (Date.now() - started) / 1000, stderr });
    });
  });
}

/**
 * The lab's HTTP side: records each request (method, path, Authorization,
 * body) as a JSON line and answers 200. Plain node, no TypeScript loader.
 */
const LISTENER = `
const http = require('node:http');
const srv = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    process.stdout.write(JSON.stringify({ event: 'request', method: req.method, url: req.url, auth: req.headers.authorization || null, body }) + '\\n');
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\\n');
  });
});
srv.listen(0, process.argv[1], () => process.stdout.write(JSON.stringify({ event: 'listening', port: srv.address().port }) + '\\n'));
`;

/** Disk images: vda = a bare ext4 filesystem; sda = MBR + one FAT partition; nvme = blank. */
async function makeDisks(dir: string): Promise<{ virtio: string; sata: string; nvme: string }> {
  const virtio = join(dir, 'virtio.img');
  const sata = join(dir, 'sata.img');
  const nvme = join(dir, 'nvme.img');
  const content = join(dir, 'content');
  await sh('mkdir', ['-p', content]);
  writeFileSync(join(content, 'hello.txt'), 'fleetboot bootenv probe\n');
  await sh('truncate', ['-s', String(32 * MiB), virtio]);
  await sh('mkfs.ext4', ['-q', '-F', '-d', content, virtio]);
  await sh('truncate', ['-s', String(64 * MiB), sata]);
  await sh('bash', ['-c', `echo 'label: dos\nstart=2048, type=c' | sfdisk -q ${sata}`]);
  // The partition starts at sector 2048 and runs to the end: 63 MiB.
  await sh('mkfs.vfat', ['--offset', '2048', '-n', 'FBPROBE', sata, String((63 * MiB) / 1024)]);
  await sh('truncate', ['-s', String(16 * MiB), nvme]);
  return { virtio, sata, nvme };
}

describe('boot environment (scripts/build-bootenv.sh) in QEMU', { timeout: 12 * 60_000 }, () => {
  let lab: Lab | null = null;
  let guest: QemuGuest | null = null;
  let work = '';

  before(async () => {
    if (process.getuid?.() !== 0 || !(await labAvailable())) throw new Error('bootenv.lab needs root and `ip netns` (network namespaces, tap devices)');
    const missing = missingQemuPrerequisites(['bios-ipxe']);
    if (missing.length) throw new Error(`bootenv.lab needs QEMU; missing: ${missing.join(', ')}. Run: bash scripts/install-deps.sh --with-test`);
    work = mkdtempSync(join(tmpdir(), 'fb-bootenv-'));
  });

  after(async () => {
    await guest?.stop();
    await lab?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the built kernel+initramfs gets an address, runs the agent with its tools and disks, and powers off', async (t) => {
    const built = await buildBootEnv(join(CACHE_DIR, 'bootenv-probe'));
    t.diagnostic(`build-bootenv.sh: ${built.seconds.toFixed(1)} s (${/up to date/.test(built.stderr) ? 'cached' : 'built'})`);
    const meta = JSON.parse(readFileSync(built.json, 'utf8')) as {
      kernel: { version: string };
      initrd: { bytes: number; uncompressedBytes: number; sha256: string; compression: string };
      vmlinuz: { bytes: number; sha256: string };
      modules: string[];
    };
    const sha = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');
    assert.equal(meta.initrd.sha256, sha(built.initrd), 'bootenv.json describes initrd.img');
    assert.equal(meta.vmlinuz.sha256, sha(built.vmlinuz), 'bootenv.json describes vmlinuz');
    for (const m of ['ahci', 'sd_mod', 'nvme', 'virtio_blk', 'virtio_scsi', 'virtio_net', 'e1000', 'e1000e', 'igb', 'igc', 'ixgbe', 'r8169', 'tg3', 'bnx2', 'bnxt_en']) {
      assert.ok(meta.modules.includes(m), `bootenv.json lists module ${m}`);
    }
    t.diagnostic(`vmlinuz ${meta.vmlinuz.bytes} B, initrd.img ${meta.initrd.bytes} B (${meta.initrd.compression}; ${meta.initrd.uncompressedBytes} B unpacked), kernel ${meta.kernel.version}`);

    const disks = await makeDisks(work);
    lab = await Lab.create({ subnet: SUBNET });
    const srv = await lab.addHost('srv', `${SUBNET}.1`);
    await startExistingDhcp(lab, 'srv', work);
    const listener = new ProcessLog('listener', lab.spawnIn(srv.netns, ['node', '-e', LISTENER, srv.ip]));
    const listening = await listener.waitFor(/"event":"listening","port":(\d+)/, 15_000);
    assert.ok(listening?.[1], `the listener did not start:\n${listener.tail()}`);
    const url = `http://${srv.ip}:${listening[1]}`;

    const token = randomBytes(16).toString('hex');
    const tap2 = await lab.addTap();
    const append = [
      'console=ttyS0,115200',
      `fleetboot.url=${url}`, 'fleetboot.task=42', `fleetboot.token=${token}`, 'fleetboot.disk=/dev/sda', 'fleetboot.onexit=poweroff',
      `BOOTIF=01-${MAC_E1000.replace(/:/g, '-')}`,
    ].join(' ');
    guest = await QemuGuest.start(lab, {
      variant: 'bios-ipxe',
      name: 'bootenv',
      mac: MAC_E1000,
      workDir: work,
      memoryMb: 1024,
      directKernel: { kernel: built.vmlinuz, initrd: built.initrd, append },
      extraArgs: [
        '-smbios', 'type=1,manufacturer=Fleetboot,product=BootenvProbe',
        '-netdev', `tap,id=n1,ifname=${tap2},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=n1,mac=${MAC_VIRTIO},romfile=`,
        '-drive', `file=${disks.virtio},format=raw,if=none,id=dv`, '-device', 'virtio-blk-pci,drive=dv',
        '-device', 'ahci,id=ahci0', '-drive', `file=${disks.sata},format=raw,if=none,id=ds`, '-device', 'ide-hd,drive=ds,bus=ahci0.0',
        '-drive', `file=${disks.nvme},format=raw,if=none,id=dn`, '-device', 'nvme,drive=dn,serial=fbprobe1',
      ],
    });
    const g = guest;

    const posted = await listener.waitFor(/\{"event":"request","method":"POST","url":"\/probe"[^\n]*/, 5 * 60_000);
    assert.ok(posted, `no probe report arrived\n${g.diagnostics(80)}\n${listener.tail()}`);
    const req = JSON.parse(posted[0]) as { auth: string | null; body: string };
    const report = JSON.parse(req.body) as ProbeReport;
    const exit = await withTimeout(g.exited, 60_000);
    const serial = g.serial();
    const agentAt = /fleetboot-bootenv: \[([\d.]+)\] starting the agent/.exec(serial)?.[1];
    const initAt = /fleetboot-bootenv: \[([\d.]+)\] started/.exec(serial)?.[1];
    t.diagnostic(`guest (${g.accel}): /init at ${initAt} s, agent started at ${agentAt} s of uptime, probe report at ${report.uptimeSeconds} s; QEMU ran ${((Date.now() - g.startedAt) / 1000).toFixed(1)} s`);

    // The token and the other fleetboot.* values came through the command line.
    assert.equal(req.auth, `Bearer ${token}`);
    assert.equal(report.cmdline.token, token);
    assert.equal(report.cmdline.task, '42');
    assert.equal(report.cmdline.disk, '/dev/sda');
    assert.equal(report.cmdline.url, url);
    assert.match(report.node, /^v20\./);
    assert.equal(report.kernel, meta.kernel.version);
    assert.equal(report.productName, 'BootenvProbe');

    // All three disks, with their sizes.
    const size = (name: string): number | undefined => report.disks.find((d) => d.name === name)?.bytes;
    assert.equal(size('vda'), 32 * MiB, `virtio disk: ${JSON.stringify(report.disks)}`);
    assert.equal(size('sda'), 64 * MiB, `SATA disk: ${JSON.stringify(report.disks)}`);
    assert.equal(size('nvme0n1'), 16 * MiB, `NVMe disk: ${JSON.stringify(report.disks)}`);
    assert.equal(report.blkid['/dev/vda']?.TYPE, 'ext4', JSON.stringify(report.blkid));
    assert.equal(report.blkid['/dev/sda1']?.TYPE, 'vfat', JSON.stringify(report.blkid));
    assert.match(report.sfdiskDump, /\/dev\/sda1 : start=\s*2048,.*type=c/);

    // Every tool ran.
    for (const r of report.tools) assert.equal(r.code, 0, `${r.argv.join(' ')} exited ${r.code}: ${r.output}`);
    const out = (cmd: string): string => report.tools.find((r) => r.argv[0] === cmd)?.output ?? '';
    assert.match(out('sfdisk'), /sfdisk from util-linux/);
    assert.match(out('sgdisk'), /GPT fdisk \(sgdisk\)/);
    assert.match(out('zstd'), /Zstandard CLI/);
    for (const pc of ['partclone.extfs', 'partclone.fat', 'partclone.ntfs', 'partclone.xfs', 'partclone.btrfs', 'partclone.dd']) assert.match(out(pc), /Partclone : v\d/, pc);

    // The capture pipeline (partclone | zstd) worked on both filesystems.
    for (const [dev, fs] of [['/dev/vda', 'ext4'], ['/dev/sda1', 'vfat']] as const) {
      const p = report.pipelines.find((x) => x.device === dev);
      assert.ok(p, `no pipeline for ${dev}: ${JSON.stringify(report.pipelines)}`);
      assert.equal(p.filesystem, fs);
      assert.equal(p.toolCode, 0, `${p.tool} on ${dev}: ${p.stderr}`);
      assert.equal(p.zstdCode, 0, `zstd after ${p.tool} on ${dev}: ${p.stderr}`);
      assert.ok(p.bytes > 0, `${dev}: no compressed bytes`);
    }

    // Drivers for every device the guest has; BOOTIF chose the e1000 NIC only.
    for (const m of ['e1000', 'virtio_net', 'ahci', 'sd_mod', 'nvme', 'virtio_blk']) assert.ok(report.modules.includes(m), `module ${m} not loaded: ${report.modules.join(' ')}`);
    const v4 = (mac: string): string[] =>
      Object.values(report.interfaces).flat().filter((a) => a.mac === mac && a.family === 'IPv4').map((a) => a.address);
    const e1000Ip = v4(MAC_E1000);
    assert.equal(e1000Ip.length, 1, `the BOOTIF NIC has one IPv4 address: ${JSON.stringify(report.interfaces)}`);
    assert.ok(e1000Ip[0]?.startsWith(`${SUBNET}.`), `address from dnsmasq: ${e1000Ip[0]}`);
    assert.deepEqual(v4(MAC_VIRTIO), [], 'the other NIC is left unconfigured');

    // The console tells the story; then the guest powered itself off.
    for (const line of ['loading drivers', `BOOTIF=01-${MAC_E1000.replace(/:/g, '-')}`, 'udhcpc bound', 'starting the agent', 'agent finished (exit 0)', 'powering off']) {
      assert.ok(serial.includes(line), `console lacks "${line}"\n${g.diagnostics(80)}`);
    }
    const initLines = serial.split('\n').filter((l) => l.includes('fleetboot-bootenv:'));
    for (const l of initLines) t.diagnostic(l.trim().slice(0, 300));
    assert.ok(!initLines.some((l) => l.includes(token)), 'init never prints the token');
    assert.ok(exit, `the guest did not power off\n${g.diagnostics(80)}`);
  });
});
