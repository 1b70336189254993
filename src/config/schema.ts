/**
 * The configuration schema: one declaration per key of FleetbootConfig,
 * with what it accepts, its default and what it is for. The type
 * `SchemaOf<FleetbootConfig>` makes the compiler refuse a key without a
 * declaration (or a declaration of the wrong type), and config.test.ts walks
 * the table to check that every key has a default that passes its own check.
 * `RULES` holds the checks that involve two keys.
 */
import { isAbsolute, join } from 'node:path';
import { ipxeArgsProblem, ipxeUrlProblem } from '../boot/ipxe.js';
import { parseOptionValue } from '../dhcp/option-values.js';
import { buildSubnets, parseCidr, type OptionSetting, type PoolSettings } from '../dhcp/subnets.js';
import { isDnsName } from '../model/dns-name.js';
import { isValidName, NAME_PATTERN, NAME_RULE } from '../model/validate.js';
import { GROUP_PREFIX } from '../model/image-nodes.js';
import { DATABASE_URL_ENV, databaseUrlProblem, redactUrl } from '../model/database-url.js';
import { MAX_RATE_MBPS, multicastAddressProblem, parseMulticastPorts } from '../model/multicast.js';
import type { FleetbootError } from '../lib/errors.js';
import { boolean, configError, custom, Field, integer, ipv4, isIPv4, oneOf, parseField, path, port, string, type FieldContext } from './fields.js';
import type { DhcpReservationConfig, FleetbootConfig, IsGroup, PortRange } from './types.js';

/** Where scripts/install-deps.sh extracts Debian's signed shim and GRUB (from the packages, not installed as packages). */
export const DEBIAN_SIGNED_DIR = '/usr/local/share/fleetboot/signed';

