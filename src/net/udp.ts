/**
 * IPv4 UDP sockets for the TFTP service, with two interchangeable backends:
 *
 *   - `native`: build/native/fastudp.node (native/fastudp.c, built by
 *     scripts/build-native.sh). One recvmmsg() per wake-up and one sendmsg()
 *     per datagram, no per-packet allocation: received datagrams are views of
 *     a shared arena, sources are numbers.
 *   - `dgram`: node:dgram, used when the addon is not built (no C compiler)
 *     or `FLEETBOOT_UDP=dgram` is set. Same behaviour, more CPU per packet.
 *
 * Contract of both (what tftp-server.ts relies on):
 *   - `onMessage(msg, ip, port)` gets each datagram; `msg` is valid only
 *     during the call (the native arena is reused): copy what must outlive it.
 *   - `send(head, body, peer)` sends head+body as one datagram. While
 *     `retainsBuffers()` is true a later change to head/body may still alter
 *     what goes out (dgram queues the caller's buffers when the kernel is
 *     busy; the native backend copies instead, so for it this is always false).
 *   - Send errors other than "try again" are dropped (UDP is best effort; the
 *     protocol's timers retransmit), as dgram does without a callback.
 */
import dgram from 'node:dgram';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';

/** An IPv4 peer: `ip` is the address as an unsigned 32-bit number. */
export interface UdpPeer {
  readonly ip: number;
  readonly address: string;
  readonly port: number;
}

export type UdpBackend = 'native' | 'dgram';

export type OnDatagram = (msg: Buffer, ip: number, port: number) => void;

export interface UdpSocket {
  readonly backend: UdpBackend;
  /** The bound local port. */
  readonly port: number;
  send(head: Buffer, body: Buffer | null, peer: UdpPeer): void;
  /** True while an earlier send may still read the caller's buffers. */
  retainsBuffers(): boolean;
  close(): Promise<void>;
}

export interface UdpOpenOptions {
  /** Dotted-quad IPv4 address to bind. */
  address: string;
  /** 0 picks a free port. */
  port: number;
  onMessage: OnDatagram;
  /** Receive errors (rare on UDP: the socket stays usable). */
  onError: (err: Error) => void;
}

/** "a.b.c.d" to a number; NaN when it is not a dotted quad. */
export function ipv4ToNumber(address: string): number {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return NaN;
      n = n * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      part = part * 10 + (c - 48);
      if (part > 255) return NaN;
      digits++;
    } else {
      return NaN;
    }
  }
  if (digits === 0 || dots !== 3) return NaN;
  return n * 256 + part;
}

