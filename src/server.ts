/**
 * Wiring: `startFleetboot(config)` resolves the server address, makes the
 * data directory private (0700, src/store/data-dir.ts), opens the
 * store, makes sure the API token and the TFTP root exist, then starts HTTP,
 * TFTP (if enabled) and the proxyDHCP (dhcp.mode 'proxy') or the DHCP
 * server (dhcp.mode 'server', leases in the store), in that
 * order; the API, the console and the agent endpoints over HTTPS too
 * (https.enabled), with Fleetboot's own CA or the admin's certificate
 * (src/tls/service.ts, src/http/https.ts). Imaging: orphaned image directories are removed at start and the
 * stale-task reaper runs while the server does; so do the scheduler
 * (scheduled tasks, recurring schedules) and the Wake-on-LAN service, whose
 * socket is bound to the server address. `close()` stops the reaper, the
 * scheduler and Wake-on-LAN, then HTTP and HTTPS, DHCP, TFTP, database.
 * Live events: one bus (src/events/bus.ts) made here, published on by
 * imaging, the scheduler, multicast, the boot recorder and the DHCP
 * server's leases, streamed by GET /api/v1/events.
 * Signals are the CLI's business (src/cli/serve.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, networkInterfaces } from 'node:os';
import { join, sep } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { DEBIAN_IPXE_DIR, detectServerIp, type FleetbootConfig } from './config/config.js';
import { buildApp } from './http/app.js';
import { listenHttps, type HttpsListener } from './http/https.js';
import type { EventStreamOptions } from './http/routes/api-events.js';
import { FleetbootError, errorMessage } from './lib/errors.js';
import type { Logger } from './lib/log.js';
import { createProxyDhcpService, type ProxyDhcpService } from './net/proxy-dhcp.js';
import { createDhcpServerService, type DhcpServerService } from './net/dhcp-server.js';
import { createTftpService, type TftpService } from './net/tftp-server.js';
import { interfaceOf, probeDhcpServers } from './net/dhcp-probe.js';
import { countUsers, ensureApiToken, hostReservations, leaseMacOf, octal, openLeaseStore, openStore, prepareDataDir, PRIVATE_FILE_MODE, readApiToken, tokenPath, type Store } from './store/index.js';
import type { Lease, LeaseStore, Reservation } from './dhcp/engine.js';
import { cleanupOrphans } from './imaging/image-store.js';
import { startReaper, type Reaper } from './imaging/reaper.js';
import { createImagingService } from './imaging/tasks.js';
import { createDeployEnrolment } from './endpoints/deploy-enrol.js';
import { submitTaskRequest } from './imaging/submit.js';
import { buildSubnets, maskPrefix, parseCidr, subnetOf, type Cidr } from './dhcp/subnets.js';
import { ipToInt } from './protocol/dhcp/packet.js';
import { openWakeSocket, type WakeSender } from './net/wol-socket.js';
import { createScheduler, type Scheduler } from './schedule/scheduler.js';
import { listRelays } from './store/relays.js';
import { createRelayRecorder } from './wake/relays.js';
import { createWakeService, type WakeService } from './wake/service.js';
import { wakeTargets, type WakeTarget } from './wake/targets.js';
import { createMulticastService, type MulticastService } from './multicast/service.js';
import { createBootRecorder, type BootRecorder } from './events/boot-recorder.js';
import { createActivityTracker } from './events/activity.js';
import { createEventBus, type EventBus, type Subscription } from './events/bus.js';
import { bootStepEvent, leaseEvent } from './model/events.js';
import { tftpBootEvent } from './boot/boot-events.js';
import { GRUB_FILE, GRUB_ROOT_CONFIG, rootConfig, SHIM_FILE, SIGNED_FILES } from './boot/grub.js';
import { createBootDecider } from './imaging/boot-decider.js';
import { createGrubFiles, type GrubFiles } from './imaging/grub-files.js';
import { formatIpxeManifest, IPXE_BINARIES, IPXE_MANIFEST, parseIpxeManifest, type IpxeManifest } from './lib/ipxe-files.js';
import { neighbourMac } from './net/neighbours.js';
import { createEndpointService } from './endpoints/service.js';
import { relayEvents } from './events/relay.js';
import { createClusterSignals, type ClusterSignals } from './store/cluster.js';
import { wantedNames } from './tls/names.js';
import { createTlsService, type TlsService } from './tls/service.js';
import { createFleetbootMetrics } from './metrics/fleetboot.js';
import { fleetbootVersion } from './http/version.js';
import { createNodeService, resolveNodeName, type NodeService } from './nodes/service.js';
import { createNodeDirectory, type NodeDirectory } from './nodes/directory.js';
import { createReplicationService, type ReplicationService } from './replication/service.js';

export { IPXE_BINARIES } from './lib/ipxe-files.js';

/** <dataDir>/server.json: how a local CLI finds the running server (no secrets). */
export const SERVER_FILE = 'server.json';

