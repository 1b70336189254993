/**
 * The read-only TFTP service: RFC 1350 with RFC 2347/2348/2349 options and
 * RFC 7440 windowed transfers. Packets are built and parsed by
 * protocol/tftp; this file owns sockets, files and timers.
 *
 * Behaviour worth knowing (the choices are deliberate):
 *   - Read-only: WRQ gets ERROR 2. Missing files get ERROR 1, names that leave
 *     the root (`..`, symlinks escaping it) ERROR 2, directories and other
 *     non-regular files ERROR 2. Names are resolved by lib/safe-path.ts
 *     (backslashes are separators; a leading '/' is relative to the root).
 *   - Modes: octet and netascii; netascii is served byte for byte as octet
 *     (boot files are binary; tftp-hpa and dnsmasq convert, we do not). "mail"
 *     and unknown modes get ERROR 4.
 *   - Malformed requests and unknown opcodes on the server port get ERROR 4;
 *     packets shorter than an opcode and stray DATA/ACK/ERROR/OACK on the server
 *     port get no reply.
 *   - Each transfer gets its own socket (its TID): an ephemeral port, or one
 *     from `dataPorts` (the next free port of the range, skipping ports in
 *     use; net/tftp-ports.ts picks them, and no free port is ERROR 0). With
 *     `dataPorts.from === dataPorts.to` every transfer shares that one port
 *     and packets are told apart by the client's address:port (if that port
 *     is the server port itself, the server socket is shared).
 *   - Packets from a wrong TID get ERROR 5 and do not touch the transfer; an
 *     ERROR from the client ends it.
 *   - Sending: a window of `windowsize` blocks (1 = lock-step), then wait for
 *     the ACK of the window's last block. An ACK for a block inside the window
 *     restarts the window after that block (RFC 7440). Duplicate or old ACKs
 *     are ignored: DATA is only ever resent when the timer fires (the
 *     sorcerer's apprentice bug, RFC 1123 4.2.3.1). The retransmission
 *     interval doubles per retry without progress, up to 4x the timeout (a
 *     client-negotiated timeout is the base). After `maxRetries` sends of the
 *     same window without progress the transfer is abandoned with ERROR 0.
 *   - Block numbers are 16 bits and wrap from 65535 to 0, as tftp-hpa, dnsmasq
 *     and edk2 expect; ACKs are mapped back to the absolute block by distance
 *     from the highest block sent.
 *   - A retransmitted RRQ (same client address:port and file, while the first
 *     has seen no ACK yet) is ignored: our timer resends the OACK/DATA. A new
 *     RRQ from a client address:port with a transfer in progress replaces it
 *     (PXE ROMs reuse their source port).
 *
 * Speed (per-packet CPU is the limit on a LAN): UDP goes through net/udp.ts,
 * normally the native addon (one recvmmsg per wake-up, no allocation per
 * datagram, sources as numbers; transfers are keyed by ip * 65536 + port);
 * files are read in 512 KiB chunks (the next one prefetched, buffers recycled)
 * and blocks are sent as views of them after a reused 4-byte header; ACKs are
 * parsed without allocating; one timer per transfer is refreshed on progress,
 * not created per packet; nothing is logged per packet. Busy polling
 * (`busyPollMicros`, config default 50) spares the wake-up per packet. A
 * transfer's own port is served by two sockets (udp.ts openUdpForPeer): one
 * connect()ed to the client, so the kernel finds it and its route without a
 * lookup per packet, and one for everyone else, which answers strangers with
 * ERROR 5 (a connected socket alone would make the kernel answer them with
 * ICMP port unreachable).
 */
