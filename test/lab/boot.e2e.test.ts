/**
 * End-to-end PXE boots through Fleetboot, in a lab built and torn down here:
 *
 *   bridge namespace ── tap ── QEMU guest (one at a time)
 *        ├── fb    10.213.50.1  `fleetboot serve --dhcp proxy` + the callback listener (:9999)
 *        └── dhcp  10.213.50.2  dnsmasq as the site's DHCP server: addresses only, no PXE options
 *
 * Each guest's MAC is assigned (with the CLI) a boot entry holding the test
 * kernel+initrd (test/lab/bootenv/build.sh); the initrd proves it ran by
 * calling http://10.213.50.1:9999/ran with its MAC. Guests: (a) SeaBIOS +
 * QEMU's iPXE ROM, (b) OVMF with edk2's own PXE (virtio-net, no option ROM),
 * (c) OVMF + iPXE's EFI ROM. A fourth guest with an unknown MAC must reach
 * Fleetboot's menu and fall through to its local disk, whose boot sector
 * prints LOCAL-DISK-BOOTED on the serial port. After each boot, `fleetboot
 * host why` reports it completed, from the server's own records (DHCP,
 * TFTP, HTTP, decision in order); a fifth guest (OVMF PXE) whose TFTP
 * requests Fleetboot's namespace drops (nftables) is reported as offered
 * its boot file and never fetching it.
 *
 * Needs root and the packages of `scripts/install-deps.sh --with-test`; it
 * fails (never skips) without them. Takes about 2 minutes under TCG.
 * Keeps its logs when FBTEST_KEEP=1 (path printed).
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { LabSuite } from './suite.js';
import { closeLabFixture, openLabFixture, waitForGuestCallback, withParts, type LabWith } from './fixture.js';
import { INITRD_OK_MARKER, LOCAL_DISK_MARKER, QemuGuest, writeLocalBootDisk, type QemuVariant } from './qemu.js';
import { logEvents as fleetbootEvents, macHex as hex, type Callback } from './bootenv/services.js';
import { waitFor } from '../wait.js';

/** `fleetboot host why MAC --json` */
interface WhyJson {
  stage: string;
  completed: boolean;
  verdict: string;
  next: string | null;
  steps: Array<{ kind: string; summary: string }>;
}

const SUBNET = '10.213.50';
const CALLBACK_PORT = 9999;
const MENU_TIMEOUT_S = 2;

const GUESTS: Array<{ variant: QemuVariant; mac: string; what: string }> = [
  { variant: 'bios-ipxe', mac: '52:54:00:fb:50:0a', what: '(a) SeaBIOS with QEMU iPXE ROM pxe-e1000.rom' },
  { variant: 'ovmf-pxe', mac: '52:54:00:fb:50:0b', what: "(b) OVMF UEFI with the firmware's own PXE (virtio-net, no option ROM)" },
  { variant: 'ovmf-ipxe', mac: '52:54:00:fb:50:0c', what: "(c) OVMF with iPXE's EFI ROM efi-e1000.rom" },
];

type Env = LabWith<'fb' | 'dhcp' | 'cb'>;
const suite = new LabSuite<Env>();
const { guarded, need } = suite;

function explain(e: Env, guest: QemuGuest | null): string {
  return [
    guest ? guest.diagnostics(50) : '',
    `--- Fleetboot log (last 60 lines)\n${e.fb.log.tail(60)}`,
    `--- existing DHCP server (dnsmasq, last 20 lines)\n${e.dhcp.log.tail(20)}`,
    `--- callback listener\n${e.cb.log.tail(10)}`,
    `(work dir: ${e.work})`,
  ].join('\n');
}

/**
 * The initrd's callback from the guest's MAC. Fails early, with the logs,
 * when the firmware gives up on the network boot or QEMU exits.
 */
function waitForBoot(e: Env, guest: QemuGuest, timeoutMs: number): Promise<Callback> {
  return waitForGuestCallback(e.cb, guest, timeoutMs, () => explain(e, guest));
}

