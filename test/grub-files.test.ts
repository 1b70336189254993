/**
 * What the TFTP server answers itself on the Secure Boot path
 * (src/imaging/grub-files.ts): GRUB configurations from the shared boot
 * decider, kernels checked for a signature under Secure Boot, entry and
 * boot-environment files, and nothing else under fleetboot/.
 */
import { openTestStore } from '../src/store/temp-store.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEBIAN_SIGNED_DIR, loadConfig } from '../src/config/config.js';
import { createLogger } from '../src/lib/log.js';
import { createEventBus } from '../src/events/bus.js';
import { createImagingService } from '../src/imaging/tasks.js';
import { createBootDecider } from '../src/imaging/boot-decider.js';
import { createGrubFiles, type GrubFiles } from '../src/imaging/grub-files.js';
import { createEntry, createHost, createTask, openStore, type Store } from '../src/store/index.js';
import type { SafeOpenResult } from '../src/lib/safe-path.js';

const SIGNED = '52:54:00:aa:00:01';
const UNSIGNED = '52:54:00:aa:00:02';
const TASKED = '52:54:00:aa:00:03';
const TAMPERED = '52:54:00:aa:00:04';
let dir: string;
let store: Store;
let files: GrubFiles;

async function text(r: SafeOpenResult | null): Promise<string> {
  assert.ok(r && r.ok, `not opened: ${JSON.stringify(r && !r.ok ? r : null)}`);
  try {
    return (await r.handle.readFile()).toString('utf8');
  } finally {
    await r.handle.close();
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetboot-grubfiles-'));
  const bootEnvDir = join(dir, 'bootenv');
  mkdirSync(bootEnvDir);
  // A signed EFI executable stands in for a signed kernel (the check is the same Authenticode check).
  copyFileSync(join(DEBIAN_SIGNED_DIR, 'grubnetx64.efi.signed'), join(bootEnvDir, 'vmlinuz'));
  writeFileSync(join(bootEnvDir, 'initrd.img'), 'initrd');
  const config = loadConfig({ overrides: { dataDir: dir, serverIp: '10.1.2.3', imaging: { bootEnvDir }, uefi: { secureBoot: 'on' } } });
  store = await openTestStore(config.dataDir);
  for (const [name, kernel] of [['signed', join(DEBIAN_SIGNED_DIR, 'grubnetx64.efi.signed')], ['unsigned', '/usr/lib/ipxe/snponly.efi']] as const) {
    mkdirSync(join(store.entriesDir, name), { recursive: true });
    copyFileSync(kernel, join(store.entriesDir, name, 'vmlinuz'));
    writeFileSync(join(store.entriesDir, name, 'initrd.gz'), 'initrd');
    writeFileSync(join(store.entriesDir, name, 'leftover'), 'not part of the entry');
    await createEntry(store.db, { name, kernel: 'vmlinuz', initrds: ['initrd.gz'], cmdline: 'console=ttyS0' });
  }
  await createHost(store.db, { mac: SIGNED, name: 'good', entry: 'signed' });
  await createHost(store.db, { mac: UNSIGNED, name: 'bad', entry: 'unsigned' });
  await createHost(store.db, { mac: TASKED, name: 'inv', entry: 'signed' });
  // Signed, then one byte changed: the signature is there and does not verify.
  const bad = readFileSync(join(DEBIAN_SIGNED_DIR, 'grubnetx64.efi.signed'));
  bad[Math.floor(bad.length / 2)] = (bad[Math.floor(bad.length / 2)] as number) ^ 1;
  mkdirSync(join(store.entriesDir, 'tampered'), { recursive: true });
  writeFileSync(join(store.entriesDir, 'tampered', 'vmlinuz'), bad);
  writeFileSync(join(store.entriesDir, 'tampered', 'initrd.gz'), 'initrd');
  await createEntry(store.db, { name: 'tampered', kernel: 'vmlinuz', initrds: ['initrd.gz'], cmdline: 'console=ttyS0' });
  await createHost(store.db, { mac: TAMPERED, name: 'tampered', entry: 'tampered' });
  const log = createLogger('silent');
  const events = createEventBus();
  const imaging = createImagingService({ store, config, log, events });
  const decider = createBootDecider({ store, config, log, imaging, events, bootEvents: null, addressMac: async () => null });
  files = await createGrubFiles({ store, config, log, decider, baseUrl: () => 'http://10.1.2.3:8080' });
});

