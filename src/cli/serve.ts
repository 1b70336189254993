/**
 * `fleetboot serve`: flags -> config overrides -> loadConfig -> startFleetboot,
 * then the start summary on stderr (src/cli/summary.ts);
 * SIGINT/SIGTERM close the services in order (a second signal exits at once).
 */
import type { Command } from 'commander';
import { loadConfig, POOL_DEFAULTS, type ConfigOverrides, type FleetbootConfig } from '../config/config.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fleetbootPackageDir, fleetbootVersion } from '../http/version.js';
import type { GlobalOptions } from './globals.js';
import { UsageError } from './globals.js';
import { DATABASE_URL_ENV } from '../model/database-url.js';

export interface ServeFlags {
  config?: string;
  interface?: string;
  serverIp?: string;
  httpHost?: string;
  httpPort?: string;
  publicUrl?: string;
  httpsHost?: string;
  httpsPort?: string;
  https: boolean;
  dhcp?: string;
  dhcpRange?: string[];
  dhcpOption?: string[];
  dhcpPort?: string;
  pxePort?: string;
  tftp: boolean;
  tftpRoot?: string;
  tftpPort?: string;
  menuTimeout?: string;
  secureBoot?: string;
  logLevel?: string;
  logFormat?: string;
  nodeName?: string;
  database?: string;
}

/** Flags only `serve` takes (not `ports` and `firewall`). */
export interface ServeOnlyFlags extends ServeFlags {
  allowRoot?: boolean;
}

/** The environment variable that lets `serve` run as root, like --allow-root. */
export const ALLOW_ROOT_ENV = 'FLEETBOOT_ALLOW_ROOT';

/**
 * Why `serve` will not start as this user, or null. Root (uid 0) is refused
 * unless --allow-root or FLEETBOOT_ALLOW_ROOT=1: the server answers every
 * machine on the LAN and needs only to bind ports below 1024
 * (CAP_NET_BIND_SERVICE), which the systemd unit grants its own user.
 */
export function rootRefusal(uid: number | null, allowRoot: boolean, env: Readonly<Record<string, string | undefined>>): string | null {
  if (uid !== 0 || allowRoot) return null;
  const v = env[ALLOW_ROOT_ENV];
  if (v === '1') return null;
  const seen = v === undefined ? '' : ` (${ALLOW_ROOT_ENV} is ${JSON.stringify(v)}; only "1" allows root)`;
  return (
    `refusing to run the server as root (uid 0)${seen}: it answers every machine on the network and needs only to bind ports below 1024. ` +
    `Run it as the unprivileged 'fleetboot' user with CAP_NET_BIND_SERVICE (bash scripts/install-service.sh installs the systemd unit: README "Run as a service"), ` +
    `or pass --allow-root (or set ${ALLOW_ROOT_ENV}=1) to run it as root anyway`
  );
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const FORMATS = ['auto', 'pretty', 'json'] as const;

function int(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`${flag} must be a whole number: current value is ${JSON.stringify(v)}`);
  return Number(v);
}