/** A tree with the config's shape whose leaves are the keys' fields. */
export type SchemaOf<T> = {
  readonly [K in keyof T]-?: IsGroup<T[K]> extends true ? SchemaOf<T[K]> : Field<T[K]>;
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function list(value: unknown, key: string, what: string): unknown[] {
  if (!Array.isArray(value)) throw configError(key, `must be ${what}`, value);
  return value;
}

/** Every key of `raw` must be one of `known`. */
function knownKeys(raw: Record<string, unknown>, key: string, known: readonly string[]): void {
  for (const k of Object.keys(raw)) {
    if (!known.includes(k)) throw configError(`${key}.${k}`, `is not a known key (known: ${known.join(', ')})`, raw[k]);
  }
}

/** `[{ "code": 3, "value": "10.0.0.1" }, ...]`: each value must encode as its option's type. */
function parseOptions(value: unknown, key: string): OptionSetting[] {
  return list(value, key, 'a list of { "code": number, "value": string }').map((o: unknown, i) => {
    const k = `${key}[${i}]`;
    if (!isRecord(o) || typeof o.code !== 'number' || typeof o.value !== 'string') throw configError(k, 'must be { "code": number, "value": string }', o);
    knownKeys(o, k, ['code', 'value']);
    try {
      parseOptionValue(o.code, o.value);
    } catch (err) {
      throw configError(k, `is not a valid DHCP option (${(err as Error).message})`, o);
    }
    return { code: o.code, value: o.value };
  });
}

function ipv4List(value: unknown, key: string): string[] {
  const l = list(value, key, 'a list of IPv4 addresses');
  if (!l.every((x): x is string => typeof x === 'string' && isIPv4(x))) throw configError(key, 'must be a list of IPv4 addresses', value);
  return [...l];
}

function exclusions(value: unknown, key: string): string[] {
  const l = list(value, key, 'a list of addresses or START-END ranges');
  const ok = (e: unknown): e is string => typeof e === 'string' && e.split('-').length <= 2 && e.split('-').every((x) => isIPv4(x.trim()));
  if (!l.every(ok)) throw configError(key, 'must be a list of addresses or START-END ranges', value);
  return [...l];
}

/** The optional fields of a `dhcp.pools` entry (start and end are required). */
const POOL_FIELDS = {
  netmask: ipv4({ default: '255.255.255.0', doc: 'The subnet mask (option 1); pools with the same network and mask form one subnet.' }),
  leaseSeconds: integer(60, 0x7fffffff, { default: 3600, doc: 'Lease time (option 51).' }),
  router: ipv4({ nullable: true, default: null, doc: 'Default gateway (option 3).' }),
  dns: custom('a list of IPv4 addresses', ipv4List, { default: [], doc: 'DNS servers (option 6).' }),
  domain: string({ nullable: true, default: null, pattern: { re: /^[A-Za-z0-9.-]{1,253}$/, means: 'a domain name' }, doc: 'Domain name (option 15).' }),
  ntp: custom('a list of IPv4 addresses', ipv4List, { default: [], doc: 'NTP servers (option 42).' }),
  broadcast: ipv4({ nullable: true, default: null, doc: 'Broadcast address (option 28); null = derived from the mask.' }),
  mtu: integer(68, 65535, { nullable: true, default: null, doc: 'Interface MTU (option 26).' }),
  exclude: custom('a list of addresses or START-END ranges', exclusions, { default: [], doc: 'Addresses ("10.0.0.7") or ranges ("10.0.0.20-10.0.0.29") never handed out.' }),
  options: custom('a list of { "code": number, "value": string }', parseOptions, { default: [], doc: 'Options for this pool (they win over dhcp.options).' }),
} satisfies { [K in Exclude<keyof PoolSettings, 'start' | 'end'>]: Field<PoolSettings[K]> };

const POOL_ADDRESS = ipv4({ default: '0.0.0.0', doc: 'First or last address of the range (required).' });
const NO_CONTEXT: FieldContext = { cwd: '/', dataDir: '/' };

/** Defaults for the optional fields of a pool. */
export const POOL_DEFAULTS: Readonly<Omit<PoolSettings, 'start' | 'end'>> = Object.freeze({
  netmask: POOL_FIELDS.netmask.defaultFor(NO_CONTEXT),
  leaseSeconds: POOL_FIELDS.leaseSeconds.defaultFor(NO_CONTEXT),
  router: POOL_FIELDS.router.defaultFor(NO_CONTEXT),
  dns: Object.freeze(POOL_FIELDS.dns.defaultFor(NO_CONTEXT)),
  domain: POOL_FIELDS.domain.defaultFor(NO_CONTEXT),
  ntp: Object.freeze(POOL_FIELDS.ntp.defaultFor(NO_CONTEXT)),
  broadcast: POOL_FIELDS.broadcast.defaultFor(NO_CONTEXT),
  mtu: POOL_FIELDS.mtu.defaultFor(NO_CONTEXT),
  exclude: Object.freeze(POOL_FIELDS.exclude.defaultFor(NO_CONTEXT)),
  options: Object.freeze(POOL_FIELDS.options.defaultFor(NO_CONTEXT)),
});

function parsePool(raw: unknown, k: string): PoolSettings {
  if (!isRecord(raw)) throw configError(k, 'must be an object with at least "start" and "end"', raw);
  knownKeys(raw, k, ['start', 'end', ...Object.keys(POOL_FIELDS)]);
  const at = <F extends keyof typeof POOL_FIELDS>(f: F): PoolSettings[F] => {
    const field: Field<unknown> = POOL_FIELDS[f];
    const v = raw[f];
    return (v === undefined ? POOL_DEFAULTS[f] : parseField(field, v, `${k}.${f}`, NO_CONTEXT)) as PoolSettings[F];
  };
  const address = (f: 'start' | 'end'): string => {
    if (raw[f] === undefined) throw configError(`${k}.${f}`, 'is required (an IPv4 address)', raw[f]);
    return parseField(POOL_ADDRESS, raw[f], `${k}.${f}`, NO_CONTEXT) as string;
  };
  const p: PoolSettings = {
    start: address('start'),
    end: address('end'),
    netmask: at('netmask'),
    leaseSeconds: at('leaseSeconds'),
    router: at('router'),
    dns: at('dns'),
    domain: at('domain'),
    ntp: at('ntp'),
    broadcast: at('broadcast'),
    mtu: at('mtu'),
    exclude: at('exclude'),
    options: at('options'),
  };
  try {
    buildSubnets([p], []);
  } catch (err) {
    throw configError(k, `is not a valid pool (${(err as Error).message})`, raw);
  }
  return p;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const HOSTNAME = /^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/;

function parseReservations(value: unknown, key: string): DhcpReservationConfig[] {
  const out = list(value, key, 'a list of { "mac", "ip", "hostname"? }').map((raw: unknown, i): DhcpReservationConfig => {
    const k = `${key}[${i}]`;
    if (!isRecord(raw)) throw configError(k, 'must be an object { "mac", "ip", "hostname"? }', raw);
    knownKeys(raw, k, ['mac', 'ip', 'hostname']);
    const mac = typeof raw.mac === 'string' ? raw.mac.trim().toLowerCase().replace(/-/g, ':') : '';
    if (!MAC.test(mac)) throw configError(`${k}.mac`, 'must be a MAC address (52:54:00:12:34:56)', raw.mac);
    if (typeof raw.ip !== 'string' || !isIPv4(raw.ip)) throw configError(`${k}.ip`, 'must be an IPv4 address', raw.ip);
    const hostname = raw.hostname ?? null;
    if (hostname !== null && (typeof hostname !== 'string' || !HOSTNAME.test(hostname))) throw configError(`${k}.hostname`, 'must be a host name or null', hostname);
    return { mac, ip: raw.ip, hostname };
  });
  const seen = new Set<string>();
  for (const r of out) {
    if (seen.has(r.mac) || seen.has(r.ip)) throw configError(key, 'must be unique by MAC and by address', `${r.mac} ${r.ip}`);
    seen.add(r.mac).add(r.ip);
  }
  return out;
}

const RANGE_END = port({ default: 1, doc: 'First or last port of the range.' });

function parsePortRange(value: unknown, key: string): PortRange {
  if (!isRecord(value)) throw configError(key, 'must be { "from": port, "to": port } or null', value);
  knownKeys(value, key, ['from', 'to']);
  const from = parseField(RANGE_END, value.from, `${key}.from`, NO_CONTEXT) as number;
  const to = parseField(RANGE_END, value.to, `${key}.to`, NO_CONTEXT) as number;
  if (to < from) throw configError(key, 'must have from <= to', `${from}-${to}`);
  return { from, to };
}

/**
 * The longest `dhcp.biosMenu.prompt`. The prompt is sent in option 43
 * (one DHCP option: at most 255 bytes) beside the rest of the menu that
 * src/boot/proxy-answer.ts builds, and encodePxeOptions
 * (src/protocol/dhcp/pxe.ts) throws RangeError for anything longer, at every
 * BIOS PXE DISCOVER. The bytes it takes (code + length + data):
 *   sub-option 6, discovery control       2 + 1            =  3
 *   sub-option 8, one boot server         2 + 2 + 1 + 4    =  9
 *   sub-option 9, the two menu items      2 + (3 + 17) + (3 + 20) = 45
 *   sub-option 10, timeout byte + prompt  2 + 1 + N
 *   END                                   1
 * 61 + N <= 255, so N <= 194 (sub-option 10 alone would allow 254).
 * config.test.ts runs the real encoder at 194 and 195.
 */
export const BIOS_MENU_PROMPT_MAX = 194;

/**
 * The prompt is encoded as latin1 (characters above U+00FF would lose their
 * high byte), and the ROM writes those bytes as they are to the BIOS text
 * console (code page 437), where control characters move the cursor and
 * bytes above 0x7E are other glyphs: so printable ASCII only.
 */
const PRINTABLE_ASCII = { re: /^[\x20-\x7e]*$/, means: 'printable ASCII (the PXE ROM prints it byte for byte on the BIOS console)' };

const RELATIVE_FILE = { re: /^[\x21-\x7e]+$/, means: 'a relative path inside the TFTP root, printable ASCII without spaces' };
function fileProblem(f: string): string | null {
  return isAbsolute(f) || f.split('/').includes('..') ? `must be ${RELATIVE_FILE.means}` : null;
}

function kernelArgsProblem(s: string): string | null {
  const p = ipxeArgsProblem(s);
  if (p !== null) return p;
  if (/(^|\s)fleetboot\.(url|task|token)=/.test(s)) return 'must not set fleetboot.url, fleetboot.task or fleetboot.token (the server sets them)';
  return null;
}

/** `wake.subnets`: ["10.1.2.0/24", ...], each a subnet with a broadcast address (/1 to /30). */
function cidrList(value: unknown, key: string): string[] {
  return list(value, key, 'a list of subnets such as "10.1.2.0/24"').map((v, i) => {
    if (typeof v !== 'string') throw configError(`${key}[${i}]`, 'must be a subnet such as "10.1.2.0/24"', v);
    try {
      return parseCidr(v).label;
    } catch (err) {
      throw configError(`${key}[${i}]`, `must be a subnet such as "10.1.2.0/24" with a prefix of 1-30 (${(err as Error).message})`, v);
    }
  });
}

/** `node.groups`: ["building-a", ...], each with a node name's syntax, none twice. */
function groupNames(value: unknown, key: string): string[] {
  const l = list(value, key, 'a list of group names');
  return l.map((v, i) => {
    const k = `${key}[${i}]`;
    if (typeof v !== 'string' || !isValidName(v)) {
      const hint = typeof v === 'string' && v.startsWith(GROUP_PREFIX) ? ` (without '${GROUP_PREFIX}': that prefix marks a group in an image's --nodes, not here)` : '';
      throw configError(k, `must be a group name (${NAME_RULE})${hint}`, v);
    }
    if (l.indexOf(v) !== i) throw configError(k, `names group '${v}' a second time (first at ${key}[${l.indexOf(v)}])`, v);
    return v;
  });
}

function multicastRangeProblem(s: string): string | null {
  let c;
  try {
    c = parseCidr(s);
  } catch (err) {
    return `must be a subnet such as "239.255.42.0/24" (${(err as Error).message})`;
  }
  const first = c.label.split('/')[0] ?? '';
  const problem = multicastAddressProblem(first);
  if (problem) return problem;
  if (c.label.startsWith('224.0.0.')) return 'must not include 224.0.0.0/24 (routing protocols and IGMP)';
  return null;
}

function bindHostProblem(s: string): string | null {
  return isIPv4(s) || s === '::' || s === 'localhost' ? null : "must be an IPv4 address, '::' or 'localhost'";
}

/** `https.names`: ["pxe.example.org", "10.1.2.3", ...], what a subjectAltName may hold. */
function certificateNames(value: unknown, key: string): string[] {
  return list(value, key, 'a list of DNS names and IPv4 addresses').map((v, i) => {
    if (typeof v !== 'string' || !(isIPv4(v) || isDnsName(v))) throw configError(`${key}[${i}]`, 'must be a DNS name (letters, digits, hyphens, dots) or an IPv4 address', v);
    return v.toLowerCase();
  });
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const CONFIG_SCHEMA: SchemaOf<FleetbootConfig> = {
  dataDir: path({ default: (ctx) => join(ctx.cwd, 'data'), doc: 'Where the SQLite file, the API token and boot-entry files live.' }),
  store: {
    url: custom<string, true>(
      'a PostgreSQL URL or null',
      (value, key) => {
        if (typeof value !== 'string') throw configError(key, 'must be a PostgreSQL URL (postgres://USER@HOST/DATABASE) or null', value);
        const problem = databaseUrlProblem(value);
        if (problem) throw configError(key, problem, redactUrl(value));
        return value;
      },
      {
        nullable: true,
        default: null,
        doc: `null: SQLite in dataDir. postgres://USER@HOST/DB: that PostgreSQL, shareable by servers (password: PGPASSWORD, ~/.pgpass or ${DATABASE_URL_ENV}).`,
      },
    ),
  },
  interface: string({
    nullable: true,
    default: null,
    pattern: { re: /^(?!\.\.?$)[^\s/]{1,15}$/, means: 'a network interface name (1-15 characters, no spaces or "/")' },
    doc: 'Interface whose IPv4 address is the server address (when serverIp is null); null = the first non-internal one.',
  }),
  serverIp: ipv4({ nullable: true, default: null, doc: 'The address clients are told to use for TFTP and HTTP (option 54, siaddr, URLs); null = detected.' }),
  http: {
    host: string({ default: '0.0.0.0', problem: bindHostProblem, doc: 'Address the HTTP server binds to.' }),
    port: port({ allowZero: true, default: 8080, doc: 'HTTP port (0 = any free port).' }),
    publicUrl: string({ nullable: true, default: null, problem: ipxeUrlProblem, doc: 'Base URL put into iPXE scripts; null = http://serverIp:port.' }),
  },
  https: {
    enabled: boolean({ default: true, doc: 'Serve the API, the console and the endpoint agents over HTTPS as well (the boot endpoints stay on HTTP: firmware has no HTTPS).' }),
    host: string({ default: '0.0.0.0', problem: bindHostProblem, doc: 'Address the HTTPS server binds to.' }),
    port: port({ allowZero: true, default: 8443, doc: 'HTTPS port (0 = any free port).' }),
    certFile: path({ nullable: true, default: null, doc: "A PEM certificate (intermediates after it) to serve instead of one from Fleetboot's own CA; with https.keyFile." }),
    keyFile: path({ nullable: true, default: null, doc: 'The unencrypted PEM private key of https.certFile.' }),
    caFile: path({ nullable: true, default: null, doc: 'The CA certificate that issued https.certFile, for endpoint agents to pin (and `fleetboot ca show`).' }),
    names: custom('a list of DNS names and IPv4 addresses', certificateNames, {
      default: [],
      doc: "Extra names for the certificate from Fleetboot's CA (it names the server address, the interfaces' addresses, localhost and the host name).",
    }),
  },
  dhcp: {
    mode: oneOf(['proxy', 'server', 'off'], { default: 'proxy', doc: 'proxyDHCP beside the site DHCP server, a full DHCP server, or none.' }),
    bindAddress: ipv4({ default: '0.0.0.0', doc: 'Address the DHCP sockets bind to (0.0.0.0 receives broadcasts).' }),
    port: port({ default: 67, doc: 'DHCP server port (67); changeable for tests and benchmarks.' }),
    pxePort: port({ default: 4011, doc: 'PXE boot-server discovery port (4011).' }),
    biosMenu: {
      enabled: boolean({ default: false, doc: 'Offer legacy BIOS PXE ROMs a menu (option 43 sub-options 6/8/9/10), as dnsmasq pxe-service/pxe-prompt.' }),
      prompt: string({ default: 'Press F8 for the boot menu', maxLength: BIOS_MENU_PROMPT_MAX, pattern: PRINTABLE_ASCII, doc: 'The text the PXE ROM shows while it waits (sub-option 10).' }),
      timeoutSeconds: integer(0, 255, { default: 3, doc: 'Seconds before the default item; 0 = no prompt, 255 = wait for a key.' }),
    },
    pools: custom('a list of pools', (v, key) => list(v, key, 'a list of pools').map((p, i) => parsePool(p, `${key}[${i}]`)), {
      default: [],
      doc: 'Server mode: dynamic ranges, one or more per subnet (several subnets through relays); only start and end are required.',
    }),
    options: custom('a list of { "code": number, "value": string }', parseOptions, { default: [], doc: "Server mode: options for every subnet (a pool's own fields and options win)." }),
    reservations: custom('a list of { "mac", "ip", "hostname"? }', parseReservations, { default: [], doc: 'Server mode: fixed addresses by MAC.' }),
    probeAtStart: boolean({
      nullable: true,
      default: null,
      doc: 'At start, send a DISCOVER and warn about other DHCP servers that answer (src/net/dhcp-probe.ts); null = only in server mode.',
    }),
    probeTimeoutMs: integer(100, 60_000, { default: 4000, doc: 'How long that probe listens for answers.' }),
  },
  tftp: {
    enabled: boolean({ default: true, doc: 'Run the TFTP server.' }),
    root: path({ default: (ctx) => join(ctx.dataDir, 'tftp'), doc: 'Files served read-only from here (the iPXE binaries); follows dataDir unless set.' }),
    bindAddress: ipv4({ default: '0.0.0.0', doc: 'Address the TFTP sockets bind to.' }),
    port: port({ allowZero: true, default: 69, doc: 'TFTP port (0 = any free port).' }),
    dataPorts: custom('{ "from": port, "to": port }', parsePortRange, {
      nullable: true,
      default: null,
      doc: 'Ports for the data transfers; null = any ephemeral port. WDS uses 64001-65000.',
    }),
    timeoutMs: integer(10, 255_000, { default: 1000, doc: 'Retransmission timeout when the client does not ask for one.' }),
    maxRetries: integer(1, 100, { default: 5, doc: 'How many times a packet is sent before the transfer is abandoned.' }),
    maxBlksize: integer(512, 65464, { default: 65464, doc: 'Largest block size the server accepts in negotiation (RFC 2348).' }),
    maxWindowsize: integer(1, 65535, { default: 64, doc: 'Largest window size the server accepts in negotiation (RFC 7440).' }),
    busyPollMicros: integer(0, 1000, {
      default: 50,
      doc: 'Microseconds the server keeps polling after each datagram instead of sleeping (0 = off): CPU while transfers run, faster lock-step transfers on VMs.',
    }),
  },
  boot: {
    menuTimeoutSeconds: integer(0, 3600, { default: 10, doc: 'Seconds the iPXE menu for unknown/unassigned machines waits before booting the local disk.' }),
    files: {
      bios: string({ default: 'undionly.kpxe', minLength: 1, pattern: RELATIVE_FILE, problem: fileProblem, doc: 'iPXE for BIOS PXE ROMs, relative to the TFTP root.' }),
      efiX64: string({ default: 'snponly.efi', minLength: 1, pattern: RELATIVE_FILE, problem: fileProblem, doc: 'iPXE for x64 UEFI, relative to the TFTP root.' }),
      efiIa32: string({ default: 'ipxe-ia32.efi', minLength: 1, pattern: RELATIVE_FILE, problem: fileProblem, doc: 'iPXE for IA32 UEFI, relative to the TFTP root.' }),
      efiArm64: string({ default: 'arm64/snponly.efi', minLength: 1, pattern: RELATIVE_FILE, problem: fileProblem, doc: 'iPXE for ARM64 UEFI, relative to the TFTP root.' }),
    },
  },
  uefi: {
    secureBoot: oneOf(['off', 'on', 'auto'], {
      default: 'off',
      doc: "x64 UEFI PXE firmware gets Debian's signed shim and GRUB, not iPXE: on (required), auto (when installed) or off (iPXE).",
    }),
    signedDir: path({ default: () => DEBIAN_SIGNED_DIR, doc: "Where Debian's signed shimx64.efi and grubnetx64.efi are (scripts/install-deps.sh extracts them from the packages shim-signed and grub-efi-amd64-signed)." }),
  },
  imaging: {
    bootEnvDir: path({ default: (ctx) => join(ctx.dataDir, 'bootenv'), doc: "Where the boot environment's vmlinuz and initrd.img are (scripts/build-bootenv.sh); follows dataDir unless set." }),
    maxTransfers: integer(1, 10_000, { default: 10, doc: 'At most this many tasks transfer at once (FOG\'s "max clients"); the others wait for a slot.' }),
    agentTimeoutSeconds: integer(2, 86_400, { default: 300, doc: 'A started task with no agent contact for this long fails.' }),
    progressIntervalSeconds: integer(1, 3600, { default: 3, doc: "Seconds between the agent's progress reports (at most half of agentTimeoutSeconds)." }),
    unknownPolicy: oneOf(['menu', 'register'], { default: 'menu', doc: "Unknown machines: the menu (Register / Inventory items), or a register task at once (FOG's quick registration)." }),
    kernelArgs: string({ default: '', problem: kernelArgsProblem, doc: 'Extra kernel arguments for the boot environment (printable ASCII; nothing iPXE would interpret).' }),
    maxImageBytes: integer(1, Number.MAX_SAFE_INTEGER, { default: 2 ** 40, doc: 'Largest stream (and image) a capture may upload.' }),
    maxAttempts: integer(1, 100, { default: 3, doc: 'A task fails when its machine PXE-boots this many times without finishing it.' }),
    keepRevisions: integer(1, 1000, { default: 3, doc: 'Captures keep this many revisions of an image.' }),
    captureApproval: boolean({ default: false, doc: 'A captured revision waits as pending until approved.' }),
    createRateLimit: {
      burst: integer(1, 100_000, { default: 20, doc: 'Boot-time requests that create hosts or tasks, per client address: token-bucket size.' }),
      perMinute: integer(1, 100_000, { default: 10, doc: 'Boot-time requests that create hosts or tasks, per client address: refill per minute.' }),
    },
  },
  wake: {
    port: port({ default: 9, doc: 'UDP port of Wake-on-LAN magic packets (9, discard; some tools use 7).' }),
    repeats: integer(1, 10, { default: 3, doc: 'Magic packets sent per wake round to each target (UDP is lost now and then).' }),
    spacingSeconds: integer(1, 300, { default: 15, doc: 'Seconds between those packets (3 x 15 s: three sends over about 30 s).' }),
    contactTimeoutSeconds: integer(10, 86_400, {
      default: 300,
      doc: 'A woken task whose machine has not network-booted this long after a wake round is woken once more, then fails.',
    }),
    subnets: custom('a list of subnets such as "10.1.2.0/24"', cidrList, {
      default: [],
      doc: "Subnets behind routers whose directed broadcast gets the packets too (besides server-mode pools and relays' subnets).",
    }),
    relayPrefixLength: integer(8, 30, {
      default: 24,
      doc: "Prefix length assumed for a relay's subnet (its giaddr) that no pool or wake.subnets entry covers.",
    }),
  },
  multicast: {
    addresses: string({
      default: '239.255.42.0/24',
      problem: multicastRangeProblem,
      doc: 'Group addresses sessions take, as a subnet inside 224.0.0.0/4 and outside 224.0.0.0/24 (239.255.0.0/16 is the site-local scope).',
    }),
    ports: string({
      default: '63001-63100',
      problem: (s) => (parseMulticastPorts(s) === null ? 'must be a port range FROM-TO such as 64001-65000, or one port (1-65535)' : null),
      doc: 'UDP ports sessions take, one each per address; outside the kernel\'s ephemeral range and tftp.dataPorts (WDS-style TFTP ranges are 64001-65000); open them in the firewall.',
    }),
    ttl: integer(1, 255, { default: 1, doc: 'TTL of session datagrams: 1 stays on the segment; above 1 crosses multicast routers (one per hop).' }),
    interface: string({
      nullable: true,
      default: null,
      problem: (s) => (isIPv4(s) || /^[^\s/]{1,15}$/.test(s) ? null : 'must be an IPv4 address or an interface name'),
      doc: 'Interface (address or name) sessions leave by; null = the one with the server address.',
    }),
    maxRateMbps: integer(1, MAX_RATE_MBPS, { default: 800, doc: 'Ceiling of a session\'s send rate, Mbit/s: it adapts below it to what the receivers report.' }),
    slowReceiverSeconds: integer(1, 3600, { default: 20, doc: 'A receiver that holds the others back this long leaves the session and finishes by unicast.' }),
    receiverTimeoutSeconds: integer(2, 3600, { default: 10, doc: 'A receiver not heard from this long is out of the session (its task goes on alone, by unicast).' }),
    maxWaitSeconds: integer(0, 86_400, {
      nullable: true,
      default: null,
      doc: 'Default wait for the members to join before a session starts with those present (task deploy --max-wait); null = wait for all.',
    }),
  },
  agents: {
    pollSeconds: integer(5, 86400, { default: 60, doc: 'Seconds between the polls of an endpoint agent (fleetboot-agent) for work; each wait is this ±20 % so machines started together spread out.' }),
    longPollSeconds: integer(1, 300, { default: 25, doc: 'Longest time the server holds an agent\'s long poll open before answering "no work" (below the idle timeout of proxies on the way).' }),
    sessionMinutes: integer(1, 1440, { default: 10, doc: 'An agent\'s session lasts this long; the agent then proves its key again. A revoked agent is refused at its next request regardless.' }),
  },
  auth: {
    sessionIdleMinutes: integer(1, 7 * 24 * 60, {
      default: 30,
      doc: 'A console login session that makes no request for this long ends (counted to the minute); log in again.',
    }),
    sessionMaxHours: integer(1, 90 * 24, { default: 12, doc: 'A console login session ends this long after the login, however busy (the absolute timeout).' }),
  },
  node: {
    name: string({
      nullable: true,
      default: null,
      pattern: { re: new RegExp(NAME_PATTERN), means: `a node name (${NAME_RULE})` },
      doc: 'This server\'s name among the nodes sharing the database (unique); null = the host name.',
    }),
    subnets: custom('a list of subnets such as "10.1.2.0/24"', cidrList, {
      default: [],
      doc: "Subnets this node serves through relays, besides its DHCP pools' subnets and its own segment (which node serves a machine).",
    }),
    groups: custom('a list of group names', groupNames, {
      default: [],
      doc: 'Groups this node is in (FOG\'s storage groups): an image assigned to group:NAME (`fleetboot image set IMAGE --nodes group:NAME`) is pulled by every node in that group.',
    }),
    heartbeatSeconds: integer(1, 3600, { default: 10, doc: 'Seconds between heartbeats in the nodes table; a node is down after 3 missed beats.' }),
  },
  replication: {
    enabled: boolean({ default: true, doc: 'Pull the ready image revisions this node lacks from other nodes holding verified copies (src/replication/service.ts).' }),
    pullIntervalSeconds: integer(1, 86400, { default: 30, doc: 'Seconds between looks for revisions to pull (and retries of failed pulls).' }),
    verifyIntervalHours: integer(0, 8760, { default: 24, doc: 'Hours between re-hashes of every verified copy on this node (a mismatch marks it corrupt and it is pulled again); 0 = never.' }),
    allowPlainHttp: boolean({ default: false, doc: 'Pull from a node with HTTPS off over plain HTTP (its credential crosses in clear); nodes with HTTPS are always pulled from over HTTPS, their certificate pinned.' }),
    lagWarnMinutes: integer(1, 525600, { default: 60, doc: '`fleetboot doctor` warns when a node has lacked a verified copy of an assigned revision for longer than this.' }),
  },
  log: {
    level: oneOf(LOG_LEVELS, { default: 'info', doc: 'Log level.' }),
    format: oneOf(['auto', 'pretty', 'json'], { default: 'auto', doc: 'auto: human-readable lines on a terminal, JSON otherwise.' }),
  },
};

/** A check that involves more than one key: the error, or null. */
export interface CrossKeyRule {
  readonly keys: readonly string[];
  readonly check: (c: Readonly<FleetbootConfig>) => FleetbootError | null;
}

export const RULES: readonly CrossKeyRule[] = [
  {
    keys: ['imaging.progressIntervalSeconds', 'imaging.agentTimeoutSeconds'],
    check: ({ imaging: m }) =>
      m.progressIntervalSeconds * 2 > m.agentTimeoutSeconds
        ? configError('imaging.progressIntervalSeconds', `must be at most half of 'imaging.agentTimeoutSeconds' (${m.agentTimeoutSeconds})`, m.progressIntervalSeconds)
        : null,
  },
  {
    keys: ['wake.contactTimeoutSeconds', 'wake.repeats', 'wake.spacingSeconds'],
    check: ({ wake: w }) =>
      w.contactTimeoutSeconds <= (w.repeats - 1) * w.spacingSeconds
        ? configError('wake.contactTimeoutSeconds', `must be longer than a wake round ('wake.repeats' ${w.repeats} x 'wake.spacingSeconds' ${w.spacingSeconds}: ${(w.repeats - 1) * w.spacingSeconds} s)`, w.contactTimeoutSeconds)
        : null,
  },
  {
    keys: ['multicast.ports', 'tftp.dataPorts'],
    check: ({ multicast: m, tftp: t }) => {
      const mp = parseMulticastPorts(m.ports);
      const dp = t.dataPorts;
      return mp && dp && mp.from <= dp.to && dp.from <= mp.to
        ? configError('multicast.ports', `must not overlap 'tftp.dataPorts' (${dp.from}-${dp.to}): a session and a TFTP transfer would want the same port`, m.ports)
        : null;
    },
  },
  {
    keys: ['auth.sessionIdleMinutes', 'auth.sessionMaxHours'],
    check: ({ auth: a }) =>
      a.sessionIdleMinutes > a.sessionMaxHours * 60
        ? configError('auth.sessionIdleMinutes', `must be at most 'auth.sessionMaxHours' (${a.sessionMaxHours} h = ${a.sessionMaxHours * 60} min): a session never outlives its absolute timeout`, a.sessionIdleMinutes)
        : null,
  },
  {
    keys: ['https.certFile', 'https.keyFile', 'https.caFile'],
    check: ({ https: h }) => {
      if ((h.certFile === null) !== (h.keyFile === null)) {
        const [set, unset] = h.certFile !== null ? ['https.certFile', 'https.keyFile'] : ['https.keyFile', 'https.certFile'];
        return configError(unset, `must be set with '${set}' (a certificate and its key go together)`, null);
      }
      return h.caFile !== null && h.certFile === null ? configError('https.caFile', "is the CA of 'https.certFile', which is not set", h.caFile) : null;
    },
  },
  {
    keys: ['https.port', 'http.port', 'https.enabled'],
    check: ({ https: s, http: h }) =>
      s.enabled && s.port !== 0 && s.port === h.port ? configError('https.port', `must differ from 'http.port' (${h.port}): HTTP and HTTPS each need a port of their own`, s.port) : null,
  },
  {
    keys: ['dhcp.mode', 'dhcp.pools'],
    check: ({ dhcp: d }) =>
      d.mode === 'server' && d.pools.length === 0
        ? configError('dhcp.pools', `needs at least one pool when 'dhcp.mode' is 'server' (or --dhcp-range START,END)`, d.pools)
        : null,
  },
];

/** Every key of the schema, in order, as [dotted key, field]. */
export function schemaFields(node: unknown = CONFIG_SCHEMA, prefix = ''): Array<[string, Field<unknown>]> {
  const out: Array<[string, Field<unknown>]> = [];
  for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
    if (v instanceof Field) out.push([`${prefix}${k}`, v]);
    else out.push(...schemaFields(v, `${prefix}${k}.`));
  }
  return out;
}

