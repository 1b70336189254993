/**
 * The proxyDHCP service: two UDP sockets (DHCP 67 and PXE boot-server 4011),
 * decode -> decide (boot/proxy-answer.ts) -> encode -> send. Never assigns
 * addresses. Malformed packets are counted and logged at debug, never
 * answered, and never stop the service.
 *
 * Logging: one info line per answered protocol step (subsystem 'dhcp', mac,
 * xid, arch, step, file, reason), so a boot can be followed like dnsmasq's
 * log-dhcp. Ignored and malformed packets are logged at debug only: on a
 * busy LAN most DHCP traffic is not ours. Measured with perfdhcp
 * (bench/results/proxydhcp.md): with the info line on, 8,000 answers/s at
 * 0 % loss and ~0.2 ms average, 12,000/s at ~0.9 ms; turning it off changed
 * nothing measurable on this shared 2-core machine, so it stays on.
 * The hot path allocates only the decoded option views, the reply object and
 * its buffer; sockets get a 4 MiB receive buffer for bursts.
 *
 * Broadcast replies (to 255.255.255.255:68, for clients without an address)
 * leave through a third socket bound to serverIp on the DHCP port. Node's
 * dgram has no SO_BINDTODEVICE or IP_PKTINFO; a limited broadcast sent from
 * the wildcard socket follows the routing table, so it fails with
 * ENETUNREACH on a server with no default route (found in the lab: the UEFI
 * HTTP boot test, test/lab/httpboot.e2e.test.ts) and leaves through the wrong
 * NIC on a server whose default route is on another network. Linux routes a
 * limited broadcast from a socket bound to a local address out of that
 * address's interface (net/ipv4/route.c, "direct multicasts and limited
 * broadcast via necessary interface"). Both DHCP-port sockets set
 * SO_REUSEADDR; broadcasts to port 67 still arrive on the wildcard one only,
 * and unicasts to serverIp:67 (relays) arrive on the bound one, which
 * handles them like the wildcard socket.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { FleetbootConfig } from '../config/config.js';
import { FleetbootError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Service } from '../lib/service.js';
import { DhcpDecodeError } from '../protocol/dhcp/errors.js';
import { decodePacket, encodePacket, hardwareAddress } from '../protocol/dhcp/packet.js';
import { messageType, messageTypeName } from '../protocol/dhcp/options.js';
import { decideProxyAnswer, type Arrival, type ProxyContext } from '../boot/proxy-answer.js';

export interface ProxyDhcpServiceOptions {
  config: Readonly<FleetbootConfig>;
  serverIp: string;
  httpBaseUrl: string;
  logger: Logger;
  /** Bind these ports instead of config.dhcp.port / pxePort (0 = any free port). For tests and benchmarks. */
  ports?: { dhcp?: number; pxe?: number };
  /**
   * Where replies for clients without an address go, instead of
   * 255.255.255.255:68. Tests on loopback MUST set this: a limited broadcast
   * from the host would leave through its real interfaces.
   */
  broadcastTo?: { address: string; port: number };
  /** Port of relay agents (giaddr); default 67 (RFC 2131 4.1). For tests. */
  relayPort?: number;
  /** Closing the service when aborted. */
  signal?: AbortSignal;
}

export interface ProxyDhcpStats {
  received: number;
  replied: number;
  ignored: number;
  malformed: number;
  sendErrors: number;
}

export interface ProxyDhcpService extends Service {
  /** Ports actually bound (0 before start() or when dhcp.mode is 'off'). */
  readonly ports: { dhcp: number; pxe: number };
  readonly stats: Readonly<ProxyDhcpStats>;
}

