/** Shared by the DHCP service tests on loopback. */
import type { Socket } from 'node:dgram';
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
