/**
 * The DHCP address server (dhcp.mode 'server'): the same socket scheme as
 * the proxy (src/net/dhcp-sockets.ts; read its header on broadcast replies):
 * a wildcard socket on 67, a socket bound to serverIp:67 that sends the
 * broadcast replies (and receives relayed unicasts), and 4011 for PXE boot
 * server discovery, answered by the proxy decision (a PXE ROM that saw
 * option 60 "PXEClient" may still ask there).
 *
 * On 67: decode -> LeaseEngine.handle (src/dhcp/engine.ts) -> commit its
 * lease writes (src/dhcp/commit.ts: a claim lost to another server sharing
 * the store refreshes the engine and handles the message again, at most
 * 3 times) -> encode -> send. Malformed packets are counted and dropped.
 * Expired leases are reclaimed every `reclaimIntervalMs`.
 *
 * With a synchronous store (SQLite) a message is handled start to end in
 * one call: nothing is awaited, so two messages never interleave. With an
 * asynchronous one (PostgreSQL) messages and reclaims go through one
 * queue, one at a time, so no message is decided while another one's
 * writes are in flight; at most MAX_QUEUED wait (more are dropped and
 * counted as `overloaded`: the clients retry).
 *
 * This module does not touch the database: it gets the loaded leases and a
 * LeaseStore from the wiring (src/server.ts).
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
import { clientSubnetAddress, decideProxyAnswer, withBootServer, type Arrival, type ProxyContext } from '../boot/proxy-answer.js';
import type { ServingNodeLookup } from '../model/node.js';
import { LeaseEngine, type EngineDecision, type Lease, type LeaseStore, type Reservation } from '../dhcp/engine.js';
import { handleAsync, handleSync, newClaimStats, reclaimAsync, reclaimSync, type ClaimStats } from '../dhcp/commit.js';

/** Messages waiting for the asynchronous store, at most. */
export const MAX_QUEUED = 256;

export interface DhcpServerServiceOptions {
  config: Readonly<FleetbootConfig>;
  serverIp: string;
  httpBaseUrl: string;
  logger: Logger;
  store: LeaseStore;
  leases: readonly Lease[];
  /**
   * Set when other servers share the store and the pools: something unique
   * to this server (its address). Each server's scan for never-used
   * addresses starts at its own offset in each range (LeaseEngine nodeSalt).
   */
  nodeSalt?: string | null;
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
  /**
   * Nearest node (issue 15): the node serving a client's subnet
   * (src/nodes/directory.ts, synchronous; the engine asks with giaddr, else
   * the address it gives, else ciaddr); its boot answer then points at it.
   */
  servingNode?: ServingNodeLookup;
}

