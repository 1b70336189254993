/**
 * End-to-end UEFI HTTP boot through Fleetboot, in a lab built and torn down here:
 *
 *   bridge namespace ── tap ── QEMU: OVMF (q35) + virtio-net, no option ROM
 *        ├── fb    10.213.55.1  `fleetboot serve --dhcp proxy` + the callback listener (:9999)
 *        └── dhcp  10.213.55.2  dnsmasq as the site's DHCP server: addresses only
 *
 * The guest's firmware is told to boot over HTTP only: OVMF reads
 * `opt/org.tianocore/IPv4PXESupport` and `opt/org.tianocore/IPv6Support`
 * from fw_cfg (OvmfPkg/RUNTIME_CONFIG.md; Debian's OVMF 2022.11 honours
 * both), so with PXEv4 and IPv6 off the NIC's only boot option is
 * "UEFI HTTPv4". That is deterministic: no PXE attempt can come first and
 * succeed through our proxy (which answers PXEClient too).
 *
 * The chain, every step checked in Fleetboot's log:
 *   edk2 HttpBootDxe DISCOVER (option 60 HTTPClient:Arch:00016, option 93 = 16)
 *   -> proxy OFFER with option 60 "HTTPClient" and the URL
 *      http://10.213.55.1:8080/tftp/snponly.efi
 *   -> the firmware downloads snponly.efi over HTTP (GET /tftp/snponly.efi)
 *   -> iPXE (snponly.efi) DHCPs again, gets http://10.213.55.1:8080/boot.ipxe
 *   -> /boot.ipxe, /boot/decide: the MAC is assigned the test entry
 *   -> kernel + initrd over HTTP; the initrd calls back (http://10.213.55.1:9999/ran).
 * No TFTP at all for this client.
 *
 * Needs root and the packages of `scripts/install-deps.sh --with-test`; it
 * fails (never skips) without them. About 1-2 minutes under TCG.
 * Keeps its logs when FBTEST_KEEP=1 or on failure (path printed).
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, openSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Lab } from './lab.js';
import { LabSuite } from './suite.js';
import { closeLabFixture, openLabFixture, withParts, type LabWith } from './fixture.js';
import { FIRMWARE, INITRD_OK_MARKER, QEMU_BIN, qemuArgs, type Accel } from './qemu.js';
import { logEvents as events, macHex as hex } from './bootenv/services.js';

const SUBNET = '10.213.55';
const SERVER_IP = `${SUBNET}.1`;
const HTTP_PORT = 8080;
const BASE_URL = `http://${SERVER_IP}:${HTTP_PORT}`;
const CALLBACK_PORT = 9999;
const MAC = '52:54:00:fb:55:16';
const EFI_FILE = 'snponly.efi';

/**
 * OVMF fw_cfg knobs that leave "UEFI HTTPv4" as the NIC's only boot option
 * (edk2 OvmfPkg/Library/PxeBcPcdLib reads IPv4PXESupport; NetworkPkg's
 * drivers are gated by IPv6Support). capture.ts in src/protocol/dhcp/testdata/
 * uses the same two for the ovmf-http fixtures.
 */
const OVMF_HTTP_ONLY = ['-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=no', '-fw_cfg', 'name=opt/org.tianocore/IPv6Support,string=no'];

/** What OVMF prints on the serial console when it starts the HTTPv4 boot option / a PXE one. */
const HTTP_BOOT_BANNER = '>>Start HTTP Boot over IPv4';
const PXE_BANNER = /Start PXE over IPv[46]/;

interface Guest {
  child: ChildProcess;
  serialLog: string;
  argv: string[];
  stderr: () => string;
  exited: Promise<void>;
}

/**
 * An OVMF guest doing UEFI HTTP boot: qemu.ts's `ovmf-pxe` command line
 * (virtio-net, no option ROM: edk2's own network stack) plus OVMF_HTTP_ONLY.
 */
