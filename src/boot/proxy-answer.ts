/**
 * The proxyDHCP decision, pure: (decoded request, where it came from,
 * context) -> the reply and where to send it, or why it is ignored.
 *
 * What a proxy answers (PXE 2.1 section 2.2; dnsmasq's proxy mode,
 * src/rfc2131.c, behaves the same way and is the reference here):
 * - only BOOTREQUESTs from PXE/HTTP boot clients (option 60 "PXEClient" /
 *   "HTTPClient"); it never assigns an address (yiaddr stays 0.0.0.0), so it
 *   coexists with the site's DHCP server;
 * - DHCPDISCOVER (port 67) -> DHCPOFFER with the boot information;
 * - DHCPREQUEST or DHCPINFORM on 4011 (boot server discovery; iPXE's
 *   "ProxyDHCP REQUEST" and edk2's discover both come here) -> DHCPACK;
 * - DHCPREQUEST on 67 is ignored: it selects the address server's offer and
 *   is none of our business. dnsmasq's proxy ignores it too. A client that
 *   wants boot information from a proxy asks on 4011 (both clients in
 *   testdata/ do: seabios-ipxe-*-4011 and ovmf-edk2-*-4011), so no firmware
 *   in our captures needs a proxy ACK on 67.
 *
 * Boot file: a client already running iPXE gets `${httpBaseUrl}/boot.ipxe`
 * (the HTTP script, never an iPXE binary again, or it would loop); firmware
 * gets the iPXE binary for its architecture over TFTP; UEFI HTTP boot gets a
 * full http:// URL to the same binary (`${httpBaseUrl}/tftp/<file>`).
 *
 * Nearest node (issue 15): when another live node serves the client's
 * subnet, the caller sets `bootServer` in the context for this request
 * (`withBootServer`; which address decides: `clientSubnetAddress`). The
 * boot information then points at that node: its address as next-server
 * (siaddr, the TFTP server) and as the PXE menu's boot server, its HTTP base
 * URL for boot.ipxe and HTTP boot. Option 54 stays ours: we answered.
 */
import { BOOTREPLY, BOOTREQUEST, createPacket, cStringField, type DhcpOption, type DhcpPacket } from '../protocol/dhcp/packet.js';
import { getOption, MessageType, messageType, Opt, parameterRequestList } from '../protocol/dhcp/options.js';
import { decodePxeOptions, DiscoveryControl, encodePxeOptions, PXE_TYPE_LOCAL_BOOT, type PxeBootItem } from '../protocol/dhcp/pxe.js';
import { detectFirmware, firmwareLabel, type FirmwareInfo } from './firmware.js';
import type { ServingNode } from '../model/node.js';

export interface ProxyBootFiles {
  bios: string;
  efiX64: string;
  efiIa32: string;
  efiArm64: string;
}

export interface ProxyBiosMenu {
  enabled: boolean;
  prompt: string;
  timeoutSeconds: number;
}

export interface ProxyContext {
  /** Our address: option 54, siaddr, the boot server in menus. */
  serverIp: string;
  /** e.g. http://10.0.0.1:8080, no trailing slash. */
  httpBaseUrl: string;
  /** File names relative to the TFTP root (config.boot.files). */
  bootFiles: Readonly<ProxyBootFiles>;
  /** config.dhcp.biosMenu. */
  biosMenu: Readonly<ProxyBiosMenu>;
  /**
   * x64 UEFI PXE firmware gets this file (Debian's signed shim, then GRUB:
   * src/boot/grub.ts) instead of iPXE; null or absent: iPXE (uefi.secureBoot off).
   */
  secureBootLoader?: string | null;
  /**
   * Another node serves this client's subnet (set per request by the
   * caller, withBootServer): next-server, the PXE boot server and the HTTP
   * URLs are that node's. Null or absent: ours.
   */
  bootServer?: ServingNode | null;
}

/** The context for one request: `ctx` pointing at `node` (null: unchanged). */
export function withBootServer(ctx: ProxyContext, node: ServingNode | null): ProxyContext {
  return node === null ? ctx : { ...ctx, bootServer: node };
}

/** next-server: the serving node's address, else ours. */
export function bootServerIp(ctx: ProxyContext): string {
  return ctx.bootServer?.address ?? ctx.serverIp;
}

