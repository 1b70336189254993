/**
 * UDP sockets for multicast imaging (src/multicast/): the same two backends
 * as src/net/udp.ts, plus what multicast needs:
 *
 *   - joining a group on one interface, with IP_MULTICAST_ALL off (Linux
 *     otherwise hands a socket bound to 0.0.0.0:port every group joined on
 *     that port by anyone on the machine);
 *   - choosing the interface and TTL of sent multicast;
 *   - large receive buffers (forced past net.core.rmem_max when root);
 *   - `sendSegments`: many datagrams in one system call (UDP GSO on the
 *     native backend, sendmmsg where GSO is refused, one dgram send each on
 *     the dgram backend). A sender at 100 MB/s sends 70,000 datagrams a
 *     second; Node's dgram alone tops out near 41 MB/s here (NOTES.md);
 *   - the kernel's count of datagrams dropped for want of buffer space
 *     (SO_RXQ_OVFL), which tells a receiver that could not keep up from a
 *     lossy wire.
 */
import dgram from 'node:dgram';
import { ipv4ToNumber, loadNative, onNativeBatch, type NativeHandle, type NativeState, type OnDatagram, type UdpBackend, type UdpPeer } from './udp.js';

/** Option numbers of native/fastudp.c's setopt(). */
const OPT = { join: 1, multicastIf: 2, ttl: 3, loop: 4, all: 5, rcvbuf: 6, sndbuf: 7, rxqOvfl: 8 } as const;

export interface McastSocketOptions {
  /** Local address to bind: a group address (a receiver of that group only), 0.0.0.0, or a unicast address. */
  address: string;
  /** 0 picks a free port. */
  port: number;
  /** Let other sockets bind the same address and port (several receivers of one group on one machine). */
  shared?: boolean;
  /** Join this group, on the interface that has `interfaceAddress` (0.0.0.0: the kernel's choice by route). */
  join?: { group: string; interfaceAddress: string };
  /** Interface (by its IPv4 address) that sent multicast leaves by. */
  interfaceAddress?: string;
  /** TTL of sent multicast (1 stays on the segment). */
  ttl?: number;
  /** Deliver sent multicast to this machine's own members too. */
  loop?: boolean;
  rcvbuf?: number;
  sndbuf?: number;
  onMessage: OnDatagram;
  /** After each batch of datagrams (native), or each datagram (dgram). */
  onBatch?: () => void;
  onError: (err: Error) => void;
}

export interface McastSocket {
  readonly backend: UdpBackend;
  readonly port: number;
  /** One datagram; false when the socket's buffer is full (nothing was sent). */
  send(buf: Buffer, peer: UdpPeer): boolean;
  /**
   * `buf` holds consecutive datagrams of `segment` bytes (the last may be
   * shorter; at most 64): returns how many were sent, from the first. 0
   * means the socket's buffer is full: wait for `onWritable`. A negative
   * number is -errno of a failure that lost the datagrams (ENOBUFS from a
   * full device queue, EPERM from a firewall...): repaired like any loss.
   */
  sendSegments(buf: Buffer, segment: number, peer: UdpPeer): number;
  /** Called once when a full socket can take datagrams again (native); dgram queues instead and never calls it. */
  onWritable(cb: (() => void) | null): void;
  /** Datagrams the kernel dropped on this socket for want of buffer space since it opened; null when unknown (dgram). */
  receiveDrops(): number | null;
  /**
   * Hands DATA datagrams to native code that stores them in `ring` (see
   * rx_ring in native/fastudp.c; `state` is laid out as RX in
   * src/multicast/receiver.ts). False when this backend cannot (dgram): the
   * caller then takes DATA in JavaScript. `null` detaches.
   */
  attachRing(ring: Buffer | null, present?: Uint8Array, state?: Uint32Array): boolean;
  close(): Promise<void>;
}

function ipOrThrow(what: string, address: string): number {
  const n = ipv4ToNumber(address);
  if (Number.isNaN(n)) throw new TypeError(`${what} must be an IPv4 address, got ${JSON.stringify(address)}`);
  return n;
}

class NativeMcast implements McastSocket {
  readonly backend = 'native' as const;
  readonly port: number;
  private writable: (() => void) | null = null;
  private closed = false;

  constructor(
    private readonly st: NativeState,
    private readonly h: NativeHandle,
    port: number,
    opts: McastSocketOptions,
  ) {
    this.port = port;
    st.addon.start(
      h,
      onNativeBatch(st, opts, () => this.closed),
      () => {
        const cb = this.writable;
        this.writable = null;
        st.addon.want_writable(h, false);
        cb?.();
      },
    );
  }

  send(buf: Buffer, peer: UdpPeer): boolean {
    if (this.closed) return true;
    const err = this.st.addon.send(this.h, peer.ip, peer.port, buf, null);
    return !(err === this.st.eagain || err === this.st.ewouldblock);
  }

  sendSegments(buf: Buffer, segment: number, peer: UdpPeer): number {
    if (this.closed) return Math.ceil(buf.length / segment);
    const r = this.st.addon.send_segments(this.h, peer.ip, peer.port, buf, segment);
    if (r >= 0) return r;
    if (-r === this.st.eagain || -r === this.st.ewouldblock) return 0;
    return r;
  }