async function startHttpBootGuest(lab: Lab, work: string, accel: Accel): Promise<Guest> {
  const name = 'ovmf-http';
  const serialLog = join(work, `${name}.serial.log`);
  const varsFile = join(work, `${name}.OVMF_VARS.fd`);
  closeSync(openSync(serialLog, 'w'));
  copyFileSync(FIRMWARE.ovmfVars, varsFile);
  const tap = await lab.addTap();
  const args = [
    ...qemuArgs({ variant: 'ovmf-pxe', name, mac: MAC, workDir: work, tap, accel, serialLog, debugLog: join(work, `${name}.debug.log`), varsFile }),
    ...OVMF_HTTP_ONLY,
  ];
  const child = lab.spawnIn(lab.bridgeNs, [QEMU_BIN, ...args]);
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    if (stderr.length < 64 * 1024) stderr += d;
  });
  child.stdout?.resume();
  const exited = new Promise<void>((res) => {
    child.on('exit', () => res());
    child.on('error', () => res());
  });
  // A grace window, not a wait for an event: QEMU that rejects its arguments exits within it.
  const early = await Promise.race([exited.then(() => true), sleep(300).then(() => false)]);
  if (early) throw new Error(`QEMU exited at once: ${stderr.trim()}\n${QEMU_BIN} ${args.join(' ')}`);
  return { child, serialLog, argv: [QEMU_BIN, ...args], stderr: () => stderr, exited };
}

