/**
 * Who is asking: classify a DHCP request by boot client class (option 60),
 * architecture (option 93, else the "Arch:xxxxx" in option 60) and whether
 * the client already runs iPXE (option 77 "iPXE" or option 175). No I/O.
 */
import { DhcpDecodeError } from '../protocol/dhcp/errors.js';
import type { DhcpPacket } from '../protocol/dhcp/packet.js';
import { clientArch, getOption, Opt, userClass, vendorClassId } from '../protocol/dhcp/options.js';

export type BootClientClass = 'PXEClient' | 'HTTPClient';
export type FirmwareFamily = 'bios' | 'efi-ia32' | 'efi-x64' | 'efi-arm32' | 'efi-arm64' | 'unknown';

export interface FirmwareInfo {
  /** From option 60; null when the client is neither a PXE nor an HTTP boot client. */
  clientClass: BootClientClass | null;
  /** Option 93 (first entry), else the Arch field of option 60; null when neither says. */
  arch: number | null;
  archSource: 'option-93' | 'option-60' | 'none';
  family: FirmwareFamily;
  /** UEFI HTTP boot: an HTTP-boot architecture type (15, 16, 18, 19) or option 60 "HTTPClient". */
  httpBoot: boolean;
  /** Already iPXE: user class "iPXE" (option 77) or iPXE's own option 175. */
  ipxe: boolean;
}

/** RFC 4578 + IANA "Processor Architecture Types" (see NOTES.md). */
const ARCH: Readonly<Record<number, { family: FirmwareFamily; http: boolean }>> = {
  0: { family: 'bios', http: false },
  6: { family: 'efi-ia32', http: false },
  7: { family: 'efi-x64', http: false },
  // 9 is "EFI x86-64" as well: some firmware (older Dell/HP, some VMware) send it
  // for the same PXE stack as 7; it is treated exactly like 7.
  9: { family: 'efi-x64', http: false },
  10: { family: 'efi-arm32', http: false },
  11: { family: 'efi-arm64', http: false },
  15: { family: 'efi-ia32', http: true },
  16: { family: 'efi-x64', http: true },
  18: { family: 'efi-arm32', http: true },
  19: { family: 'efi-arm64', http: true },
};

const FAMILY_LABEL: Record<FirmwareFamily, string> = {
  bios: 'BIOS',
  'efi-ia32': 'IA32 UEFI',
  'efi-x64': 'x64 UEFI',
  'efi-arm32': 'ARM32 UEFI',
  'efi-arm64': 'ARM64 UEFI',
  unknown: 'unknown',
};

/** "x64 UEFI HTTP boot", "BIOS", "unknown (arch 42)": for logs and reasons. */
export function firmwareLabel(f: FirmwareInfo): string {
  if (f.family === 'unknown') return f.arch === null ? 'unknown architecture' : `unknown architecture ${f.arch}`;
  return `${FAMILY_LABEL[f.family]}${f.httpBoot ? ' HTTP boot' : ''}`;
}

/** "PXEClient:Arch:00007:UNDI:003016" -> 7; undefined when there is no well-formed Arch field. */
function archFromVendorClass(vc: string): number | undefined {
  const m = /:Arch:(\d{5})(?::|$)/.exec(vc);
  return m ? Number(m[1]) : undefined;
}

export function detectFirmware(p: DhcpPacket): FirmwareInfo {
  const vc = vendorClassId(p);
  const clientClass: BootClientClass | null =
    vc === undefined ? null : vc.startsWith('PXEClient') ? 'PXEClient' : vc.startsWith('HTTPClient') ? 'HTTPClient' : null;

  let arch: number | null = null;
  let archSource: FirmwareInfo['archSource'] = 'none';
  let archList: number[] | undefined;
  try {
    archList = clientArch(p);
  } catch (err) {
    // A malformed option 93 (odd length) is not worth dropping the client for when
    // option 60 carries the architecture too; otherwise it is a bad packet.
    if (!(err instanceof DhcpDecodeError) || vc === undefined || archFromVendorClass(vc) === undefined) throw err;
  }
  if (archList && archList.length > 0) {
    arch = archList[0] as number;
    archSource = 'option-93';
  } else if (vc !== undefined) {
    const a = archFromVendorClass(vc);
    if (a !== undefined) {
      arch = a;
      archSource = 'option-60';
    }
  }
  const entry = arch === null ? undefined : ARCH[arch];
  const family: FirmwareFamily = entry?.family ?? 'unknown';
  const httpBoot = clientClass === 'HTTPClient' || (entry?.http ?? false);
  const ipxe = getOption(p, Opt.IPXE) !== undefined || (userClass(p)?.some((u) => u === 'iPXE') ?? false);
  return { clientClass, arch, archSource, family, httpBoot, ipxe };
}