import { read as fsRead } from 'node:fs';
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIPv4 } from 'node:net';
import type { FileHandle } from 'node:fs/promises';
import type { PortRange } from '../config/config.js';
import type { Logger } from '../lib/log.js';
import type { Service } from '../lib/service.js';
import {
  ackBlock,
  decode,
  ErrorCode,
  errorPacket,
  encode,
  Opcode,
  peekOpcode,
  TftpDecodeError,
  writeDataHeader,
  type RequestPacket,
  type TftpOption,
} from '../protocol/tftp/index.js';
import { negotiate, type Negotiated } from '../protocol/tftp/options.js';
import { openInRoot, wireNameToUtf8, type SafeOpenResult } from '../lib/safe-path.js';
import { DataPortAllocator, dataPortMode, NoFreeDataPortError } from './tftp-ports.js';
import { bindError } from './bind-error.js';
import { defaultUdpBackend, openUdp, openUdpForPeer, setUdpBusyPoll, udpPeer, type UdpBackend, type UdpPeer, type UdpSocket } from './udp.js';

export interface TftpServiceOptions {
  /** Directory files are served from (read-only). */
  root: string;
  /** IPv4 address the sockets bind to. */
  bindAddress: string;
  /** Server port (69); 0 picks a free one (tests). */
  port: number;
  /** Data ports; null = ephemeral. from === to: one shared data port. */
  dataPorts: PortRange | null;
  /** Retransmission timeout unless the client negotiates one. */
  timeoutMs: number;
  /** How many times a packet (window) is sent before the transfer is abandoned. */
  maxRetries: number;
  maxBlksize: number;
  maxWindowsize: number;
  logger: Logger;
  /** UDP I/O: the native addon when built, else node:dgram (see net/udp.ts). */
  udp?: UdpBackend;
  /** Keep polling this long after each datagram instead of sleeping (native only; 0 = off). */
  busyPollMicros?: number;
  /** Hears how each transfer ended, and each refused request (the boot timeline: src/events/boot-recorder.ts). */
  onTransfer?: (t: TftpTransferReport) => void;
  /**
   * Names the server answers itself, before the root is looked at (GRUB's
   * per-machine configurations and the files they load:
   * src/imaging/grub-files.ts): an opened file, or null when the name is
   * not one of them. A throw refuses the request.
   */
  resolve?: (name: string, clientIp: string) => Promise<SafeOpenResult | null>;
}

/** How a transfer ended, or why a request was refused. */
export interface TftpTransferReport {
  /** The client's address. */
  ip: string;
  /** The file asked for; null when the request could not be read. */
  file: string | null;
  outcome: 'done' | 'failed' | 'aborted' | 'refused';
  /** Bytes sent (done) or acknowledged (otherwise). */
  bytes: number;
  reason: string | null;
}

export type TftpService = Service & { readonly port: number };

/**
 * Bytes read from the file at a time (rounded to whole blocks). A transfer
 * holds at most three chunks (previous, current, prefetched next) and recycles
 * their buffers: memory stays flat at ~1.5 MiB per transfer.
 */
const CHUNK_BYTES = 512 * 1024;
const EMPTY = Buffer.alloc(0);

interface Peer extends UdpPeer {
  /** ip * 65536 + port: the transfer's key */
  readonly key: number;
  /** "address:port", for logs */
  readonly label: string;
}

function peerOf(ip: number, port: number): Peer {
  const p = udpPeer(ip, port);
  return { ...p, key: ip * 65536 + port, label: `${p.address}:${port}` };
}

/** Where a transfer's packets go out. */
interface Channel {
  readonly socket: UdpSocket;
  readonly localPort: number;
  /** True when the socket belongs to this transfer alone (closed at the end). */
  readonly owned: boolean;
  /** The transfer an owned socket delivers to (set once it exists). */
  transfer: Transfer | null;
}

interface Chunk {
  idx: number;
  buf: Buffer;
}

type Phase = 'oack' | 'data' | 'done';

interface TransferContext {
  log: Logger;
  maxRetries: number;
  ended(t: Transfer): void;
  report?: ((t: TftpTransferReport) => void) | undefined;
}