async function stopGuest(g: Guest): Promise<void> {
  try {
    g.child.kill('SIGKILL');
  } catch {
    /* gone */
  }
  await Promise.race([g.exited, sleep(3000)]);
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'latin1');
  } catch {
    return '';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

type Env = LabWith<'fb' | 'dhcp' | 'cb'>;
const suite = new LabSuite<Env>();
const { guarded, need } = suite;
let guest: Guest | null = null;

function explain(e: Env): string {
  const tail = (s: string, n: number): string => s.split(/\r?\n/).slice(-n).join('\n');
  return [
    guest ? `--- QEMU (${e.accel})\n${guest.argv.join(' ')}\n--- serial (last 40 lines)\n${tail(readText(guest.serialLog), 40)}\n--- QEMU stderr\n${tail(guest.stderr(), 10)}` : '',
    `--- Fleetboot log (last 60 lines)\n${e.fb.log.tail(60)}`,
    `--- existing DHCP server (dnsmasq, last 20 lines)\n${e.dhcp.log.tail(20)}`,
    `--- callback listener\n${e.cb.log.tail(10)}`,
    `(work dir: ${e.work})`,
  ].join('\n');
}

describe('fleetboot serve boots an OVMF guest by UEFI HTTP boot (proxyDHCP -> HTTP -> iPXE -> HTTP)', { timeout: 10 * 60_000 }, () => {
  before(() => guarded(async () => {
    const f = await openLabFixture({ name: 'httpboot.e2e', subnet: SUBNET, variants: ['ovmf-pxe'], callbackPort: CALLBACK_PORT, fleetboot: { httpPort: HTTP_PORT } });
    suite.env = withParts(f, ['fb', 'dhcp', 'cb']);
    await f.addTestEntryHosts([{ mac: MAC, name: 'ovmf-http' }]);
  }));

  after(() =>
    closeLabFixture(suite.env, suite.failed, {
      beforeDestroy: async () => {
        if (guest) await stopGuest(guest);
      },
    }),
  );

  test('serve HTTP-boots OVMF (HTTPv4 only) into the kernel+initrd assigned to its MAC', (t: TestContext) => guarded(async () => {
    const e = need();
    const timeoutMs = e.accel === 'kvm' ? 60_000 : 150_000;
    const t0 = Date.now();
    guest = await startHttpBootGuest(e.lab, e.work, e.accel);
    try {
      const cb = await e.cb.waitForCallback(MAC, timeoutMs);
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      assert.ok(cb, `no callback from ${MAC} within ${timeoutMs / 1000} s\n${explain(e)}`);
      t.diagnostic(`ovmf-http: initrd called back after ${secs} s (${e.accel}), address ${cb.ip}`);
      assert.equal(cb.marker, 'fbtest-initrd-ran');
      const last = Number(cb.ip.split('.')[3]);
      assert.ok(cb.ip.startsWith(`${SUBNET}.`) && last >= 100 && last <= 199, `address ${cb.ip} is outside dnsmasq's range`);
      const serialOk = await waitForText(guest.serialLog, INITRD_OK_MARKER, 10_000);
      assert.ok(serialOk, `the initrd did not report ${INITRD_OK_MARKER} on the console\n${explain(e)}`);

      // The firmware took the HTTP boot path, and only that one.
      const serial = readText(guest.serialLog);
      assert.ok(serial.includes(HTTP_BOOT_BANNER), `OVMF did not start HTTP boot ("${HTTP_BOOT_BANNER}")\n${explain(e)}`);
      assert.doesNotMatch(serial, PXE_BANNER, 'OVMF started a PXE boot option: the HTTP-only set-up did not hold');

      // Fleetboot's log, in order: HTTP-boot offer, EFI binary over HTTP,
      // iPXE's offer, the script, the decision, kernel and initrd.
      const ev = events(e.fb);
      const at = (what: string, pred: (o: Record<string, unknown>) => boolean, from = 0): number => {
        const i = ev.findIndex((o, k) => k >= from && pred(o));
        assert.ok(i >= 0, `Fleetboot's log has no ${what} (after line ${from})\n${explain(e)}`);
        return i;
      };
      const efiUrl = `${BASE_URL}/tftp/${EFI_FILE}`;
      const offer = at('HTTP-boot DISCOVER -> OFFER with the EFI URL', (o) =>
        hex(o.mac) === hex(MAC) && o.step === 'DISCOVER -> OFFER' && o.arch === 16 && o.ipxe === false && o.file === efiUrl);
      const efiSize = statSync(join(e.fb.dataDir, 'tftp', EFI_FILE)).size;
      const efi = at(`GET /tftp/${EFI_FILE} (200, ${efiSize} bytes) from ${cb.ip}`, (o) =>
        o.msg === 'file served' && o.ip === cb.ip && o.path === `/tftp/${EFI_FILE}` && o.status === 200 && o.method === 'GET' && o.bytes === efiSize, offer);
      // edk2's HttpBootDxe asks for the size with a HEAD first ("File Size: ..." on the console).
      const head = ev.some((o) => o.msg === 'file served' && o.ip === cb.ip && o.path === `/tftp/${EFI_FILE}` && o.method === 'HEAD');
      const ipxe = at('iPXE DHCP answer with the boot.ipxe URL', (o) =>
        hex(o.mac) === hex(MAC) && /^dhcp /.test(String(o.msg)) && o.ipxe === true && o.file === `${BASE_URL}/boot.ipxe`, efi);
      const script = at(`/boot.ipxe from ${cb.ip}`, (o) => o.msg === 'entry script served' && o.ip === cb.ip, ipxe);
      const decided = at(`"boots entry test" for ${MAC}`, (o) => hex(o.mac) === hex(MAC) && /boots entry test/.test(String(o.msg)), script);
      at('the kernel served', (o) => o.msg === 'file served' && o.ip === cb.ip && String(o.path).endsWith('/vmlinuz') && o.status === 200, decided);
      at('the initrd served', (o) => o.msg === 'file served' && o.ip === cb.ip && String(o.path).endsWith('/initrd.gz') && o.status === 200, decided);
      t.diagnostic(`ovmf-http: offer ${efiUrl}, ${head ? 'HEAD + ' : ''}GET /tftp/${EFI_FILE} ${efiSize} bytes, then /boot.ipxe and the decision, all from ${cb.ip}`);

      // No TFTP for this client: HTTP boot end to end.
      const tftp = ev.filter((o) => o.subsystem === 'tftp' && String(o.client ?? '').startsWith(`${cb.ip}:`));
      assert.deepEqual(tftp.map((o) => o.msg), [], `the HTTP-boot client used TFTP\n${explain(e)}`);
    } finally {
      await stopGuest(guest);
    }
  }));

  test('the existing DHCP server (dnsmasq) sent no boot file or HTTPClient class: the URL came from Fleetboot', () => {
    const e = need();
    const log = e.dhcp.log.all();
    assert.match(log, /vendor class: HTTPClient:Arch:00016/, 'dnsmasq saw no HTTP-boot DISCOVER');
    assert.match(log, /DHCPACK/, 'dnsmasq acknowledged no lease at all');
    assert.doesNotMatch(log, /bootfile name|option: (43|60|66|67) /, `dnsmasq sent boot options:\n${e.dhcp.log.tail(40)}`);
  });
});

async function waitForText(file: string, text: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (readText(file).includes(text)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(250);
  }
}