/** Command-line flags as a config layer (only what was given). */
export function serveOverrides(globals: GlobalOptions, f: ServeFlags, env: NodeJS.ProcessEnv = process.env): ConfigOverrides {
  if (f.dhcp !== undefined && f.dhcp !== 'proxy' && f.dhcp !== 'server' && f.dhcp !== 'off') {
    throw new UsageError(`--dhcp must be 'proxy', 'server' or 'off': current value is ${JSON.stringify(f.dhcp)}`);
  }
  if (f.logLevel !== undefined && !(LEVELS as readonly string[]).includes(f.logLevel)) {
    throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}: current value is ${JSON.stringify(f.logLevel)}`);
  }
  if (f.logFormat !== undefined && !(FORMATS as readonly string[]).includes(f.logFormat)) {
    throw new UsageError(`--log-format must be one of ${FORMATS.join(', ')}: current value is ${JSON.stringify(f.logFormat)}`);
  }
  const http: Partial<FleetbootConfig['http']> = {};
  const https: Partial<FleetbootConfig['https']> = {};
  const dhcp: Partial<FleetbootConfig['dhcp']> = {};
  const tftp: Partial<FleetbootConfig['tftp']> = {};
  const o: ConfigOverrides = {};
  if (globals.dataDir !== null) o.dataDir = globals.dataDir;
  if (f.interface !== undefined) o.interface = f.interface;
  if (f.serverIp !== undefined) o.serverIp = f.serverIp;
  if (f.httpHost !== undefined) http.host = f.httpHost;
  const httpPort = int('--http-port', f.httpPort);
  if (httpPort !== undefined) http.port = httpPort;
  if (f.publicUrl !== undefined) http.publicUrl = f.publicUrl;
  if (f.httpsHost !== undefined) https.host = f.httpsHost;
  const httpsPort = int('--https-port', f.httpsPort);
  if (httpsPort !== undefined) https.port = httpsPort;
  if (!f.https) https.enabled = false;
  if (f.dhcp !== undefined) dhcp.mode = f.dhcp as FleetbootConfig['dhcp']['mode'];
  if (f.dhcpRange?.length) dhcp.pools = f.dhcpRange.map(parseDhcpRange);
  if (f.dhcpOption?.length) dhcp.options = f.dhcpOption.map(parseDhcpOptionFlag);
  const dhcpPort = int('--dhcp-port', f.dhcpPort);
  if (dhcpPort !== undefined) dhcp.port = dhcpPort;
  const pxePort = int('--pxe-port', f.pxePort);
  if (pxePort !== undefined) dhcp.pxePort = pxePort;
  if (!f.tftp) tftp.enabled = false;
  if (f.tftpRoot !== undefined) tftp.root = f.tftpRoot;
  const tftpPort = int('--tftp-port', f.tftpPort);
  if (tftpPort !== undefined) tftp.port = tftpPort;
  if (Object.keys(http).length) o.http = http;
  if (Object.keys(https).length) o.https = https;
  if (Object.keys(dhcp).length) o.dhcp = dhcp;
  if (Object.keys(tftp).length) o.tftp = tftp;
  if (f.secureBoot !== undefined) {
    if (f.secureBoot !== 'auto' && f.secureBoot !== 'on' && f.secureBoot !== 'off') throw new UsageError(`--secure-boot must be 'auto', 'on' or 'off': current value is ${JSON.stringify(f.secureBoot)}`);
    o.uefi = { secureBoot: f.secureBoot };
  }
  const menu = int('--menu-timeout', f.menuTimeout);
  if (menu !== undefined) o.boot = { menuTimeoutSeconds: menu };
  const log: Partial<FleetbootConfig['log']> = {};
  if (f.logLevel !== undefined) log.level = f.logLevel as FleetbootConfig['log']['level'];
  if (f.logFormat !== undefined) log.format = f.logFormat as FleetbootConfig['log']['format'];
  if (Object.keys(log).length) o.log = log;
  if (f.nodeName !== undefined) o.node = { name: f.nodeName };
  // The URL may hold a password: the environment keeps it off the process list.
  const url = f.database ?? env[DATABASE_URL_ENV];
  if (url !== undefined && url !== '') o.store = { url };
  return o;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `--dhcp-range START,END[,NETMASK[,LEASE_SECONDS]]` (dnsmasq's dhcp-range spirit). */
export function parseDhcpRange(v: string): FleetbootConfig['dhcp']['pools'][number] {
  const [start, end, netmask, lease, ...rest] = v.split(',').map((x) => x.trim());
  const ip = /^\d{1,3}(\.\d{1,3}){3}$/;
  if (!start || !end || rest.length || !ip.test(start) || !ip.test(end) || (netmask !== undefined && !ip.test(netmask))) {
    throw new UsageError(`--dhcp-range must be START,END[,NETMASK[,LEASE_SECONDS]]: current value is ${JSON.stringify(v)}`);
  }
  const leaseSeconds = lease === undefined ? POOL_DEFAULTS.leaseSeconds : int('--dhcp-range LEASE_SECONDS', lease);
  return { ...POOL_DEFAULTS, start, end, netmask: netmask ?? POOL_DEFAULTS.netmask, leaseSeconds: leaseSeconds ?? POOL_DEFAULTS.leaseSeconds };
}

/** `--dhcp-option CODE,VALUE`, e.g. `3,10.0.0.1` or `6,10.0.0.2,10.0.0.3` (the value is checked with the config). */
export function parseDhcpOptionFlag(v: string): { code: number; value: string } {
  const comma = v.indexOf(',');
  const code = comma > 0 ? v.slice(0, comma).trim() : '';
  if (!/^\d{1,3}$/.test(code)) throw new UsageError(`--dhcp-option must be CODE,VALUE (e.g. 3,10.0.0.1): current value is ${JSON.stringify(v)}`);
  return { code: Number(code), value: v.slice(comma + 1) };
}

/** The options `serve` takes; `ports` and `firewall` take them too, so they describe the same configuration. */
export function addServeOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'JSON config file (flags override it)')
    .option('--interface <iface>', 'use the IPv4 address of this interface as the server address')
    .option('--server-ip <ip>', 'the address clients are told to use (default: from --interface, else the first non-loopback IPv4)')
    .option('--http-host <addr>', 'address the HTTP server binds to (default 0.0.0.0)')
    .option('--http-port <n>', 'HTTP port (default 8080; 0 = any free port)')
    .option('--public-url <url>', 'base URL put into iPXE scripts (default http://SERVER-IP:HTTP-PORT)')
    .option('--https-host <addr>', 'address the HTTPS server (API, console, endpoint agents) binds to (default 0.0.0.0)')
    .option('--https-port <n>', 'HTTPS port (default 8443; 0 = any free port)')
    .option('--no-https', 'serve the API and the console over HTTP only (no HTTPS, no certificates)')
    .option('--dhcp <mode>', "'proxy' (default), 'server' (Fleetboot hands out addresses) or 'off'")
    .option('--dhcp-range <range>', 'server mode: START,END[,NETMASK[,LEASE_SECONDS]] (repeat: one per subnet)', collect)
    .option('--dhcp-option <opt>', 'server mode: CODE,VALUE, e.g. 3,10.0.0.1 (router) or 6,10.0.0.2,10.0.0.3 (DNS); repeatable', collect)
    .option('--dhcp-port <n>', 'proxyDHCP port (default 67)')
    .option('--pxe-port <n>', 'PXE boot-server port (default 4011)')
    .option('--tftp-root <dir>', 'TFTP root (default <data-dir>/tftp); holds the iPXE binaries, other files there are served too')
    .option('--tftp-port <n>', 'TFTP port (default 69; 0 = any free port)')
    .option('--no-tftp', 'do not run the TFTP server')
    .option('--secure-boot <mode>', "x64 UEFI PXE firmware: 'on' (Debian's signed shim and GRUB, required), 'auto' (them when installed) or 'off' (iPXE, the default)")
    .option('--menu-timeout <seconds>', 'menu timeout for unknown/unassigned machines (default 10; 0 = boot the local disk at once)')
    .option('--node-name <name>', "this server's name among the servers sharing the database (default: the host name)")
    .option('--log-level <level>', `log level: ${LEVELS.join(', ')} (default info)`)
    .option('--database <url>', `keep the state in this PostgreSQL database (postgres://USER@HOST/DB) instead of SQLite in the data directory, shared with other Fleetboot servers; also ${DATABASE_URL_ENV} (better for a URL with a password)`)
    .option('--log-format <format>', "'pretty' (one line per event), 'json' (JSON lines) or 'auto' (default: pretty on a terminal, else JSON)");
}

/** Whether the web console is built (what `fleetboot serve` serves under /ui). */
function consoleBuilt(): boolean {
  const dir = fleetbootPackageDir();
  return dir !== null && existsSync(join(dir, 'web', 'dist', 'index.html'));
}

export function registerServe(program: Command, globals: GlobalOptions): void {
  addServeOptions(program.command('serve').description('run the server: proxyDHCP (67/4011), TFTP (69), HTTP (8080) and HTTPS (8443) by default'))
    .option('--allow-root', `run even as root (uid 0), which serve refuses otherwise; also ${ALLOW_ROOT_ENV}=1`)
    .action(async (flags: ServeOnlyFlags) => {
      const overrides = serveOverrides(globals, flags);
      const config = loadConfig({ ...(flags.config ? { file: flags.config } : {}), overrides });
      // After the flags and the config were checked (their errors come first), before anything is opened.
      const refusal = rootRefusal(process.getuid?.() ?? null, flags.allowRoot === true, process.env);
      if (refusal !== null) throw new UsageError(refusal);
      // Loaded here, so the other commands start without the server's modules.
      const [{ createLogger }, { startFleetboot }, { bootEnvStatus }, { formatStartSummary, cliCommand }] = await Promise.all([
        import('../lib/log.js'),
        import('../server.js'),
        import('./bootenv.js'),
        import('./summary.js'),
      ]);
      const logger = createLogger(config.log.level, undefined, { format: config.log.format, colors: process.env.NO_COLOR === undefined });
      const server = await startFleetboot(config, { logger });
      const bootEnv = await bootEnvStatus(config.imaging.bootEnvDir);
      const tls = server.tls === null ? null : { caFile: server.tls.material().files.ca, caSha256: server.tls.info().ca?.sha256 ?? null, certFile: server.tls.material().files.cert };
      process.stderr.write(
        formatStartSummary({ version: fleetbootVersion(), config, running: server, tls, bootEnvReady: bootEnv.ready, consoleBuilt: consoleBuilt(), cli: cliCommand(process.env.PATH), cwd: process.cwd() }),
      );
      let stopping = false;
      const stop = (signal: NodeJS.Signals): void => {
        if (stopping) {
          logger.warn({ signal }, 'second signal: exiting now');
          process.exit(1);
        }
        stopping = true;
        logger.info({ signal }, 'stopping');
        server.close().then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ err }, 'error while stopping');
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
}
