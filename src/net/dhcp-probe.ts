/**
 * Rogue DHCP detection: send one DHCPDISCOVER that looks like a PXE client
 * (option 60 "PXEClient:Arch:00000:UNDI:002001", option 93 = 0, so
 * proxyDHCP servers answer too) and collect every OFFER for a while.
 *
 * Sockets (Node has no SO_BINDTODEVICE, see NOTES.md): the DISCOVER is sent
 * from a socket bound to the interface's address, port 68, so the broadcast
 * leaves through that interface; the OFFERs come back as broadcasts (the
 * broadcast flag is set: we have no address for a unicast answer), which a
 * socket bound to a unicast address does not receive on Linux, so a second
 * socket on 0.0.0.0:68 listens. Both use SO_REUSEADDR. Answers are matched
 * by xid and chaddr (a random, locally administered MAC: the probe must not
 * disturb the host's own lease).
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { FleetbootError } from '../lib/errors.js';
import { createPacket, decodePacket, encodePacket, cString, type DhcpPacket } from '../protocol/dhcp/packet.js';
import { bootfileName, MessageType, messageType, Opt, serverIdentifier, vendorClassId } from '../protocol/dhcp/options.js';

export interface ProbeAnswer {
  /** Option 54, else the packet's source address. */
  serverId: string;
  /** Where the OFFER came from (ip:port). */
  from: string;
  /** Offered address, or null for a proxyDHCP answer (yiaddr 0.0.0.0). */
  offered: string | null;
  kind: 'dhcp' | 'proxy';
  /** Option 67, else the file field; null when none. */
  bootFile: string | null;
  /** siaddr (next-server), null when 0.0.0.0. */
  nextServer: string | null;
  /** Option 60 in the answer, if any. */
  vendorClass: string | null;
}

export interface ProbeOptions {
  /** Interface to probe on; its first IPv4 address is used. */
  interface: string;
  timeoutMs: number;
  /** Ports, for tests only: server 67, client 68. */
  serverPort?: number;
  clientPort?: number;
  /** Where the DISCOVER goes (default 255.255.255.255). */
  to?: string;
  signal?: AbortSignal;
}

const PXE_VENDOR_CLASS = 'PXEClient:Arch:00000:UNDI:002001';
const RESEND_MS = 1000;

/** The IPv4 address of an interface; throws FleetbootError('CONFIG') when it has none. */
export function interfaceAddress(iface: string): string {
  const a = (networkInterfaces()[iface] ?? []).find((x) => x.family === 'IPv4');
  if (!a) throw new FleetbootError('CONFIG', `Interface '${iface}' does not exist or has no IPv4 address: current interfaces are ${Object.keys(networkInterfaces()).join(', ')}`);
  return a.address;
}

/** The interface that holds `ip`, or null. */
export function interfaceOf(ip: string): string | null {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if ((addrs ?? []).some((a) => a.family === 'IPv4' && a.address === ip)) return name;
  }
  return null;
}

/** A DHCPDISCOVER as a BIOS PXE ROM would send it, broadcast flag set. */
export function probeDiscover(xid: number, mac: Buffer): DhcpPacket {
  const chaddr = Buffer.alloc(16);
  mac.copy(chaddr, 0, 0, 6);
  const guid = Buffer.concat([Buffer.from([0]), randomBytes(16)]);
  return createPacket({
    xid,
    flags: 0x8000,
    chaddr,
    options: [
      { code: Opt.MESSAGE_TYPE, data: Buffer.from([MessageType.DISCOVER]) },
      { code: Opt.MAX_MESSAGE_SIZE, data: Buffer.from([0x05, 0xc0]) },
      { code: Opt.PARAMETER_REQUEST_LIST, data: Buffer.from([1, 3, 6, 43, 54, 60, 66, 67, 97]) },
      { code: Opt.VENDOR_CLASS_ID, data: Buffer.from(PXE_VENDOR_CLASS, 'latin1') },
      { code: Opt.CLIENT_ARCH, data: Buffer.from([0, 0]) },
      { code: Opt.CLIENT_NDI, data: Buffer.from([1, 2, 1]) },
      { code: Opt.CLIENT_GUID, data: guid },
    ],
  });
}