export function numberToIpv4(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

export function udpPeer(ip: number, port: number): UdpPeer {
  return { ip, address: numberToIpv4(ip), port };
}

// ---------------------------------------------------------------- native

type Handle = object;
export type { Handle as NativeHandle };
export interface FastUdp {
  init(): { arena: ArrayBuffer; meta: ArrayBuffer; batch: number; slot: number };
  /** mode 0 plain; 1 port must be free, then shared with same-user sockets; 2 joins such a port, connected to the peer. */
  open(ip: number, port: number, mode?: 0 | 1 | 2 | 3, peerIp?: number, peerPort?: number): [Handle, number];
  start(h: Handle, onRead: (n: number) => void, onWritable: () => void): void;
  send(h: Handle, ip: number, port: number, head: Buffer, body?: Buffer | null): number;
  want_writable(h: Handle, on: boolean): void;
  /** Datagrams of `segment` bytes from `buf` (see native/fastudp.c): count sent, or -errno. */
  send_segments(h: Handle, ip: number, port: number, buf: Buffer, segment: number): number;
  setopt(h: Handle, opt: number, a: number, b?: number): void;
  rx_dropped(h: Handle): number;
  rx_ring(h: Handle, ring: Buffer | null, present?: Uint8Array, state?: Uint32Array): void;
  close(h: Handle): void;
  busy_poll(micros: number): void;
  errno(): { EAGAIN: number; EWOULDBLOCK: number };
}

export interface NativeState {
  addon: FastUdp;
  arena: Buffer;
  meta: Uint32Array;
  slot: number;
  eagain: number;
  ewouldblock: number;
}

let native: NativeState | null | undefined;
let nativeLoadError: string | null = null;

function addonPath(): string {
  // This file is src/net/udp.ts (tsx) or dist/src/net/udp.js (compiled): the repository root is two or three levels up.
  // In a bundle (the boot environment's /fleetboot/agent.mjs) the addon lies beside it (scripts/build-bootenv.sh).
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', '..', 'build', 'native', 'fastudp.node'), join(here, '..', '..', '..', 'build', 'native', 'fastudp.node'), join(here, 'fastudp.node')];
  return candidates.find((c) => existsSync(c)) ?? (candidates[0] as string);
}

/** The loaded addon (null when it is not built): for src/net/mcast-udp.ts, which adds multicast sockets on the same arena. */
export function loadNative(): NativeState | null {
  if (native !== undefined) return native;
  native = null;
  const path = addonPath();
  if (!existsSync(path)) {
    nativeLoadError = `${path} is not built (scripts/build-native.sh)`;
    return null;
  }
  try {
    const addon = createRequire(import.meta.url)(path) as FastUdp;
    const info = addon.init();
    const codes = addon.errno();
    native = {
      addon,
      arena: Buffer.from(info.arena),
      meta: new Uint32Array(info.meta),
      slot: info.slot,
      eagain: codes.EAGAIN,
      ewouldblock: codes.EWOULDBLOCK,
    };
  } catch (err) {
    nativeLoadError = `${path}: ${err instanceof Error ? err.message : String(err)}`;
  }
  return native;
}

/**
 * The backend sockets get unless told otherwise: `FLEETBOOT_UDP=dgram|native`
 * forces one (native fails when the addon is missing); by default native when built.
 */
export function defaultUdpBackend(): UdpBackend {
  const forced = process.env.FLEETBOOT_UDP;
  if (forced === 'dgram') return 'dgram';
  if (forced === 'native') {
    if (!loadNative()) throw new Error(`FLEETBOOT_UDP=native but the addon cannot be loaded: ${nativeLoadError ?? 'unknown error'}`);
    return 'native';
  }
  return loadNative() ? 'native' : 'dgram';
}

/**
 * Busy polling for native sockets (process-wide): after each received
 * datagram Node's loop keeps polling without sleeping for `micros` (0 = off).
 * Returns false when the native backend is not loaded (dgram cannot do it).
 */
export function setUdpBusyPoll(micros: number): boolean {
  if (!Number.isInteger(micros) || micros < 0 || micros > 1_000_000) throw new RangeError(`busy poll must be 0-1000000 us: ${micros}`);
  const st = loadNative();
  if (!st) return false;
  st.addon.busy_poll(micros);
  return true;
}

/** Why the native backend is not available (null when it is). */
export function nativeUdpUnavailableReason(): string | null {
  return loadNative() ? null : nativeLoadError;
}

/**
 * The callback native sockets give the addon's start(): each datagram of a
 * received batch (a view of the shared arena) to `onMessage` while the socket
 * is open, then `onBatch`; receive errors to `onError`.
 */
export function onNativeBatch(
  st: NativeState,
  h: { onMessage: OnDatagram; onError: (err: Error) => void; onBatch?: () => void },
  closed: () => boolean,
): (n: number) => void {
  const { arena, meta, slot } = st;
  const { onMessage, onError, onBatch } = h;
  return (n: number) => {
    if (n < 0) {
      onError(Object.assign(new Error(`recvmmsg failed: errno ${-n}`), { errno: n, syscall: 'recvmmsg' }));
      return;
    }
    for (let i = 0; i < n && !closed(); i++) {
      const m = i * 3;
      const off = i * slot;
      onMessage(arena.subarray(off, off + (meta[m + 2] as number)), meta[m] as number, meta[m + 1] as number);
    }
    if (onBatch && !closed()) onBatch();
  };
}

interface Pending {
  packet: Buffer;
  peer: UdpPeer;
}

class NativeSocket implements UdpSocket {
  readonly backend = 'native' as const;
  readonly port: number;
  private readonly st: NativeState;
  private readonly h: Handle;
  private pending: Pending[] | null = null;
  private closed = false;

  constructor(st: NativeState, h: Handle, port: number, opts: UdpOpenOptions) {
    this.st = st;
    this.h = h;
    this.port = port;
    st.addon.start(
      h,
      onNativeBatch(st, opts, () => this.closed),
      () => this.flush(),
    );
  }

  send(head: Buffer, body: Buffer | null, peer: UdpPeer): void {
    if (this.closed) return;
    if (this.pending !== null) {
      this.pending.push({ packet: body ? Buffer.concat([head, body]) : Buffer.from(head), peer });
      return;
    }
    const err = this.st.addon.send(this.h, peer.ip, peer.port, head, body);
    if (err === 0) return;
    if (err === this.st.eagain || err === this.st.ewouldblock) {
      // The kernel's send buffer is full: keep a copy, in order, until it drains.
      this.pending = [{ packet: body ? Buffer.concat([head, body]) : Buffer.from(head), peer }];
      this.st.addon.want_writable(this.h, true);
    }
    // Anything else (a firewall's EPERM, EMSGSIZE, unreachable): dropped, as a lost datagram.
  }

  private flush(): void {
    const q = this.pending;
    if (q === null || this.closed) return;
    let i = 0;
    for (; i < q.length; i++) {
      const p = q[i] as Pending;
      const err = this.st.addon.send(this.h, p.peer.ip, p.peer.port, p.packet, null);
      if (err === this.st.eagain || err === this.st.ewouldblock) break;
    }
    if (i === q.length) {
      this.pending = null;
      this.st.addon.want_writable(this.h, false);
    } else {
      q.splice(0, i);
    }
  }

  retainsBuffers(): boolean {
    return false;
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.pending = null;
      this.st.addon.close(this.h);
    }
    return Promise.resolve();
  }
}

