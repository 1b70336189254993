/**
 * The one configuration schema. Every default lives here; the config file
 * (JSON), then command-line flags, override them. The result is validated
 * once and frozen, and passed to every service (nothing reads process.env
 * deep inside).
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { FleetbootError } from '../lib/errors.js';
import { parseOptionValue } from '../dhcp/option-values.js';
import { ipxeArgsProblem } from '../boot/ipxe.js';
import { buildSubnets, type OptionSetting, type PoolSettings } from '../dhcp/subnets.js';

export type DhcpMode = 'proxy' | 'server' | 'off';

/** A `dhcp.pools` entry: one dynamic range (server mode). In a config file only start and end are required. */
export type DhcpPoolConfig = PoolSettings;
/** A `dhcp.options` entry: `{ "code": 3, "value": "10.0.0.1" }` (types: src/dhcp/option-values.ts). */
export type DhcpOptionConfig = OptionSetting;
export interface DhcpReservationConfig {
  mac: string;
  ip: string;
  hostname: string | null;
}

/** Defaults for the optional fields of a pool. */
export const POOL_DEFAULTS: Omit<PoolSettings, 'start' | 'end'> = {
  netmask: '255.255.255.0',
  leaseSeconds: 3600,
  router: null,
  dns: [],
  domain: null,
  ntp: [],
  broadcast: null,
  mtu: null,
  exclude: [],
  options: [],
};

export interface PortRange {
  from: number;
  to: number;
}

export interface FleetbootConfig {
  /** Where the SQLite file, the API token and boot-entry files live. */
  dataDir: string;
  /** Interface whose IPv4 address is the server address (when serverIp is null). */
  interface: string | null;
  /** The address clients are told to use for TFTP and HTTP (option 54, siaddr, URLs). */
  serverIp: string | null;
  http: {
    /** Address the HTTP server binds to. */
    host: string;
    port: number;
    /** Base URL put into iPXE scripts; null means http://serverIp:port. */
    publicUrl: string | null;
  };
  dhcp: {
    mode: DhcpMode;
    /** Address the DHCP sockets bind to (0.0.0.0 receives broadcasts). */
    bindAddress: string;
    /** DHCP server port (67); changeable for tests and benchmarks. */
    port: number;
    /** PXE boot-server discovery port (4011). */
    pxePort: number;
    /** Legacy BIOS PXE menu (option 43 sub-options 6/9/10/71), as dnsmasq's pxe-service/pxe-prompt. */
    biosMenu: {
      enabled: boolean;
      prompt: string;
      /** Seconds before the default item; 0 = no prompt, 255 = wait for a key. */
      timeoutSeconds: number;
    };
    /** Server mode: dynamic ranges, one or more per subnet (several subnets through relays). */
    pools: DhcpPoolConfig[];
    /** Server mode: options for every subnet (a pool's own fields and options win). */
    options: DhcpOptionConfig[];
    /** Server mode: fixed addresses by MAC. */
    reservations: DhcpReservationConfig[];
    /**
     * At start, send a DISCOVER on the server's interface and warn about any
     * other DHCP or proxyDHCP server that answers (src/net/dhcp-probe.ts).
     * null = only in server mode.
     */
    probeAtStart: boolean | null;
    /** How long that probe listens for answers (dnsmasq pings an address for ~3 s before it offers it). */
    probeTimeoutMs: number;
  };
  tftp: {
    enabled: boolean;
    /** Files served read-only from here; holds the iPXE binaries by default. */
    root: string;
    bindAddress: string;
    port: number;
    /** Ports for the data transfers; null = any ephemeral port. WDS uses 64001-65000. */
    dataPorts: PortRange | null;
    /** Retransmission timeout when the client does not ask for one. */
    timeoutMs: number;
    /** How many times a packet is sent before the transfer is abandoned. */
    maxRetries: number;
    /** Upper bounds the server accepts in negotiation. */
    maxBlksize: number;
    maxWindowsize: number;
    /**
     * Microseconds the server keeps polling after each TFTP datagram instead of
     * sleeping (0 = off; default 50). Costs CPU while transfers run (the gaps
     * between a client's packets), nothing when idle; halves lock-step transfer
     * time on virtual machines, where waking a sleeping process is slow, and
     * spares the clients' cores the wake-ups when many transfer at once.
     */
    busyPollMicros: number;
  };
  boot: {
    /** Seconds the iPXE menu for unknown/unassigned machines waits before booting the local disk. */
    menuTimeoutSeconds: number;
    /** File names (relative to the TFTP root) per firmware family. */
    files: {
      bios: string;
      efiX64: string;
      efiIa32: string;
      efiArm64: string;
    };
  };
  imaging: {
    /** Where the boot environment's vmlinuz and initrd.img are (scripts/build-bootenv.sh); follows dataDir unless set. */
    bootEnvDir: string;
    /** At most this many tasks transfer at once (FOG's "max clients"); the others wait for a slot. */
    maxTransfers: number;
    /** A started task with no agent contact for this long fails. */
    agentTimeoutSeconds: number;
    /** Seconds between the agent's progress reports. */
    progressIntervalSeconds: number;
    /** Unknown machines: the menu (with Register / Inventory items), or a register task at once (FOG's quick registration). */
    unknownPolicy: 'menu' | 'register';
    /** Extra kernel arguments for the boot environment (printable ASCII; nothing iPXE would interpret). */
    kernelArgs: string;
    /** Largest stream (and image) a capture may upload. */
    maxImageBytes: number;
    /**
     * A task fails when its machine PXE-boots this many times without
     * finishing it (a boot environment that never reaches the agent must not
     * loop for ever, nor re-wipe a disk at every boot).
     */
    maxAttempts: number;
  };
  log: {
    level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
    /** 'pretty': one human-readable line per event; 'json': pino's JSON lines; 'auto': pretty when stdout is a terminal. */
    format: 'auto' | 'pretty' | 'json';
  };
}