/** One read transfer. All state for its hot path lives here. */
class Transfer {
  readonly peer: Peer;
  readonly file: string;
  private readonly ctx: TransferContext;
  private readonly channel: Channel;
  private readonly fh: FileHandle;
  private readonly fd: number;
  private readonly size: number;
  private readonly blksize: number;
  private readonly windowsize: number;
  private readonly timeoutMs: number;
  private readonly lastBlock: number;
  private readonly chunkBlocks: number;
  private readonly chunkBytes: number;
  private readonly oack: Buffer | null;
  private readonly startedAt = performance.now();
  private hdr = Buffer.alloc(4);

  phase: Phase;
  /** True once the client has acknowledged anything (used to spot retransmitted RRQs). */
  progressed = false;
  private acked = 0;
  private nextToSend = 1;
  private maxSent = 0;
  private sends = 0;
  private retransmits = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Current retransmission interval: timeoutMs, doubled per retry without progress (up to 4x). */
  private interval = 0;

  // The chunk blocks are being served from, cached for the fast path.
  private cur: Buffer = EMPTY;
  private curFirst = 1;
  private curLast = 0;
  private curIdx = -1;
  private chunks: Chunk[] = [];
  private spare: Buffer[] = [];
  private loadingIdx = -1;

  constructor(ctx: TransferContext, peer: Peer, file: string, fh: FileHandle, size: number, neg: Negotiated, timeoutMs: number, channel: Channel) {
    this.ctx = ctx;
    this.peer = peer;
    this.file = file;
    this.fh = fh;
    this.fd = fh.fd;
    this.size = size;
    this.blksize = neg.blksize;
    this.windowsize = neg.windowsize;
    this.timeoutMs = neg.timeoutS !== null ? neg.timeoutS * 1000 : timeoutMs;
    this.channel = channel;
    // The last block is short; when the size is a multiple of blksize it is an empty block.
    this.lastBlock = Math.floor(size / neg.blksize) + 1;
    this.chunkBlocks = Math.max(1, Math.floor(CHUNK_BYTES / neg.blksize));
    this.chunkBytes = this.chunkBlocks * neg.blksize;
    this.oack = neg.oack.length > 0 ? encode({ op: 'OACK', options: neg.oack }) : null;
    this.phase = this.oack ? 'oack' : 'data';
  }

  get localPort(): number {
    return this.channel.localPort;
  }

  start(): void {
    this.interval = this.timeoutMs;
    this.timer = setTimeout(this.onTimeout, this.interval);
    this.sends = 1;
    this.load(0);
    if (this.oack) this.send(this.oack);
    else this.pump();
  }

  /** A packet from this transfer's peer. */
  onPacket(msg: Buffer): void {
    const w = ackBlock(msg);
    if (w >= 0) {
      this.onAck(w);
      return;
    }
    if (peekOpcode(msg) === Opcode.ERROR) {
      let detail = '';
      try {
        const p = decode(msg);
        if (p.op === 'ERROR') detail = `ERROR ${p.code} ${JSON.stringify(p.message)}`;
      } catch {
        detail = 'malformed ERROR';
      }
      this.end('aborted', `client sent ${detail}`);
    }
    // DATA, OACK or requests from the client on a data port: nothing to do.
  }

  private onAck(w: number): void {
    if (this.phase === 'data') {
      // Map the 16-bit block number back to the absolute block, counting back from the highest sent.
      const abs = this.maxSent - (((this.maxSent & 0xffff) - w) & 0xffff);
      if (abs <= this.acked) return; // duplicate or old ACK: never resend because of it
      this.acked = abs;
      this.progressed = true;
      this.sends = 1;
      if (abs >= this.lastBlock) {
        this.end('done', null);
        return;
      }
      this.restartTimer();
      this.nextToSend = abs + 1; // also restarts the window after a gap (RFC 7440)
      this.pump();
    } else if (this.phase === 'oack' && w === 0) {
      this.phase = 'data';
      this.progressed = true;
      this.sends = 1;
      this.restartTimer();
      this.pump();
    }
  }