export interface ServerInfoFile {
  /** URL for the API from this machine. */
  url: string;
  /** Base URL given to booting machines. */
  baseUrl: string;
  pid: number;
  startedAt: string;
  httpPort: number;
  /** URL for the API over HTTPS from this machine (its certificate names it), or null: HTTPS is off. */
  httpsUrl: string | null;
  httpsPort: number | null;
  tftpPort: number | null;
}

export interface RunningFleetboot {
  readonly serverIp: string;
  /** Base URL in iPXE scripts and proxyDHCP answers. */
  readonly baseUrl: string;
  /** URL for the API from this machine (what server.json holds). */
  readonly url: string;
  readonly httpPort: number;
  /** HTTPS (the API, the console, the endpoint agents), or null: https.enabled is false. */
  readonly httpsPort: number | null;
  readonly httpsUrl: string | null;
  /** The certificates HTTPS serves: info(), renew() (swapped in live); null when HTTPS is off. */
  readonly tls: TlsService | null;
  readonly tftpPort: number | null;
  readonly dhcpPorts: { dhcp: number; pxe: number } | null;
  readonly token: string;
  /** The API token was created by this start (a new data directory): `serve` then prints the next steps. */
  readonly firstStart: boolean;
  /** Users in the store at start (none: `serve` says how to add the first admin). */
  readonly users: number;
  readonly app: FastifyInstance;
  /** The stale-task reaper (tests call sweep()). */
  readonly reaper: Reaper;
  /** Scheduled tasks and recurring schedules (tests call runOnce()). */
  readonly scheduler: Scheduler;
  /** Wake-on-LAN (tests call sweep()). */
  readonly wake: WakeService;
  /** This server as a node among those sharing the database (tests call beat()). */
  readonly node: NodeService;
  /** Image replication between nodes (tests call pullOnce() and verifyOnce()). */
  readonly replication: ReplicationService;
  close(): Promise<void>;
}

export interface StartOptions {
  logger: Logger;
  /** Where the iPXE binaries come from (default /usr/lib/ipxe). */
  ipxeDir?: string;
  /** What sends magic packets (default: a UDP socket bound to the server address). Tests record instead. */
  wakeSender?: WakeSender;
  /** GET /api/v1/events: heartbeat, streams per principal... (tests shorten the heartbeat). */
  eventStream?: EventStreamOptions;
  /** Called whenever hosts changed, here or on another server sharing the store (the DHCP reservations are reloaded then); tests watch it. */
  onHostsChanged?: (from: 'here' | 'cluster') => void;
}

/**
 * Where Wake-on-LAN packets go, read at each round: the server's own
 * segment (prefix from its interface), the server-mode pools, wake.subnets
 * and the relays heard (src/wake/targets.ts).
 */
export function wakeTargetSource(config: Readonly<FleetbootConfig>, serverIp: string, store: Store): () => Promise<WakeTarget[]> {
  const pools: Cidr[] =
    config.dhcp.mode === 'server' ? buildSubnets(config.dhcp.pools, []).map((sn) => subnetOf(sn.network, maskPrefix(sn.mask))) : [];
  const extra = config.wake.subnets.map(parseCidr);
  return async () => {
    const own = Object.values(networkInterfaces())
      .flat()
      .find((a) => a?.family === 'IPv4' && a.address === serverIp);
    const prefix = own?.cidr ? Number(own.cidr.split('/')[1]) : null;
    const relays = (await listRelays(store.db)).map((r) => r.giaddr).filter((g) => ipToInt(g) !== ipToInt(serverIp));
    return wakeTargets({ serverIp, serverPrefix: prefix, port: config.wake.port, poolSubnets: pools, extraSubnets: extra, relays, relayPrefixLength: config.wake.relayPrefixLength });
  };
}

/** `leases` with `publish` told of every write that took effect, keeping it synchronous when it is. */
export function announcedLeases(leases: LeaseStore, publish: (l: Readonly<Lease>) => void): LeaseStore {
  if (leases.sync) {
    return {
      sync: true,
      load: () => leases.load(),
      row: (ip) => leases.row(ip),
      commit(w) {
        const ok = leases.commit(w);
        if (ok) publish(w.lease);
        return ok;
      },
    };
  }
  return {
    sync: false,
    load: () => leases.load(),
    row: (ip) => leases.row(ip),
    rowsOfClient: (key) => leases.rowsOfClient(key),
    async commit(w) {
      const ok = await leases.commit(w);
      if (ok) publish(w.lease);
      return ok;
    },
  };
}

/**
 * The DHCP server's reservations: the config's (dhcp.reservations) first,
 * then the hosts' reserved addresses (host name as hostname). A host whose
 * MAC or address a config reservation already has is skipped (logged).
 */