// ---------------------------------------------------------------- dgram

/** dgram's default lookup goes through dns.lookup and a process.nextTick per send; peers are always IP literals. */
function literalLookup(address: string, _family: unknown, cb: (err: Error | null, address: string, family: number) => void): void {
  cb(null, address, 4);
}

class DgramSocket implements UdpSocket {
  readonly backend = 'dgram' as const;
  readonly port: number;
  private readonly sock: dgram.Socket;
  private readonly list: Buffer[] = [];
  private closing: Promise<void> | null = null;

  constructor(sock: dgram.Socket, opts: UdpOpenOptions) {
    this.sock = sock;
    this.port = sock.address().port;
    const onMessage = opts.onMessage;
    sock.on('message', (msg, rinfo) => {
      const ip = ipv4ToNumber(rinfo.address);
      if (!Number.isNaN(ip)) onMessage(msg, ip, rinfo.port);
    });
    sock.on('error', opts.onError);
  }

  send(head: Buffer, body: Buffer | null, peer: UdpPeer): void {
    if (this.closing) return;
    if (body === null || body.length === 0) {
      this.sock.send(head, peer.port, peer.address);
      return;
    }
    const list = this.list;
    list[0] = head;
    list[1] = body;
    this.sock.send(list, peer.port, peer.address);
  }

  retainsBuffers(): boolean {
    return this.closing === null && this.sock.getSendQueueCount() !== 0;
  }

  close(): Promise<void> {
    this.closing ??= new Promise((resolve) => {
      try {
        this.sock.close(() => resolve());
      } catch {
        resolve(); // already closed
      }
    });
    return this.closing;
  }
}