export interface DhcpServerStats extends DhcpStats, ClaimStats {
  /** Messages dropped because MAX_QUEUED were already waiting for the store. */
  overloaded: number;
}

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
    servingNode: opts.servingNode ?? null,
    leases: opts.leases,
    nodeSalt: opts.nodeSalt ?? null,
    ...(opts.now ? { now: opts.now } : {}),
  });
  const store = opts.store;
  const relayPort = opts.relayPort ?? 67;
  const clientPort = opts.clientPort ?? 68;
  const stats: DhcpServerStats = { received: 0, replied: 0, ignored: 0, malformed: 0, sendErrors: 0, overloaded: 0, ...newClaimStats() };
  const ports = { dhcp: 0, pxe: 0 };
  let sockets: DhcpSockets | null = null;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  /** The asynchronous store's queue: its tail, and how many wait in it. */
  let queue: Promise<void> = Promise.resolve();
  let queued = 0;
  const debug = () => log.isLevelEnabled('debug');

  const io = dhcpReplier({ sockets: () => sockets, routing: { broadcastTo: opts.broadcastTo, relayPort, clientPort }, stats, log, onRelay: opts.onRelay });

  function onMessage(sock: Socket, which: 'dhcp' | 'pxe', msg: Buffer, rinfo: RemoteInfo): void {
    stats.received++;
    let req: DhcpPacket | undefined;
    try {
      req = io.decode(msg, rinfo) ?? undefined;
      if (!req) return;
      if (which === 'pxe') {
        const arrival: Arrival = { port: 'pxe', address: rinfo.address, sourcePort: rinfo.port };
        const where = opts.servingNode ? clientSubnetAddress(req, arrival) : null;
        const node = where !== null && opts.servingNode ? opts.servingNode(where) : null;
        const d = decideProxyAnswer(req, arrival, withBootServer(boot, node));
        if ('ignore' in d) {
          stats.ignored++;
          if (debug()) log.debug({ mac: hardwareAddress(req), xid: req.xid, port: which, reason: d.ignore }, 'ignored');
          return;
        }
        const to = io.send(sock, req, d.reply, d.to);
        log.info({ mac: hardwareAddress(req), xid: req.xid, step: 'REQUEST -> ACK', port: which, to, file: d.file, reason: d.reason, ...(node ? { node: node.name } : {}) }, 'dhcp boot server ACK');
        opts.onBootEvent?.(dhcpBootEvent({ mode: 'server', mac: hardwareAddress(req), ciaddr: req.ciaddr, step: 'REQUEST -> ACK', port: which, file: d.file, reason: d.reason, firmware: d.firmware, offeredIp: null, node: node?.name ?? null }));
        return;
      }
      if (store.sync) {
        finish(sock, which, req, handleSync(engine, store, req, { address: rinfo.address, port: rinfo.port }, stats));
        return;
      }
      if (queued >= MAX_QUEUED) {
        stats.ignored++;
        stats.overloaded++;
        if (debug()) log.debug({ mac: hardwareAddress(req), xid: req.xid, queued }, 'dropped: too many messages wait for the lease store');
        return;
      }
      const r = req;
      enqueue(async () => {
        try {
          const d = await handleAsync(engine, store, r, { address: rinfo.address, port: rinfo.port }, stats);
          // Committed; the reply is only sent while the sockets are open.
          if (!closed) finish(sock, which, r, d);
        } catch (err) {
          io.failed(err, rinfo, r);
        }
      });
    } catch (err) {
      io.failed(err, rinfo, req);
    }
  }

  /** Run `job` after every job queued before it (the asynchronous store only). */
  function enqueue(job: () => Promise<void>): void {
    queued++;
    queue = queue.then(() => {
      queued--;
      return job();
    });
  }

  /** Send (or log why not) the engine's decision, its writes committed. */
  function finish(sock: Socket, which: 'dhcp' | 'pxe', req: DhcpPacket, d: EngineDecision): void {
    if ('ignore' in d) {
      stats.ignored++;
      // DECLINE and RELEASE are answered by nothing; they are worth an info line.
      const mt = messageTypeIfValid(req);
      const level = d.contended ? 'warn' : mt === 4 || mt === 7 ? 'info' : 'debug';
      if (level !== 'debug' || debug()) log[level]({ mac: hardwareAddress(req), xid: req.xid, msg: messageTypeName(mt), reason: d.ignore }, `dhcp ${messageTypeName(mt)}: no reply`);
      return;
    }
    const to = io.send(sock, req, d.reply, d.to);
    log.info({ mac: hardwareAddress(req), xid: req.xid, step: d.step, ip: d.ip, giaddr: req.giaddr, to, reason: d.reason, ...(d.bootNode ? { node: d.bootNode.name } : {}) }, `dhcp ${d.step}`);
    // Only network-booting clients make boot steps (a laptop's lease is not one).
    if (d.firmware?.clientClass) {
      opts.onBootEvent?.(dhcpBootEvent({ mode: 'server', mac: hardwareAddress(req), ciaddr: req.ciaddr, step: d.step, port: which, file: bootfileName(d.reply) ?? null, reason: d.reason, firmware: d.firmware, offeredIp: d.ip, node: d.bootNode?.name ?? null }));
    }
  }

  function reclaim(): void {
    const done = (n: number): void => {
      if (n) log.info({ reclaimed: n }, 'expired DHCP leases reclaimed');
    };
    const failed = (err: unknown): void => log.error({ err: errorMessage(err) }, 'reclaiming expired leases failed');
    if (store.sync) {
      try {
        done(reclaimSync(engine, store, stats));
      } catch (err) {
        failed(err);
      }
      return;
    }
    enqueue(() => reclaimAsync(engine, store, stats).then(done, failed));
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    if (timer) clearInterval(timer);
    timer = null;
    const open = sockets;
    sockets = null;
    await open?.close();
    // Writes in flight finish before the store may close (jobs catch their own errors).
    await queue;
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
      timer = setInterval(reclaim, reclaimMs);
      timer.unref();
      opts.signal?.addEventListener('abort', () => void close(), { once: true });
      log.info(
        { bind: config.dhcp.bindAddress, ports: { ...ports }, serverIp, subnets: engine.subnetLabels(), leases: opts.leases.length, reservations: engine.reservationCount(), store: store.sync ? 'synchronous' : 'asynchronous', shared: opts.nodeSalt != null },
        `DHCP server listening on ${config.dhcp.bindAddress}:${ports.dhcp} and :${ports.pxe}`,
      );
    },
    close,
  };
}
