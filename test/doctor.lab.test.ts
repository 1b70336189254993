/**
 * `fleetboot doctor` against a real `fleetboot serve` on a lab segment:
 *
 *   bridge namespace
 *     ├── fb     10.213.77.1   fleetboot serve --dhcp proxy (67, 4011, 69, 8080, 8443)
 *     │                        doctor runs here, in the server's namespace
 *     └── other  10.213.77.2   curl (a TFTP and an HTTP fetch); later dnsmasq as a
 *                              DHCP server that hands PXE clients a boot file
 *
 * One server; each case breaks one thing, runs doctor, and puts it back:
 * healthy (text and --json), a second DHCP server on the segment, an iPXE
 * binary deleted from the TFTP root, udp/69 dropped by an nftables rule in
 * the server's namespace, and imaging.bootEnvDir pointing at an empty
 * directory. The boot environment is a stand-in (two small files and a
 * bootenv.json recording their sha256s): doctor checks files, it boots
 * nothing. About 40 s. Needs root.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { program } from '../src/lib/programs.js';
import { Lab, labAvailable } from './lab/lab.js';
import { ProcessLog, REPO, startFleetboot, type Fleetboot } from './lab/bootenv/services.js';

const S = '10.213.77';
const SERVER_IP = `${S}.1`;

interface CheckJson {
  id: string;
  status: 'ok' | 'warn' | 'fail' | 'info';
  title: string;
  detail: string;
  fix: string | null;
}

let lab: Lab | null = null;
let fb: Fleetboot | null = null;
let work = '';
let dataDir = '';
let goodConfig = '';
let emptyBootEnvConfig = '';

/** `fleetboot doctor` in the server's namespace with the serve flags; exit status and output. */
function doctor(extra: string[], config = goodConfig): Promise<{ code: number; stdout: string; stderr: string }> {
  const l = lab as Lab;
  const args = ['netns', 'exec', l.host('fb').netns, program('node'), '--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'doctor', '--config', config, '--data-dir', dataDir, '--interface', 'eth0', '--server-ip', SERVER_IP, '--http-port', '8080', '--dhcp', 'proxy', ...extra];
  return new Promise((res) => {
    execFile(program('ip'), args, { cwd: REPO, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      res({ code, stdout, stderr });
    });
  });
}

function line(out: string, re: RegExp): string {
  const l = out.split('\n').find((x) => re.test(x));
  assert.ok(l, `no line matching ${re} in:\n${out}`);
  return l;
}

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

const available = await labAvailable();

describe('fleetboot doctor (lab)', { skip: available ? false : 'needs root and ip netns', timeout: 180_000 }, () => {
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'fb-doctor-'));
    dataDir = join(work, 'data');
    const bootEnv = join(work, 'bootenv');
    mkdirSync(bootEnv);
    writeFileSync(join(bootEnv, 'vmlinuz'), 'kernel stand-in');
    writeFileSync(join(bootEnv, 'initrd.img'), 'initrd stand-in');
    writeFileSync(join(bootEnv, 'bootenv.json'), JSON.stringify({ vmlinuz: { sha256: sha('kernel stand-in') }, initrd: { sha256: sha('initrd stand-in') } }));
    mkdirSync(join(work, 'empty'));
    goodConfig = join(work, 'fleetboot.json');
    writeFileSync(goodConfig, JSON.stringify({ imaging: { bootEnvDir: bootEnv } }));
    emptyBootEnvConfig = join(work, 'empty-bootenv.json');
    writeFileSync(emptyBootEnvConfig, JSON.stringify({ imaging: { bootEnvDir: join(work, 'empty') } }));
    lab = await Lab.create({ subnet: S });
    await lab.addHost('fb', SERVER_IP);
    await lab.addHost('other', `${S}.2`);
    fb = await startFleetboot(lab, 'fb', { dataDir, serverIp: SERVER_IP, configFile: goodConfig });
    // A client fetches iPXE over TFTP and the boot script over HTTP: doctor then shows when.
    await lab.exec('other', ['curl', '-s', '-o', '/dev/null', '--max-time', '10', `tftp://${SERVER_IP}/undionly.kpxe`]);
    await lab.exec('other', ['curl', '-s', '-o', '/dev/null', '--max-time', '10', `http://${SERVER_IP}:8080/boot.ipxe`]);
  });

  after(async () => {
    await lab?.destroy();
    if (work && !process.env.FB_KEEP) rmSync(work, { recursive: true, force: true });
  });

  test('passes on a healthy server: every check ok or information', async () => {
    const r = await doctor(['--probe-timeout', '3']);
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    assert.doesNotMatch(r.stdout, /^(FAIL|warn) /m, r.stdout);
    for (const re of [
      /^ok +server: Fleetboot .* runs \(pid \d+/,
      /^ok +port udp\/67 \(proxyDHCP\): bound by Fleetboot/,
      /^ok +port udp\/4011 \(PXE boot server\): bound by Fleetboot/,
      /^ok +port udp\/69 \(TFTP\): bound by Fleetboot/,
      /^ok +port tcp\/8080 \(HTTP\): bound by Fleetboot/,
      /^ok +other DHCP servers on eth0: none answered/,
      /^ok +iPXE snponly\.efi: present/,
      /^ok +boot environment .*: vmlinuz and initrd\.img present and match bootenv\.json/,
      new RegExp(`^ok +server address ${SERVER_IP.replace(/\./g, '\\.')} on eth0`),
      /^ok +firewall \(nftables\): no input chain/,
      /^ok +permissions of /,
      /^info +last TFTP answer: \d+ s ago/,
      /^info +last HTTP boot answer: \d+ s ago/,
      /^No problem found/,
    ]) line(r.stdout, re);
  });

  test('--json prints the checks for scripts', async () => {
    const r = await doctor(['--no-probe', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const j = JSON.parse(r.stdout) as { ok: boolean; checks: CheckJson[] };
    assert.equal(j.ok, true);
    const ids = j.checks.map((c) => c.id);
    for (const id of ['server', 'port:udp/67', 'port:udp/69', 'port:tcp/8080', 'ipxe:undionly.kpxe', 'bootenv', 'address', 'firewall', 'data-dir:space', 'data-dir:permissions', 'activity:dhcp']) assert.ok(ids.includes(id), `${id} missing: ${ids.join(' ')}`);
    assert.ok(j.checks.every((c) => c.status !== 'fail'), r.stdout);
  });

  test('names a second DHCP server on the segment', async () => {
    const l = lab as Lab;
    const log = new ProcessLog(
      'dnsmasq',
      l.spawnIn(l.host('other').netns, ['dnsmasq', '-k', '--conf-file=/dev/null', '--port=0', '--user=root', '--pid-file', '--leasefile-ro', '--bind-interfaces', '--interface=eth0', `--dhcp-range=${S}.100,${S}.150,255.255.255.0,1h`, '--dhcp-boot=rogue.kpxe', '--log-facility=-']),
    );
    try {
      assert.ok(await log.waitFor(/DHCP, IP range/, 10_000), log.tail());
      const r = await doctor(['--probe-timeout', '5']);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const l1 = line(r.stdout, /^FAIL +other DHCP servers on eth0:/);
      assert.match(l1, new RegExp(`a DHCP server at ${S.replace(/\./g, '\\.')}\\.2 .*with boot file rogue\\.kpxe`));
      assert.match(l1, /-> PXE clients may boot from the other server/);
    } finally {
      await log.stop('SIGTERM', 3000);
    }
  });

  test('names a missing iPXE binary', async () => {
    const file = join(dataDir, 'tftp', 'snponly.efi');
    renameSync(file, `${file}.away`);
    try {
      const r = await doctor(['--no-probe']);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(line(r.stdout, /^FAIL +iPXE snponly\.efi:/), /missing: .*snponly\.efi does not exist -> restart the server/);
      assert.match(line(r.stdout, /^ok +iPXE undionly\.kpxe:/), /present/);
    } finally {
      renameSync(`${file}.away`, file);
    }
  });

  test('names a port blocked by an nftables rule in the server\'s namespace', async () => {
    const l = lab as Lab;
    await l.exec('fb', ['nft', 'add', 'table', 'inet', 'fbdoctor']);
    try {
      await l.exec('fb', ['nft', 'add', 'chain', 'inet', 'fbdoctor', 'input', '{ type filter hook input priority 0; policy accept; }']);
      await l.exec('fb', ['nft', 'add', 'rule', 'inet', 'fbdoctor', 'input', 'iifname', 'lo', 'accept']);
      await l.exec('fb', ['nft', 'add', 'rule', 'inet', 'fbdoctor', 'input', 'udp', 'dport', '69', 'drop']);
      const r = await doctor(['--no-probe']);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(line(r.stdout, /^FAIL +firewall udp\/69 \(TFTP\):/), /dropped by `udp dport 69 drop` in chain input of table inet fbdoctor .*-> let it in, e\.g\. `nft add rule inet filter input udp dport 69 accept`/);
      assert.match(line(r.stdout, /firewall tcp\/8080/), /^ok /);
      assert.match(line(r.stdout, /firewall udp\/67 /), /^ok /);
    } finally {
      await l.exec('fb', ['nft', 'delete', 'table', 'inet', 'fbdoctor']);
    }
  });

  test('names a missing boot environment (imaging.bootEnvDir an empty directory)', async () => {
    const r = await doctor(['--no-probe'], emptyBootEnvConfig);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(line(r.stdout, /^FAIL +boot environment /), /empty: missing \(no vmlinuz, initrd\.img\): imaging tasks .* cannot boot -> build it: fleetboot bootenv build .*--dir .*empty/);
  });

  test('the server is still healthy after the cases (each was put back)', async () => {
    assert.ok((fb as Fleetboot).log.running, 'the server stopped');
    const r = await doctor(['--no-probe']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });
});