function bootBaseUrl(ctx: ProxyContext): string {
  return ctx.bootServer?.httpBaseUrl ?? ctx.httpBaseUrl;
}

/**
 * The address that says which subnet a proxy request's client is on (which
 * node serves it): the relay's giaddr when relayed, else the client's own
 * address (ciaddr, or the source of a request on 4011), else null: the
 * subnet of the interface it arrived on, which is ours.
 */
export function clientSubnetAddress(req: DhcpPacket, arrival: Arrival): string | null {
  if (req.giaddr !== ZERO) return req.giaddr;
  if (req.ciaddr !== ZERO) return req.ciaddr;
  if (arrival.port === 'pxe' && arrival.address !== ZERO) return arrival.address;
  return null;
}

/** Where a request arrived: which of our ports, and the UDP source. */
export interface Arrival {
  port: 'dhcp' | 'pxe';
  address: string;
  sourcePort: number;
}

export interface Destination {
  address: string;
  port: number;
  /** relay: to giaddr's server port; unicast: back to a client with an address; broadcast: 255.255.255.255:68. */
  kind: 'relay' | 'unicast' | 'broadcast';
}

export interface ProxyReply {
  reply: DhcpPacket;
  to: Destination;
  /** The boot file or URL given ('' for a PXE menu offer, where the client picks later). */
  file: string;
  reason: string;
  firmware: FirmwareInfo;
}
export interface ProxyIgnore {
  ignore: string;
  firmware?: FirmwareInfo;
}
export type ProxyDecision = ProxyReply | ProxyIgnore;

/**
 * PXE menu item type for "Boot from network". Types 0x8000-0xFFFE are
 * vendor-specific (PXE 2.1 table 2-1); dnsmasq numbers its pxe-service
 * entries the same way. 0 is "local boot", handled by the ROM itself.
 */
export const MENU_TYPE_NETWORK = 0x8000;

const ZERO = '0.0.0.0';
const BROADCAST_FLAG = 0x8000;
const EMPTY = Buffer.alloc(0);

/** Option 43 for a client that should just use the boot file: discovery control 8. Shared, never mutated. */
const PXE_USE_BOOT_FILE = encodePxeOptions({ discoveryControl: DiscoveryControl.USE_BOOT_FILE });
const PXE_CLIENT = Buffer.from('PXEClient', 'latin1');
const HTTP_CLIENT = Buffer.from('HTTPClient', 'latin1');

function u8(n: number): Buffer {
  return Buffer.from([n]);
}
function ipBytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

function efiFile(f: FirmwareInfo, files: Readonly<ProxyBootFiles>): string | undefined {
  switch (f.family) {
    case 'efi-x64':
      return files.efiX64;
    case 'efi-ia32':
      return files.efiIa32;
    case 'efi-arm64':
      return files.efiArm64;
    default:
      return undefined;
  }
}

interface BootChoice {
  file: string;
  /** Short text: "x64 UEFI firmware, not iPXE -> snponly.efi over TFTP". */
  reason: string;
}

function chooseBootFile(f: FirmwareInfo, ctx: ProxyContext): BootChoice | string {
  const label = firmwareLabel(f);
  const base = bootBaseUrl(ctx);
  if (f.ipxe) {
    const url = `${base}/boot.ipxe`;
    return { file: url, reason: `${label}, already iPXE -> HTTP script ${url}` };
  }
  if (f.httpBoot) {
    const efi = efiFile(f, ctx.bootFiles);
    if (!efi) return `no boot file for ${label}`;
    const url = `${base}/tftp/${efi}`;
    return { file: url, reason: `${label} firmware -> ${url}` };
  }
  if (f.family === 'bios') return { file: ctx.bootFiles.bios, reason: `${label} firmware, not iPXE -> ${ctx.bootFiles.bios} over TFTP` };
  if (f.family === 'efi-x64' && ctx.secureBootLoader) return { file: ctx.secureBootLoader, reason: `${label} firmware, not iPXE -> ${ctx.secureBootLoader} over TFTP (uefi.secureBoot: Debian's signed shim, then GRUB)` };
  const efi = efiFile(f, ctx.bootFiles);
  if (!efi) return `no boot file for ${label}`;
  return { file: efi, reason: `${label} firmware, not iPXE -> ${efi} over TFTP` };
}