/** Where the packaged iPXE binaries live on Debian (package `ipxe`). */
export const DEBIAN_IPXE_DIR = '/usr/lib/ipxe';

export function defaultConfig(cwd: string = process.cwd()): FleetbootConfig {
  const dataDir = resolve(cwd, 'data');
  return {
    dataDir,
    interface: null,
    serverIp: null,
    http: { host: '0.0.0.0', port: 8080, publicUrl: null },
    dhcp: {
      mode: 'proxy',
      bindAddress: '0.0.0.0',
      port: 67,
      pxePort: 4011,
      biosMenu: { enabled: false, prompt: 'Press F8 for the boot menu', timeoutSeconds: 3 },
      pools: [],
      options: [],
      reservations: [],
      probeAtStart: null,
      probeTimeoutMs: 4000,
    },
    tftp: {
      enabled: true,
      root: join(dataDir, 'tftp'),
      bindAddress: '0.0.0.0',
      port: 69,
      dataPorts: null,
      timeoutMs: 1000,
      maxRetries: 5,
      maxBlksize: 65464,
      maxWindowsize: 64,
      busyPollMicros: 50,
    },
    boot: {
      menuTimeoutSeconds: 10,
      files: {
        bios: 'undionly.kpxe',
        efiX64: 'snponly.efi',
        efiIa32: 'ipxe-ia32.efi',
        efiArm64: 'arm64/snponly.efi',
      },
    },
    imaging: {
      bootEnvDir: join(dataDir, 'bootenv'),
      maxTransfers: 10,
      agentTimeoutSeconds: 300,
      progressIntervalSeconds: 3,
      unknownPolicy: 'menu',
      kernelArgs: '',
      maxImageBytes: 2 ** 40,
      maxAttempts: 3,
    },
    log: { level: 'info', format: 'auto' },
  };
}

/** A deep-partial view of the config, as written in a config file or built from flags. */
export type ConfigOverrides = {
  [K in keyof FleetbootConfig]?: FleetbootConfig[K] extends object
    ? FleetbootConfig[K] extends PortRange | null
      ? FleetbootConfig[K]
      : { [L in keyof FleetbootConfig[K]]?: FleetbootConfig[K][L] extends object ? Partial<FleetbootConfig[K][L]> | null : FleetbootConfig[K][L] }
    : FleetbootConfig[K];
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Merge `over` into `base` (plain objects recursively; anything else replaces). */
function merge(base: unknown, over: unknown, path: string): unknown {
  if (over === undefined) return base;
  if (isRecord(base) && isRecord(over)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(over)) {
      if (!(k in base)) throw new FleetbootError('CONFIG', `Unknown configuration key '${path}${k}'`);
      out[k] = merge(base[k], v, `${path}${k}.`);
    }
    return out;
  }
  return over;
}

export function readConfigFile(file: string): ConfigOverrides {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new FleetbootError('CONFIG', `Cannot read config file ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new FleetbootError('CONFIG', `Config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isRecord(parsed)) throw new FleetbootError('CONFIG', `Config file ${file} must hold a JSON object`);
  return parsed as ConfigOverrides;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
export function isIPv4(s: string): boolean {
  return IPV4.test(s);
}

function checkPort(name: string, v: unknown, allowZero = false): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < (allowZero ? 0 : 1) || v > 65535) {
    throw new FleetbootError('CONFIG', `'${name}' must be a port number 1-65535: current value is ${JSON.stringify(v)}`);
  }
}
function checkInt(name: string, v: unknown, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new FleetbootError('CONFIG', `'${name}' must be an integer ${min}-${max}: current value is ${JSON.stringify(v)}`);
  }
}

