import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { program, type Argv, type ProgramName } from '../lib/programs.js';
import { bootRules, foreignDhcpConfig, type ForeignConfigInput } from './foreign-config.js';

const run = promisify(execFile);

const INPUT: ForeignConfigInput = {
  serverIp: '10.0.0.5',
  httpBaseUrl: 'http://10.0.0.5:8080',
  files: { bios: 'undionly.kpxe', efiX64: 'snponly.efi', efiIa32: 'ipxe-ia32.efi', efiArm64: 'arm64/snponly.efi' },
};

function which(bin: ProgramName): string | null {
  for (const d of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) if (existsSync(join(d, bin))) return join(d, bin);
  return null;
}

/** Write `text` to a temp file and run argv (FILE replaced by its path); returns combined output or throws with it. */
async function check(text: string, argv: (file: string) => Argv, name: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'fb-foreign-'));
  const file = join(dir, name);
  writeFileSync(file, text);
  const [cmd, ...args] = argv(file);
  try {
    const { stdout, stderr } = await run(program(cmd), args, { cwd: dir, env: { ...process.env, PATH: `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin` } });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} rejected the generated config:\n${e.stdout ?? ''}${e.stderr ?? e.message}\n--- config ---\n${text}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('foreignDhcpConfig()', () => {
  test('bootRules() splits by option 93: BIOS 0, x64 UEFI 7/9, ARM64 11, HTTP boot 16 as a URL', () => {
    const r = bootRules(INPUT);
    const byArch = (a: number) => r.find((x) => x.arch.includes(a));
    assert.equal(byArch(0)?.file, 'undionly.kpxe');
    assert.equal(byArch(7)?.file, 'snponly.efi');
    assert.equal(byArch(9)?.file, 'snponly.efi');
    assert.equal(byArch(11)?.file, 'arm64/snponly.efi');
    assert.equal(byArch(16)?.file, 'http://10.0.0.5:8080/tftp/snponly.efi');
    assert.equal(byArch(16)?.http, true);
  });

  test('foreignDhcpConfig() isc uses the user-class condition, arch code 93 and next-server', () => {
    const t = foreignDhcpConfig('isc', INPUT).join('\n');
    assert.match(t, /^option arch code 93 = unsigned integer 16;$/m);
    assert.match(t, /^if exists user-class and option user-class = "iPXE" \{\n {2}filename "http:\/\/10\.0\.0\.5:8080\/boot\.ipxe";$/m);
    assert.match(t, /^next-server 10\.0\.0\.5;$/m);
    assert.match(t, /option arch = 00:07 or option arch = 00:09 \{/);
    assert.match(t, /option arch = 00:00 \{\n.*\n {2}filename "undionly\.kpxe";/);
    assert.match(t, /option vendor-class-identifier "HTTPClient";\n {2}filename "http:\/\/10\.0\.0\.5:8080\/tftp\/snponly\.efi";/);
    assert.match(t, /ip helper-address 10\.0\.0\.5/);
  });

  test('foreignDhcpConfig() kea writes client-classes with option[93] and option[77] tests', () => {
    const lines = foreignDhcpConfig('kea', INPUT);
    const json = JSON.parse(lines.filter((l) => !l.startsWith('//')).join('\n')) as { 'client-classes': Array<Record<string, unknown>> };
    const cls = json['client-classes'];
    assert.equal(cls[0]?.name, 'fleetboot-ipxe');
    assert.equal(cls[0]?.test, "substring(option[77].hex,0,4) == 'iPXE'");
    assert.equal(cls[0]?.['boot-file-name'], 'http://10.0.0.5:8080/boot.ipxe');
    const efi = cls.find((c) => c.name === 'fleetboot-efi64');
    assert.equal(efi?.test, "not member('fleetboot-ipxe') and (option[93].hex == 0x0007 or option[93].hex == 0x0009)");
    assert.equal(efi?.['next-server'], '10.0.0.5');
    assert.equal(efi?.['boot-file-name'], 'snponly.efi');
    assert.deepEqual(cls.find((c) => c.name === 'fleetboot-httpx64')?.['option-data'], [{ name: 'vendor-class-identifier', data: 'HTTPClient' }]);
  });

  test('foreignDhcpConfig() dnsmasq tags iPXE by user class and 175 and splits dhcp-boot by client-arch', () => {
    const t = foreignDhcpConfig('dnsmasq', INPUT);
    for (const l of [
      'dhcp-userclass=set:ipxe,iPXE',
      'dhcp-match=set:ipxe,175',
      'dhcp-match=set:efi64,option:client-arch,7',
      'dhcp-match=set:efi64,option:client-arch,9',
      'dhcp-boot=tag:ipxe,http://10.0.0.5:8080/boot.ipxe',
      'dhcp-boot=tag:!ipxe,tag:bios,undionly.kpxe,,10.0.0.5',
      'dhcp-boot=tag:!ipxe,tag:efi64,snponly.efi,,10.0.0.5',
      'dhcp-option-force=tag:httpx64,option:vendor-class,HTTPClient',
    ]) {
      assert.ok(t.includes(l), `missing ${l}`);
    }
  });

  test('foreignDhcpConfig() windows defines classes and policies with options 66/67', () => {
    const t = foreignDhcpConfig('windows', INPUT).join('\n');
    assert.match(t, /Add-DhcpServerv4Class -Name "Fleetboot iPXE" -Type User -Data "iPXE"/);
    assert.match(t, /Add-DhcpServerv4Class -Name "Fleetboot efi64 7" -Type Vendor -Data "PXEClient:Arch:00007"/);
    assert.match(t, /Add-DhcpServerv4Policy -Name "Fleetboot iPXE" -Condition OR -UserClass EQ,"Fleetboot iPXE" -ProcessingOrder 1/);
    assert.match(t, /Add-DhcpServerv4Policy -Name "Fleetboot efi64" -Condition OR -VendorClass EQ,"Fleetboot efi64 7\*","Fleetboot efi64 9\*"/);
    assert.match(t, /Set-DhcpServerv4OptionValue -PolicyName "Fleetboot iPXE" -OptionId 67 -Value "http:\/\/10\.0\.0\.5:8080\/boot\.ipxe"/);
    assert.match(t, /Set-DhcpServerv4OptionValue -PolicyName "Fleetboot bios" -OptionId 67 -Value "undionly\.kpxe"/);
    assert.match(t, /Set-DhcpServerv4OptionValue -OptionId 66 -Value "10\.0\.0\.5"/);
  });

  test('foreignDhcpConfig() refuses values that would break out of a quoted string', () => {
    assert.throws(() => foreignDhcpConfig('isc', { ...INPUT, files: { ...INPUT.files, bios: 'a"; }' } }), TypeError);
  });

  const dnsmasqBin = which('dnsmasq');
  test('foreignDhcpConfig() dnsmasq output passes dnsmasq --test', { skip: dnsmasqBin ? false : 'dnsmasq not installed' }, async () => {
    const text = ['port=0', 'dhcp-range=10.0.0.100,10.0.0.200,12h', ...foreignDhcpConfig('dnsmasq', INPUT)].join('\n') + '\n';
    const out = await check(text, (f) => ['dnsmasq', '--test', `--conf-file=${f}`], 'dnsmasq.conf');
    assert.match(out, /syntax check OK/);
  });

  const dhcpd = which('dhcpd');
  test('foreignDhcpConfig() isc output passes dhcpd -t', { skip: dhcpd ? false : 'isc-dhcp-server not installed' }, async () => {
    const text = [...foreignDhcpConfig('isc', INPUT), 'subnet 10.0.0.0 netmask 255.255.255.0 { range 10.0.0.100 10.0.0.200; }'].join('\n') + '\n';
    await check(text, (f) => ['dhcpd', '-4', '-t', '-cf', f], 'dhcpd.conf');
  });

  const keaBin = which('kea-dhcp4');
  test('foreignDhcpConfig() kea output passes kea-dhcp4 -t', { skip: keaBin ? false : 'kea-dhcp4-server not installed' }, async () => {
    const snippet = foreignDhcpConfig('kea', INPUT);
    const classes = snippet.filter((l) => !l.startsWith('//')).join('\n').trim().replace(/^\{/, '').replace(/\}$/, '');
    const text = `{ "Dhcp4": {
  "interfaces-config": { "interfaces": [] },
  "lease-database": { "type": "memfile", "persist": false },
  "subnet4": [ { "id": 1, "subnet": "10.0.0.0/24", "pools": [ { "pool": "10.0.0.100 - 10.0.0.200" } ] } ],
  ${classes}
} }\n`;
    await check(text, (f) => ['kea-dhcp4', '-t', f], 'kea-dhcp4.conf');
  });
});
