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
import { LabSuite } from './suite.js';
import { closeLabFixture, openLabFixture, waitForGuestCallback, withParts, type LabWith } from './fixture.js';
import { INITRD_OK_MARKER, QemuGuest, type QemuVariant } from './qemu.js';
import { logEvents as events, macHex as hex, type Callback } from './bootenv/services.js';

const S = '10.213.82';
const SERVER_IP = `${S}.1`;
const CALLBACK_PORT = 9999;

const GUESTS: Array<{ variant: QemuVariant; mac: string; what: string }> = [
  { variant: 'bios-ipxe', mac: '52:54:00:fb:82:0a', what: 'BIOS (SeaBIOS + iPXE ROM pxe-e1000.rom)' },
  { variant: 'ovmf-pxe', mac: '52:54:00:fb:82:0b', what: "UEFI (OVMF's own PXE, virtio-net without option ROM)" },
];

type Env = LabWith<'fb' | 'cb'>;
const suite = new LabSuite<Env>();
const { guarded, need } = suite;

function explain(e: Env, guest: QemuGuest | null): string {
  return [guest ? guest.diagnostics(50) : '', `--- Fleetboot log (last 60 lines)\n${e.fb.log.tail(60)}`, `--- callback listener\n${e.cb.log.tail(10)}`, `(work dir: ${e.work})`].join('\n');
}

function waitForBoot(e: Env, guest: QemuGuest, timeoutMs: number): Promise<Callback> {
  return waitForGuestCallback(e.cb, guest, timeoutMs, () => explain(e, guest));
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
    // No site DHCP server here: Fleetboot is the DHCP server.
    const f = await openLabFixture({
      name: 'server-mode.e2e',
      subnet: S,
      variants: GUESTS.map((g) => g.variant),
      existingDhcp: false,
      callbackPort: CALLBACK_PORT,
      fleetboot: {
        config: { boot: { menuTimeoutSeconds: 2 } },
        extra: ['--dhcp', 'server', '--dhcp-range', `${S}.100,${S}.150,255.255.255.0,600`, '--dhcp-option', `3,${SERVER_IP}`],
      },
    });
    const e = withParts(f, ['fb', 'cb']);
    suite.env = e;
    // startFleetboot waited for server.json (written after any start-up probe); the DHCP side logs that it listens.
    if (!(await e.fb.log.waitFor(/DHCP server listening/, 20_000))) throw new Error(`Fleetboot's DHCP server did not start:\n${e.fb.log.tail(30)}`);
    await f.addTestEntryHosts(GUESTS.map((g) => ({ mac: g.mac, name: g.variant })));
  }));

  after(() => closeLabFixture(suite.env, suite.failed));

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
        const leases = JSON.parse(await e.fleetbootCommand(['dhcp', 'leases', '--json'])) as LeaseRow[];
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