describe('fleetboot serve PXE-boots QEMU guests in a lab (proxyDHCP -> TFTP -> iPXE -> HTTP)', { timeout: 20 * 60_000 }, () => {
  before(() => guarded(async () => {
    const f = await openLabFixture({ name: 'boot.e2e', subnet: SUBNET, variants: GUESTS.map((g) => g.variant), callbackPort: CALLBACK_PORT, fleetboot: { config: { boot: { menuTimeoutSeconds: MENU_TIMEOUT_S } } } });
    suite.env = withParts(f, ['fb', 'dhcp', 'cb']);
    await f.addTestEntryHosts(GUESTS.map((g) => ({ mac: g.mac, name: g.variant })));
  }));

  after(() => closeLabFixture(suite.env, suite.failed));

  for (const g of GUESTS) {
    test(`serve boots ${g.what} into the kernel+initrd assigned to its MAC`, (t: TestContext) => guarded(async () => {
      const e = need();
      const timeoutMs = e.accel === 'kvm' ? 60_000 : 120_000;
      const t0 = Date.now();
      const guest = await QemuGuest.start(e.lab, { variant: g.variant, mac: g.mac, workDir: e.work });
      try {
        const cb = await waitForBoot(e, guest, timeoutMs);
        const secs = ((Date.now() - t0) / 1000).toFixed(1);
        t.diagnostic(`${g.variant}: initrd called back after ${secs} s (${e.accel}), address ${cb.ip}`);
        assert.equal(cb.marker, 'fbtest-initrd-ran');
        // The address came from the existing DHCP server's range, not from Fleetboot.
        const last = Number(cb.ip.split('.')[3]);
        assert.ok(cb.ip.startsWith(`${SUBNET}.`) && last >= 100 && last <= 199, `address ${cb.ip} is outside dnsmasq's range`);
        const ok = await guest.waitForSerial(INITRD_OK_MARKER, 10_000);
        assert.ok(ok, `the initrd did not report ${INITRD_OK_MARKER} on the console\n${explain(e, guest)}`);
        // Each step went through Fleetboot, as its log shows: the proxyDHCP
        // answer, the iPXE binary over TFTP (only for firmware that is not
        // iPXE already), the decision by MAC, the kernel and initrd over HTTP.
        const ev = fleetbootEvents(e.fb);
        const offered = ev.some((o) => hex(o.mac) === hex(g.mac) && /^dhcp /.test(String(o.msg)) && typeof o.file === 'string');
        assert.ok(offered, `Fleetboot's log has no proxyDHCP answer with a boot file for ${g.mac}\n${explain(e, guest)}`);
        if (g.variant === 'ovmf-pxe') {
          const tftp = ev.some((o) => o.msg === 'tftp transfer done' && String(o.client ?? '').startsWith(`${cb.ip}:`));
          assert.ok(tftp, `Fleetboot's log has no finished TFTP transfer to ${cb.ip}\n${explain(e, guest)}`);
        }
        const decided = ev.some((o) => hex(o.mac) === hex(g.mac) && /boots entry/.test(String(o.msg)));
        assert.ok(decided, `Fleetboot's log has no "boots entry" decision for ${g.mac}\n${explain(e, guest)}`);
        const served = ev.filter((o) => o.msg === 'file served' && o.ip === cb.ip && String(o.path).startsWith('/boot/entries/test/')).map((o) => String(o.path));
        assert.ok(served.some((p) => p.endsWith('/vmlinuz')) && served.some((p) => p.endsWith('/initrd.gz')), `Fleetboot did not serve the kernel and initrd to ${cb.ip}: ${served.join(', ')}\n${explain(e, guest)}`);
        // The same steps from the server's own records (stored in batches: wait for the last).
        const why = await waitFor('host why says the boot completed', async () => {
          const d = JSON.parse(await e.fleetbootCommand(['host', 'why', g.mac, '--json'])) as WhyJson;
          return d.completed && d.steps.some((x) => x.kind === 'http' && /initrd\.gz/.test(x.summary)) ? d : null;
        }, 10_000, { intervalMs: 500 });
        assert.match(why.verdict, /^completed: boots entry test/);
        const kinds = why.steps.map((x) => x.kind);
        assert.equal(kinds[0], 'dhcp');
        assert.ok(kinds.indexOf('decision') > kinds.lastIndexOf('dhcp'), `steps out of order: ${kinds.join(' ')}`);
        if (g.variant === 'ovmf-pxe') assert.ok(kinds.includes('tftp') && kinds.indexOf('tftp') < kinds.indexOf('decision'), `no TFTP step before the decision: ${kinds.join(' ')}`);
      } finally {
        await guest.stop();
      }
    }));
  }

  test('serve sends an unknown MAC to the menu, which falls through to the local disk', (t: TestContext) => guarded(async () => {
    const e = need();
    const mac = '52:54:00:fb:50:ee';
    const disk = join(e.work, 'local-disk.img');
    writeLocalBootDisk(disk);
    const timeoutMs = e.accel === 'kvm' ? 60_000 : 120_000;
    const t0 = Date.now();
    const guest = await QemuGuest.start(e.lab, { variant: 'bios-ipxe', name: 'unknown-mac', mac, workDir: e.work, disk });
    try {
      const booted = await guest.waitForSerial(LOCAL_DISK_MARKER, timeoutMs);
      assert.ok(booted, `the unknown machine did not boot its local disk within ${timeoutMs / 1000} s\n${explain(e, guest)}`);
      t.diagnostic(`unknown MAC: local disk booted after ${((Date.now() - t0) / 1000).toFixed(1)} s (${e.accel})`);
      const menu = fleetbootEvents(e.fb).find((o) => hex(o.mac) === hex(mac) && /gets the menu/.test(String(o.msg)));
      assert.ok(menu, `Fleetboot's log has no menu decision for ${mac}\n${explain(e, guest)}`);
      assert.equal(e.cb.callbacks.some((c) => hex(c.mac) === hex(mac)), false, 'the unknown machine must not boot the test entry');
    } finally {
      await guest.stop();
    }
  }));

  test('a machine whose TFTP requests are dropped: host why says it was offered its boot file and never fetched it', (t: TestContext) => guarded(async () => {
    const e = need();
    const mac = '52:54:00:fb:50:0d';
    const ns = e.lab.host('fb').netns;
    await e.lab.nsExec(ns, ['nft', 'add', 'table', 'inet', 'fbtftpdrop']);
    await e.lab.nsExec(ns, ['nft', 'add', 'chain', 'inet', 'fbtftpdrop', 'in', '{ type filter hook input priority 0; }']);
    await e.lab.nsExec(ns, ['nft', 'add', 'rule', 'inet', 'fbtftpdrop', 'in', 'udp', 'dport', '69', 'drop']);
    const guest = await QemuGuest.start(e.lab, { variant: 'ovmf-pxe', name: 'tftp-dropped', mac, workDir: e.work });
    try {
      const why = await waitFor('host why names the missing TFTP fetch', async () => {
        const d = JSON.parse(await e.fleetbootCommand(['host', 'why', mac, '--json'])) as WhyJson;
        return d.stage === 'offered' ? d : null;
      }, e.accel === 'kvm' ? 60_000 : 180_000, { intervalMs: 2000, detail: () => explain(e, guest) });
      // Give the firmware time to ask for the file (its TFTP request is dropped), then look again.
      await new Promise((r) => setTimeout(r, 15_000)); // the firmware's TFTP attempts happen in this window: the test is that none arrives
      const d = JSON.parse(await e.fleetbootCommand(['host', 'why', mac, '--json'])) as WhyJson;
      t.diagnostic(`host why ${mac}: ${d.verdict}`);
      assert.match(d.verdict, /^offered snponly\.efi at .*, never fetched the boot file$/, JSON.stringify(why));
      assert.match(d.next ?? '', /UDP 69/);
      assert.equal(d.completed, false);
      const healthy = JSON.parse(await e.fleetbootCommand(['host', 'why', GUESTS[1]?.mac ?? '', '--json'])) as WhyJson;
      assert.equal(healthy.completed, true, 'the healthy machine\'s last boot is still the completed one');
    } finally {
      await guest.stop();
      await e.lab.nsExec(ns, ['nft', 'delete', 'table', 'inet', 'fbtftpdrop']).catch(() => '');
    }
  }));

  test('the existing DHCP server (dnsmasq) sent no PXE options or boot file', () => {
    const e = need();
    const log = e.dhcp.log.all();
    assert.match(log, /DHCPACK/, 'dnsmasq acknowledged no lease at all');
    assert.doesNotMatch(log, /bootfile name|option: (43|60|66|67) /, `dnsmasq sent PXE options:\n${e.dhcp.log.tail(40)}`);
  });
});
