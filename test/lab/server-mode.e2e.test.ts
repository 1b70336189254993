/**
 * End-to-end PXE boots with Fleetboot as the segment's ONLY DHCP server
 * (`fleetboot serve --dhcp server --dhcp-range ...`), in a lab built and torn
 * down here:
 *
 *   bridge namespace ── tap ── QEMU guest (one at a time)
 *        └── fb  10.213.82.1  fleetboot serve --dhcp server + the callback listener (:9999)
 *
 * Each guest's MAC is assigned the test kernel+initrd entry; the firmware's
 * DHCP, iPXE's DHCP and the initrd's udhcpc all get their address from
 * Fleetboot's pool (.100-.150), and the initrd calls back to prove it ran.
 * Guests: SeaBIOS + QEMU's iPXE ROM (pxe-e1000.rom), and OVMF with edk2's own
 * PXE (virtio-net, no option ROM), which fetches iPXE over TFTP first.
 * Needs root and `scripts/install-deps.sh --with-test`; fails, never skips,
 * without them. About 70 s under TCG. FBTEST_KEEP=1 keeps the logs.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, labAvailable } from './lab.js';
import { LabSuite } from './suite.js';
import { INITRD_OK_MARKER, QemuGuest, chooseAccel, ensureBootEnv, missingQemuPrerequisites, type Accel, type QemuVariant } from './qemu.js';
import { logEvents as events, macHex as hex, fleetbootCli, startFleetboot, startLabHttp, type Callback, type Fleetboot, type LabHttp } from './bootenv/services.js';

const S = '10.213.82';
const SERVER_IP = `${S}.1`;
const CALLBACK_PORT = 9999;

const GUESTS: Array<{ variant: QemuVariant; mac: string; what: string }> = [
  { variant: 'bios-ipxe', mac: '52:54:00:fb:82:0a', what: 'BIOS (SeaBIOS + iPXE ROM pxe-e1000.rom)' },
  { variant: 'ovmf-pxe', mac: '52:54:00:fb:82:0b', what: "UEFI (OVMF's own PXE, virtio-net without option ROM)" },
];

interface Env {
  lab: Lab;
  work: string;
  accel: Accel;
  fb: Fleetboot;
  cb: LabHttp;
}
const suite = new LabSuite<Env>();
const { guarded, need } = suite;
let labRef: Lab | null = null;
let workDir = '';

function explain(e: Env, guest: QemuGuest | null): string {
  return [guest ? guest.diagnostics(50) : '', `--- Fleetboot log (last 60 lines)\n${e.fb.log.tail(60)}`, `--- callback listener\n${e.cb.log.tail(10)}`, `(work dir: ${e.work})`].join('\n');
}

async function waitForBoot(e: Env, guest: QemuGuest, timeoutMs: number): Promise<Callback> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const cb = await e.cb.waitForCallback(guest.mac, 1000);
    if (cb) return cb;
    const why = guest.networkBootFailed() ?? (guest.running ? null : 'QEMU exited');
    if (why) {
      await new Promise((r) => setTimeout(r, 1000)); // diagnostics only (the test fails next): let the last log lines arrive
      assert.fail(`no callback from ${guest.mac}: ${why}\n${explain(e, guest)}`);
    }
  }
  return assert.fail(`no callback from ${guest.mac} within ${timeoutMs / 1000} s\n${explain(e, guest)}`);
}

interface LeaseRow {
  ip: string;
  mac: string;
  state: string;
  active: boolean;
  clientId?: string | null;
}

describe('fleetboot serve --dhcp server: QEMU guests get their address from Fleetboot and PXE-boot their entry', { timeout: 10 * 60_000 }, () => {
  before(() => guarded(async () => {
    if (process.getuid?.() !== 0) throw new Error('server-mode.e2e needs root (network namespaces, tap devices): run the tests as root');
    if (!(await labAvailable())) throw new Error('server-mode.e2e needs `ip netns` (iproute2)');
    const missing = missingQemuPrerequisites(GUESTS.map((g) => g.variant));
    if (missing.length) throw new Error(`server-mode.e2e needs QEMU and firmware; missing: ${missing.join(', ')}. Run: bash scripts/install-deps.sh --with-test`);
    const work = mkdtempSync(join(tmpdir(), 'fb-server-e2e-'));
    workDir = work;
    const { kernel, initrd } = await ensureBootEnv();
    const accel = await chooseAccel();
    const lab = await Lab.create({ subnet: S });
    labRef = lab;
    await lab.addHost('fb', SERVER_IP);
    const cb = await startLabHttp(lab, 'fb', CALLBACK_PORT);
    const configFile = join(work, 'fleetboot.json');
    writeFileSync(configFile, JSON.stringify({ boot: { menuTimeoutSeconds: 2 } }));
    const dataDir = join(work, 'data');
    const fb = await startFleetboot(lab, 'fb', {
      dataDir,
      serverIp: SERVER_IP,
      httpPort: 8080,
      configFile,
      extra: ['--dhcp', 'server', '--dhcp-range', `${S}.100,${S}.150,255.255.255.0,600`, '--dhcp-option', `3,${SERVER_IP}`],
    });
    suite.env = { lab, work, accel, fb, cb };
    // HTTP answers first; the DHCP side (and server.json, for the CLI) may follow a start-up probe.
    if (!(await fb.log.waitFor(/DHCP server listening/, 20_000))) throw new Error(`Fleetboot's DHCP server did not start:\n${fb.log.tail(30)}`);
    for (let i = 0; i < 50 && !existsSync(join(dataDir, 'server.json')); i++) await new Promise((r) => setTimeout(r, 200));
    const cmdline = `console=ttyS0 fbcallback=http://${SERVER_IP}:${CALLBACK_PORT}/ran`;
    await fleetbootCli(lab, 'fb', dataDir, ['entry', 'add', 'test', '--kernel', kernel, '--initrd', initrd, '--cmdline', cmdline]);
    for (const g of GUESTS) await fleetbootCli(lab, 'fb', dataDir, ['host', 'add', g.mac, '--name', g.variant, '--entry', 'test']);
  }));

  after(async () => {
    const keep = process.env.FBTEST_KEEP === '1' || suite.failed;
    try {
      if (suite.env) {
        writeFileSync(join(suite.env.work, 'fleetboot.log'), suite.env.fb.log.all());
        writeFileSync(join(suite.env.work, 'callbacks.log'), suite.env.cb.log.all());
      }
      await labRef?.destroy();
    } finally {
      if (workDir && !keep) rmSync(workDir, { recursive: true, force: true });
      else if (workDir) console.log(`server-mode.e2e: logs kept in ${workDir}`);
    }
  });

  for (const g of GUESTS) {
    test(`a ${g.what} machine gets an address from Fleetboot and boots its assigned entry`, (t: TestContext) => guarded(async () => {
      const e = need();
      const timeoutMs = e.accel === 'kvm' ? 60_000 : 150_000;
      const t0 = Date.now();
      const guest = await QemuGuest.start(e.lab, { variant: g.variant, mac: g.mac, workDir: e.work });
      try {
        const cb = await waitForBoot(e, guest, timeoutMs);
        t.diagnostic(`${g.variant}: initrd called back after ${((Date.now() - t0) / 1000).toFixed(1)} s (${e.accel}), address ${cb.ip}`);
        assert.equal(cb.marker, 'fbtest-initrd-ran');
        const last = Number(cb.ip.split('.')[3]);
        assert.ok(cb.ip.startsWith(`${S}.`) && last >= 100 && last <= 150, `address ${cb.ip} is not from Fleetboot's pool`);
        assert.ok(await guest.waitForSerial(INITRD_OK_MARKER, 10_000), `the initrd did not report ${INITRD_OK_MARKER}\n${explain(e, guest)}`);

        const mine = events(e.fb).filter((o) => hex(o.mac) === hex(g.mac));
        // The firmware's own DHCP was answered by the lease engine with an address and the boot file.
        assert.ok(mine.some((o) => o.step === 'DISCOVER -> OFFER' && typeof o.ip === 'string' && /; .* -> /.test(String(o.reason))), `no OFFER with boot information for ${g.mac}\n${explain(e, guest)}`);
        assert.ok(mine.some((o) => o.step === 'REQUEST -> ACK' && o.ip === cb.ip), `no ACK of ${cb.ip} for ${g.mac}\n${explain(e, guest)}`);
        if (g.variant === 'ovmf-pxe') {
          const ev = events(e.fb);
          // The firmware fetched iPXE over TFTP from the same address the initrd got: one client, one lease.
          assert.ok(ev.some((o) => o.msg === 'tftp transfer done' && String(o.client ?? '').startsWith(`${cb.ip}:`)), `no finished TFTP transfer to ${cb.ip}\n${explain(e, guest)}`);
        }
        assert.ok(mine.some((o) => /boots entry/.test(String(o.msg))), `no "boots entry" decision for ${g.mac}\n${explain(e, guest)}`);
        const leases = JSON.parse(await fleetbootCli(e.lab, 'fb', join(e.work, 'data'), ['dhcp', 'leases', '--json'])) as LeaseRow[];
        assert.ok(leases.some((l) => l.ip === cb.ip && hex(l.mac) === hex(g.mac) && l.state === 'bound'), `no bound lease of ${cb.ip} for ${g.mac}: ${JSON.stringify(leases)}`);
        // Firmware PXE, iPXE and the initrd's udhcpc are one client (edk2 sends no option 61, the others 01+MAC).
        const held = leases.filter((l) => hex(l.mac) === hex(g.mac));
        assert.equal(held.length, 1, `${g.mac} holds more than one lease: ${JSON.stringify(held)}`);
      } finally {
        await guest.stop();
      }
    }));
  }
});