  onWritable(cb: (() => void) | null): void {
    if (this.closed) return;
    this.writable = cb;
    this.st.addon.want_writable(this.h, cb !== null);
  }

  receiveDrops(): number | null {
    return this.closed ? null : this.st.addon.rx_dropped(this.h);
  }

  attachRing(ring: Buffer | null, present?: Uint8Array, state?: Uint32Array): boolean {
    if (this.closed) return false;
    if (ring === null) this.st.addon.rx_ring(this.h, null);
    else this.st.addon.rx_ring(this.h, ring, present, state);
    return true;
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.writable = null;
      this.st.addon.close(this.h);
    }
    return Promise.resolve();
  }
}

class DgramMcast implements McastSocket {
  readonly backend = 'dgram' as const;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly sock: dgram.Socket,
    readonly port: number,
  ) {}

  send(buf: Buffer, peer: UdpPeer): boolean {
    if (!this.closing) this.sock.send(Buffer.from(buf), peer.port, peer.address);
    return true;
  }

  sendSegments(buf: Buffer, segment: number, peer: UdpPeer): number {
    let n = 0;
    for (let off = 0; off < buf.length; off += segment, n++) {
      // dgram keeps the buffer until the datagram has left: the caller reuses its own, so each is copied.
      if (!this.closing) this.sock.send(Buffer.from(buf.subarray(off, Math.min(buf.length, off + segment))), peer.port, peer.address);
    }
    return n;
  }

  onWritable(): void {
    /* dgram queues in user space */
  }

  receiveDrops(): null {
    return null;
  }

  attachRing(): boolean {
    return false;
  }

  close(): Promise<void> {
    this.closing ??= new Promise((resolve) => {
      try {
        this.sock.close(() => resolve());
      } catch {
        resolve();
      }
    });
    return this.closing;
  }
}

async function openDgram(opts: McastSocketOptions): Promise<DgramMcast> {
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: opts.shared === true });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      try {
        sock.close();
      } catch {
        /* never bound */
      }
      reject(err);
    };
    sock.once('error', onError);
    sock.bind({ port: opts.port, address: opts.address, exclusive: true }, () => {
      sock.off('error', onError);
      resolve();
    });
  });
  try {
    if (opts.join) sock.addMembership(opts.join.group, opts.join.interfaceAddress === '0.0.0.0' ? undefined : opts.join.interfaceAddress);
    if (opts.interfaceAddress !== undefined) sock.setMulticastInterface(opts.interfaceAddress);
    if (opts.ttl !== undefined) sock.setMulticastTTL(opts.ttl);
    sock.setMulticastLoopback(opts.loop === true);
    if (opts.rcvbuf !== undefined) sock.setRecvBufferSize(opts.rcvbuf);
    if (opts.sndbuf !== undefined) sock.setSendBufferSize(opts.sndbuf);
  } catch (err) {
    sock.close();
    throw err;
  }
  sock.on('message', (msg, rinfo) => {
    const ip = ipv4ToNumber(rinfo.address);
    if (!Number.isNaN(ip)) opts.onMessage(msg, ip, rinfo.port);
    opts.onBatch?.();
  });
  sock.on('error', opts.onError);
  return new DgramMcast(sock, sock.address().port);
}

function openNativeMcast(st: NativeState, opts: McastSocketOptions): NativeMcast {
  const ip = ipOrThrow('multicast bind address', opts.address);
  const [h, port] = st.addon.open(ip, opts.port, opts.shared === true ? 3 : 0);
  try {
    const set = (opt: number, a: number, b = 0): void => st.addon.setopt(h, opt, a, b);
    set(OPT.all, 0);
    set(OPT.loop, opts.loop === true ? 1 : 0);
    if (opts.join) set(OPT.join, ipOrThrow('multicast group', opts.join.group), ipOrThrow('interface address', opts.join.interfaceAddress));
    if (opts.interfaceAddress !== undefined) set(OPT.multicastIf, ipOrThrow('interface address', opts.interfaceAddress));
    if (opts.ttl !== undefined) set(OPT.ttl, opts.ttl);
    if (opts.rcvbuf !== undefined) set(OPT.rcvbuf, opts.rcvbuf);
    if (opts.sndbuf !== undefined) set(OPT.sndbuf, opts.sndbuf);
    set(OPT.rxqOvfl, 1);
    return new NativeMcast(st, h, port, opts);
  } catch (err) {
    st.addon.close(h);
    throw err;
  }
}

/** A multicast-capable UDP socket on `backend` (native falls back to nothing: ask for dgram explicitly). */
export async function openMcast(backend: UdpBackend, opts: McastSocketOptions): Promise<McastSocket> {
  if (opts.ttl !== undefined && !(Number.isInteger(opts.ttl) && opts.ttl >= 0 && opts.ttl <= 255)) throw new RangeError(`multicast TTL must be 0-255, got ${opts.ttl}`);
  if (backend === 'native') {
    const st = loadNative();
    if (!st) throw new Error('native UDP is not available (scripts/build-native.sh)');
    return openNativeMcast(st, opts);
  }
  ipOrThrow('multicast bind address', opts.address);
  return openDgram(opts);
}
