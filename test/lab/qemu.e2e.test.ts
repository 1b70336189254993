/**
 * The lab's QEMU pieces on their own, without any PXE server, so that a
 * failure of boot.e2e can be told apart from a broken test environment:
 * the local-disk boot sector, and the test kernel+initrd calling back over
 * a lab network (addresses from dnsmasq). About 20 s under TCG.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, labAvailable } from './lab.js';
import { INITRD_OK_MARKER, LOCAL_DISK_MARKER, QemuGuest, ensureBootEnv, missingQemuPrerequisites, withTimeout, writeLocalBootDisk } from './qemu.js';
import { startExistingDhcp, startLabHttp } from './bootenv/services.js';

const SUBNET = '10.213.51';

describe('lab QEMU guests without a boot server', { timeout: 5 * 60_000 }, () => {
  let lab: Lab | null = null;
  let work = '';

  before(async () => {
    if (process.getuid?.() !== 0 || !(await labAvailable())) throw new Error('qemu.e2e needs root and `ip netns` (network namespaces, tap devices)');
    const missing = missingQemuPrerequisites(['bios-ipxe']);
    if (missing.length) throw new Error(`qemu.e2e needs QEMU; missing: ${missing.join(', ')}. Run: bash scripts/install-deps.sh --with-test`);
    work = mkdtempSync(join(tmpdir(), 'fb-qemu-e2e-'));
    lab = await Lab.create({ subnet: SUBNET });
  });

  after(async () => {
    await lab?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('writeLocalBootDisk() makes a disk whose boot sector prints the marker on COM1', async () => {
    assert.ok(lab);
    const disk = join(work, 'disk.img');
    writeLocalBootDisk(disk);
    const g = await QemuGuest.start(lab, { variant: 'bios-ipxe', name: 'disk', mac: '52:54:00:fb:51:01', workDir: work, disk, netBoot: false });
    try {
      const m = await g.waitForSerial(LOCAL_DISK_MARKER, 90_000);
      assert.ok(m, `no ${LOCAL_DISK_MARKER} on the serial port\n${g.diagnostics()}`);
    } finally {
      await g.stop();
    }
  });

  test('ensureBootEnv() kernel+initrd gets an address and calls back to fbcallback=', async () => {
    assert.ok(lab);
    const { kernel, initrd } = await ensureBootEnv();
    await lab.addHost('srv', `${SUBNET}.1`);
    await startExistingDhcp(lab, 'srv', work);
    const cb = await startLabHttp(lab, 'srv', 9999);
    const mac = '52:54:00:fb:51:02';
    const g = await QemuGuest.start(lab, {
      variant: 'bios-ipxe',
      name: 'direct',
      mac,
      workDir: work,
      directKernel: { kernel, initrd, append: `console=ttyS0 fbcallback=${cb.url}/ran` },
    });
    try {
      const c = await cb.waitForCallback(mac, 90_000);
      assert.ok(c, `no callback from ${mac}\n${g.diagnostics()}\n${cb.log.tail()}`);
      assert.equal(c.marker, 'fbtest-initrd-ran');
      assert.ok(await g.waitForSerial(INITRD_OK_MARKER, 10_000), g.diagnostics());
      // The initrd powers the machine off once it has called back.
      const exit = await withTimeout(g.exited, 20_000);
      assert.ok(exit, `the guest did not power off\n${g.diagnostics()}`);
    } finally {
      await g.stop();
    }
  });
});
