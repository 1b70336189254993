/**
 * Wake-on-LAN from an installed machine to the machines of its own
 * segments (work kind 'wake'): routers drop directed broadcasts, so a
 * sender on the target's segment is what reaches it. For each IPv4
 * interface that is up and not loopback: the subnet's broadcast address
 * (address | ~netmask) and 255.255.255.255, from a socket bound to that
 * interface's address, `repeats` times per MAC. Packets: src/protocol/wol.ts.
 */
import { createSocket } from 'node:dgram';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { encodeMagicPacket } from '../protocol/wol.js';

export interface WakeTarget {
  /** The interface's own address (the socket is bound to it). */
  from: string;
  /** Where the packets go. */
  to: string;
}

function ipv4ToInt(a: string): number | null {
  const p = a.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) return null;
  return (((p[0] as number) << 24) | ((p[1] as number) << 16) | ((p[2] as number) << 8) | (p[3] as number)) >>> 0;
}

function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The broadcast address of address/netmask, or null for a /31, /32 or bad input. */
export function broadcastOf(address: string, netmask: string): string | null {
  const a = ipv4ToInt(address);
  const m = ipv4ToInt(netmask);
  if (a === null || m === null || m >>> 0 >= 0xfffffffe) return null;
  return intToIpv4((a | ~m) >>> 0);
}

/** Where to send from which address: each IPv4 interface's broadcast and the limited broadcast. */
export function wakeTargets(ifaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): WakeTarget[] {
  const out: WakeTarget[] = [];
  const seen = new Set<string>();
  for (const list of Object.values(ifaces)) {
    for (const i of list ?? []) {
      if (i.family !== 'IPv4' || i.internal) continue;
      const b = broadcastOf(i.address, i.netmask);
      for (const to of b === null ? ['255.255.255.255'] : [b, '255.255.255.255']) {
        const k = `${i.address}>${to}`;
        if (!seen.has(k)) {
          seen.add(k);
          out.push({ from: i.address, to });
        }
      }
    }
  }
  return out;
}

export type SendFn = (from: string, to: string, port: number, packets: Buffer[]) => Promise<void>;

/** Send datagrams through a UDP socket bound to `from`, broadcast allowed. */
export const udpSend: SendFn = (from, to, port, packets) =>
  new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', (err) => {
      s.close();
      reject(err);
    });
    s.bind({ address: from, port: 0 }, () => {
      s.setBroadcast(true);
      let i = 0;
      const next = (err?: Error | null): void => {
        if (err) {
          s.close();
          reject(err);
          return;
        }
        const p = packets[i++];
        if (p === undefined) {
          s.close();
          resolve();
          return;
        }
        s.send(p, port, to, next);
      };
      next();
    });
  });

export interface WakeReport {
  sent: number;
  message: string;
  failures: string[];
}

export async function sendWake(macs: string[], port: number, repeats: number, targets: WakeTarget[] = wakeTargets(), send: SendFn = udpSend): Promise<WakeReport> {
  const packets: Buffer[] = [];
  for (let r = 0; r < repeats; r++) for (const mac of macs) packets.push(encodeMagicPacket(mac));
  let sent = 0;
  const where: string[] = [];
  const failures: string[] = [];
  for (const t of targets) {
    try {
      await send(t.from, t.to, port, packets);
      sent += packets.length;
      where.push(`${t.to} via ${t.from}`);
    } catch (err) {
      failures.push(`${t.to} via ${t.from}: ${(err as Error).message}`);
    }
  }
  const message =
    targets.length === 0
      ? 'no IPv4 interface to send from: nothing sent'
      : `sent ${sent} magic packets (${macs.length} MACs × ${repeats}) to UDP port ${port}: ${where.join(', ') || 'nowhere'}${failures.length ? `; failed: ${failures.join(', ')}` : ''}`;
  return { sent, message, failures };
}
