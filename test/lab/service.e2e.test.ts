/**
 * Fleetboot as its systemd unit runs it, in a lab: `fleetboot serve` started
 * as an unprivileged user (nobody, uid 65534) holding exactly the
 * capabilities packaging/fleetboot.service grants (read from the unit:
 * CAP_NET_BIND_SERVICE, ambient and bounding) and no_new_privs, through
 * util-linux's setpriv, which is what systemd's User=, AmbientCapabilities=,
 * CapabilityBoundingSet= and NoNewPrivileges= amount to:
 *
 *   bridge namespace ── tap ── QEMU guest (OVMF, the firmware's own PXE)
 *        ├── fb    10.213.63.1  setpriv ... fleetboot serve --dhcp proxy (as nobody) + the callback listener (:9999)
 *        └── dhcp  10.213.63.2  dnsmasq as the site's DHCP server: addresses only
 *
 * - the server's /proc/PID/status: uid/gid 65534, no supplementary groups,
 *   CapEff = CapPrm = CapBnd = CapAmb = CAP_NET_BIND_SERVICE only, NoNewPrivs 1;
 *   its data directory ends up 0700;
 * - it binds 67, 69 and 4011 and a machine PXE-boots its assigned entry
 *   from it (proxyDHCP -> snponly.efi over TFTP -> iPXE -> HTTP script ->
 *   decision -> kernel and initrd over HTTP; the initrd calls back);
 * - GET /api/v1/metrics (a viewer's token) counts that machine's DHCP
 *   offers, its TFTP transfer and bytes, its HTTP boot requests and the
 *   decision;
 * - the capability is needed, not merely granted: the same user without it
 *   cannot start the server (binding TFTP's port 69 is refused).
 *
 * Needs root and the packages of `scripts/install-deps.sh --with-test`; it
 * fails (never skips) without them. About 1.5 minutes under TCG.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabSuite } from './suite.js';
import { closeLabFixture, openLabFixture, waitForGuestCallback, type LabFixture } from './fixture.js';
import { QemuGuest } from './qemu.js';
import { fleetbootCli, ProcessLog, REPO, type Fleetboot } from './bootenv/services.js';
import { unitCapabilities } from '../service-unit.js';
import type { Argv } from '../../src/lib/programs.js';

const SUBNET = '10.213.63';
const SERVER_IP = `${SUBNET}.1`;
const CALLBACK_PORT = 9999;
const HTTP_PORT = 8080;
const MAC = '52:54:00:fb:63:0b';
/** nobody:nogroup: an existing unprivileged user, no account to create and remove. */
const UID = 65534;
const GID = 65534;
/** Linux's capability numbers (linux/capability.h) of the names the unit may use. */
const CAP_NUMBERS: Readonly<Record<string, number>> = { net_bind_service: 10, net_broadcast: 11, net_admin: 12, net_raw: 13 };

interface Env {
  f: LabFixture;
  /** Readable by nobody: the config file and the data directory (nobody's own, 0700). */
  dir: string;
  dataDir: string;
  fb: Fleetboot;
  pid: number;
  caps: string[];
}
const suite = new LabSuite<Env>();
const { guarded, need } = suite;

/** The server's process status lines, as a map. */
function procStatus(pid: number): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return m;
}