/** The IPv4 address of an interface, or of the first non-internal interface. */
export function detectServerIp(iface: string | null): string | null {
  const all = networkInterfaces();
  const names = iface ? [iface] : Object.keys(all);
  for (const name of names) {
    for (const a of all[name] ?? []) {
      if (a.family === 'IPv4' && (iface !== null || !a.internal)) return a.address;
    }
  }
  return null;
}

/** Validate a merged config and freeze it. Throws FleetbootError('CONFIG') naming the bad key and value. */
export function validateConfig(c: FleetbootConfig): Readonly<FleetbootConfig> {
  if (typeof c.dataDir !== 'string' || c.dataDir === '') throw new FleetbootError('CONFIG', `'dataDir' must be a path`);
  if (c.serverIp !== null && !isIPv4(c.serverIp)) {
    throw new FleetbootError('CONFIG', `'serverIp' must be an IPv4 address: current value is ${JSON.stringify(c.serverIp)}`);
  }
  checkPort('http.port', c.http.port, true);
  if (!isIPv4(c.http.host) && c.http.host !== '::' && c.http.host !== 'localhost') {
    throw new FleetbootError('CONFIG', `'http.host' must be an IPv4 address: current value is ${JSON.stringify(c.http.host)}`);
  }
  if (c.http.publicUrl !== null && !/^https?:\/\/[^\s"'`\\]+$/.test(c.http.publicUrl)) {
    throw new FleetbootError('CONFIG', `'http.publicUrl' must be an http(s) URL: current value is ${JSON.stringify(c.http.publicUrl)}`);
  }
  if (c.dhcp.mode !== 'proxy' && c.dhcp.mode !== 'server' && c.dhcp.mode !== 'off') {
    throw new FleetbootError('CONFIG', `'dhcp.mode' must be 'proxy', 'server' or 'off': current value is ${JSON.stringify(c.dhcp.mode)}`);
  }
  validateDhcpServer(c);
  checkPort('dhcp.port', c.dhcp.port);
  checkPort('dhcp.pxePort', c.dhcp.pxePort);
  if (c.dhcp.probeAtStart !== null && typeof c.dhcp.probeAtStart !== 'boolean') {
    throw new FleetbootError('CONFIG', `'dhcp.probeAtStart' must be true, false or null (server mode only): current value is ${JSON.stringify(c.dhcp.probeAtStart)}`);
  }
  checkInt('dhcp.probeTimeoutMs', c.dhcp.probeTimeoutMs, 100, 60_000);
  checkInt('dhcp.biosMenu.timeoutSeconds', c.dhcp.biosMenu.timeoutSeconds, 0, 255);
  checkPort('tftp.port', c.tftp.port, true);
  if (c.tftp.dataPorts !== null) {
    checkPort('tftp.dataPorts.from', c.tftp.dataPorts.from);
    checkPort('tftp.dataPorts.to', c.tftp.dataPorts.to);
    if (c.tftp.dataPorts.to < c.tftp.dataPorts.from) {
      throw new FleetbootError('CONFIG', `'tftp.dataPorts' must have from <= to: current value is ${c.tftp.dataPorts.from}-${c.tftp.dataPorts.to}`);
    }
  }
  checkInt('tftp.timeoutMs', c.tftp.timeoutMs, 10, 255_000);
  checkInt('tftp.maxRetries', c.tftp.maxRetries, 1, 100);
  checkInt('tftp.maxBlksize', c.tftp.maxBlksize, 512, 65464);
  checkInt('tftp.maxWindowsize', c.tftp.maxWindowsize, 1, 65535);
  checkInt('tftp.busyPollMicros', c.tftp.busyPollMicros, 0, 1000);
  checkInt('boot.menuTimeoutSeconds', c.boot.menuTimeoutSeconds, 0, 3600);
  for (const [k, v] of Object.entries(c.boot.files)) {
    if (typeof v !== 'string' || v === '' || isAbsolute(v) || v.split('/').includes('..')) {
      throw new FleetbootError('CONFIG', `'boot.files.${k}' must be a relative path inside the TFTP root: current value is ${JSON.stringify(v)}`);
    }
  }
  validateImaging(c);
  if (c.log.format !== 'auto' && c.log.format !== 'pretty' && c.log.format !== 'json') {
    throw new FleetbootError('CONFIG', `'log.format' must be 'auto', 'pretty' or 'json': current value is ${JSON.stringify(c.log.format)}`);
  }
  return deepFreeze(c);
}

function validateImaging(c: FleetbootConfig): void {
  const m = c.imaging;
  if (typeof m.bootEnvDir !== 'string' || m.bootEnvDir === '') {
    throw new FleetbootError('CONFIG', `'imaging.bootEnvDir' must be a path: current value is ${JSON.stringify(m.bootEnvDir)}`);
  }
  checkInt('imaging.maxTransfers', m.maxTransfers, 1, 10_000);
  checkInt('imaging.agentTimeoutSeconds', m.agentTimeoutSeconds, 2, 86_400);
  checkInt('imaging.progressIntervalSeconds', m.progressIntervalSeconds, 1, 3600);
  if (m.progressIntervalSeconds * 2 > m.agentTimeoutSeconds) {
    throw new FleetbootError('CONFIG', `'imaging.progressIntervalSeconds' must be at most half of 'imaging.agentTimeoutSeconds' (${m.agentTimeoutSeconds}): current value is ${m.progressIntervalSeconds}`);
  }
  if (m.unknownPolicy !== 'menu' && m.unknownPolicy !== 'register') {
    throw new FleetbootError('CONFIG', `'imaging.unknownPolicy' must be 'menu' or 'register': current value is ${JSON.stringify(m.unknownPolicy)}`);
  }
  if (typeof m.kernelArgs !== 'string') throw new FleetbootError('CONFIG', `'imaging.kernelArgs' must be a string: current value is ${JSON.stringify(m.kernelArgs)}`);
  const p = ipxeArgsProblem(m.kernelArgs);
  if (p !== null) throw new FleetbootError('CONFIG', `'imaging.kernelArgs' ${p}: current value is ${JSON.stringify(m.kernelArgs)}`);
  if (/(^|\s)fleetboot\.(url|task|token)=/.test(m.kernelArgs)) {
    throw new FleetbootError('CONFIG', `'imaging.kernelArgs' must not set fleetboot.url, fleetboot.task or fleetboot.token (the server sets them): current value is ${JSON.stringify(m.kernelArgs)}`);
  }
  checkInt('imaging.maxImageBytes', m.maxImageBytes, 1, Number.MAX_SAFE_INTEGER);
  checkInt('imaging.maxAttempts', m.maxAttempts, 1, 100);
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** Pools (defaults filled in), options and reservations; mode 'server' needs at least one pool. */
function validateDhcpServer(c: FleetbootConfig): void {
  const d = c.dhcp;
  const bad = (key: string, what: string, v: unknown): never => {
    throw new FleetbootError('CONFIG', `'${key}' must be ${what}: current value is ${JSON.stringify(v)}`);
  };
  if (!Array.isArray(d.pools)) bad('dhcp.pools', 'a list', d.pools);
  if (!Array.isArray(d.options)) bad('dhcp.options', 'a list', d.options);
  if (!Array.isArray(d.reservations)) bad('dhcp.reservations', 'a list', d.reservations);
  d.pools = d.pools.map((raw: unknown, i) => {
    const k = `dhcp.pools[${i}]`;
    if (!isRecord(raw)) return bad(k, 'an object', raw);
    for (const key of Object.keys(raw)) if (!(key in POOL_DEFAULTS) && key !== 'start' && key !== 'end') bad(`${k}.${key}`, 'a known pool key', key);
    const p = { ...POOL_DEFAULTS, ...raw } as PoolSettings;
    for (const f of ['start', 'end', 'netmask'] as const) if (typeof p[f] !== 'string' || !isIPv4(p[f])) bad(`${k}.${f}`, 'an IPv4 address', p[f]);
    checkInt(`${k}.leaseSeconds`, p.leaseSeconds, 60, 0x7fffffff);
    if (p.router !== null && (typeof p.router !== 'string' || !isIPv4(p.router))) bad(`${k}.router`, 'an IPv4 address or null', p.router);
    if (p.broadcast !== null && (typeof p.broadcast !== 'string' || !isIPv4(p.broadcast))) bad(`${k}.broadcast`, 'an IPv4 address or null', p.broadcast);
    for (const f of ['dns', 'ntp'] as const) if (!isStringArray(p[f]) || !p[f].every(isIPv4)) bad(`${k}.${f}`, 'a list of IPv4 addresses', p[f]);
    if (p.domain !== null && (typeof p.domain !== 'string' || !/^[A-Za-z0-9.-]{1,253}$/.test(p.domain))) bad(`${k}.domain`, 'a domain name or null', p.domain);
    if (p.mtu !== null) checkInt(`${k}.mtu`, p.mtu, 68, 65535);
    if (!isStringArray(p.exclude) || !p.exclude.every((e) => e.split('-').length <= 2 && e.split('-').every((x) => isIPv4(x.trim())))) {
      bad(`${k}.exclude`, 'a list of addresses or START-END ranges', p.exclude);
    }
    checkOptions(`${k}.options`, p.options);
    return p;
  });
  checkOptions('dhcp.options', d.options);
  try {
    buildSubnets(d.pools, d.options);
  } catch (err) {
    throw new FleetbootError('CONFIG', `'dhcp.pools' is not valid: ${(err as Error).message}`);
  }
  d.reservations = d.reservations.map((raw: unknown, i) => {
    const k = `dhcp.reservations[${i}]`;
    if (!isRecord(raw)) return bad(k, 'an object', raw);
    const mac = typeof raw.mac === 'string' ? raw.mac.trim().toLowerCase().replace(/-/g, ':') : '';
    if (!MAC_RE.test(mac)) bad(`${k}.mac`, 'a MAC address (52:54:00:12:34:56)', raw.mac);
    if (typeof raw.ip !== 'string' || !isIPv4(raw.ip)) bad(`${k}.ip`, 'an IPv4 address', raw.ip);
    const hostname = raw.hostname ?? null;
    if (hostname !== null && (typeof hostname !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(hostname))) bad(`${k}.hostname`, 'a host name or null', hostname);
    return { mac, ip: raw.ip as string, hostname: hostname as string | null };
  });
  const seen = new Set<string>();
  for (const r of d.reservations) {
    if (seen.has(r.mac) || seen.has(r.ip)) bad('dhcp.reservations', 'unique by MAC and by address', `${r.mac} ${r.ip}`);
    seen.add(r.mac).add(r.ip);
  }
  if (d.mode === 'server' && d.pools.length === 0) {
    throw new FleetbootError('CONFIG', `'dhcp.mode' 'server' needs at least one pool in 'dhcp.pools' (or --dhcp-range START,END): current value is []`);
  }
}

function checkOptions(key: string, list: unknown): void {
  if (!Array.isArray(list)) throw new FleetbootError('CONFIG', `'${key}' must be a list: current value is ${JSON.stringify(list)}`);
  list.forEach((o: unknown, i) => {
    if (!isRecord(o) || typeof o.code !== 'number' || typeof o.value !== 'string') {
      throw new FleetbootError('CONFIG', `'${key}[${i}]' must be { "code": number, "value": string }: current value is ${JSON.stringify(o)}`);
    }
    try {
      parseOptionValue(o.code, o.value);
    } catch (err) {
      throw new FleetbootError('CONFIG', `'${key}[${i}]': ${(err as Error).message}`);
    }
  });
}

function deepFreeze<T>(o: T): Readonly<T> {
  if (isRecord(o) || Array.isArray(o)) {
    for (const v of Object.values(o as object)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * Build the effective configuration: defaults, then the config file, then
 * flags. A TFTP root that was not set explicitly follows the data directory.
 */
export function loadConfig(opts: { file?: string; overrides?: ConfigOverrides; cwd?: string }): Readonly<FleetbootConfig> {
  const cwd = opts.cwd ?? process.cwd();
  const fromFile = opts.file ? readConfigFile(opts.file) : {};
  const layers: ConfigOverrides[] = [fromFile, opts.overrides ?? {}];
  let merged = defaultConfig(cwd) as unknown;
  let tftpRootSet = false;
  let bootEnvDirSet = false;
  for (const layer of layers) {
    if (layer.tftp?.root !== undefined) tftpRootSet = true;
    if (layer.imaging?.bootEnvDir !== undefined) bootEnvDirSet = true;
    merged = merge(merged, layer, '');
  }
  const c = merged as FleetbootConfig;
  c.dataDir = resolve(cwd, c.dataDir);
  c.tftp.root = tftpRootSet ? resolve(cwd, c.tftp.root) : join(c.dataDir, 'tftp');
  c.imaging.bootEnvDir = bootEnvDirSet ? resolve(cwd, c.imaging.bootEnvDir) : join(c.dataDir, 'bootenv');
  return validateConfig(c);
}

/** The base URL clients use for HTTP. */
export function httpBaseUrl(c: Readonly<FleetbootConfig>, serverIp: string): string {
  if (c.http.publicUrl) return c.http.publicUrl.replace(/\/+$/, '');
  return `http://${serverIp}:${c.http.port}`;
}