function destination(req: DhcpPacket, arrival: Arrival): Destination {
  // Relayed: RFC 2131 4.1, answer the relay on the server port; it forwards to
  // the client. This is how clients on other subnets are served.
  if (req.giaddr !== ZERO) return { address: req.giaddr, port: 67, kind: 'relay' };
  // Boot server discovery on 4011 comes from a client that already has its
  // address: answer where it came from (edk2 sends from port 4011, iPXE from 68:
  // ovmf-edk2-*-4011.hex, seabios-ipxe-*-4011.hex).
  if (arrival.port === 'pxe') {
    const addr = arrival.address !== ZERO ? arrival.address : req.ciaddr;
    if (addr !== ZERO) return { address: addr, port: arrival.sourcePort, kind: 'unicast' };
  }
  return { address: '255.255.255.255', port: 68, kind: 'broadcast' };
}

function readBootItem(req: DhcpPacket): PxeBootItem | undefined {
  const v = getOption(req, Opt.VENDOR_SPECIFIC);
  return v ? decodePxeOptions(v).bootItem : undefined;
}

/** The boot part of a reply (proxy or address server): what goes into siaddr/file and the boot options. */
export interface BootAnswer {
  /** The boot file or URL ('' for a PXE menu offer, where the client picks later). */
  file: string;
  reason: string;
  /** The 128-byte `file` field: the name when it fits, else zeros (then option 67 carries it). */
  fileField: Buffer;
  /** In this order: 60 (PXEClient/HTTPClient), 97 (echoed), 43 (PXE clients), 67 (when needed). */
  options: DhcpOption[];
}

/**
 * The boot information for a PXE/iPXE/HTTP-boot client, shared by the proxy
 * (decideProxyAnswer) and the address server (src/dhcp/engine.ts): the
 * boot file for its firmware, option 60 echoed, option 43 (discovery control
 * "use the boot file", the echoed boot item, or the BIOS menu) and option 67
 * when the client needs it. Returns the reason as a string when there is no
 * boot file for this firmware. The caller has checked firmware.clientClass.
 */
export function bootAnswer(
  req: DhcpPacket,
  firmware: FirmwareInfo,
  ctx: ProxyContext,
  opts: { bootItem?: PxeBootItem | undefined; menu?: boolean } = {},
): BootAnswer | string {
  const choice = chooseBootFile(firmware, ctx);
  if (typeof choice === 'string') return choice;
  const isPxe = firmware.clientClass === 'PXEClient' && !firmware.httpBoot;
  const { bootItem, menu = false } = opts;
  const options: DhcpOption[] = [{ code: Opt.VENDOR_CLASS_ID, data: firmware.clientClass === 'HTTPClient' ? HTTP_CLIENT : PXE_CLIENT }];
  const guid = getOption(req, Opt.CLIENT_GUID);
  if (guid) options.push({ code: Opt.CLIENT_GUID, data: Buffer.from(guid) });

  let file = choice.file;
  // Over TFTP the file comes from next-server: say which node that is.
  let reason = ctx.bootServer ? `${choice.reason} (served by node ${ctx.bootServer.name}, ${ctx.bootServer.address})` : choice.reason;
  if (menu) {
    file = '';
    reason = `BIOS PXE ROM -> menu (network: ${choice.file}, local disk), ${ctx.biosMenu.timeoutSeconds} s prompt${ctx.bootServer ? ` (boot server: node ${ctx.bootServer.name}, ${ctx.bootServer.address})` : ''}`;
    options.push({
      code: Opt.VENDOR_SPECIFIC,
      data: encodePxeOptions({
        // As dnsmasq: no multicast or broadcast discovery, ask the listed server.
        discoveryControl: DiscoveryControl.NO_BROADCAST | DiscoveryControl.NO_MULTICAST,
        bootServers: [{ type: MENU_TYPE_NETWORK, addresses: [bootServerIp(ctx)] }],
        bootMenu: [
          { type: MENU_TYPE_NETWORK, description: 'Boot from network' },
          { type: PXE_TYPE_LOCAL_BOOT, description: 'Boot from local disk' },
        ],
        menuPrompt: { timeout: ctx.biosMenu.timeoutSeconds, prompt: ctx.biosMenu.prompt },
      }),
    });
  } else if (isPxe) {
    // The ROM asked for a boot item (71): echo it, as the PXE spec requires and dnsmasq does.
    options.push({ code: Opt.VENDOR_SPECIFIC, data: bootItem ? encodePxeOptions({ bootItem }) : PXE_USE_BOOT_FILE });
  }

  const fileFits = Buffer.byteLength(file, 'latin1') < 128;
  if (file !== '') {
    const asked = parameterRequestList(req)?.includes(Opt.BOOTFILE_NAME) ?? false;
    // Option 67 when asked for, for iPXE and HTTP boot (URLs), or when the name
    // does not fit the 128-byte file field. NUL-terminated: dnsmasq notes PXE
    // ROMs that need it; iPXE and edk2 stop at the NUL.
    if (asked || firmware.ipxe || firmware.httpBoot || !fileFits) {
      options.push({ code: Opt.BOOTFILE_NAME, data: Buffer.from(`${file}\0`, 'latin1') });
    }
  }
  return { file, reason, options, fileField: fileFits && file !== '' ? cStringField(file, 128) : Buffer.alloc(128) };
}

