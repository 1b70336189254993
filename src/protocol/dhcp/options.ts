/**
 * DHCP option codes with names, and typed readers for the options a PXE
 * proxy uses. Readers return undefined when the option is absent and throw
 * DhcpDecodeError when it is present but malformed (wrong length...), so a
 * caller can treat a bad option exactly like a bad packet.
 */
import { DhcpDecodeError } from './errors.js';
import type { DhcpOption, DhcpPacket } from './packet.js';

export const MessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;
export type MessageTypeName = keyof typeof MessageType;

const messageTypeNames: Record<number, MessageTypeName> = Object.fromEntries(
  Object.entries(MessageType).map(([k, v]) => [v, k as MessageTypeName]),
);

export function messageTypeName(t: number | undefined): string {
  if (t === undefined) return 'BOOTP';
  return messageTypeNames[t] ?? `type-${t}`;
}

export const Opt = {
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  HOST_NAME: 12,
  DOMAIN_NAME: 15,
  VENDOR_SPECIFIC: 43,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_REQUEST_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  VENDOR_CLASS_ID: 60,
  CLIENT_ID: 61,
  TFTP_SERVER_NAME: 66,
  BOOTFILE_NAME: 67,
  USER_CLASS: 77,
  RELAY_AGENT_INFO: 82,
  CLIENT_ARCH: 93,
  CLIENT_NDI: 94,
  CLIENT_GUID: 97,
  IPXE: 175,
} as const;

/** Names for logs and the golden files (RFC 2132 and later; IANA "BOOTP Vendor Extensions and DHCP Options"). */
export const optionNames: Readonly<Record<number, string>> = {
  0: 'pad',
  1: 'subnet-mask',
  2: 'time-offset',
  3: 'router',
  6: 'dns-server',
  12: 'host-name',
  13: 'boot-file-size',
  15: 'domain-name',
  17: 'root-path',
  28: 'broadcast-address',
  43: 'vendor-specific',
  50: 'requested-ip',
  51: 'lease-time',
  52: 'overload',
  53: 'message-type',
  54: 'server-id',
  55: 'parameter-request-list',
  56: 'message',
  57: 'max-message-size',
  58: 'renewal-time',
  59: 'rebinding-time',
  60: 'vendor-class-id',
  61: 'client-id',
  66: 'tftp-server-name',
  67: 'bootfile-name',
  77: 'user-class',
  81: 'client-fqdn',
  82: 'relay-agent-info',
  93: 'client-arch',
  94: 'client-ndi',
  97: 'client-guid',
  118: 'subnet-selection',
  119: 'domain-search',
  121: 'classless-static-route',
  128: 'pxe-128',
  129: 'pxe-129',
  130: 'pxe-130',
  131: 'pxe-131',
  132: 'pxe-132',
  133: 'pxe-133',
  134: 'pxe-134',
  135: 'pxe-135',
  175: 'ipxe-encap',
  255: 'end',
};

export function optionName(code: number): string {
  return optionNames[code] ?? `option-${code}`;
}

/**
 * The value of an option. When it appears several times its instances are
 * concatenated (RFC 3396 long options), in wire order.
 */
export function getOption(p: DhcpPacket, code: number): Buffer | undefined {
  let first: DhcpOption | undefined;
  let parts: Buffer[] | undefined;
  for (const o of p.options) {
    if (o.code !== code) continue;
    if (!first) first = o;
    else (parts ??= [first.data]).push(o.data);
  }
  if (!first) return undefined;
  return parts ? Buffer.concat(parts) : first.data;
}

/** Replace (or add, at the end) an option in a packet being built. */
export function setOption(p: DhcpPacket, code: number, data: Buffer): void {
  p.options = p.options.filter((o) => o.code !== code);
  p.options.push({ code, data });
}

function bad(code: number, what: string, data: Buffer): never {
  throw new DhcpDecodeError(`option ${code} (${optionName(code)}) ${what}, got ${data.length} byte(s)`, 0);
}