  private readonly onTimeout = (): void => {
    if (this.phase === 'done') return;
    if (this.sends >= this.ctx.maxRetries) {
      this.end('failed', `no ACK after ${this.sends} send(s) (timeout ${this.timeoutMs} ms, doubling)`, ErrorCode.NOT_DEFINED, 'Timeout');
      return;
    }
    this.sends++;
    this.retransmits++;
    // Back off (RFC 1123 4.2.3.2). Besides sparing a congested link, this
    // matters with atftp 0.8: it answers a repeated block with one extra ACK
    // and then ignores repeats, and every packet restarts its own timer, so
    // if that ACK is lost it only re-ACKs once our interval outgrows its timeout.
    this.interval = Math.min(this.interval * 2, this.timeoutMs * 4);
    this.timer = setTimeout(this.onTimeout, this.interval);
    if (this.phase === 'oack') {
      this.send(this.oack as Buffer);
    } else {
      this.nextToSend = this.acked + 1;
      this.pump();
    }
  };

  /** Progress: the next timeout is a full base interval from now. */
  private restartTimer(): void {
    if (this.interval === this.timeoutMs) {
      (this.timer as NodeJS.Timeout).refresh(); // the common case: no allocation
    } else {
      clearTimeout(this.timer as NodeJS.Timeout);
      this.interval = this.timeoutMs;
      this.timer = setTimeout(this.onTimeout, this.interval);
    }
  }

  /** Send what the window allows. Stops (to be called again) when a chunk must be read first. */
  private pump(): void {
    let b = this.nextToSend;
    const end = Math.min(this.acked + this.windowsize, this.lastBlock);
    while (b <= end) {
      let data: Buffer;
      if (b >= this.curFirst && b <= this.curLast) {
        const start = (b - this.curFirst) * this.blksize;
        data = this.cur.subarray(start, start + this.blksize);
      } else {
        const d = this.slowBlock(b);
        if (d === null) break;
        data = d;
      }
      this.sendData(b, data);
      b++;
    }
    this.nextToSend = b;
    if (b - 1 > this.maxSent) this.maxSent = b - 1;
  }

  private sendData(block: number, data: Buffer): void {
    const sock = this.channel.socket;
    // A send the kernel could not take at once may still point at our buffers
    // (dgram queues them): then the shared header must not be rewritten, so take a fresh one.
    if (sock.retainsBuffers()) this.hdr = Buffer.allocUnsafe(4);
    writeDataHeader(this.hdr, block & 0xffff);
    sock.send(this.hdr, data, this.peer);
  }

  private send(packet: Buffer): void {
    this.channel.socket.send(packet, null, this.peer);
  }

  /** Block data outside the current chunk: switch chunks, or start reading and return null. */
  private slowBlock(b: number): Buffer | null {
    const off = (b - 1) * this.blksize;
    if (off >= this.size) return EMPTY; // the empty final block
    const idx = Math.floor((b - 1) / this.chunkBlocks);
    const c = this.chunks.find((x) => x.idx === idx);
    if (!c) {
      this.load(idx);
      return null;
    }
    this.cur = c.buf;
    this.curIdx = idx;
    this.curFirst = idx * this.chunkBlocks + 1;
    // Blocks wholly or partly inside this chunk's bytes.
    this.curLast = this.curFirst + Math.ceil(c.buf.length / this.blksize) - 1;
    // Keep the previous chunk (a window may restart there) and prefetch the next.
    this.keepChunksAround(idx);
    this.load(idx + 1);
    const start = off - idx * this.chunkBytes;
    return c.buf.subarray(start, start + this.blksize);
  }

