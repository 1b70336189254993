/**
 * The Wake-on-LAN socket: one UDP socket with SO_BROADCAST, bound to the
 * server address (port chosen by the kernel), that sends magic packets.
 * Why bound: Linux routes a limited broadcast (255.255.255.255) from a
 * socket bound to a local address out of that address's interface (see
 * src/net/dhcp-sockets.ts); from a wildcard socket it follows the routing
 * table, i.e. the default route's interface, or fails with ENETUNREACH
 * when there is none. Directed broadcasts of other subnets are routed like
 * unicast. When the server address is not on this host (behind NAT) the
 * socket binds the wildcard address and says so.
 */
import { createSocket, type Socket } from 'node:dgram';
import { FleetbootError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';

/** Sends one datagram; what the wake service needs (tests record instead). */
export interface WakeSender {
  send(payload: Buffer, address: string, port: number): Promise<void>;
  close(): Promise<void>;
}

function bind(address: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket({ type: 'udp4' });
    s.once('error', (err) => {
      s.close();
      reject(err);
    });
    s.bind(0, address, () => {
      s.removeAllListeners('error');
      s.setBroadcast(true);
      resolve(s);
    });
  });
}

export async function openWakeSocket(opts: { serverIp: string; log: Logger }): Promise<WakeSender> {
  const log = opts.log.child({ subsystem: 'wake' });
  let sock: Socket;
  try {
    sock = await bind(opts.serverIp);
  } catch (err) {
    log.warn({ serverIp: opts.serverIp, err: errorMessage(err) }, `cannot bind the Wake-on-LAN socket to ${opts.serverIp}: limited broadcasts follow the routing table`);
    try {
      sock = await bind('0.0.0.0');
    } catch (err2) {
      throw new FleetbootError('IO', `Cannot open the Wake-on-LAN socket: ${errorMessage(err2)}`, { cause: err2 });
    }
  }
  sock.on('error', (err) => log.error({ err: err.message }, 'Wake-on-LAN socket error'));
  let closed = false;
  return {
    send(payload, address, port) {
      return new Promise((resolve, reject) => {
        if (closed) return reject(new FleetbootError('IO', 'The Wake-on-LAN socket is closed'));
        sock.send(payload, port, address, (err) => (err ? reject(new FleetbootError('IO', `sending a magic packet to ${address}:${port} failed: ${err.message}`, { cause: err })) : resolve()));
      });
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise((r) => sock.close(() => r()));
    },
  };
}
