import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPacket, decodePacket } from '../protocol/dhcp/packet.js';
import { setOption } from '../protocol/dhcp/options.js';
import { loadFixture } from '../protocol/dhcp/testdata/fixtures.js';
import { detectFirmware, firmwareLabel } from './firmware.js';

function req(vc?: string, arch?: number, extra: Array<[number, Buffer]> = []) {
  const p = createPacket();
  setOption(p, 53, Buffer.from([1]));
  if (vc !== undefined) setOption(p, 60, Buffer.from(vc));
  if (arch !== undefined) setOption(p, 93, Buffer.from([arch >> 8, arch & 0xff]));
  for (const [c, d] of extra) setOption(p, c, d);
  return p;
}

test('detectFirmware() classifies the captured clients', () => {
  const edk2 = detectFirmware(decodePacket(loadFixture('ovmf-edk2-01-client-discover-67')));
  assert.deepEqual(edk2, { clientClass: 'PXEClient', arch: 7, archSource: 'option-93', family: 'efi-x64', httpBoot: false, ipxe: false });
  const rom = detectFirmware(decodePacket(loadFixture('seabios-ipxe-01-ipxe-discover-67')));
  assert.equal(rom.family, 'bios');
  assert.equal(rom.ipxe, true);
  const chained = detectFirmware(decodePacket(loadFixture('ovmf-edk2-08-ipxe-discover-67')));
  assert.equal(chained.family, 'efi-x64');
  assert.equal(chained.ipxe, true);
});

test('detectFirmware() classifies the captured UEFI HTTP boot client (edk2 HttpBootDxe)', () => {
  // HTTPClient:Arch:00016:UNDI:003000, option 93 = 16, option 97 all zeros.
  for (const name of ['ovmf-http-01-client-discover-67', 'ovmf-http-04-client-request-67']) {
    const f = detectFirmware(decodePacket(loadFixture(name)));
    assert.deepEqual(f, { clientClass: 'HTTPClient', arch: 16, archSource: 'option-93', family: 'efi-x64', httpBoot: true, ipxe: false }, name);
    assert.equal(firmwareLabel(f), 'x64 UEFI HTTP boot');
  }
  // The snponly.efi it downloaded is iPXE, and says PXEClient arch 7: no longer HTTP boot.
  const ipxe = detectFirmware(decodePacket(loadFixture('ovmf-http-06-ipxe-discover-67')));
  assert.deepEqual(ipxe, { clientClass: 'PXEClient', arch: 7, archSource: 'option-93', family: 'efi-x64', httpBoot: false, ipxe: true });
});

test('detectFirmware() maps every option 93 value of the table', () => {
  const cases: Array<[number, string, boolean]> = [
    [0, 'bios', false], [6, 'efi-ia32', false], [7, 'efi-x64', false], [9, 'efi-x64', false], [10, 'efi-arm32', false],
    [11, 'efi-arm64', false], [15, 'efi-ia32', true], [16, 'efi-x64', true], [18, 'efi-arm32', true], [19, 'efi-arm64', true], [42, 'unknown', false],
  ];
  for (const [arch, family, http] of cases) {
    const f = detectFirmware(req('PXEClient', arch));
    assert.equal(f.family, family, `arch ${arch}`);
    assert.equal(f.httpBoot, http, `arch ${arch}`);
  }
});

test('detectFirmware() falls back to the Arch field of option 60', () => {
  const f = detectFirmware(req('PXEClient:Arch:00011:UNDI:003000'));
  assert.equal(f.arch, 11);
  assert.equal(f.archSource, 'option-60');
  assert.equal(f.family, 'efi-arm64');
  // malformed 93 but a usable option 60
  const g = detectFirmware(req('PXEClient:Arch:00007:UNDI:003000', undefined, [[93, Buffer.from([7])]]));
  assert.equal(g.family, 'efi-x64');
});

test('detectFirmware() recognises HTTPClient, non-boot clients and iPXE', () => {
  const h = detectFirmware(req('HTTPClient:Arch:00016:UNDI:003001', 16));
  assert.equal(h.clientClass, 'HTTPClient');
  assert.equal(h.httpBoot, true);
  assert.equal(firmwareLabel(h), 'x64 UEFI HTTP boot');
  assert.equal(detectFirmware(req('MSFT 5.0')).clientClass, null);
  assert.equal(detectFirmware(req()).clientClass, null);
  assert.equal(detectFirmware(req('PXEClient', 0, [[77, Buffer.from([4, ...Buffer.from('iPXE')])]])).ipxe, true);
  assert.equal(detectFirmware(req('PXEClient', 0, [[175, Buffer.from([177, 1, 1])]])).ipxe, true);
  assert.equal(detectFirmware(req('PXEClient', 0, [[77, Buffer.from('gPXE')]])).ipxe, false);
});