  /** Read chunk `idx` (one read at a time); pump again when it arrives. */
  private load(idx: number): void {
    if (this.loadingIdx !== -1 || this.phase === 'done') return;
    const pos = idx * this.chunkBytes;
    if (pos >= this.size || this.chunks.some((x) => x.idx === idx)) return;
    const len = Math.min(this.chunkBytes, this.size - pos);
    const buf = (len === this.chunkBytes ? this.spare.pop() : undefined) ?? Buffer.allocUnsafe(len);
    this.loadingIdx = idx;
    let filled = 0;
    const onRead = (err: NodeJS.ErrnoException | null, n: number): void => {
      if (this.phase === 'done') return;
      if (err || n === 0) {
        this.loadingIdx = -1;
        this.end('failed', err ? `read error: ${err.message}` : 'file shrank during the transfer', ErrorCode.NOT_DEFINED, 'Read error');
        return;
      }
      filled += n;
      if (filled < len) {
        fsRead(this.fd, buf, filled, len - filled, pos + filled, onRead);
        return;
      }
      this.loadingIdx = -1;
      this.chunks.push({ idx, buf });
      if (this.chunks.length > 3) this.keepChunksAround(this.curIdx, idx);
      if (this.phase === 'data') this.pump();
    };
    fsRead(this.fd, buf, 0, len, pos, onRead);
  }

  /** Drop chunks other than around `idx` (and `also`), keeping their buffers for reuse. */
  private keepChunksAround(idx: number, also = idx): void {
    const kept: Chunk[] = [];
    for (const c of this.chunks) {
      if ((c.idx >= idx - 1 && c.idx <= idx + 1) || c.idx === also) kept.push(c);
      // A buffer may be reused only when no queued send still points into it.
      else if (c.buf.length === this.chunkBytes && this.spare.length < 2 && !this.channel.socket.retainsBuffers()) this.spare.push(c.buf);
    }
    this.chunks = kept;
  }

  /** Abort without a word to the client (server closing, replaced by a new request). */
  abort(reason: string): void {
    this.end('aborted', reason);
  }

  private end(outcome: 'done' | 'failed' | 'aborted', reason: string | null, errCode?: number, errMsg?: string): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    if (this.timer) clearTimeout(this.timer);
    if (errCode !== undefined && errMsg !== undefined) this.send(errorPacket(errCode, errMsg));
    const durationMs = performance.now() - this.startedAt;
    const fields = {
      client: this.peer.label,
      file: this.file,
      dataPort: this.channel.localPort,
      durationMs: Math.round(durationMs * 10) / 10,
      retransmits: this.retransmits,
    };
    if (outcome === 'done') {
      this.ctx.log.info(
        { ...fields, bytes: this.size, rateMBps: Math.round((this.size / 1e6 / Math.max(durationMs, 0.001)) * 1000 * 10) / 10 },
        'tftp transfer done',
      );
    } else if (outcome === 'aborted') {
      this.ctx.log.info({ ...fields, bytesAcked: Math.min(this.acked * this.blksize, this.size), reason }, 'tftp transfer aborted');
    } else {
      this.ctx.log.warn({ ...fields, bytesAcked: Math.min(this.acked * this.blksize, this.size), reason }, 'tftp transfer failed');
    }
    this.ctx.report?.({ ip: this.peer.address, file: this.file, outcome, bytes: outcome === 'done' ? this.size : Math.min(this.acked * this.blksize, this.size), reason });
    this.chunks = [];
    this.spare = [];
    this.cur = EMPTY;
    this.fh.close().catch(() => undefined);
    this.ctx.ended(this);
  }
}