function fixed(p: DhcpPacket, code: number, n: number): Buffer | undefined {
  const d = getOption(p, code);
  if (d && d.length !== n) bad(code, `must be ${n} byte(s)`, d);
  return d;
}

function ip(d: Buffer, at = 0): string {
  return `${d[at]}.${d[at + 1]}.${d[at + 2]}.${d[at + 3]}`;
}

/** 53: DHCP message type (1-8), or undefined for plain BOOTP. */
export function messageType(p: DhcpPacket): number | undefined {
  const d = fixed(p, Opt.MESSAGE_TYPE, 1);
  return d ? (d[0] as number) : undefined;
}

/** Option 53, or undefined when it is missing or malformed (for log lines about packets already judged). */
export function messageTypeIfValid(p: DhcpPacket): number | undefined {
  try {
    return messageType(p);
  } catch {
    return undefined;
  }
}

/** 54: server identifier. */
export function serverIdentifier(p: DhcpPacket): string | undefined {
  const d = fixed(p, Opt.SERVER_ID, 4);
  return d ? ip(d) : undefined;
}

/** 50: requested IP address. */
export function requestedIp(p: DhcpPacket): string | undefined {
  const d = fixed(p, Opt.REQUESTED_IP, 4);
  return d ? ip(d) : undefined;
}

/** 51: lease time in seconds. */
export function leaseTime(p: DhcpPacket): number | undefined {
  const d = fixed(p, Opt.LEASE_TIME, 4);
  return d ? d.readUInt32BE(0) : undefined;
}

/** 55: the option codes the client asks for. */
export function parameterRequestList(p: DhcpPacket): number[] | undefined {
  const d = getOption(p, Opt.PARAMETER_REQUEST_LIST);
  return d ? [...d] : undefined;
}

/** 57: maximum DHCP message size the client accepts (RFC 2132 says at least 576). */
export function maxMessageSize(p: DhcpPacket): number | undefined {
  const d = fixed(p, Opt.MAX_MESSAGE_SIZE, 2);
  return d ? d.readUInt16BE(0) : undefined;
}

/** 60: vendor class identifier as text (latin1), e.g. "PXEClient:Arch:00000:UNDI:002001". */
export function vendorClassId(p: DhcpPacket): string | undefined {
  return getOption(p, Opt.VENDOR_CLASS_ID)?.toString('latin1');
}

/** 61: client identifier (type byte + id). */
export function clientIdentifier(p: DhcpPacket): Buffer | undefined {
  return getOption(p, Opt.CLIENT_ID);
}

/**
 * 77: user classes. RFC 3004 encodes a list of length-prefixed strings, but
 * iPXE (every capture in testdata/) sends the bare text "iPXE", as does
 * Microsoft's older usage: when the bytes do not parse exactly as RFC 3004
 * they are returned as one string.
 */
export function userClass(p: DhcpPacket): string[] | undefined {
  const d = getOption(p, Opt.USER_CLASS);
  if (!d) return undefined;
  const out: string[] = [];
  let i = 0;
  while (i < d.length) {
    const n = d[i] as number;
    if (n === 0 || i + 1 + n > d.length) return [d.toString('latin1')];
    out.push(d.toString('latin1', i + 1, i + 1 + n));
    i += 1 + n;
  }
  return out.length ? out : [d.toString('latin1')];
}

/** 93: client system architectures (RFC 4578: a list of 16-bit types; normally one). */
export function clientArch(p: DhcpPacket): number[] | undefined {
  const d = getOption(p, Opt.CLIENT_ARCH);
  if (!d) return undefined;
  if (d.length === 0 || d.length % 2 !== 0) bad(Opt.CLIENT_ARCH, 'must be a non-empty multiple of 2 bytes', d);
  const out: number[] = [];
  for (let i = 0; i < d.length; i += 2) out.push(d.readUInt16BE(i));
  return out;
}

