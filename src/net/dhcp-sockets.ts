/**
 * The UDP sockets of a DHCP service (the proxy and the address server share
 * this scheme): a socket on the DHCP port (67) bound to dhcp.bindAddress, one
 * on the PXE boot-server port (4011), and, when the DHCP socket is a wildcard
 * one, a third socket bound to serverIp on the DHCP port that sends the
 * broadcast replies.
 *
 * Why the third socket: Node's dgram has no SO_BINDTODEVICE or IP_PKTINFO; a
 * limited broadcast (255.255.255.255:68, for clients without an address) sent
 * from the wildcard socket follows the routing table, so it fails with
 * ENETUNREACH on a server with no default route (found in the lab:
 * test/lab/proxydhcp.lab.test.ts) and leaves through the wrong NIC on a
 * server whose default route is on another network. Linux routes a limited
 * broadcast from a socket bound to a local address out of that address's
 * interface (net/ipv4/route.c, "direct multicasts and limited broadcast via
 * necessary interface"). Both DHCP-port sockets set SO_REUSEADDR; broadcasts
 * to port 67 still arrive on the wildcard one only, and unicasts to
 * serverIp:67 (relays, renewing clients) arrive on the bound one, which hands
 * them to the same handler as the wildcard socket.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { FleetbootError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { bindError } from './bind-error.js';
import type { Destination } from '../boot/proxy-answer.js';
import { DhcpDecodeError } from '../protocol/dhcp/errors.js';
import { decodePacket, encodePacket, hardwareAddress, type DhcpPacket } from '../protocol/dhcp/packet.js';

export type DhcpPort = 'dhcp' | 'pxe';

export interface DhcpSocketsOptions {
  bindAddress: string;
  dhcpPort: number;
  pxePort: number;
  serverIp: string;
  /** Whether replies really are broadcast (tests on loopback redirect them: then no third socket). */
  broadcastReplies: boolean;
  log: Logger;
  onMessage(sock: Socket, which: DhcpPort, msg: Buffer, rinfo: RemoteInfo): void;
}

export interface DhcpSockets {
  /** Ports actually bound. */
  readonly ports: { dhcp: number; pxe: number };
  /** The socket broadcast replies leave through; null: send them from the socket the request came on. */
  readonly broadcast: Socket | null;
  close(): Promise<void>;
}

function bind(o: DhcpSocketsOptions, which: DhcpPort, port: number, address: string, reuseAddr: boolean): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = createSocket({ type: 'udp4', reuseAddr });
    const onError = (err: Error) => {
      sock.close();
      reject(bindError(`DHCP ${which === 'pxe' ? 'PXE ' : ''}socket`, address, port, err));
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
      sock.on('error', (err) => o.log.error({ err: err.message, port }, 'DHCP socket error'));
      sock.on('message', (msg, rinfo) => o.onMessage(sock, which, msg, rinfo));
      resolve(sock);
    });
  });
}

function closeAll(sockets: Socket[]): Promise<void> {
  return Promise.all(sockets.splice(0).map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined);
}

export async function openDhcpSockets(o: DhcpSocketsOptions): Promise<DhcpSockets> {
  const wantBroadcast = o.broadcastReplies && o.bindAddress === '0.0.0.0' && o.serverIp !== '0.0.0.0';
  const sockets: Socket[] = [];
  let broadcast: Socket | null = null;
  try {
    const dhcp = await bind(o, 'dhcp', o.dhcpPort, o.bindAddress, wantBroadcast);
    sockets.push(dhcp);
    const pxe = await bind(o, 'pxe', o.pxePort, o.bindAddress, false);
    sockets.push(pxe);
    const ports = { dhcp: dhcp.address().port, pxe: pxe.address().port };
    if (wantBroadcast) {
      try {
        broadcast = await bind(o, 'dhcp', ports.dhcp, o.serverIp, true);
        sockets.push(broadcast);
      } catch (err) {
        // serverIp not on this host (an address behind NAT, say): broadcasts
        // then follow the routing table.
        o.log.warn({ serverIp: o.serverIp, err: errorMessage(err) }, `cannot bind ${o.serverIp}:${ports.dhcp} for broadcast replies; they follow the routing table`);
      }
    }
    return { ports, broadcast, close: () => closeAll(sockets) };
  } catch (err) {
    await closeAll(sockets);
    throw err;
  }
}

