/** Shared by the DHCP service tests on loopback. */
import { createSocket, type Socket } from 'node:dgram';
import { decodePacket, type DhcpPacket } from '../src/protocol/dhcp/packet.js';

/**
 * Send `bytes` from `from` to 127.0.0.1:`port` and resolve with the first
 * decodable reply on `listen` with this xid (any xid when undefined), or null
 * after `waitMs` (default 1000).
 */
export function exchangeDhcp(from: Socket, listen: Socket, bytes: Buffer, port: number, opts: { xid?: number | undefined; waitMs?: number | undefined } = {}): Promise<DhcpPacket | null> {
  return new Promise((resolve) => {
    const onMsg = (msg: Buffer): void => {
      let p: DhcpPacket;
      try {
        p = decodePacket(msg);
      } catch {
        return;
      }
      if (opts.xid !== undefined && p.xid !== opts.xid) return;
      done(p);
    };
    const timer = setTimeout(() => done(null), opts.waitMs ?? 1000);
    function done(p: DhcpPacket | null): void {
      clearTimeout(timer);
      listen.off('message', onMsg);
      resolve(p);
    }
    listen.on('message', onMsg);
    from.send(bytes, port, '127.0.0.1');
  });
}

/**
 * Two consecutive UDP ports on 127.0.0.1 (DHCP and its PXE port) that were
 * both free a moment ago: both are bound, read and closed. The services
 * cannot take port 0 for these, so a test asks for a pair here rather than
 * guessing one.
 */
export async function freeUdpPortPair(): Promise<number> {
  const bind = (port: number): Promise<Socket | null> =>
    new Promise((resolve) => {
      const s = createSocket('udp4');
      s.once('error', () => {
        s.close();
        resolve(null);
      });
      s.bind(port, '127.0.0.1', () => resolve(s));
    });
  const close = (s: Socket): Promise<void> => new Promise((resolve) => s.close(() => resolve()));
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = await bind(0);
    if (!first) continue;
    const port = first.address().port;
    const second = port < 65535 ? await bind(port + 1) : null;
    await close(first);
    if (second) {
      await close(second);
      return port;
    }
  }
  throw new Error('no two consecutive free UDP ports on 127.0.0.1');
}