export interface ClientNdi {
  type: number;
  major: number;
  minor: number;
}
/** 94: client network device interface (type 1 = UNDI, version major.minor). */
export function clientNdi(p: DhcpPacket): ClientNdi | undefined {
  const d = fixed(p, Opt.CLIENT_NDI, 3);
  return d ? { type: d[0] as number, major: d[1] as number, minor: d[2] as number } : undefined;
}

export interface ClientGuid {
  type: number;
  /** 16 bytes. */
  guid: Buffer;
}
/** 97: client machine identifier (type 0 + 16-byte GUID). Raw bytes are what must be echoed. */
export function clientGuid(p: DhcpPacket): ClientGuid | undefined {
  const d = fixed(p, Opt.CLIENT_GUID, 17);
  return d ? { type: d[0] as number, guid: d.subarray(1) } : undefined;
}

export interface SubOption {
  code: number;
  data: Buffer;
}
/**
 * Sub-options in TLV form (used by 43, 82, 175). PAD (0) is skipped, END
 * (255) stops. Throws DhcpDecodeError when a length runs past the end.
 */
export function decodeSubOptions(parent: number, d: Buffer): SubOption[] {
  const out: SubOption[] = [];
  let i = 0;
  while (i < d.length) {
    const code = d[i] as number;
    if (code === 0) {
      i++;
      continue;
    }
    if (code === 255) break;
    if (i + 1 >= d.length) throw new DhcpDecodeError(`option ${parent} sub-option ${code} at ${i} has no length byte`, i);
    const n = d[i + 1] as number;
    if (i + 2 + n > d.length) {
      throw new DhcpDecodeError(`option ${parent} sub-option ${code} at ${i} declares ${n} bytes but only ${d.length - i - 2} remain`, i);
    }
    out.push({ code, data: d.subarray(i + 2, i + 2 + n) });
    i += 2 + n;
  }
  return out;
}

/** Encode sub-options as TLV, no END. Throws RangeError for a value over 255 bytes. */
export function encodeSubOptions(subs: readonly SubOption[]): Buffer {
  let n = 0;
  for (const s of subs) {
    if (s.data.length > 255) throw new RangeError(`sub-option ${s.code} is ${s.data.length} bytes; max 255`);
    n += 2 + s.data.length;
  }
  const b = Buffer.alloc(n);
  let i = 0;
  for (const s of subs) {
    b[i++] = s.code;
    b[i++] = s.data.length;
    s.data.copy(b, i);
    i += s.data.length;
  }
  return b;
}

/** 43: vendor-specific information, raw (see pxe.ts for the PXE sub-options). */
export function vendorSpecific(p: DhcpPacket): Buffer | undefined {
  return getOption(p, Opt.VENDOR_SPECIFIC);
}

/** 175: iPXE's encapsulated options (present only when the client is iPXE). */
export function ipxeOptions(p: DhcpPacket): SubOption[] | undefined {
  const d = getOption(p, Opt.IPXE);
  return d ? decodeSubOptions(Opt.IPXE, d) : undefined;
}

/** 82: relay agent information (RFC 3046): 1 circuit id, 2 remote id, ... */
export function relayAgentInfo(p: DhcpPacket): SubOption[] | undefined {
  const d = getOption(p, Opt.RELAY_AGENT_INFO);
  return d ? decodeSubOptions(Opt.RELAY_AGENT_INFO, d) : undefined;
}

function text(p: DhcpPacket, code: number): string | undefined {
  const d = getOption(p, code);
  if (!d) return undefined;
  // Some servers (dnsmasq: "buggy PXE ROMs") NUL-terminate these; drop it.
  const nul = d.indexOf(0);
  return d.toString('latin1', 0, nul < 0 ? d.length : nul);
}

/** 66: TFTP server name. */
export function tftpServerName(p: DhcpPacket): string | undefined {
  return text(p, Opt.TFTP_SERVER_NAME);
}

/** 67: boot file name. */
export function bootfileName(p: DhcpPacket): string | undefined {
  return text(p, Opt.BOOTFILE_NAME);
}