/** The counters both DHCP services keep. */
export interface DhcpStats {
  received: number;
  replied: number;
  ignored: number;
  malformed: number;
  sendErrors: number;
}

/** Where replies really go: test overrides and the relay/client ports. */
export interface ReplyRouting {
  /** Send broadcasts here instead (tests on loopback). */
  broadcastTo?: { address: string; port: number } | undefined;
  /** Port of relay agents (giaddr). */
  relayPort: number;
  /** Port unicast replies to clients go to instead of 68 (tests). */
  clientPort?: number | undefined;
}

export interface DhcpReplier {
  /**
   * Encode and send `reply` to `to` (broadcasts through the socket bound to
   * the server address when there is one), counting it; a send error is
   * counted and logged. Returns "address:port" for the log line.
   */
  send(sock: Socket, req: DhcpPacket, reply: DhcpPacket, to: Destination): string;
  /** Decode a datagram; null (counted, logged at debug) when it is malformed. */
  decode(msg: Buffer, rinfo: RemoteInfo): DhcpPacket | null;
  /** A handler threw: a DhcpDecodeError from an option reader is a malformed packet, anything else a bug (logged). */
  failed(err: unknown, rinfo: RemoteInfo, req: DhcpPacket | undefined): void;
}

/**
 * The receive/send path both DHCP services share; `sockets()` is read at each send.
 * `onRelay` hears the giaddr of every relayed request (Wake-on-LAN's relayed subnets).
 */
export function dhcpReplier(o: { sockets: () => DhcpSockets | null; routing: ReplyRouting; stats: DhcpStats; log: Logger; onRelay?: ((giaddr: string) => void) | undefined }): DhcpReplier {
  const { routing, stats, log } = o;
  const debug = (): boolean => log.isLevelEnabled('debug');
  return {
    send(sock, req, reply, to) {
      const out = encodePacket(reply);
      let address = to.address;
      let port = to.port;
      if (to.kind === 'broadcast' && routing.broadcastTo) ({ address, port } = routing.broadcastTo);
      else if (to.kind === 'relay') port = routing.relayPort;
      else if (to.kind === 'unicast' && port === 68 && routing.clientPort !== undefined) port = routing.clientPort;
      const bcast = o.sockets()?.broadcast;
      const via = to.kind === 'broadcast' && !routing.broadcastTo && bcast ? bcast : sock;
      via.send(out, port, address, (err) => {
        if (err) {
          stats.sendErrors++;
          log.warn({ mac: hardwareAddress(req), xid: req.xid, to: `${address}:${port}`, err: err.message }, 'sending the DHCP reply failed');
        }
      });
      stats.replied++;
      return `${address}:${port}`;
    },
    decode(msg, rinfo) {
      try {
        const p = decodePacket(msg);
        if (p.op === 1 && p.giaddr !== '0.0.0.0' && o.onRelay) {
          try {
            o.onRelay(p.giaddr);
          } catch (err) {
            log.warn({ giaddr: p.giaddr, err: errorMessage(err) }, 'recording a relay failed');
          }
        }
        return p;
      } catch (err) {
        if (!(err instanceof DhcpDecodeError)) throw err;
        stats.malformed++;
        if (debug()) log.debug({ from: `${rinfo.address}:${rinfo.port}`, bytes: msg.length, err: err.message }, 'malformed DHCP packet dropped');
        return null;
      }
    },
    failed(err, rinfo, req) {
      if (err instanceof DhcpDecodeError) {
        stats.malformed++;
        if (debug()) log.debug({ from: `${rinfo.address}:${rinfo.port}`, err: err.message }, 'malformed DHCP option, packet dropped');
      } else {
        // Includes a failed lease commit (server mode): then nothing was sent, the client retries.
        stats.ignored++;
        log.error({ from: `${rinfo.address}:${rinfo.port}`, mac: req ? hardwareAddress(req) : undefined, err: errorMessage(err) }, 'unexpected error handling a DHCP packet');
      }
    },
  };
}
