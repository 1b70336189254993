/**
 * The settings another DHCP server (ISC dhcpd, Kea, dnsmasq, Windows DHCP)
 * needs so PXE clients boot from Fleetboot without its proxyDHCP: the
 * next-server (siaddr / option 66), the boot file (file / option 67) split by
 * client architecture (option 93, RFC 4578), and the iPXE condition (option
 * 77 user class "iPXE"): a client already running iPXE must get the HTTP
 * script URL, not the iPXE binary again, or it chain-loads itself forever.
 *
 * Pure: the caller passes the server address, the HTTP base URL and the boot
 * file names from the live configuration (src/cli/dhcp.ts).
 *
 * Checked against the real parsers in src/dhcp/foreign-config.test.ts:
 * `dnsmasq --test`, `dhcpd -t`, `kea-dhcp4 -t` (when installed).
 */

export const FOREIGN_FLAVORS = ['isc', 'kea', 'dnsmasq', 'windows'] as const;
export type ForeignFlavor = (typeof FOREIGN_FLAVORS)[number];

export interface ForeignConfigInput {
  /** The Fleetboot server address (next-server, TFTP). */
  serverIp: string;
  /** e.g. http://10.0.0.1:8080, no trailing slash. */
  httpBaseUrl: string;
  /** Boot files relative to the TFTP root (config.boot.files). */
  files: { bios: string; efiX64: string; efiIa32: string; efiArm64: string };
  /** uefi.secureBoot on/auto: x64 UEFI PXE gets Debian's signed shim (then GRUB, which needs next-server = this server). */
  secureBootLoader?: string | null;
}

/** One boot rule: clients of an architecture (option 93 values), and what they get. */
export interface BootRule {
  /** Short identifier used for class / tag / policy names. */
  id: string;
  label: string;
  /** Option 93 values (RFC 4578 / IANA processor architecture types). */
  arch: number[];
  /** TFTP file name, or a full http:// URL for UEFI HTTP boot. */
  file: string;
  /** UEFI HTTP boot: the reply must carry option 60 "HTTPClient". */
  http: boolean;
}

/** The boot rules in the order they are tried after the iPXE rule. */
export function bootRules(input: ForeignConfigInput): BootRule[] {
  const { files, httpBaseUrl } = input;
  return [
    { id: 'bios', label: 'x86 BIOS PXE', arch: [0], file: files.bios, http: false },
    { id: 'efi32', label: 'x86 UEFI PXE', arch: [6], file: files.efiIa32, http: false },
    { id: 'efi64', label: 'x64 UEFI PXE', arch: [7, 9], file: input.secureBootLoader ?? files.efiX64, http: false },
    { id: 'arm64', label: 'ARM64 UEFI PXE', arch: [11], file: files.efiArm64, http: false },
    { id: 'httpx64', label: 'x64 UEFI HTTP boot', arch: [16], file: `${httpBaseUrl}/tftp/${files.efiX64}`, http: true },
    { id: 'httparm64', label: 'ARM64 UEFI HTTP boot', arch: [19], file: `${httpBaseUrl}/tftp/${files.efiArm64}`, http: true },
  ];
}

/** The URL handed to clients already running iPXE (user class "iPXE"). */
export function ipxeScriptUrl(input: ForeignConfigInput): string {
  return `${input.httpBaseUrl}/boot.ipxe`;
}

