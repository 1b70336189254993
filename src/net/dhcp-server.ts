/**
 * The DHCP address server (dhcp.mode 'server'): the same socket scheme as
 * the proxy (src/net/dhcp-sockets.ts; read its header on broadcast replies):
 * a wildcard socket on 67, a socket bound to serverIp:67 that sends the
 * broadcast replies (and receives relayed unicasts), and 4011 for PXE boot
 * server discovery, answered by the proxy decision (a PXE ROM that saw
 * option 60 "PXEClient" may still ask there).
 *
 * On 67: decode -> LeaseEngine.handle (src/dhcp/engine.ts; leases are
 * committed to the store inside it, synchronously, before we send) ->
 * encode -> send. Malformed packets are counted and dropped. Expired leases
 * are reclaimed every `reclaimIntervalMs`.
 *
 * This module does not touch the database: it gets the loaded leases and a
 * synchronous LeaseStore from the wiring (src/server.ts).
 */
import type { RemoteInfo, Socket } from 'node:dgram';
import type { FleetbootConfig } from '../config/config.js';
import { FleetbootError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Service } from '../lib/service.js';
import { dhcpReplier, openDhcpSockets, type DhcpSockets, type DhcpStats } from './dhcp-sockets.js';
import { hardwareAddress, type DhcpPacket } from '../protocol/dhcp/packet.js';
import { bootfileName, messageTypeIfValid, messageTypeName } from '../protocol/dhcp/options.js';
import { dhcpBootEvent } from '../boot/boot-events.js';
import type { NewBootEvent } from '../model/boot-event.js';
import { decideProxyAnswer, type ProxyContext } from '../boot/proxy-answer.js';
import { LeaseEngine, type Lease, type LeaseStore, type Reservation } from '../dhcp/engine.js';

export interface DhcpServerServiceOptions {
  config: Readonly<FleetbootConfig>;
  serverIp: string;
  httpBaseUrl: string;
  logger: Logger;
  store: LeaseStore;
  leases: readonly Lease[];
  /**
   * Reservations in force at start (default: config.dhcp.reservations). The
   * wiring passes the config's plus the hosts' (src/server.ts) and replaces
   * them at run time with `engine.setReservations`.
   */
  reservations?: readonly Reservation[];
  /** Bind these ports instead of config.dhcp.port / pxePort (0 = any free port). For tests. */
  ports?: { dhcp?: number; pxe?: number };
  /** Where broadcast replies go instead of 255.255.255.255:68. Tests on loopback MUST set this. */
  broadcastTo?: { address: string; port: number };
  /** Port of relay agents (giaddr); default 67. For tests. */
  relayPort?: number;
  /** Port clients listen on for unicast replies; default 68. For tests. */
  clientPort?: number;
  reclaimIntervalMs?: number;
  now?: () => number;
  signal?: AbortSignal;
  /** Hears the giaddr of every relayed request (the wiring records relays for Wake-on-LAN). */
  onRelay?: (giaddr: string) => void;
  /** Hears every answer to a network-booting client, as a step of its boot (src/events/boot-recorder.ts). */
  onBootEvent?: (e: NewBootEvent) => void;
  /** x64 UEFI PXE firmware gets this file instead of iPXE (uefi.secureBoot: Debian's signed shim; the wiring decides). */
  secureBootLoader?: string | null;
}

export type DhcpServerStats = DhcpStats;

export interface DhcpServerService extends Service {
  readonly ports: { dhcp: number; pxe: number };
  readonly stats: Readonly<DhcpServerStats>;
  readonly engine: LeaseEngine;
}