/** The value of one sample line of an exposition text, or 0 when absent. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

function explain(e: Env, guest: QemuGuest | null): string {
  return [guest ? guest.diagnostics(50) : '', `--- Fleetboot log (last 60 lines)\n${e.fb.log.tail(60)}`, `--- dnsmasq (last 20 lines)\n${e.f.dhcp?.log.tail(20) ?? ''}`, `(work dir: ${e.f.work})`].join('\n');
}

describe('fleetboot serve as an unprivileged user with only the unit\'s capabilities: a machine PXE-boots from it and /metrics counts the boot', { timeout: 10 * 60_000 }, () => {
  before(() => guarded(async () => {
    const f = await openLabFixture({ name: 'service.e2e', subnet: SUBNET, variants: ['ovmf-pxe'], callbackPort: CALLBACK_PORT, fleetboot: null });
    try {
      const caps = unitCapabilities();
      const dir = mkdtempSync('/tmp/fb-service-e2e-');
      chmodSync(dir, 0o755);
      const dataDir = join(dir, 'data');
      mkdirSync(dataDir, { mode: 0o700 });
      chownSync(dataDir, UID, GID);
      const configFile = join(dir, 'fleetboot.json');
      writeFileSync(configFile, JSON.stringify({ boot: { menuTimeoutSeconds: 2 } }), { mode: 0o644 });
      const capList = ['-all', ...caps.map((c) => `+${c}`)].join(',');
      const argv: Argv = [
        'setpriv', `--reuid=${UID}`, `--regid=${GID}`, '--clear-groups', `--inh-caps=${capList}`, `--ambient-caps=${capList}`, `--bounding-set=${capList}`, '--no-new-privs', '--',
        process.execPath, '--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'serve',
        '--data-dir', dataDir, '--config', configFile, '--interface', 'eth0', '--server-ip', SERVER_IP, '--http-port', String(HTTP_PORT), '--dhcp', 'proxy', '--log-format', 'json',
      ];
      const child = f.lab.spawnIn(f.lab.host('fb').netns, argv, { cwd: REPO, env: { ...process.env, HOME: dir } });
      const fb: Fleetboot = { log: new ProcessLog('fleetboot(fb, nobody)', child), baseUrl: `http://${SERVER_IP}:${HTTP_PORT}`, dataDir };
      f.fb = fb;
      const deadline = Date.now() + 60_000;
      while (!existsSync(join(dataDir, 'server.json'))) {
        if (!fb.log.running) throw new Error(`fleetboot serve (as nobody) exited during start:\n${fb.log.tail(60)}`);
        if (Date.now() > deadline) throw new Error(`fleetboot serve (as nobody) did not write server.json within 60 s:\n${fb.log.tail(60)}`);
        await new Promise((r) => setTimeout(r, 300));
      }
      if (child.pid === undefined) throw new Error('no pid for the server');
      suite.env = { f, dir, dataDir, fb, pid: child.pid, caps };
      // The test entry (kernel + initrd calling back) and the guest's host, through the API.
      const tb = f.testBootEnv;
      if (!tb) throw new Error('no test boot environment');
      const cmdline = `console=ttyS0 fbcallback=http://${SERVER_IP}:${CALLBACK_PORT}/ran`;
      await fleetbootCli(f.lab, 'fb', dataDir, ['entry', 'add', 'test', '--kernel', tb.kernel, '--initrd', tb.initrd, '--cmdline', cmdline]);
      await fleetbootCli(f.lab, 'fb', dataDir, ['host', 'add', MAC, '--name', 'svc', '--entry', 'test']);
    } catch (err) {
      suite.env = null;
      await closeLabFixture(f, true);
      throw err;
    }
  }));

  after(async () => {
    const e = suite.env;
    await closeLabFixture(e?.f ?? null, suite.failed);
    if (e) rmSync(e.dir, { recursive: true, force: true });
  });

  test('the server runs as nobody with exactly the unit\'s capabilities and no_new_privs, and owns a 0700 data directory', (t: TestContext) => guarded(async () => {
    const e = need();
    const s = procStatus(e.pid);
    assert.match(readFileSync(`/proc/${e.pid}/cmdline`, 'utf8'), /src\/cli\/main\.ts\0serve\0/, 'the pid is not the server');
    assert.equal(s.get('Uid'), `${UID}\t${UID}\t${UID}\t${UID}`);
    assert.equal(s.get('Gid'), `${GID}\t${GID}\t${GID}\t${GID}`);
    assert.equal(s.get('Groups'), '');
    assert.equal(s.get('NoNewPrivs'), '1');
    let want = 0n;
    for (const c of e.caps) {
      const n = CAP_NUMBERS[c];
      assert.ok(n !== undefined, `unknown capability ${c} in the unit`);
      want |= 1n << BigInt(n);
    }
    assert.equal(want, 1n << 10n, 'the unit grants CAP_NET_BIND_SERVICE and nothing else');
    for (const k of ['CapEff', 'CapPrm', 'CapBnd', 'CapAmb']) assert.equal(BigInt(`0x${s.get(k) ?? ''}`), want, `${k} ${s.get(k)}`);
    assert.equal(BigInt(`0x${s.get('CapInh') ?? ''}`), want);
    t.diagnostic(`server pid ${e.pid}: CapEff ${s.get('CapEff')}, CapBnd ${s.get('CapBnd')}, NoNewPrivs ${s.get('NoNewPrivs')}`);
    const st = statSync(e.dataDir);
    assert.equal(st.uid, UID);
    assert.equal(st.mode & 0o777, 0o700);
    const token = statSync(join(e.dataDir, 'api-token'));
    assert.equal(token.uid, UID);
    assert.equal(token.mode & 0o777, 0o600);
    // It bound the privileged ports itself.
    const udp = await e.f.lab.nsExec(e.f.lab.host('fb').netns, ['ss', '-H', '-u', '-a', '-n', '-p']);
    for (const port of [67, 69, 4011]) assert.match(udp, new RegExp(`:${port}\\s[^\\n]*pid=${e.pid},`), `port ${port} is not bound by the server:\n${udp}`);
  }));

  test('a QEMU machine (OVMF PXE) boots its entry from it, and /api/v1/metrics counts the DHCP offers, the TFTP transfer and the HTTP boot', (t: TestContext) => guarded(async () => {
    const e = need();
    const timeoutMs = e.f.accel === 'kvm' ? 60_000 : 150_000;
    const t0 = Date.now();
    const guest = await QemuGuest.start(e.f.lab, { variant: 'ovmf-pxe', mac: MAC, workDir: e.f.work });
    try {
      const cb = await waitForGuestCallback(e.f.cb as NonNullable<LabFixture['cb']>, guest, timeoutMs, () => explain(e, guest));
      t.diagnostic(`ovmf-pxe: initrd called back after ${((Date.now() - t0) / 1000).toFixed(1)} s (${e.f.accel}), address ${cb.ip}`);
      assert.equal(cb.marker, 'fbtest-initrd-ran');
    } finally {
      await guest.stop();
    }
    // A viewer's token, as Prometheus would scrape with.
    await fleetbootCli(e.f.lab, 'fb', e.dataDir, ['user', 'add', 'prometheus', '--role', 'viewer']);
    const made = JSON.parse(await fleetbootCli(e.f.lab, 'fb', e.dataDir, ['token', 'create', 'scrape', '--user', 'prometheus', '--role', 'viewer', '--json'])) as { secret?: unknown };
    assert.equal(typeof made.secret, 'string', JSON.stringify(made));
    const text = await e.f.lab.nsExec(e.f.lab.host('fb').netns, ['curl', '-sS', '--fail', '-H', `Authorization: Bearer ${String(made.secret)}`, `${e.fb.baseUrl}/api/v1/metrics`]);
    const tftpBytes = readFileSync(join(e.dataDir, 'tftp', 'snponly.efi')).length;
    t.diagnostic(text.split('\n').filter((l) => /^fleetboot_(dhcp_answers|tftp|http_boot)/.test(l)).join('\n'));
    // The firmware's PXE: an offer with snponly.efi over TFTP; iPXE's own DHCP: an offer with the HTTP script.
    assert.ok(sample(text, 'fleetboot_dhcp_answers_total{kind="offer",mode="proxy",port="dhcp",reason="boot-file"}') >= 1, text);
    assert.ok(sample(text, 'fleetboot_dhcp_answers_total{kind="offer",mode="proxy",port="dhcp",reason="ipxe-script"}') >= 1, text);
    assert.ok(sample(text, 'fleetboot_dhcp_packets_total{mode="proxy",result="replied"}') >= 2, text);
    assert.ok(sample(text, 'fleetboot_tftp_transfers_total{outcome="done"}') >= 1, text);
    assert.ok(sample(text, 'fleetboot_tftp_sent_bytes_total{outcome="done"}') >= tftpBytes, `${tftpBytes} bytes of snponly.efi\n${text}`);
    assert.ok(sample(text, 'fleetboot_http_boot_requests_total{kind="script",status="2xx"}') >= 1, text);
    assert.ok(sample(text, 'fleetboot_http_boot_decisions_total{decision="entry"}') >= 1, text);
    assert.ok(sample(text, 'fleetboot_http_boot_requests_total{kind="entry-file",status="2xx"}') >= 2, 'the kernel and the initrd');
    assert.ok(sample(text, 'fleetboot_http_boot_sent_bytes_total{kind="entry-file"}') >= statSync(e.f.testBootEnv?.kernel ?? '').size, text);
  }));

  test('the capability is needed: the same user without CAP_NET_BIND_SERVICE cannot start the server, and says why (TFTP 69 refused)', (t: TestContext) => guarded(async () => {
    const e = need();
    const dataDir = join(e.dir, 'data-nocap');
    mkdirSync(dataDir, { mode: 0o700 });
    chownSync(dataDir, UID, GID);
    const argv: Argv = [
      'setpriv', `--reuid=${UID}`, `--regid=${GID}`, '--clear-groups', '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', '--no-new-privs', '--',
      process.execPath, '--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'serve',
      '--data-dir', dataDir, '--interface', 'eth0', '--server-ip', SERVER_IP, '--http-port', '8081', '--no-https', '--dhcp', 'proxy', '--log-format', 'json',
    ];
    const log = new ProcessLog('fleetboot(fb, nobody, no capability)', e.f.lab.spawnIn(e.f.lab.host('fb').netns, argv, { cwd: REPO, env: { ...process.env, HOME: e.dir } }));
    const deadline = Date.now() + 60_000;
    while (log.running && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.equal(log.running, false, `the server without the capability is still running:\n${log.tail(20)}`);
    t.diagnostic(log.tail(3));
    // One line saying what failed and what to do, not a stack.
    assert.match(log.all(), /fleetboot: Cannot bind TFTP socket 0\.0\.0\.0:69: bind Permission denied: ports below 1024 need root or the capability CAP_NET_BIND_SERVICE/, log.tail(20));
    assert.doesNotMatch(log.all(), /unexpected error/, log.tail(20));
    assert.equal(existsSync(join(dataDir, 'server.json')), false);
  }));
});