const hex4 = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`;
const colonHex = (n: number): string => `${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;

function checkInput(input: ForeignConfigInput): void {
  const bad = /["'\\\s`$;{}]/;
  for (const [k, v] of Object.entries({ serverIp: input.serverIp, httpBaseUrl: input.httpBaseUrl, ...input.files })) {
    if (v === '' || bad.test(v)) throw new TypeError(`'${k}' cannot be written into another server's configuration: current value is ${JSON.stringify(v)}`);
  }
}

function helperLines(input: ForeignConfigInput, comment: string): string[] {
  return [
    `${comment} Routers/relays (IP helper, e.g. Cisco "ip helper-address"): on every client VLAN, list the DHCP server`,
    `${comment} AND the Fleetboot server ${input.serverIp} (ip helper-address ${input.serverIp}), so PXE requests reach both;`,
    `${comment} with the settings above the clients then fetch files straight from ${input.serverIp} (TFTP 69, HTTP).`,
  ];
}

function isc(input: ForeignConfigInput): string[] {
  const url = ipxeScriptUrl(input);
  const rules = bootRules(input);
  const out = [
    '# ISC dhcpd (dhcpd.conf): PXE boot from Fleetboot. Put this at the top level',
    '# (or inside the subnet/shared-network declarations of the PXE clients).',
    'option arch code 93 = unsigned integer 16;',
    '',
    `next-server ${input.serverIp};`,
    `option tftp-server-name "${input.serverIp}";`,
    '',
    '# A client already running iPXE gets the HTTP script, not iPXE again (else it loops).',
    'if exists user-class and option user-class = "iPXE" {',
    `  filename "${url}";`,
  ];
  for (const r of rules) {
    const cond = r.arch.map((a) => `option arch = ${colonHex(a)}`).join(' or ');
    out.push(`} elsif ${cond} {`, `  # ${r.label}`);
    if (r.http) out.push('  option vendor-class-identifier "HTTPClient";');
    out.push(`  filename "${r.file}";`);
  }
  out.push('}', '', ...helperLines(input, '#'));
  return out;
}

function kea(input: ForeignConfigInput): string[] {
  const url = ipxeScriptUrl(input);
  const classes: Array<Record<string, unknown>> = [
    { name: 'fleetboot-ipxe', test: "substring(option[77].hex,0,4) == 'iPXE'", 'next-server': input.serverIp, 'boot-file-name': url },
  ];
  for (const r of bootRules(input)) {
    const arch = r.arch.map((a) => `option[93].hex == ${hex4(a)}`).join(' or ');
    const c: Record<string, unknown> = {
      name: `fleetboot-${r.id}`,
      test: `not member('fleetboot-ipxe') and (${arch})`,
      'next-server': input.serverIp,
      'boot-file-name': r.file,
    };
    if (r.http) c['option-data'] = [{ name: 'vendor-class-identifier', data: 'HTTPClient' }];
    classes.push(c);
  }
  const body = JSON.stringify({ 'client-classes': classes }, null, 2).split('\n');
  return [
    '// Kea DHCPv4 (kea-dhcp4.conf): PXE boot from Fleetboot. Merge "client-classes" into your "Dhcp4" map.',
    '// Classes are evaluated in order; iPXE clients (user class "iPXE") get the HTTP script, not iPXE again.',
    ...body,
    '',
    ...helperLines(input, '//'),
  ];
}

function dnsmasq(input: ForeignConfigInput): string[] {
  const url = ipxeScriptUrl(input);
  const out = [
    '# dnsmasq: PXE boot from Fleetboot (add to dnsmasq.conf; keeps your dhcp-range).',
    '# Clients already running iPXE (user class "iPXE", or option 175) get the HTTP script.',
    'dhcp-userclass=set:ipxe,iPXE',
    'dhcp-match=set:ipxe,175',
  ];
  const rules = bootRules(input);
  for (const r of rules) for (const a of r.arch) out.push(`dhcp-match=set:${r.id},option:client-arch,${a}`);
  out.push(`dhcp-boot=tag:ipxe,${url}`);
  for (const r of rules) {
    out.push(`# ${r.label}`);
    if (r.http) {
      out.push(`dhcp-option-force=tag:${r.id},option:vendor-class,HTTPClient`);
      out.push(`dhcp-boot=tag:!ipxe,tag:${r.id},${r.file}`);
    } else {
      out.push(`dhcp-boot=tag:!ipxe,tag:${r.id},${r.file},,${input.serverIp}`);
    }
  }
  out.push(`dhcp-option=option:tftp-server,${input.serverIp}`, '', ...helperLines(input, '#'));
  return out;
}

function windows(input: ForeignConfigInput): string[] {
  const url = ipxeScriptUrl(input);
  const out = [
    '# Windows Server DHCP (PowerShell, DhcpServer module, as an administrator): PXE boot from Fleetboot.',
    '# Server-wide policies; add -ScopeId <scope> to Add-DhcpServerv4Policy and Set-DhcpServerv4OptionValue to limit them to a scope.',
    `Set-DhcpServerv4OptionValue -OptionId 66 -Value "${input.serverIp}"`,
    '',
    '# Classes: iPXE sends user class "iPXE"; PXE firmware sends vendor class "PXEClient:Arch:0000N:...".',
    'Add-DhcpServerv4Class -Name "Fleetboot iPXE" -Type User -Data "iPXE"',
  ];
  const rules = bootRules(input);
  for (const r of rules) {
    for (const a of r.arch) {
      const prefix = r.http ? 'HTTPClient' : 'PXEClient';
      out.push(`Add-DhcpServerv4Class -Name "Fleetboot ${r.id} ${a}" -Type Vendor -Data "${prefix}:Arch:${String(a).padStart(5, '0')}"`);
    }
  }
  out.push(
    '# Option 60 is not defined on a Windows DHCP server by default; UEFI HTTP boot needs it (value HTTPClient).',
    'Add-DhcpServerv4OptionDefinition -OptionId 60 -Name "Vendor class" -Type String -ErrorAction SilentlyContinue',
    '',
    '# Policies, first match wins: iPXE first, so it gets the script and not iPXE again.',
    'Add-DhcpServerv4Policy -Name "Fleetboot iPXE" -Condition OR -UserClass EQ,"Fleetboot iPXE" -ProcessingOrder 1',
    `Set-DhcpServerv4OptionValue -PolicyName "Fleetboot iPXE" -OptionId 67 -Value "${url}"`,
  );
  rules.forEach((r, i) => {
    // The class names are matched with a trailing * (prefix of the vendor class data).
    const cond = r.arch.map((a) => `"Fleetboot ${r.id} ${a}*"`).join(',');
    out.push(`# ${r.label}`);
    out.push(`Add-DhcpServerv4Policy -Name "Fleetboot ${r.id}" -Condition OR -VendorClass EQ,${cond} -ProcessingOrder ${i + 2}`);
    out.push(`Set-DhcpServerv4OptionValue -PolicyName "Fleetboot ${r.id}" -OptionId 66 -Value "${input.serverIp}"`);
    out.push(`Set-DhcpServerv4OptionValue -PolicyName "Fleetboot ${r.id}" -OptionId 67 -Value "${r.file}"`);
    if (r.http) out.push(`Set-DhcpServerv4OptionValue -PolicyName "Fleetboot ${r.id}" -OptionId 60 -Value "HTTPClient"`);
  });
  out.push('', ...helperLines(input, '#'));
  return out;
}

/** The configuration text (lines) for another DHCP server. Throws TypeError for values that cannot be quoted safely. */
export function foreignDhcpConfig(flavor: ForeignFlavor, input: ForeignConfigInput): string[] {
  checkInput(input);
  switch (flavor) {
    case 'isc':
      return isc(input);
    case 'kea':
      return kea(input);
    case 'dnsmasq':
      return dnsmasq(input);
    case 'windows':
      return windows(input);
  }
}