function bindDgram(address: string, port: number): Promise<dgram.Socket> {
  const sock = dgram.createSocket({ type: 'udp4', lookup: literalLookup as unknown as dgram.SocketOptions['lookup'] });
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      sock.removeListener('listening', onListening);
      try {
        sock.close();
      } catch {
        // never bound
      }
      reject(err);
    };
    const onListening = (): void => {
      sock.removeListener('error', onError);
      resolve(sock);
    };
    sock.once('error', onError);
    sock.once('listening', onListening);
    sock.bind({ port, address, exclusive: true });
  });
}

/** One started native socket (open mode and peer as in native/fastudp.c); the handle is closed if starting fails. */
function openNative(opts: UdpOpenOptions, port: number, mode: 0 | 1 | 2 = 0, peer?: UdpPeer): NativeSocket {
  const ip = ipv4ToNumber(opts.address);
  if (Number.isNaN(ip)) throw new TypeError(`UDP bind address must be an IPv4 address: ${opts.address}`);
  const st = loadNative();
  if (!st) throw new Error(`native UDP is not available: ${nativeLoadError ?? 'unknown error'}`);
  const [h, bound] = st.addon.open(ip, port, mode, peer?.ip, peer?.port);
  try {
    return new NativeSocket(st, h, bound, opts);
  } catch (err) {
    st.addon.close(h);
    throw err;
  }
}

/**
 * Binds an IPv4 UDP socket. Rejects like dgram does (err.code EADDRINUSE,
 * EACCES, ...) when the port cannot be had.
 */
export async function openUdp(backend: UdpBackend, opts: UdpOpenOptions): Promise<UdpSocket> {
  if (backend === 'native') return openNative(opts, opts.port);
  if (Number.isNaN(ipv4ToNumber(opts.address))) throw new TypeError(`UDP bind address must be an IPv4 address: ${opts.address}`);
  return new DgramSocket(await bindDgram(opts.address, opts.port), opts);
}

/** Two native sockets on one port acting as one: `direct` (connected to the peer) sends; both receive. */
class PeerSocket implements UdpSocket {
  readonly backend = 'native' as const;
  readonly port: number;
  private readonly direct: NativeSocket;
  private readonly others: NativeSocket;

  constructor(direct: NativeSocket, others: NativeSocket) {
    this.direct = direct;
    this.others = others;
    this.port = direct.port;
  }

  send(head: Buffer, body: Buffer | null, peer: UdpPeer): void {
    this.direct.send(head, body, peer);
  }

  retainsBuffers(): boolean {
    return false;
  }

  async close(): Promise<void> {
    await Promise.all([this.direct.close(), this.others.close()]);
  }
}

/**
 * A socket on a port of its own for talking to one peer (a TFTP transfer's
 * TID). `opts.port` 0 picks a free port; otherwise it must be free (EADDRINUSE).
 * Datagrams from anyone reach `onMessage`, as with openUdp.
 *
 * Native backend: two sockets share the port. One is connect()ed to the peer,
 * so the kernel finds it for the peer's datagrams from the packet's addresses
 * alone (early demux) and reuses its route instead of looking one up per
 * packet, on receive and on send: with many lock-step clients on one core
 * that is a measurable part of each packet's cost. The other, unconnected,
 * gets everyone else's datagrams (so strangers still get an answer, where a
 * connected socket alone would make the kernel send ICMP port unreachable).
 * Both deliver to `onMessage`, so which one a kernel picks for a datagram
 * changes speed, never behaviour. The port is taken only when it is free and
 * then shared through SO_REUSEPORT, which admits sockets of the same user
 * only. dgram backend (or a peer with port 0 or address 0.0.0.0): one socket.
 */
export async function openUdpForPeer(backend: UdpBackend, opts: UdpOpenOptions & { peer: UdpPeer }): Promise<UdpSocket> {
  // A source of port 0 or 0.0.0.0 is no address to connect to (a forged packet): one plain socket then.
  if (backend !== 'native' || opts.peer.port === 0 || opts.peer.ip === 0) return openUdp(backend, opts);
  const others = openNative(opts, opts.port, 1);
  try {
    return new PeerSocket(openNative(opts, others.port, 2, opts.peer), others);
  } catch (err) {
    await others.close();
    throw err;
  }
}