export function createDhcpServerService(opts: DhcpServerServiceOptions): DhcpServerService {
  const { config, serverIp, httpBaseUrl } = opts;
  const log = opts.logger.child({ subsystem: 'dhcp' });
  const boot: ProxyContext = { serverIp, httpBaseUrl, bootFiles: config.boot.files, biosMenu: config.dhcp.biosMenu, secureBootLoader: opts.secureBootLoader ?? null };
  const engine = new LeaseEngine({
    serverIp,
    pools: config.dhcp.pools,
    options: config.dhcp.options,
    reservations: opts.reservations ?? config.dhcp.reservations,
    boot,
    store: opts.store,
    leases: opts.leases,
    ...(opts.now ? { now: opts.now } : {}),
  });
  const relayPort = opts.relayPort ?? 67;
  const clientPort = opts.clientPort ?? 68;
  const stats: DhcpServerStats = { received: 0, replied: 0, ignored: 0, malformed: 0, sendErrors: 0 };
  const ports = { dhcp: 0, pxe: 0 };
  let sockets: DhcpSockets | null = null;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  const debug = () => log.isLevelEnabled('debug');

  const io = dhcpReplier({ sockets: () => sockets, routing: { broadcastTo: opts.broadcastTo, relayPort, clientPort }, stats, log, onRelay: opts.onRelay });

  function onMessage(sock: Socket, which: 'dhcp' | 'pxe', msg: Buffer, rinfo: RemoteInfo): void {
    stats.received++;
    let req: DhcpPacket | undefined;
    try {
      req = io.decode(msg, rinfo) ?? undefined;
      if (!req) return;
      if (which === 'pxe') {
        const d = decideProxyAnswer(req, { port: 'pxe', address: rinfo.address, sourcePort: rinfo.port }, boot);
        if ('ignore' in d) {
          stats.ignored++;
          if (debug()) log.debug({ mac: hardwareAddress(req), xid: req.xid, port: which, reason: d.ignore }, 'ignored');
          return;
        }
        const to = io.send(sock, req, d.reply, d.to);
        log.info({ mac: hardwareAddress(req), xid: req.xid, step: 'REQUEST -> ACK', port: which, to, file: d.file, reason: d.reason }, 'dhcp boot server ACK');
        opts.onBootEvent?.(dhcpBootEvent({ mode: 'server', mac: hardwareAddress(req), ciaddr: req.ciaddr, step: 'REQUEST -> ACK', port: which, file: d.file, reason: d.reason, firmware: d.firmware, offeredIp: null }));
        return;
      }
      const d = engine.handle(req, { address: rinfo.address, port: rinfo.port });
      if ('ignore' in d) {
        stats.ignored++;
        // DECLINE and RELEASE are answered by nothing; they are worth an info line.
        const mt = messageTypeIfValid(req);
        const level = mt === 4 || mt === 7 ? 'info' : 'debug';
        if (level === 'info' || debug()) log[level]({ mac: hardwareAddress(req), xid: req.xid, msg: messageTypeName(mt), reason: d.ignore }, `dhcp ${messageTypeName(mt)}: no reply`);
        return;
      }
      const to = io.send(sock, req, d.reply, d.to);
      log.info({ mac: hardwareAddress(req), xid: req.xid, step: d.step, ip: d.ip, giaddr: req.giaddr, to, reason: d.reason }, `dhcp ${d.step}`);
      // Only network-booting clients make boot steps (a laptop's lease is not one).
      if (d.firmware?.clientClass) {
        opts.onBootEvent?.(dhcpBootEvent({ mode: 'server', mac: hardwareAddress(req), ciaddr: req.ciaddr, step: d.step, port: which, file: bootfileName(d.reply) ?? null, reason: d.reason, firmware: d.firmware, offeredIp: d.ip }));
      }
    } catch (err) {
      io.failed(err, rinfo, req);
    }
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    if (timer) clearInterval(timer);
    timer = null;
    const open = sockets;
    sockets = null;
    await open?.close();
    log.info({ ...stats }, 'DHCP server stopped');
  }

  return {
    name: 'dhcp-server',
    ports,
    stats,
    engine,
    async start() {
      if (closed) throw new FleetbootError('IO', 'DHCP server was closed; create a new one');
      sockets = await openDhcpSockets({
        bindAddress: config.dhcp.bindAddress,
        dhcpPort: opts.ports?.dhcp ?? config.dhcp.port,
        pxePort: opts.ports?.pxe ?? config.dhcp.pxePort,
        serverIp,
        broadcastReplies: !opts.broadcastTo,
        log,
        onMessage,
      });
      Object.assign(ports, sockets.ports);
      const reclaimMs = opts.reclaimIntervalMs ?? 60_000;
      timer = setInterval(() => {
        try {
          const n = engine.reclaim();
          if (n) log.info({ reclaimed: n }, 'expired DHCP leases reclaimed');
        } catch (err) {
          log.error({ err: errorMessage(err) }, 'reclaiming expired leases failed');
        }
      }, reclaimMs);
      timer.unref();
      opts.signal?.addEventListener('abort', () => void close(), { once: true });
      log.info(
        { bind: config.dhcp.bindAddress, ports: { ...ports }, serverIp, subnets: engine.subnetLabels(), leases: opts.leases.length, reservations: engine.reservationCount() },
        `DHCP server listening on ${config.dhcp.bindAddress}:${ports.dhcp} and :${ports.pxe}`,
      );
    },
    close,
  };
}