/** Read an OFFER into a ProbeAnswer; null when it is not an OFFER for this probe. */
export function readOffer(p: DhcpPacket, xid: number, mac: Buffer, rinfo: { address: string; port: number }): ProbeAnswer | null {
  if (p.op !== 2 || p.xid !== xid || !p.chaddr.subarray(0, 6).equals(mac.subarray(0, 6))) return null;
  if (messageType(p) !== MessageType.OFFER) return null;
  const file = bootfileName(p) ?? cString(p.file);
  const offered = p.yiaddr === '0.0.0.0' ? null : p.yiaddr;
  return {
    serverId: serverIdentifier(p) ?? rinfo.address,
    from: `${rinfo.address}:${rinfo.port}`,
    offered,
    kind: offered === null ? 'proxy' : 'dhcp',
    bootFile: file === '' ? null : file,
    nextServer: p.siaddr === '0.0.0.0' ? null : p.siaddr,
    vendorClass: vendorClassId(p) ?? null,
  };
}

function bind(port: number, address: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket({ type: 'udp4', reuseAddr: true });
    s.once('error', (err) => {
      s.close();
      reject(new FleetbootError('IO', `Cannot bind the probe socket ${address}:${port}: ${err.message}`, { cause: err }));
    });
    s.bind(port, address, () => {
      s.removeAllListeners('error');
      s.on('error', () => undefined);
      resolve(s);
    });
  });
}

/**
 * Send one DISCOVER on `opts.interface` and return the OFFERs received within
 * `opts.timeoutMs`, one per server (the first OFFER of each server id).
 */
export async function probeDhcpServers(opts: ProbeOptions): Promise<ProbeAnswer[]> {
  const address = interfaceAddress(opts.interface);
  const clientPort = opts.clientPort ?? 68;
  const serverPort = opts.serverPort ?? 67;
  const xid = randomBytes(4).readUInt32BE(0);
  const mac = randomBytes(6);
  mac[0] = ((mac[0] as number) & 0xfc) | 0x02; // locally administered, unicast
  const answers = new Map<string, ProbeAnswer>();
  const sockets: Socket[] = [];
  try {
    const sender = await bind(clientPort, address);
    sockets.push(sender);
    sockets.push(await bind(clientPort, '0.0.0.0'));
    const onMessage = (msg: Buffer, rinfo: RemoteInfo): void => {
      let p: DhcpPacket;
      try {
        p = decodePacket(msg);
        const a = readOffer(p, xid, mac, rinfo);
        if (a && !answers.has(a.serverId)) answers.set(a.serverId, a);
      } catch {
        // malformed answers are not ours to report
      }
    };
    for (const s of sockets) s.on('message', onMessage);
    sender.setBroadcast(true);
    const out = encodePacket(probeDiscover(xid, mac));
    const sendOnce = () =>
      new Promise<void>((resolve, reject) =>
        sender.send(out, serverPort, opts.to ?? '255.255.255.255', (err) => (err ? reject(new FleetbootError('IO', `Cannot send the probe DISCOVER from ${address}: ${err.message}`, { cause: err })) : resolve())),
      );
    await sendOnce();
    // Retransmit as a client would (same xid): some servers (dnsmasq pinging the
    // address first) stay silent on the first DISCOVER and answer the next one.
    const resend = setInterval(() => void sendOnce().catch(() => undefined), RESEND_MS);
    try {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, opts.timeoutMs);
        opts.signal?.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        }, { once: true });
      });
    } finally {
      clearInterval(resend);
    }
  } finally {
    await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
  return [...answers.values()];
}