export async function dhcpReservations(config: Readonly<FleetbootConfig>, store: Store, log: Logger): Promise<Reservation[]> {
  const list: Reservation[] = config.dhcp.reservations.map((r) => ({ mac: r.mac, ip: r.ip, hostname: r.hostname }));
  const macs = new Set(list.map((r) => r.mac));
  const ips = new Set(list.map((r) => r.ip));
  for (const h of await hostReservations(store.db)) {
    if (macs.has(h.mac) || ips.has(h.ip)) {
      log.warn({ subsystem: 'dhcp', mac: h.mac, ip: h.ip }, `host ${h.mac} reserves ${h.ip}, but dhcp.reservations in the config already has this MAC or address: the config wins`);
      continue;
    }
    list.push(h);
  }
  return list;
}

/** config.serverIp, else the IPv4 address of config.interface, else the first non-internal IPv4. */
export function resolveServerIp(config: Readonly<FleetbootConfig>): string {
  if (config.serverIp) return config.serverIp;
  const ip = detectServerIp(config.interface);
  if (ip) return ip;
  if (config.interface) {
    throw new FleetbootError('CONFIG', `Interface '${config.interface}' does not exist or has no IPv4 address: set --server-ip or another --interface`);
  }
  throw new FleetbootError('CONFIG', 'No IPv4 address found on any non-loopback interface: set --server-ip IP or --interface IFACE');
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * Create the TFTP root if missing and copy the iPXE binaries into it when
 * absent (copies, not symlinks: the TFTP server refuses symlinks leading
 * out of its root). Files already there, and any others, are left alone.
 * With `manifestFile` (<dataDir>/ipxe-manifest.json) each copy is recorded
 * there with its SHA-256, and so is a binary already there that is the same
 * as its source, so `fleetboot doctor` can tell a missing or changed one.
 */
export async function populateTftpRoot(root: string, log: Logger, ipxeDir: string = DEBIAN_IPXE_DIR, manifestFile: string | null = null): Promise<string[]> {
  await mkdir(root, { recursive: true });
  const copied: string[] = [];
  let manifest: IpxeManifest = {};
  if (manifestFile !== null) manifest = parseIpxeManifest(await readFile(manifestFile, 'utf8').catch(() => ''));
  let changed = false;
  const record = async (name: string, dest: string, src: string): Promise<void> => {
    const st = await stat(dest);
    manifest[name] = { sha256: await sha256File(dest), bytes: st.size, source: src, copiedAt: new Date().toISOString() };
    changed = true;
  };
  for (const name of IPXE_BINARIES) {
    const dest = join(root, name);
    const src = join(ipxeDir, name);
    if (await exists(dest)) {
      // Put there before manifests existed (or by hand): recorded when it is the packaged file.
      if (manifestFile !== null && manifest[name] === undefined && (await exists(src)) && (await sha256File(src)) === (await sha256File(dest))) await record(name, dest, src);
      continue;
    }
    if (!(await exists(src))) {
      log.warn({ subsystem: 'tftp', file: name, from: ipxeDir }, `iPXE binary ${src} not found (install the Debian package 'ipxe'); ${name} will be missing from the TFTP root`);
      continue;
    }
    const tmp = join(root, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      await copyFile(src, tmp);
      await rename(tmp, dest);
      copied.push(name);
    } finally {
      await rm(tmp, { force: true });
    }
    if (manifestFile !== null) await record(name, dest, src);
  }
  if (copied.length) log.info({ subsystem: 'tftp', root, copied, from: ipxeDir }, 'iPXE binaries copied into the TFTP root');
  if (manifestFile !== null && changed) {
    const tmp = `${manifestFile}.${process.pid}.tmp`;
    await writeFile(tmp, formatIpxeManifest(manifest), { mode: PRIVATE_FILE_MODE });
    await chmod(tmp, PRIVATE_FILE_MODE);
    await rename(tmp, manifestFile);
  }
  return copied;
}


/**
 * uefi.secureBoot: put Debian's signed shim and GRUB into the TFTP root
 * (replaced when the packages' files changed) and write /grub/grub.cfg.
 * Returns the loader x64 UEFI PXE firmware gets, or null (iPXE) when the
 * mode is off, or auto without the files. With 'on', missing files stop
 * the start.
 */
export async function populateSecureBoot(config: Readonly<FleetbootConfig>, log: Logger): Promise<string | null> {
  const mode = config.uefi.secureBoot;
  if (mode === 'off') return null;
  const root = config.tftp.root;
  const missing: string[] = [];
  for (const f of SIGNED_FILES) if (!(await exists(join(config.uefi.signedDir, f.from)))) missing.push(`${join(config.uefi.signedDir, f.from)} (Debian package ${f.pkg})`);
  if (missing.length > 0) {
    const why = `Debian's signed shim and GRUB are missing: ${missing.join(', ')}; run scripts/install-deps.sh (it extracts them from the packages) or set uefi.signedDir`;
    if (mode === 'on') throw new FleetbootError('CONFIG', `uefi.secureBoot is on, but ${why}`);
    log.warn({ subsystem: 'tftp', signedDir: config.uefi.signedDir }, `uefi.secureBoot auto: ${why}; x64 UEFI machines get iPXE, which Secure Boot refuses`);
    return null;
  }
  for (const f of SIGNED_FILES) {
    const src = join(config.uefi.signedDir, f.from);
    const dest = join(root, f.to);
    const want = await readFile(src);
    const have = await readFile(dest).catch(() => null);
    if (have !== null && have.equals(want)) continue;
    await writeAtomic(dest, want);
    log.info({ subsystem: 'tftp', file: f.to, from: src }, `${f.to} copied into the TFTP root (${f.pkg})`);
  }
  await mkdir(join(root, 'grub'), { recursive: true });
  await writeAtomic(join(root, GRUB_ROOT_CONFIG), Buffer.from(rootConfig()));
  log.info({ subsystem: 'tftp', mode, loader: SHIM_FILE }, `Secure Boot path: x64 UEFI PXE firmware gets ${SHIM_FILE} (Debian's signed shim), then ${GRUB_FILE} (Debian's signed GRUB), which asks this server what to boot`);
  return SHIM_FILE;
}

async function writeAtomic(dest: string, data: Buffer): Promise<void> {
  const tmp = `${dest}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data, { mode: 0o644 });
    await rename(tmp, dest);
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * The TFTP root is served to anyone on the LAN (TFTP and /tftp/ over HTTP):
 * it must not be, or contain, the data directory (API token, database).
 */
export async function checkTftpRoot(root: string, dataDir: string): Promise<void> {
  const [r, d] = await Promise.all([realpath(root), realpath(dataDir)]);
  if (d === r || d.startsWith(r.endsWith(sep) ? r : r + sep)) {
    throw new FleetbootError('CONFIG', `The TFTP root ${root} contains the data directory ${dataDir}: it would serve the API token and the database; choose another --tftp-root`);
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

function localUrl(host: string, port: number, scheme: 'http' | 'https' = 'http'): string {
  const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host === 'localhost' ? '127.0.0.1' : host;
  return `${scheme}://${h}:${port}`;
}

async function writeServerFile(dataDir: string, info: ServerInfoFile): Promise<void> {
  const final = join(dataDir, SERVER_FILE);
  const tmp = `${final}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(info, null, 2) + '\n', { mode: PRIVATE_FILE_MODE });
  await chmod(tmp, PRIVATE_FILE_MODE); // also when a crashed start left this file behind
  await rename(tmp, final);
}

async function removeServerFile(dataDir: string): Promise<void> {
  const file = join(dataDir, SERVER_FILE);
  try {
    const info = JSON.parse(await readFile(file, 'utf8')) as Partial<ServerInfoFile>;
    if (info.pid === process.pid) await rm(file, { force: true });
  } catch {
    // absent or unreadable: nothing of ours to remove
  }
}

/**
 * Before the DHCP server answers: look for other DHCP/proxyDHCP servers on
 * the segment and warn about each one. Only on the standard port and a real
 * (non-loopback) interface: tests on loopback must never broadcast.
 */
async function probeAtStart(config: Readonly<FleetbootConfig>, serverIp: string, log: Logger): Promise<void> {
  const iface = config.interface ?? interfaceOf(serverIp);
  if (config.dhcp.port !== 67 || iface === null || iface === 'lo' || serverIp.startsWith('127.')) {
    log.debug({ subsystem: 'dhcp', iface, port: config.dhcp.port }, 'DHCP probe skipped (not on port 67 of a real interface)');
    return;
  }
  try {
    const answers = await probeDhcpServers({ interface: iface, timeoutMs: config.dhcp.probeTimeoutMs });
    for (const a of answers.filter((x) => x.serverId !== serverIp)) {
      log.warn(
        { subsystem: 'dhcp', iface, server: a.serverId, from: a.from, kind: a.kind, offered: a.offered, bootFile: a.bootFile },
        `another ${a.kind === 'proxy' ? 'proxyDHCP' : 'DHCP'} server answers on ${iface}: ${a.serverId}${a.offered ? ` (offered ${a.offered})` : ''}; two servers on one segment fight over clients (dhcp.probeAtStart false skips this check)`,
      );
    }
    if (!answers.some((x) => x.serverId !== serverIp)) log.info({ subsystem: 'dhcp', iface }, 'DHCP probe: no other DHCP server answered');
  } catch (err) {
    log.warn({ subsystem: 'dhcp', iface, err: errorMessage(err) }, 'DHCP probe at start failed; starting anyway');
  }
}

export async function startFleetboot(config: Readonly<FleetbootConfig>, opts: StartOptions): Promise<RunningFleetboot> {
  const log = opts.logger;
  const serverIp = resolveServerIp(config);
  let store: Store | null = null;
  let app: FastifyInstance | null = null;
  let tls: TlsService | null = null;
  let https: HttpsListener | null = null;
  let tftp: TftpService | null = null;
  let dhcp: ProxyDhcpService | DhcpServerService | null = null;
  let wroteServerFile = false;
  let reaper: Reaper | null = null;
  let scheduler: Scheduler | null = null;
  let wake: WakeService | null = null;
  let multicast: MulticastService | null = null;
  let bootEvents: BootRecorder | null = null;
  let bus: EventBus | null = null;
  let grubFiles: GrubFiles | null = null;
  let nodeService: NodeService | null = null;
  let directory: NodeDirectory | null = null;
  let replication: ReplicationService | null = null;
  let replicationPokes: Subscription | null = null;
  let cluster: ClusterSignals | null = null;

  /** Close whatever was started, in the order HTTP, DHCP, TFTP, database. */
  const closeAll = async (): Promise<void> => {
    const a = app;
    const hs = https;
    const tl = tls;
    const d = dhcp;
    const t = tftp;
    const st = store;
    const r = reaper;
    const sch = scheduler;
    const w = wake;
    const mcs = multicast;
    const be = bootEvents;
    const ev = bus;
    const gf = grubFiles;
    const ns = nodeService;
    const nd = directory;
    const rp = replication;
    const stopReplication = rp
      ? async (): Promise<void> => {
          replicationPokes?.unsubscribe();
          await rp.close();
        }
      : null;
    const cs = cluster;
    const steps: Array<[string, (() => Promise<void>) | null]> = [
      ['replication', stopReplication],
      ['multicast', mcs ? () => mcs.close() : null],
      ['imaging', r ? async () => r.stop() : null],
      ['schedule', sch ? () => sch.close() : null],
      ['wake', w ? () => w.close() : null],
      // Together: app.close() ends the event streams, HTTPS ones too, which the HTTPS server waits for.
      ['http', a ? async () => void (await Promise.all([a.close(), hs?.close()])) : null],
      ['tls', tl ? () => tl.close() : null],
      ['events', ev ? async () => ev.close() : null],
      ['dhcp', d ? () => d.close() : null],
      ['tftp', t ? () => t.close() : null],
      ['grub files', gf ? () => gf.close() : null],
      ['boot events', be ? () => be.close() : null],
      // The others forget this node at once (their directories stop sending machines here).
      ['nodes', ns ? async () => {
        nd?.close();
        await ns.close();
        await cs?.notify('fleetboot_nodes', ns.name);
      } : null],
      ['cluster signals', cs ? () => cs.close() : null],
      ['database', st ? () => st.close() : null],
      ['server.json', wroteServerFile ? () => removeServerFile(config.dataDir) : null],
    ];
    for (const [what, step] of steps) {
      if (!step) continue;
      try {
        await step();
      } catch (err) {
        log.error({ subsystem: what, err: errorMessage(err) }, `error while closing ${what}`);
      }
    }
  };

  try {
    const dir = prepareDataDir(config.dataDir);
    if (dir.tightenedFrom !== null) {
      log.warn({ subsystem: 'store', dataDir: config.dataDir, was: octal(dir.tightenedFrom), now: '0700' }, `the data directory ${config.dataDir} was mode ${octal(dir.tightenedFrom)} (other users could look into it); it is now 0700`);
    }
    if (dir.problem !== null) {
      log.error({ subsystem: 'store', dataDir: config.dataDir }, `the data directory ${config.dataDir} is open to other users: ${dir.problem}. The database and the API token are 0600 themselves; fix the directory with chmod 0700`);
    }
    await mkdir(config.tftp.root, { recursive: true });
    await checkTftpRoot(config.tftp.root, config.dataDir);
    // The node's name first: a host name that cannot be one stops the start before anything is opened.
    const nodeName = resolveNodeName(config);
    store = await openStore(config.dataDir, { url: config.store.url, applicationName: nodeName });
    log.info({ subsystem: 'store', dialect: store.dialect, database: store.location }, `store: ${store.dialect === 'postgres' ? 'PostgreSQL' : 'SQLite'} at ${store.location}`);
    const firstStart = readApiToken(config.dataDir) === null;
    const token = ensureApiToken(config.dataDir);
    if (firstStart) log.info({ subsystem: 'store', file: tokenPath(config.dataDir) }, 'API token created (mode 0600)');
    // Before any port is bound: a key that does not match its certificate stops the start here.
    if (config.https.enabled) {
      const { certFile, keyFile, caFile } = config.https;
      tls = createTlsService({
        dataDir: config.dataDir,
        configured: certFile !== null && keyFile !== null ? { certFile, keyFile, caFile } : null,
        names: () => wantedNames({ serverIp, extra: config.https.names }),
        hostname: hostname(),
        log,
        onChange: (m) => {
          https?.setCertificate(m);
          // The other nodes pin the new certificate once it is published (src/replication/peer.ts).
          void nodeService?.beat();
        },
      });
      await tls.start();
    }
    await populateTftpRoot(config.tftp.root, log, opts.ipxeDir, join(config.dataDir, IPXE_MANIFEST));
    const secureBootLoader = config.tftp.enabled ? await populateSecureBoot(config, log) : null;
    const orphans = await cleanupOrphans(store);
    if (orphans.length) log.info({ subsystem: 'imaging', removed: orphans }, `removed ${orphans.length} orphaned image directories`);
    const st = store;
    // What this server does in memory, told to the others sharing a PostgreSQL store (src/store/cluster.ts); nothing on SQLite.
    const signals = createClusterSignals({ store, url: config.store.url, applicationName: `${nodeName} listen`, log });
    cluster = signals;
    // Listening before anything can happen that another server would tell (at most 10 s: it keeps trying after).
    await Promise.race([signals.ready(), new Promise<void>((r) => setTimeout(r, 10_000).unref())]);
    const events = createEventBus({ onSubscriberError: (err) => log.error({ subsystem: 'events', err: errorMessage(err) }, 'an event stream failed') });
    bus = events;
    relayEvents(events, signals, { node: nodeName, log });
    // Prometheus counters (GET /api/v1/metrics): every boot step and live event, gauges read from the store when scraped.
    const metrics = createFleetbootMetrics({
      store,
      version: fleetbootVersion(),
      bootEventsDropped: () => bootEvents?.dropped ?? 0,
      dhcp: () => (dhcp ? { mode: config.dhcp.mode, stats: dhcp.stats } : null),
    });
    // This server's own events (the ones relayed from other servers are counted there).
    events.subscribe((e) => {
      if (e.node === undefined) metrics.liveEvent(e);
    });
    // Steps of machines' boots, from every service below, for `host timeline|why` (src/events/boot-recorder.ts).
    const recorder = createBootRecorder({
      store,
      log,
      onStep: (e) => metrics.bootStep(e),
      resolveMac: async (ip) => (await neighbourMac(ip)) ?? (config.dhcp.mode === 'server' ? await leaseMacOf(st.db, ip) : null),
    });
    bootEvents = recorder;
    recorder.subscribe((e) => events.publish(bootStepEvent(e)));
    // When DHCP, TFTP and HTTP boot last answered a client (/api/v1/status, `fleetboot doctor`).
    const activity = createActivityTracker();
    recorder.subscribe((e) => activity.note(e));
    const endpoints = createEndpointService({ store, log, settings: config.agents, cluster: signals });
    // A task queued with `reboot` (from the API, a schedule or its start time) wakes its machine's long poll
    // (here: every server sees the event, relayed, and wakes its own).
    events.subscribe((e) => {
      if (e.kind === 'task.state' && e.state === 'queued') endpoints.notify(e.mac, { localOnly: true });
    });
    // Deploys with enrol: a token from the endpoint service, the HTTPS port bound and the CA agents pin (read when a deploy starts).
    const enrolment = createDeployEnrolment({ endpoints, serverIp, https: () => ({ port: https ? https.port : null, caPem: tls?.material().ca ?? null }) });
    const imaging = createImagingService({ store, config, log, onTaskStep: (e) => recorder.record(e), events, enrolment, nodeName });
    wake = createWakeService({
      store,
      config,
      log,
      sender: opts.wakeSender ?? (await openWakeSocket({ serverIp, log })),
      targets: wakeTargetSource(config, serverIp, store),
      failTask: (t, reason) => imaging.finish(t, 'failed', reason),
      // Agents on the machines' own segments send the packets too (routed subnets).
      relay: (macs, why) => endpoints.wakeThroughAgents(macs, { port: config.wake.port, prefixLength: config.wake.relayPrefixLength, createdBy: `wake (${why})` }),
    });
    const w = wake;
    scheduler = createScheduler({
      store,
      log,
      submit: (request, scheduleId) => submitTaskRequest(st, request, { now: new Date(), scheduleId, allocateMulticast: multicast?.allocate ?? null, events, enrolUnavailable: imaging.enrolUnavailable }),
      onTasks: () => w.poke(),
      events,
    });
    const sch = scheduler;
    const relays = createRelayRecorder({ store, log });
    // This server as a node (src/nodes/service.ts): registered once HTTP and HTTPS listen, before the services that take work.
    const node = createNodeService({
      store,
      config,
      serverIp,
      version: fleetbootVersion(),
      log,
      urls: () => ({ httpUrl: baseUrl(), httpsUrl: https ? `https://${serverIp}:${https.port}` : null }),
      // What the other nodes pin when they pull image copies over HTTPS (src/replication/peer.ts).
      tlsSha256: () => (https && tls ? tls.info().server.sha256 : null),
    });
    nodeService = node;
    // Nearest node (src/nodes/directory.ts): which live node serves a booting machine's subnet, from memory.
    const nodes = createNodeDirectory({ store, self: node.name, log, refreshSeconds: config.node.heartbeatSeconds });
    directory = nodes;
    const servingNode = (ip: string) => nodes.servingNode(ip);
    multicast = createMulticastService({ store, config, serverIp, log, events, node: node.name });
    const mc = multicast;

    // Hosts changed here or on another server: the DHCP engine's reservations are reloaded.
    const reloadReservations = (from: 'here' | 'cluster'): void => {
      opts.onHostsChanged?.(from);
      if (!store || !dhcp || !('engine' in dhcp)) return;
      const engine = dhcp.engine;
      const where = from === 'cluster' ? ' on another server' : '';
      dhcpReservations(config, store, log).then(
        (list) => {
          engine.setReservations(list);
          log.info({ subsystem: 'dhcp', reservations: engine.reservationCount() }, `DHCP reservations reloaded after a host change${where}`);
        },
        (err: unknown) => log.error({ subsystem: 'dhcp', err: errorMessage(err) }, `reloading DHCP reservations after a host change${where} failed`),
      );
    };
    const fromCluster = (what: string, fn: () => void) => (): void => {
      try {
        fn();
      } catch (err) {
        log.error({ subsystem: 'cluster', err: errorMessage(err) }, `${what} after a signal from another server failed`);
      }
    };
    const reloadFromCluster = fromCluster('reloading the DHCP reservations', () => reloadReservations('cluster'));
    const pokeFromCluster = fromCluster('poking the scheduler', () => {
      sch.poke();
      w.poke();
    });
    signals.on('fleetboot_hosts', reloadFromCluster);
    signals.on('fleetboot_schedule', pokeFromCluster);
    signals.on('fleetboot_nodes', () => void nodes.refresh());
    // A revision became ready, an image's nodes changed, or a copy was verified on another node: pull now.
    signals.on('fleetboot_images', () => replication?.poke());
    // Signals may have been missed while the connection was down: reload and look again.
    signals.onResynced(() => {
      reloadFromCluster();
      pokeFromCluster();
      void nodes.refresh();
    });

    let httpPort = config.http.port;
    const baseUrl = (): string => (config.http.publicUrl ? config.http.publicUrl.replace(/\/+$/, '') : `http://${serverIp}:${httpPort}`);
    // One decider for iPXE (HTTP) and GRUB (TFTP): one rate limit, one place for the effects.
    const bootDecider = createBootDecider({ store, config, log, imaging, events, bootEvents: recorder });
    if (secureBootLoader !== null) grubFiles = await createGrubFiles({ store, config, log, decider: bootDecider, baseUrl });
    const gfiles = grubFiles;
    app = buildApp({
      bootDecider,
      store,
      config,
      serverIp,
      logger: log,
      token,
      baseUrl,
      imaging,
      wake,
      multicast: mc,
      bootEvents: recorder,
      events,
      tls,
      // What agents pin (GET /endpoint/v1/ca): Fleetboot's CA, or https.caFile.
      caPem: () => tls?.material().ca ?? null,
      endpoints,
      metrics: () => metrics.render(),
      nodeName: node.name,
      servingNode,
      verifyImage: async (image) => {
        if (replication === null) throw new FleetbootError('CONFLICT', 'Replication has not started yet on this server: try again in a moment');
        return replication.verifyOnce({ image });
      },
      ...(opts.eventStream ? { eventStream: opts.eventStream } : {}),
      onTasksChanged: () => {
        sch.poke();
        w.poke();
        void signals.notify('fleetboot_schedule');
        void mc.reconcile().catch((err: unknown) => log.error({ subsystem: 'multicast', err: errorMessage(err) }, 'multicast reconcile failed'));
      },
      onImagesChanged: () => {
        replication?.poke();
        void signals.notify('fleetboot_images');
      },
      onHostsChanged: () => {
        reloadReservations('here');
        void signals.notify('fleetboot_hosts');
      },
      runtime: () => ({
        httpPort,
        httpsPort: https ? https.port : null,
        tftpPort: tftp ? tftp.port : null,
        dhcpPort: dhcp ? dhcp.ports.dhcp : null,
        pxePort: dhcp ? dhcp.ports.pxe : null,
        activity: activity.snapshot(),
      }),
    });
    await app.listen({ host: config.http.host, port: config.http.port });
    const addr = app.server.address();
    httpPort = typeof addr === 'object' && addr !== null ? addr.port : httpPort;
    log.info({ subsystem: 'http', address: config.http.host, port: httpPort, baseUrl: baseUrl() }, `HTTP listening; iPXE script at ${baseUrl()}/boot.ipxe`);
    if (tls) {
      const { key, cert } = tls.material();
      https = await listenHttps(app, { host: config.https.host, port: config.https.port, key, cert, log });
      log.info({ subsystem: 'https', address: config.https.host, port: https.port }, `HTTPS listening: the API, the console and the endpoint agents at ${localUrl(config.https.host, https.port, 'https')}`);
    }
    // A name another running node holds stops the start here (before this server takes any work).
    await node.start();
    await nodes.start();
    void signals.notify('fleetboot_nodes', node.name);
    // The grace period of tasks whose agents retried while the server was down counts from now.
    reaper = startReaper({ store, imaging, timeoutSeconds: config.imaging.agentTimeoutSeconds, log });
    // Scheduled tasks due while the server was down are queued now; schedules missed then fire once.
    await scheduler.start();
    await wake.start();
    await multicast.start();
    // Verified image replication from the other nodes (src/replication/service.ts).
    replication = createReplicationService({
      store,
      log,
      nodeName: node.name,
      authorization: () => node.authorization(),
      pullIntervalSeconds: config.replication.enabled ? config.replication.pullIntervalSeconds : 0,
      verifyIntervalHours: config.replication.verifyIntervalHours,
      allowPlainHttp: config.replication.allowPlainHttp,
      // The nodes that wait for a holder of this revision (or pull from the nearest) look again.
      onVerified: () => void signals.notify('fleetboot_images'),
    });
    replication.start();
    // A capture finished on any node (its state event, relayed between nodes): pull now, not at the next round.
    const rpl = replication;
    replicationPokes = events.subscribe((e) => {
      if (e.kind === 'task.state' && e.type === 'capture' && e.state === 'done') rpl.poke();
    });

    if (config.tftp.enabled) {
      tftp = createTftpService({
        root: config.tftp.root,
        bindAddress: config.tftp.bindAddress,
        port: config.tftp.port,
        dataPorts: config.tftp.dataPorts,
        timeoutMs: config.tftp.timeoutMs,
        maxRetries: config.tftp.maxRetries,
        maxBlksize: config.tftp.maxBlksize,
        maxWindowsize: config.tftp.maxWindowsize,
        busyPollMicros: config.tftp.busyPollMicros,
        logger: log,
        onTransfer: (t) => recorder.record(tftpBootEvent(t)),
        ...(gfiles ? { resolve: (name: string, ip: string) => gfiles.resolve(name, ip) } : {}),
      });
      await tftp.start();
    }
    if (config.dhcp.mode === 'proxy') {
      if (config.dhcp.probeAtStart === true) await probeAtStart(config, serverIp, log);
      dhcp = createProxyDhcpService({ config, serverIp, httpBaseUrl: baseUrl(), logger: log, secureBootLoader, servingNode, onRelay: (g) => relays.note(g), onBootEvent: (e) => recorder.record(e) });
      await dhcp.start();
    } else if (config.dhcp.mode === 'server') {
      if (config.dhcp.probeAtStart ?? true) await probeAtStart(config, serverIp, log);
      // Each lease write is committed, then announced (the service commits before it answers).
      const leaseStore = announcedLeases(openLeaseStore(store), (l) => events.publish(leaseEvent(l, Date.now())));
      const [leases, reservations] = await Promise.all([leaseStore.load(), dhcpReservations(config, store, log)]);
      // On PostgreSQL other servers may share the pools: each starts its scan for fresh addresses at its own offset.
      const nodeSalt = store.dialect === 'postgres' ? serverIp : null;
      dhcp = createDhcpServerService({ config, serverIp, httpBaseUrl: baseUrl(), logger: log, secureBootLoader, servingNode, store: leaseStore, leases, reservations, nodeSalt, onRelay: (g) => relays.note(g), onBootEvent: (e) => recorder.record(e) });
      await dhcp.start();
    }

    const url = localUrl(config.http.host, httpPort);
    const httpsPort = https ? https.port : null;
    const httpsUrl = httpsPort === null ? null : localUrl(config.https.host, httpsPort, 'https');
    const tftpPort = tftp ? tftp.port : null;
    await writeServerFile(config.dataDir, { url, baseUrl: baseUrl(), pid: process.pid, startedAt: new Date().toISOString(), httpPort, httpsUrl, httpsPort, tftpPort });
    wroteServerFile = true;
    const users = await countUsers(store.db);
    log.info({ serverIp, baseUrl: baseUrl(), httpPort, httpsPort, tftpPort, dhcp: dhcp ? dhcp.ports : 'off', dataDir: config.dataDir, users }, 'fleetboot started');
    if (users === 0) log.info({ subsystem: 'auth' }, 'no users yet: add the first admin with `fleetboot user add NAME --role admin` (the local admin token in api-token keeps working)');

    let closing: Promise<void> | null = null;
    const running: RunningFleetboot = {
      serverIp,
      baseUrl: baseUrl(),
      url,
      httpPort,
      httpsPort,
      httpsUrl,
      tls,
      tftpPort,
      dhcpPorts: dhcp ? { ...dhcp.ports } : null,
      token,
      firstStart,
      users,
      app,
      reaper,
      scheduler,
      wake,
      node,
      replication,
      close() {
        closing ??= closeAll().then(() => log.info('fleetboot stopped'));
        return closing;
      },
    };
    return running;
  } catch (err) {
    await closeAll();
    throw err;
  }
}