/**
 * Decide the answer to one request. Throws DhcpDecodeError only when an
 * option we must read is malformed (the caller treats it as a bad packet).
 */
export function decideProxyAnswer(req: DhcpPacket, arrival: Arrival, ctx: ProxyContext): ProxyDecision {
  if (req.op !== BOOTREQUEST) return { ignore: `op ${req.op} is not a BOOTREQUEST` };
  const mt = messageType(req);
  if (mt === undefined) return { ignore: 'plain BOOTP (no option 53)' };
  const firmware = detectFirmware(req);
  if (firmware.clientClass === null) return { ignore: 'not a PXE or HTTP boot client (option 60)', firmware };

  let replyType: number;
  if (mt === MessageType.DISCOVER) replyType = MessageType.OFFER;
  else if ((mt === MessageType.REQUEST || mt === MessageType.INFORM) && arrival.port === 'pxe') replyType = MessageType.ACK;
  else if (mt === MessageType.REQUEST) return { ignore: 'DHCPREQUEST on port 67 selects an address server (proxy answers on 4011 only)', firmware };
  else return { ignore: `message type ${mt} is not answered by a proxy`, firmware };

  const isPxe = firmware.clientClass === 'PXEClient' && !firmware.httpBoot;
  const bootItem = isPxe && replyType === MessageType.ACK ? readBootItem(req) : undefined;
  if (bootItem && bootItem.type === PXE_TYPE_LOCAL_BOOT) {
    // dnsmasq sends nothing for a local-boot item (its service has no file);
    // the PXE ROM boots locally when the user picks type 0 without asking.
    return { ignore: 'boot item 0 is "boot from local disk": no boot server reply', firmware };
  }
  if (bootItem && (bootItem.layer & 0x8000) !== 0) return { ignore: 'PXE BIS (layer bit 15) is not supported', firmware };

  // Legacy BIOS PXE ROM menu (dnsmasq's pxe-service/pxe-prompt). Offered on the
  // DISCOVER only; the ROM then asks 4011 with the item the user picked (71).
  const menu = ctx.biosMenu.enabled && isPxe && firmware.family === 'bios' && !firmware.ipxe && replyType === MessageType.OFFER;
  const boot = bootAnswer(req, firmware, ctx, { bootItem, menu });
  if (typeof boot === 'string') return { ignore: boot, firmware };

  const options: DhcpOption[] = [
    { code: Opt.MESSAGE_TYPE, data: u8(replyType) },
    { code: Opt.SERVER_ID, data: ipBytes(ctx.serverIp) },
    ...boot.options,
  ];
  const { file, reason } = boot;

  const to = destination(req, arrival);
  const reply = createPacket({
    op: BOOTREPLY,
    htype: req.htype,
    hlen: req.hlen,
    hops: 0,
    xid: req.xid,
    secs: 0,
    // A reply to a client without an address goes out broadcast; say so in the flags
    // too (dnsmasq does), so a relay broadcasts it on the client's segment.
    flags: to.kind === 'unicast' ? req.flags : req.flags | BROADCAST_FLAG,
    ciaddr: to.kind === 'unicast' ? req.ciaddr : ZERO,
    yiaddr: ZERO,
    siaddr: bootServerIp(ctx),
    giaddr: req.giaddr,
    chaddr: Buffer.from(req.chaddr),
    file: boot.fileField,
    options,
    trailer: EMPTY,
  });
  return { reply, to, file, reason, firmware };
}