after(async () => {
  await files.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('Secure Boot on: a signed kernel is named in the configuration', async () => {
  const cfg = await text(await files.resolve(`/fleetboot/grub/${SIGNED}/sb-on.cfg`, '10.1.2.50'));
  assert.match(cfg, /boots entry signed \(Secure Boot on\)/);
  assert.match(cfg, /if linux '\/fleetboot\/entries\/signed\/vmlinuz' 'console=ttyS0'; then/);
});

test('Secure Boot on: an entry whose kernel is not signed is refused with the reason; off: it boots', async () => {
  const on = await text(await files.resolve(`/fleetboot/grub/${UNSIGNED}/sb-on.cfg`, '10.1.2.51'));
  assert.match(on, /entry unsigned cannot boot here: the kernel vmlinuz of entry unsigned is not signed for Secure Boot: it has no signature \(no certificate table\)/);
  assert.doesNotMatch(on, /linux '/);
  const off = await text(await files.resolve(`/fleetboot/grub/${UNSIGNED}/sb-off.cfg`, '10.1.2.51'));
  assert.match(off, /if linux '\/fleetboot\/entries\/unsigned\/vmlinuz'/);
});

test('Secure Boot on: a kernel changed after signing gets a warning on the screen and goes to the machine\'s chain', async () => {
  const cfg = await text(await files.resolve(`/fleetboot/grub/${TAMPERED}/sb-on.cfg`, '10.1.2.53'));
  assert.match(cfg, /Fleetboot: warning: the kernel vmlinuz of entry tampered: its contents do not match its signature \(the file was changed after it was signed/);
  assert.match(cfg, /Secure Boot will refuse it unless the machine trusts this file by hash/);
  assert.match(cfg, /if linux '\/fleetboot\/entries\/tampered\/vmlinuz'/);
});

test('a task: the boot environment with a token; the same request again within seconds gets the same answer (one token)', async () => {
  await createTask(store.db, { type: 'inventory', mac: TASKED });
  const first = await text(await files.resolve(`fleetboot/grub/${TASKED}/sb-on.cfg`, '10.1.2.52'));
  const token = /'fleetboot\.token=([0-9a-f]+)'/.exec(first)?.[1];
  assert.ok(token, first);
  assert.match(first, /'fleetboot\.ip=10\.1\.2\.52' 'BOOTIF=01-52-54-00-aa-00-03'/);
  const again = await text(await files.resolve(`fleetboot/grub/${TASKED}/sb-on.cfg`, '10.1.2.52'));
  assert.equal(again, first);
});

test('files: the entry and boot-environment files only; nothing else under fleetboot/; other names are the root\'s', async () => {
  assert.equal((await text(await files.resolve('fleetboot/entries/signed/initrd.gz', '10.1.2.50'))), 'initrd');
  assert.equal((await text(await files.resolve('/fleetboot/env/initrd.img', '10.1.2.50'))), 'initrd');
  for (const name of ['fleetboot/entries/signed/leftover', 'fleetboot/entries/nope/vmlinuz', 'fleetboot/entries/../../etc/passwd', 'fleetboot/env/bootenv.json', 'fleetboot/other']) {
    const r = await files.resolve(name, '10.1.2.50');
    assert.ok(r !== null && !r.ok, `${name} must be refused`);
  }
  assert.equal(await files.resolve('grub/grub.cfg', '10.1.2.50'), null);
  assert.equal(await files.resolve('shimx64.efi', '10.1.2.50'), null);
  // A name that is not a per-machine file: a message, never a decision.
  for (const name of ['fleetboot/grub/not-a-mac/sb-on.cfg', 'fleetboot/grub/../x']) assert.match(await text(await files.resolve(name, '10.1.2.50')), /no such configuration/);
});