export function createProxyDhcpService(opts: ProxyDhcpServiceOptions): ProxyDhcpService {
  const { config, serverIp, httpBaseUrl } = opts;
  const log = opts.logger.child({ subsystem: 'dhcp' });
  const ctx: ProxyContext = { serverIp, httpBaseUrl, bootFiles: config.boot.files, biosMenu: config.dhcp.biosMenu };
  const relayPort = opts.relayPort ?? 67;
  const stats: ProxyDhcpStats = { received: 0, replied: 0, ignored: 0, malformed: 0, sendErrors: 0 };
  const ports = { dhcp: 0, pxe: 0 };
  const sockets: Socket[] = [];
  /** Sends broadcast replies (see the header); null: the wildcard DHCP socket does. */
  let broadcastSocket: Socket | null = null;
  let closed = false;
  const debug = () => log.isLevelEnabled('debug');

  function onMessage(sock: Socket, which: Arrival['port'], msg: Buffer, rinfo: RemoteInfo): void {
    stats.received++;
    try {
      let req;
      try {
        req = decodePacket(msg);
      } catch (err) {
        if (!(err instanceof DhcpDecodeError)) throw err;
        stats.malformed++;
        if (debug()) log.debug({ from: `${rinfo.address}:${rinfo.port}`, bytes: msg.length, err: err.message }, 'malformed DHCP packet dropped');
        return;
      }
      const decision = decideProxyAnswer(req, { port: which, address: rinfo.address, sourcePort: rinfo.port }, ctx);
      if ('ignore' in decision) {
        stats.ignored++;
        if (debug()) {
          log.debug(
            { mac: hardwareAddress(req), xid: req.xid, msg: messageTypeName(safeType(req)), port: which, reason: decision.ignore },
            'ignored',
          );
        }
        return;
      }
      const { reply, to, file, reason, firmware } = decision;
      const out = encodePacket(reply);
      let address = to.address;
      let port = to.port;
      if (to.kind === 'broadcast' && opts.broadcastTo) ({ address, port } = opts.broadcastTo);
      else if (to.kind === 'relay') port = relayPort;
      const via = to.kind === 'broadcast' && !opts.broadcastTo && broadcastSocket ? broadcastSocket : sock;
      via.send(out, port, address, (err) => {
        if (err) {
          stats.sendErrors++;
          log.warn({ mac: hardwareAddress(req), xid: req.xid, to: `${address}:${port}`, err: err.message }, 'sending the DHCP reply failed');
        }
      });
      stats.replied++;
      const step = `${messageTypeName(messageType(req))} -> ${messageTypeName(messageType(reply))}`;
      log.info(
        {
          mac: hardwareAddress(req),
          xid: req.xid,
          arch: firmware.arch,
          ipxe: firmware.ipxe,
          step,
          port: which,
          to: `${address}:${port}`,
          file,
          reason,
        },
        `dhcp ${step}`,
      );
    } catch (err) {
      // A bug, or an option too broken to read (DhcpDecodeError from a reader).
      if (err instanceof DhcpDecodeError) {
        stats.malformed++;
        if (debug()) log.debug({ from: `${rinfo.address}:${rinfo.port}`, err: err.message }, 'malformed DHCP option, packet dropped');
      } else {
        stats.ignored++;
        log.error({ from: `${rinfo.address}:${rinfo.port}`, err: errorMessage(err) }, 'unexpected error handling a DHCP packet');
      }
    }
  }

  function bind(which: Arrival['port'], port: number, address: string = config.dhcp.bindAddress, reuseAddr = false): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const sock = createSocket({ type: 'udp4', reuseAddr });
      const onError = (err: Error) => {
        sock.close();
        reject(new FleetbootError('IO', `Cannot bind DHCP ${which === 'pxe' ? 'PXE ' : ''}socket ${address}:${port}: ${err.message}`, { cause: err }));
      };
      sock.once('error', onError);
      sock.bind(port, address, () => {
        sock.off('error', onError);
        sock.setBroadcast(true);
        try {
          // Bursts of DISCOVERs (a room powering on; perfdhcp) outrun one event loop turn.
          sock.setRecvBufferSize(4 * 1024 * 1024);
        } catch {
          /* capped by net.core.rmem_max; the default still works */
        }
        sock.on('error', (err) => log.error({ err: err.message, port }, 'DHCP socket error'));
        sock.on('message', (msg, rinfo) => onMessage(sock, which, msg, rinfo));
        resolve(sock);
      });
    });
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    broadcastSocket = null;
    await Promise.all(sockets.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
    log.info({ ...stats }, 'proxyDHCP stopped');
  }

  return {
    name: 'proxy-dhcp',
    ports,
    stats,
    async start() {
      if (config.dhcp.mode === 'off') {
        log.info('proxyDHCP is off (dhcp.mode = off)');
        return;
      }
      if (closed) throw new FleetbootError('IO', 'proxyDHCP service was closed; create a new one');
      // The broadcast socket is needed only when the DHCP socket is a wildcard
      // one and replies really are broadcast (tests on loopback redirect them).
      const wantBroadcastSocket = config.dhcp.bindAddress === '0.0.0.0' && serverIp !== '0.0.0.0' && !opts.broadcastTo;
      try {
        const dhcp = await bind('dhcp', opts.ports?.dhcp ?? config.dhcp.port, config.dhcp.bindAddress, wantBroadcastSocket);
        sockets.push(dhcp);
        ports.dhcp = dhcp.address().port;
        const pxe = await bind('pxe', opts.ports?.pxe ?? config.dhcp.pxePort);
        sockets.push(pxe);
        ports.pxe = pxe.address().port;
        if (wantBroadcastSocket) {
          try {
            broadcastSocket = await bind('dhcp', ports.dhcp, serverIp, true);
            sockets.push(broadcastSocket);
          } catch (err) {
            // serverIp not on this host (an address behind NAT, say): broadcasts
            // then follow the routing table, as before.
            log.warn({ serverIp, err: errorMessage(err) }, `cannot bind ${serverIp}:${ports.dhcp} for broadcast replies; they follow the routing table`);
          }
        }
      } catch (err) {
        broadcastSocket = null;
        await Promise.all(sockets.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
        throw err;
      }
      opts.signal?.addEventListener('abort', () => void close(), { once: true });
      log.info(
        { bind: config.dhcp.bindAddress, ports: { ...ports }, serverIp, httpBaseUrl, biosMenu: config.dhcp.biosMenu.enabled, broadcastFrom: broadcastSocket ? serverIp : null },
        `proxyDHCP listening on ${config.dhcp.bindAddress}:${ports.dhcp} and :${ports.pxe}`,
      );
    },
    close,
  };
}

function safeType(p: Parameters<typeof messageType>[0]): number | undefined {
  try {
    return messageType(p);
  } catch {
    return undefined;
  }
}