function validate(opts: TftpServiceOptions): void {
  const int = (name: string, v: number, min: number, max: number): void => {
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new RangeError(`TFTP '${name}' must be an integer ${min}-${max}: current value is ${v}`);
    }
  };
  int('port', opts.port, 0, 65535);
  int('timeoutMs', opts.timeoutMs, 1, 255_000);
  int('maxRetries', opts.maxRetries, 1, 1000);
  int('maxBlksize', opts.maxBlksize, 8, 65464);
  int('maxWindowsize', opts.maxWindowsize, 1, 65535);
  int('busyPollMicros', opts.busyPollMicros ?? 0, 0, 1000);
  if (opts.dataPorts) {
    int('dataPorts.from', opts.dataPorts.from, 1, 65535);
    int('dataPorts.to', opts.dataPorts.to, opts.dataPorts.from, 65535);
  }
}

/** The TFTP service. `port` is the bound server port (useful with port 0). */
export function createTftpService(opts: TftpServiceOptions): TftpService {
  validate(opts);
  const log = opts.logger.child({ subsystem: 'tftp' });
  const { root, dataPorts } = opts;
  const portMode = dataPortMode(dataPorts);
  const sharedPort = portMode.kind === 'shared' ? portMode.port : null;
  /** Per-transfer ports (ephemeral or a range); null in the shared mode. */
  const ports = portMode.kind === 'shared' ? null : new DataPortAllocator(portMode.kind === 'range' ? portMode.range : null);
  const backend = opts.udp ?? defaultUdpBackend();

  let bindAddress = opts.bindAddress;
  let main: UdpSocket | null = null;
  /** The one data socket when sharedPort is set (the main socket when sharedPort equals the server port). */
  let shared: UdpSocket | null = null;
  let boundPort = 0;
  let closing = false;
  let started = false;
  let ready = false;
  /** Busy polling was switched on by start() (and is switched off by close()). */
  let busyPolling = false;
  const byPeer = new Map<number, Transfer>();
  const pendingPeers = new Set<number>();

  const ctx: TransferContext = {
    log,
    maxRetries: opts.maxRetries,
    report: opts.onTransfer,
    ended(t) {
      if (byPeer.get(t.peer.key) === t) byPeer.delete(t.peer.key);
      const ch = channels.get(t);
      channels.delete(t);
      if (ch?.owned && ports) void ports.release(ch.socket);
    },
  };
  const channels = new Map<Transfer, Channel>();

  /** A packet on a data port from someone who is not that port's client. */
  function wrongTid(sock: UdpSocket, msg: Buffer, ip: number, port: number): void {
    if (peekOpcode(msg) === Opcode.ERROR) return; // never answer an error with an error
    sock.send(errorPacket(ErrorCode.UNKNOWN_TID, 'Unknown transfer ID'), null, udpPeer(ip, port));
  }

  function refuse(peer: Peer, code: number, message: string, fields: Record<string, unknown>): void {
    log.info({ client: peer.label, code, ...fields }, `tftp request refused: ${message}`);
    if (main) main.send(errorPacket(code, message), null, peer);
    const file = fields['file'];
    opts.onTransfer?.({ ip: peer.address, file: typeof file === 'string' ? file : null, outcome: 'refused', bytes: 0, reason: message });
  }

  function onMainMessage(msg: Buffer, ip: number, port: number): void {
    if (!ready) return; // the shared data port is still being bound
    if (sharedPort !== null && shared === main) {
      const t = byPeer.get(ip * 65536 + port);
      const op = peekOpcode(msg);
      if (t && op !== Opcode.RRQ && op !== Opcode.WRQ) {
        t.onPacket(msg);
        return;
      }
    }
    try {
      onRequest(msg, ip, port);
    } catch (err) {
      log.error({ err, client: peerOf(ip, port).label }, 'tftp request handling failed');
    }
  }

  function onSharedMessage(msg: Buffer, ip: number, port: number): void {
    const t = byPeer.get(ip * 65536 + port);
    if (t) t.onPacket(msg);
    else wrongTid(shared as UdpSocket, msg, ip, port);
  }

  /** `msg` is only valid during this call: everything kept from it is decoded into strings first. */
  function onRequest(msg: Buffer, ip: number, port: number): void {
    const op = peekOpcode(msg);
    if (op === null) return; // not even an opcode: silence
    if (op >= Opcode.DATA && op <= Opcode.OACK) return; // stray packet of a finished transfer
    const peer = peerOf(ip, port);
    let req: RequestPacket;
    try {
      const p = decode(msg);
      if (p.op !== 'RRQ' && p.op !== 'WRQ') return;
      req = p;
    } catch (err) {
      const why = err instanceof TftpDecodeError ? err.message : String(err);
      refuse(peer, ErrorCode.ILLEGAL_OPERATION, 'Illegal TFTP operation', { why });
      return;
    }
    if (req.op === 'WRQ') {
      refuse(peer, ErrorCode.ACCESS_VIOLATION, 'Read-only server', { file: req.filename });
      return;
    }
    const mode = req.mode.toLowerCase();
    if (mode !== 'octet' && mode !== 'netascii') {
      refuse(peer, ErrorCode.ILLEGAL_OPERATION, 'Unsupported mode', { file: req.filename, mode: req.mode });
      return;
    }
    const name = wireNameToUtf8(req.filename);
    if (name === null) {
      refuse(peer, ErrorCode.FILE_NOT_FOUND, 'File not found', { file: req.filename, why: 'name is not UTF-8' });
      return;
    }
    const key = peer.key;
    if (pendingPeers.has(key)) return; // the same request again while we open the file
    const existing = byPeer.get(key);
    if (existing) {
      if (!existing.progressed && existing.file === name) return; // retransmitted RRQ
      existing.abort('replaced by a new request from the same client port');
    }
    pendingPeers.add(key);
    startTransfer(req, name, mode, peer)
      .catch((err: unknown) => {
        log.error({ err, client: peer.label, file: name }, 'tftp transfer could not start');
      })
      .finally(() => pendingPeers.delete(key));
  }

  /** A data socket for one transfer, on a port from `ports`; its packets go to that transfer alone (others get ERROR 5). */
  async function bindOwned(allocator: DataPortAllocator, peer: Peer): Promise<Channel> {
    let channel: Channel | null = null;
    const sock = await allocator.acquire((port) =>
      openUdpForPeer(backend, {
        address: bindAddress,
        port,
        peer,
        onMessage(msg, ip, srcPort) {
          if (channel === null) return; // no I/O callback runs before acquire() has returned; for the type
          const t = channel.transfer;
          if (t !== null && srcPort === peer.port && ip === peer.ip) t.onPacket(msg);
          else wrongTid(channel.socket, msg, ip, srcPort);
        },
        onError(err) {
          log.warn({ err, dataPort: channel?.localPort ?? port }, 'tftp data socket error');
        },
      }),
    );
    channel = { socket: sock, localPort: sock.port, owned: true, transfer: null };
    return channel;
  }

  /** Where the transfer's packets go: the shared data socket, or a socket of its own (NoFreeDataPortError when the range is full). */
  async function openChannel(peer: Peer): Promise<Channel> {
    if (ports === null) return { socket: shared as UdpSocket, localPort: sharedPort as number, owned: false, transfer: null };
    return bindOwned(ports, peer);
  }

  async function open(name: string, peer: Peer): Promise<SafeOpenResult> {
    if (opts.resolve) {
      try {
        const own = await opts.resolve(name, peer.address);
        if (own !== null) return own;
      } catch (err) {
        log.error({ err, client: peer.label, file: name }, 'tftp: answering a generated file failed');
        return { ok: false, reason: 'not-found', message: 'the server could not generate it (see the log)' };
      }
    }
    return openInRoot(root, name);
  }

  async function startTransfer(req: RequestPacket, name: string, mode: string, peer: Peer): Promise<void> {
    const opened = await open(name, peer);
    if (closing) {
      if (opened.ok) await opened.handle.close();
      return;
    }
    if (!opened.ok) {
      if (opened.reason === 'not-found') refuse(peer, ErrorCode.FILE_NOT_FOUND, 'File not found', { file: name });
      else if (opened.reason === 'access') refuse(peer, ErrorCode.ACCESS_VIOLATION, 'Access violation', { file: name, why: opened.message });
      else refuse(peer, ErrorCode.ACCESS_VIOLATION, 'Not a regular file', { file: name });
      return;
    }
    const neg = negotiate({ op: 'RRQ', options: req.options, fileSize: opened.size }, opts);
    let channel: Channel;
    try {
      channel = await openChannel(peer);
    } catch (err) {
      await opened.handle.close();
      if (err instanceof NoFreeDataPortError) {
        refuse(peer, ErrorCode.NOT_DEFINED, 'No free data port', { file: name, why: err.message });
        return;
      }
      throw err;
    }
    if (closing) {
      await opened.handle.close();
      if (channel.owned && ports) await ports.release(channel.socket);
      return;
    }
    const t = new Transfer(ctx, peer, name, opened.handle, opened.size, neg, opts.timeoutMs, channel);
    channels.set(t, channel);
    if (channel.owned) channel.transfer = t;
    byPeer.get(peer.key)?.abort('replaced by a new request from the same client port');
    byPeer.set(peer.key, t);
    log.info(
      {
        client: peer.label,
        file: name,
        size: opened.size,
        mode,
        dataPort: channel.localPort,
        blksize: neg.blksize,
        windowsize: neg.windowsize,
        timeoutS: neg.timeoutS,
        tsize: neg.tsize,
        options: optionText(req.options),
        ignored: neg.ignored.length > 0 ? neg.ignored : undefined,
      },
      'tftp transfer start',
    );
    t.start();
  }

  return {
    name: 'tftp',
    get port() {
      return boundPort;
    },
    async start() {
      if (started) throw new Error('TFTP service already started');
      started = true;
      if (!isIPv4(bindAddress)) bindAddress = (await dnsLookup(bindAddress, { family: 4 })).address;
      const sock = await openUdp(backend, {
        address: bindAddress,
        port: opts.port,
        onMessage: onMainMessage,
        onError: (err) => log.error({ err }, 'tftp server socket error'),
      }).catch((err: unknown) => {
        throw bindError('TFTP socket', bindAddress, opts.port, err);
      });
      main = sock;
      boundPort = sock.port;
      if (sharedPort !== null) {
        if (sharedPort === boundPort) shared = main;
        else {
          try {
            shared = await openUdp(backend, {
              address: bindAddress,
              port: sharedPort,
              onMessage: onSharedMessage,
              onError: (err) => log.error({ err }, 'tftp shared data socket error'),
            });
          } catch (err) {
            await main.close();
            main = null;
            throw err;
          }
        }
      }
      ready = true;
      const busyPoll = opts.busyPollMicros ?? 0;
      busyPolling = busyPoll > 0 && backend === 'native' && setUdpBusyPoll(busyPoll);
      if (busyPoll > 0 && !busyPolling) log.warn({ busyPollMicros: busyPoll }, 'tftp busy polling needs the native UDP addon: not used');
      log.info({ address: bindAddress, port: boundPort, root, dataPorts, udp: backend, busyPollMicros: busyPolling ? busyPoll : undefined }, 'tftp listening');
    },
    async close() {
      if (closing) return;
      closing = true;
      if (busyPolling) setUdpBusyPoll(0);
      for (const t of [...byPeer.values()]) t.abort('server closing');
      const socks: UdpSocket[] = [];
      if (shared && shared !== main) socks.push(shared);
      if (main) socks.push(main);
      shared = null;
      main = null;
      await Promise.all([...socks.map((x) => x.close()), ports?.closeAll()]);
    },
  };
}

function optionText(options: readonly TftpOption[]): string | undefined {
  return options.length ? options.map((o) => `${o.name}=${o.value}`).join(' ') : undefined;
}
