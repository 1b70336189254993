/**
 * Secure Boot end to end, in a lab built and torn down here:
 *
 *   bridge namespace ── tap ── QEMU: OVMF with Secure Boot on and Microsoft's keys
 *        │                     (OVMF_CODE_4M.ms.fd + a copy of OVMF_VARS_4M.ms.fd, q35 with SMM),
 *        │                     the firmware's own PXE on virtio-net
 *        └── fb    10.213.96.1  `fleetboot serve --dhcp server` with uefi.secureBoot on and the
 *                               callback listener (:9999)
 *
 * The chain: firmware -> Debian's signed shim (shimx64.efi, from Fleetboot's
 * proxyDHCP answer) -> Debian's signed GRUB (grubx64.efi) -> /grub/grub.cfg
 * -> the machine's decision from Fleetboot over TFTP -> a Debian-signed
 * kernel. One machine, three boots:
 *
 * 1. its entry: the Debian-signed test kernel prints "secureboot: Secure
 *    boot enabled" and the test initrd calls back (it ran);
 * 2. negative control: its entry now takes the same kernel with one byte
 *    changed; Fleetboot warns on the screen (the signature does not verify)
 *    and leaves the verdict to the chain, which refuses it ("bad shim
 *    signature"): the kernel never starts and the initrd never runs. (An
 *    entry whose kernel has no signature at all is refused by Fleetboot
 *    itself: test/grub-files.test.ts);
 * 3. an inventory task: Fleetboot's boot environment (Debian's signed
 *    kernel) boots under Secure Boot and the task completes.
 *
 * Needs root and the packages of `scripts/install-deps.sh --with-test`
 * (which also extracts Debian's signed shim and GRUB); it fails (never
 * skips) without them. Keeps its logs when FBTEST_KEEP=1 (path printed).
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabSuite } from './suite.js';
import { closeLabFixture, openLabFixture, waitForGuestCallback, withParts, type LabWith } from './fixture.js';
import { CACHE_DIR, ensureFleetbootBootEnv, INITRD_OK_MARKER, QemuGuest } from './qemu.js';
import { logEvents, macHex as hex } from './bootenv/services.js';
import { DEBIAN_SIGNED_DIR } from '../../src/config/config.js';
import { waitFor } from '../wait.js';

const SUBNET = '10.213.96';
const CALLBACK_PORT = 9999;
const MAC = '52:54:00:fb:96:5b';
const SB_ENABLED = 'secureboot: Secure boot enabled';

type Env = LabWith<'fb' | 'cb'> & { bootEnvDir: string };
const suite = new LabSuite<Env>();
const { guarded, need } = suite;

function explain(e: Env, guest: QemuGuest | null): string {
  return [
    guest ? guest.diagnostics(60) : '',
    `--- Fleetboot log (last 60 lines)\n${e.fb.log.tail(60)}`,
    `--- callback listener\n${e.cb.log.tail(10)}`,
    `(work dir: ${e.work})`,
  ].join('\n');
}

async function cli(args: string[]): Promise<string> {
  return need().fleetbootCommand(args);
}

describe('Secure Boot: OVMF with Secure Boot on PXE-boots through shim and GRUB into Debian-signed kernels', { timeout: 30 * 60_000 }, () => {
  before(() =>
    guarded(async () => {
      for (const f of ['shimx64.efi.signed', 'grubnetx64.efi.signed']) {
        if (!existsSync(join(DEBIAN_SIGNED_DIR, f))) throw new Error(`${join(DEBIAN_SIGNED_DIR, f)} is missing: run bash scripts/install-deps.sh (it extracts Debian's signed shim and GRUB)`);
      }
      const bootEnvDir = join(CACHE_DIR, 'fleetboot-bootenv');
      await ensureFleetbootBootEnv(bootEnvDir);
      const f = await openLabFixture({
        name: 'secureboot.e2e',
        subnet: SUBNET,
        variants: ['ovmf-sb'],
        // Fleetboot is the DHCP server: Debian's GRUB 2.06 finds its TFTP server only in the address
        // server's answer (siaddr), never in a proxyDHCP's (README "Secure Boot").
        existingDhcp: false,
        callbackPort: CALLBACK_PORT,
        fleetboot: {
          config: { uefi: { secureBoot: 'on' }, boot: { menuTimeoutSeconds: 2 }, imaging: { bootEnvDir, agentTimeoutSeconds: 120 } },
          extra: ['--dhcp', 'server', '--dhcp-range', `${SUBNET}.100,${SUBNET}.150,255.255.255.0,600`, '--dhcp-option', `3,${SUBNET}.1`],
        },
      });
      if (!(await f.fb?.log.waitFor(/DHCP server listening/, 20_000))) throw new Error(`Fleetboot's DHCP server did not start:\n${f.fb?.log.tail(30) ?? ''}`);
      const tb = f.testBootEnv;
      if (!tb) throw new Error('the test kernel was not built');
      suite.env = Object.assign(withParts(f, ['fb', 'cb']), { bootEnvDir });
      await f.addTestEntryHosts([{ mac: MAC, name: 'sb-machine' }]);
      // The negative control's kernel: Debian's signed test kernel with one byte changed.
      const bad = readFileSync(tb.kernel);
      const at = Math.floor(bad.length / 2);
      bad[at] = (bad[at] as number) ^ 0x01;
      const badKernel = join(f.work, 'vmlinuz-tampered');
      writeFileSync(badKernel, bad);
      const cmdline = `console=ttyS0 fbcallback=http://${f.serverIp}:${CALLBACK_PORT}/ran`;
      await cli(['entry', 'add', 'tampered', '--kernel', badKernel, '--initrd', tb.initrd, '--cmdline', cmdline]);
    }),
  );

  after(() => closeLabFixture(suite.env, suite.failed));

  test('its entry: shim, GRUB and the Debian-signed kernel, with Secure Boot enabled; the initrd calls back', (t: TestContext) =>
    guarded(async () => {
      const e = need();
      const t0 = Date.now();
      const guest = await QemuGuest.start(e.lab, { variant: 'ovmf-sb', mac: MAC, workDir: e.work, memoryMb: 1024 });
      try {
        const cb = await waitForGuestCallback(e.cb, guest, 240_000, () => explain(e, guest));
        t.diagnostic(`ovmf-sb: initrd called back after ${((Date.now() - t0) / 1000).toFixed(1)} s (${e.accel})`);
        assert.equal(cb.marker, 'fbtest-initrd-ran');
        assert.ok(await guest.waitForSerial(INITRD_OK_MARKER, 10_000), `no ${INITRD_OK_MARKER}\n${explain(e, guest)}`);
        const serial = readFileSync(guest.serialLog, 'latin1');
        assert.ok(serial.includes(SB_ENABLED), `the kernel did not report "${SB_ENABLED}"\n${explain(e, guest)}`);
        assert.match(serial, /Fleetboot: 52:54:00:fb:96:5b, Secure Boot on/);
        const ev = logEvents(e.fb);
        assert.ok(ev.some((o) => hex(o.mac) === hex(MAC) && o.step === 'REQUEST -> ACK' && /-> shimx64\.efi over TFTP/.test(String(o.reason))), `no DHCP answer naming shimx64.efi\n${explain(e, guest)}`);
        const done = ev.filter((o) => o.msg === 'tftp transfer done' && String(o.client ?? '').startsWith(`${cb.ip}:`)).map((o) => String(o.file));
        for (const f of ['shimx64.efi', 'grubx64.efi', 'grub/grub.cfg', `fleetboot/grub/${MAC}/sb-on.cfg`, 'fleetboot/entries/test/vmlinuz', 'fleetboot/entries/test/initrd.gz']) {
          assert.ok(done.some((d) => d.replace(/^\/+/, '') === f), `no TFTP transfer of ${f} to ${cb.ip}: ${done.join(', ')}`);
        }
        assert.ok(ev.some((o) => hex(o.mac) === hex(MAC) && o.via === 'grub' && o.secureBoot === true && /boots entry test/.test(String(o.msg))), `no GRUB decision with Secure Boot for ${MAC}\n${explain(e, guest)}`);
      } finally {
        await guest.stop();
      }
    }),
  );

  test('negative control: the same kernel with one byte changed is refused by the chain; the initrd never runs', (t: TestContext) =>
    guarded(async () => {
      const e = need();
      await cli(['host', 'assign', MAC, 'tampered']);
      const guest = await QemuGuest.start(e.lab, { variant: 'ovmf-sb', name: 'tampered', mac: MAC, workDir: e.work, memoryMb: 1024 });
      try {
        const refused = await guest.waitForSerial(/bad shim signature|Access Denied|Security Violation/, 240_000);
        assert.ok(refused, `the chain did not refuse the tampered kernel\n${explain(e, guest)}`);
        t.diagnostic(`tampered kernel: ${String(refused)}`);
        assert.match(readFileSync(guest.serialLog, 'latin1'), /Fleetboot: warning: the kernel vmlinuz-tampered of entry tampered: its contents/);
        // GRUB falls back (back to the firmware); give a wrongly loaded kernel time to show itself.
        await new Promise((r) => setTimeout(r, 10_000)); // the test is that nothing arrives in this window
        const serial = readFileSync(guest.serialLog, 'latin1');
        assert.doesNotMatch(serial, /Linux version/, 'a kernel started');
        await e.cb.waitForCallback(MAC, 100); // refreshes the list
        assert.equal(e.cb.callbacks.filter((c) => hex(c.mac) === hex(MAC)).length, 1, 'the initrd ran again');
        assert.ok(logEvents(e.fb).some((o) => hex(o.mac) === hex(MAC) && /boots entry tampered/.test(String(o.msg))), 'Fleetboot did not decide the tampered entry');
      } finally {
        await guest.stop();
        await cli(['host', 'assign', MAC, 'test']);
      }
    }),
  );

  test("Fleetboot's boot environment boots under Secure Boot and completes an inventory task", (t: TestContext) =>
    guarded(async () => {
      const e = need();
      const task = JSON.parse(await cli(['task', 'inventory', MAC, '--json'])) as { id: number; state: string };
      assert.equal(task.state, 'queued');
      const t0 = Date.now();
      const guest = await QemuGuest.start(e.lab, { variant: 'ovmf-sb', name: 'inventory', mac: MAC, workDir: e.work, memoryMb: 1536 });
      try {
        const done = await waitFor(
          `task #${task.id} done`,
          async () => {
            const v = JSON.parse(await cli(['task', 'show', String(task.id), '--json'])) as { state: string; error: string | null };
            if (v.state === 'failed' || v.state === 'canceled') throw new Error(`task #${task.id} ${v.state}: ${v.error}\n${explain(e, guest)}`);
            return v.state === 'done' ? v : null;
          },
          600_000,
          { intervalMs: 2000, detail: () => explain(e, guest) },
        );
        assert.equal(done.state, 'done');
        t.diagnostic(`inventory under Secure Boot: done after ${((Date.now() - t0) / 1000).toFixed(1)} s (${e.accel})`);
        const serial = readFileSync(guest.serialLog, 'latin1');
        assert.ok(serial.includes(SB_ENABLED), `the boot environment's kernel did not report "${SB_ENABLED}"\n${explain(e, guest)}`);
        const host = JSON.parse(await cli(['host', 'show', MAC, '--json'])) as { inventory: { nics: Array<{ mac: string }> } | null };
        assert.ok(host.inventory?.nics.some((n) => n.mac === MAC), `no inventory with the machine's NIC: ${JSON.stringify(host.inventory)}`);
      } finally {
        await guest.stop();
      }
    }),
  );
});
