/**
 * The multicast sender: one session, one object, any number of receivers.
 *
 * Sending. Blocks go to the group in order (a "sweep" from `head`), paced
 * by a token bucket at the session's rate, up to 40 datagrams per system
 * call (UDP GSO on the native socket). Repairs come first: a receiver's
 * STATUS names the blocks it lacks, and each is resent once for everyone
 * who asked within a hold-off (so eight receivers that lost one block cost
 * one repair), never the whole object again.
 *
 * A receiver's STATUS names the highest sequence number it has taken; a
 * block it still lacks is not resent while its last copy went out after
 * that (the copy may be on its way or in the receiver's socket buffer: a
 * receiver short of CPU reports late), so a lost block costs one repair
 * however late the reports come (within 100 ms: after that the copy is
 * taken as lost, e.g. the last ones sent). A receiver whose STATUS has no
 * sequence number gets a 30 ms hold-off instead.
 *
 * Flow. A receiver holds at most `window` blocks out of order; the sender
 * never sends a new block past the slowest active receiver's delivered
 * point plus its window, so nothing it sends is wasted on a full receiver.
 * A receiver that holds the session back for longer than `slowMs` (while
 * others are waiting) is dropped with the reason; in a server session it
 * finishes by unicast. A receiver not heard from for `receiverTimeoutMs`
 * fails alone; the others go on.
 *
 * Rate. Starts at `initialRateBps`, grows while receivers keep up, shrinks
 * when a receiver's kernel drops datagrams for want of buffer (it cannot
 * keep up) or when most receivers lose more than a tenth (a congested
 * link). One lossy receiver does not slow the session: its losses are
 * repaired, and it is dropped if it holds the others back. Never above
 * `maxRateBps`.
 *
 * Late joiners and restarts. A JOIN says which blocks the receiver already
 * holds (`contig`). A receiver is active in the current sweep when the
 * sweep's head lies within its window; otherwise it waits, and when the
 * sweep reaches the end a new sweep starts at the lowest block a waiting
 * receiver needs (WDS's Auto-Cast, at object level). Every datagram names
 * its session; receivers only take DATA of their own session from their
 * sender's address.
 */
import { randomBytes } from 'node:crypto';
import {
  ControlCode,
  DATA_HEADER_BYTES,
  DoneResult,
  MsgType,
  SessionState,
  decodeDone,
  decodeJoin,
  decodeStatus,
  encodeAnnounce,
  encodeControl,
  messageType,
  sameSession,
  sessionIdHex,
  writeDataHeader,
  type SessionId,
} from '../protocol/mcast/codec.js';
import type { McastSocket } from '../net/mcast-udp.js';
import { udpPeer, type UdpPeer } from '../net/udp.js';
import { BlockCache, type FileObject } from './source.js';

export type ReceiverState = 'active' | 'waiting' | 'done' | 'failed' | 'dropped';

export interface SenderOptions {
  object: FileObject;
  /** Shown to receivers (a file or image name). */
  label: string;
  /** The object's sha256 when known; otherwise it is computed during the first sweep. */
  digest?: Buffer;
  /** When false, `digest` only names the object (an image's identity), and the receiver checks each stream itself. */
  digestIsSha256?: boolean;
  session?: SessionId;
  group: UdpPeer;
  /** Receivers to wait for before sending (0: start at the first). */
  expected: number;
  /** With maxWaitMs: start with at least this many once the wait has passed. */
  minReceivers: number;
  maxWaitMs: number | null;
  maxRateBps: number;
  initialRateBps?: number;
  blockSize: number;
  /** The largest out-of-order window a receiver may claim (blocks). */
  maxWindow: number;
  slowMs: number;
  receiverTimeoutMs: number;
  /** A server admits only the receivers it expects; standalone admits anyone. */
  admit?: (receiver: SessionId, from: UdpPeer) => boolean;
  onEvent?: (e: SenderEvent) => void;
  log?: (msg: string) => void;
}

export type SenderEvent =
  | { kind: 'joined'; receiver: string; address: string; contig: number }
  | { kind: 'started'; receivers: number }
  | { kind: 'receiver'; receiver: string; state: ReceiverState; reason: string | null }
  | { kind: 'finished'; ok: boolean };

export interface ReceiverView {
  id: string;
  address: string;
  state: ReceiverState;
  /** Bytes delivered to its disk or file. */
  bytes: number;
  /** Share of DATA datagrams it lost (by sequence numbers). */
  lossShare: number;
  reason: string | null;
}

export interface SenderStats {
  session: string;
  state: 'waiting' | 'sending' | 'finished' | 'cancelled';
  objectBytes: number;
  rateBps: number;
  /** The ceiling now (SenderOptions.maxRateBps, or what setMaxRate() set). */
  maxRateBps: number;
  sweeps: number;
  datagrams: number;
  repairs: number;
  /** Repairs over first sends. */
  retransmittedShare: number;
  /** Sends the kernel refused (the datagrams were lost), and the last errno. */
  sendErrors: number;
  lastSendError: number;
  /** From the start of sending (ms), null while waiting. */
  elapsedMs: number | null;
  receivers: ReceiverView[];
}

interface Rcv {
  id: SessionId;
  key: string;
  peer: UdpPeer;
  state: ReceiverState;
  delivered: number;
  window: number;
  lastHeard: number;
  blockedSince: number | null;
  received: number;
  seqLost: number;
  rxDropped: number;
  intervalLoss: number;
  /** Smoothed share of DATA it loses. */
  lossEwma: number;
  /** Since when it has lost far more than the others (its repairs cost everyone), or null. */
  lossySince: number | null;
  reason: string | null;
  lastControl: number;
  /** The highest DATA sequence number it reported taking, or null (not yet, or its STATUS does not say). */
  maxSeq: number | null;
}

const SEGMENTS = 40;
const TICK_MS = 20;
const MIN_RATE = 1_000_000;
/** How long a copy the receiver has not yet reached is taken to be on its way (then it is resent: a lost tail). */
const UNSEEN_HOLD_MS = 100;

function keyOf(id: SessionId): string {
  return sessionIdHex(id);
}

export class MulticastSender {
  readonly session: SessionId;
  private readonly cache: BlockCache;
  private readonly blocks: number;
  private readonly ringSize: number;
  private readonly sentTag: Float64Array;
  private readonly sentAt: Float64Array;
  /** The sequence number of each slot's last copy. */
  private readonly sentSeq: Uint32Array;
  private readonly queuedTag: Float64Array;
  private readonly queue: Int32Array;
  private qHead = 0;
  private qLen = 0;
  private readonly rcv = new Map<string, Rcv>();
  private readonly batch: Buffer;
  private readonly seg: number;
  private state: SenderStats['state'] = 'waiting';
  private head = 0;
  /** One past the highest block ever sent. */
  private maxSent = 0;
  private sweeps = 0;
  private seq = 0;
  private datagrams = 0;
  private sendErrors = 0;
  private lastSendError = 0;
  private repairs = 0;
  private rate: number;
  private tokens = 0;
  private lastPump = 0;
  private pumpTimer: NodeJS.Timeout | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private waitingWritable = false;
  private congested = false;
  private lastDecrease = 0;
  private lastIncrease = 0;
  private lastAnnounce = 0;
  private digest: Buffer | null;
  private readonly createdAt = Date.now();
  private startedAt: number | null = null;
  private finish: ((ok: boolean) => void) | null = null;
  private readonly done: Promise<boolean>;
  private holdoffMs = 30;
  private maxRate: number;

  constructor(
    private readonly socket: McastSocket,
    private readonly o: SenderOptions,
  ) {
    if (!(o.blockSize > 0 && o.blockSize + DATA_HEADER_BYTES <= 65507)) throw new RangeError(`block size out of range: ${o.blockSize}`);
    this.session = o.session ?? { hi: randomBytes(4).readUInt32BE(0), lo: randomBytes(4).readUInt32BE(0) };
    this.seg = DATA_HEADER_BYTES + o.blockSize;
    let ring = 1;
    while (ring < 2 * o.maxWindow + 512) ring *= 2;
    this.ringSize = ring;
    this.cache = new BlockCache(o.object, o.blockSize, ring);
    this.blocks = this.cache.blocks;
    this.sentTag = new Float64Array(ring).fill(-1);
    this.sentAt = new Float64Array(ring);
    this.sentSeq = new Uint32Array(ring);
    this.queuedTag = new Float64Array(ring).fill(-1);
    this.queue = new Int32Array(ring);
    this.batch = Buffer.allocUnsafe(SEGMENTS * this.seg);
    if (!(o.maxRateBps > 0)) throw new RangeError(`maxRateBps must be above 0, got ${o.maxRateBps}`);
    this.maxRate = o.maxRateBps;
    this.rate = Math.min(o.maxRateBps, o.initialRateBps ?? 60_000_000);
    this.digest = o.digest ?? null;
    this.done = new Promise((resolve) => (this.finish = resolve));
  }

  /** Runs the session; resolves true when every receiver that joined (and at least the required number) has the object verified. */
  run(): Promise<boolean> {
    this.tickTimer = setInterval(() => this.tick(), TICK_MS);
    this.announce();
    return this.done;
  }

  get id(): string {
    return sessionIdHex(this.session);
  }

  /** Datagrams from the socket. */
  handle(msg: Buffer, ip: number, port: number): void {
    const type = messageType(msg);
    if (type === 0 || !sameSession(msg, this.session)) return;
    if (type === MsgType.status) this.onStatus(msg, ip, port);
    else if (type === MsgType.join) this.onJoin(msg, ip, port);
    else if (type === MsgType.done) this.onDone(msg, ip, port);
  }

  private onJoin(msg: Buffer, ip: number, port: number): void {
    const j = decodeJoin(msg);
    if (!j) return;
    const peer = udpPeer(ip, port);
    if (this.state === 'finished' || this.state === 'cancelled') {
      // A receiver that missed how it left is told again (dropped: it goes on by unicast); a stranger that the session is over.
      const r = this.rcv.get(keyOf(j.receiver));
      const code = r?.state === 'done' ? ControlCode.bye : r?.state === 'dropped' ? ControlCode.dropped : this.state === 'cancelled' ? ControlCode.cancelled : ControlCode.refused;
      this.socket.send(encodeControl({ session: this.session, receiver: j.receiver, code, reason: r?.reason ?? `the session is ${this.state}` }), peer);
      return;
    }
    const key = keyOf(j.receiver);
    let r = this.rcv.get(key);
    if (r && r.peer.ip !== ip) return; // a receiver id is bound to the address it first joined from
    if (!r) {
      if (this.o.admit && !this.o.admit(j.receiver, peer)) {
        this.socket.send(encodeControl({ session: this.session, receiver: j.receiver, code: ControlCode.refused, reason: 'not a receiver of this session' }), peer);
        return;
      }
      r = {
        id: j.receiver,
        key,
        peer,
        state: 'waiting',
        delivered: 0,
        window: 0,
        lastHeard: 0,
        blockedSince: null,
        received: 0,
        seqLost: 0,
        rxDropped: 0,
        intervalLoss: 0,
        lossEwma: 0,
        lossySince: null,
        reason: null,
        lastControl: 0,
        maxSeq: null,
      };
      this.rcv.set(key, r);
      this.o.onEvent?.({ kind: 'joined', receiver: key, address: peer.address, contig: j.contig });
      this.o.log?.(`receiver ${key} joined from ${peer.address}:${port}${j.contig ? ` holding ${j.contig} blocks` : ''}`);
    }
    if (r.state === 'done') {
      this.control(r, ControlCode.bye, 'already done');
      return;
    }
    if (r.state === 'failed' || r.state === 'dropped') {
      this.control(r, r.state === 'dropped' ? ControlCode.dropped : ControlCode.refused, r.reason ?? r.state);
      return;
    }
    const rejoin = r.lastHeard !== 0 && (r.peer.port !== port || j.contig !== r.delivered);
    r.peer = peer;
    r.lastHeard = Date.now();
    r.window = Math.min(j.window, this.o.maxWindow);
    if (rejoin || r.delivered === 0) r.delivered = Math.min(j.contig, this.blocks);
    r.blockedSince = null;
    if (this.state === 'waiting') r.state = 'active';
    else if (r.state !== 'active' || rejoin) r.state = this.inSweep(r) ? 'active' : 'waiting';
    this.control(r, ControlCode.accepted, r.state);
    this.kick();
  }

  /** The current sweep's head lies in the receiver's window. */
  private inSweep(r: Rcv): boolean {
    return this.head >= r.delivered && this.head <= r.delivered + r.window - 1;
  }

  private onStatus(msg: Buffer, ip: number, port: number): void {
    const s = decodeStatus(msg);
    if (!s) return;
    const r = this.rcv.get(keyOf(s.receiver));
    if (!r || r.peer.ip !== ip || r.peer.port !== port) return;
    const now = Date.now();
    r.lastHeard = now;
    if (r.state !== 'active' && r.state !== 'waiting') {
      // It has not heard that it is out (or done): say it again, at most every 100 ms.
      if (now - r.lastControl >= 100) this.control(r, r.state === 'done' ? ControlCode.bye : r.state === 'dropped' ? ControlCode.dropped : ControlCode.refused, r.reason ?? r.state);
      return;
    }
    const dRecv = (s.received - r.received) >>> 0;
    const dLost = (s.seqLost - r.seqLost) >>> 0;
    if (dRecv + dLost > 64) {
      r.intervalLoss = dLost / (dRecv + dLost);
      r.lossEwma = 0.7 * r.lossEwma + 0.3 * r.intervalLoss;
    }
    // The receiver's kernel dropped datagrams for want of buffer: it cannot keep up at this rate (the counter
    // undercounts segmented datagrams, so the loss share tells how much). A few are a scheduling hiccup.
    if (s.rxDropped !== r.rxDropped && r.state === 'active' && r.intervalLoss > 0.01) this.congested = true;
    r.received = s.received;
    r.seqLost = s.seqLost;
    r.rxDropped = s.rxDropped;
    r.maxSeq = s.maxSeq ?? null;
    if (s.contig > r.delivered) r.delivered = Math.min(s.contig, this.blocks);
    if (r.state !== 'active' || s.nakBits === 0) {
      this.kick();
      return;
    }
    const naks = s.naks;
    const maxSeq = r.maxSeq;
    let queued = 0;
    for (let i = 0; i < naks.length; i++) {
      let byte = naks[i] as number;
      if (byte === 0) continue;
      for (let bit = 0; byte !== 0; bit++, byte >>= 1) {
        if ((byte & 1) === 0) continue;
        const i8 = i * 8 + bit;
        if (i8 >= s.nakBits) break;
        const b = s.nakBase + i8;
        if (b >= this.maxSent) continue; // never sent: it comes as new data
        const slot = b & (this.ringSize - 1);
        if (this.queuedTag[slot] === b) continue;
        if (this.sentTag[slot] === b) {
          // Its last copy may not have reached this receiver yet: it went out after the last datagram the receiver
          // took. Bounded in time: when the lost copies are the last ones sent (the tail), nothing later comes.
          const age = now - (this.sentAt[slot] as number);
          const unseen = maxSeq !== null && (((this.sentSeq[slot] as number) - maxSeq) | 0) > 0;
          if (maxSeq !== null ? unseen && age < UNSEEN_HOLD_MS : age < this.holdoffMs) continue;
        }
        if (this.qLen === this.queue.length) break;
        this.queuedTag[slot] = b;
        this.queue[(this.qHead + this.qLen) % this.queue.length] = b;
        this.qLen++;
        queued++;
      }
    }
    if (queued > 0 || this.head < this.blocks) this.kick();
  }

  private onDone(msg: Buffer, ip: number, port: number): void {
    const d = decodeDone(msg);
    if (!d) return;
    const r = this.rcv.get(keyOf(d.receiver));
    if (!r || r.peer.ip !== ip) return;
    r.peer = udpPeer(ip, port);
    r.lastHeard = Date.now();
    if (r.state === 'active' || r.state === 'waiting') {
      if (d.result === DoneResult.verified) {
        r.delivered = this.blocks;
        this.setState(r, 'done', null);
      } else {
        this.setState(r, 'failed', d.reason || `failed (result ${d.result})`);
      }
    }
    this.control(r, ControlCode.bye, r.state);
    this.checkFinished();
  }

  private setState(r: Rcv, state: ReceiverState, reason: string | null): void {
    if (r.state === state) return;
    r.state = state;
    r.reason = reason;
    this.o.onEvent?.({ kind: 'receiver', receiver: r.key, state, reason });
    this.o.log?.(`receiver ${r.key} (${r.peer.address}): ${state}${reason ? `: ${reason}` : ''}`);
  }

  private control(r: Rcv, code: number, reason: string): void {
    r.lastControl = Date.now();
    this.socket.send(encodeControl({ session: this.session, receiver: r.id, code, reason }), r.peer);
  }

  /** Drops a receiver from the session (it is told why). */
  drop(receiver: string, reason: string): boolean {
    const r = this.rcv.get(receiver);
    if (!r || (r.state !== 'active' && r.state !== 'waiting')) return false;
    this.setState(r, 'dropped', reason);
    this.control(r, ControlCode.dropped, reason);
    this.checkFinished();
    this.kick();
    return true;
  }

  cancel(reason: string): void {
    if (this.state === 'finished' || this.state === 'cancelled') return;
    for (const r of this.rcv.values()) {
      if (r.state === 'active' || r.state === 'waiting') {
        this.setState(r, 'failed', reason);
        this.control(r, ControlCode.cancelled, reason);
      }
    }
    this.state = 'cancelled';
    this.end(false);
  }

  private announce(): void {
    this.lastAnnounce = Date.now();
    let joined = 0;
    for (const r of this.rcv.values()) if (r.state !== 'failed') joined++;
    const state =
      this.state === 'waiting' ? SessionState.waiting : this.state === 'sending' ? SessionState.sending : this.state === 'finished' ? SessionState.finished : SessionState.cancelled;
    this.socket.send(
      encodeAnnounce({
        session: this.session,
        state,
        digestIsSha256: this.o.digestIsSha256 !== false,
        digestFinal: this.digest !== null,
        blockSize: this.o.blockSize,
        objectBytes: this.o.object.bytes,
        window: this.o.maxWindow,
        head: this.head,
        rateKbps: (this.rate * 8) / 1000,
        joined,
        expected: this.o.expected,
        digest: this.digest ?? Buffer.alloc(32),
        label: this.o.label,
      }),
      this.o.group,
    );
  }

  private tick(): void {
    const now = Date.now();
    if (this.state === 'finished' || this.state === 'cancelled') return;
    if (this.digest === null) {
      this.digest = this.cache.digest();
      if (this.digest === null && this.head >= this.blocks && this.state === 'sending') this.digest = this.cache.hashRest();
      if (this.digest !== null) this.announce();
    }
    // Receivers gone silent.
    for (const r of this.rcv.values()) {
      if ((r.state === 'active' || r.state === 'waiting') && now - r.lastHeard > this.o.receiverTimeoutMs) {
        this.setState(r, 'failed', `no word from the receiver for ${Math.round((now - r.lastHeard) / 1000)} s`);
      }
    }
    if (this.state === 'waiting') {
      let joined = 0;
      for (const r of this.rcv.values()) if (r.state === 'active') joined++;
      const waited = now - this.createdAt;
      const all = this.o.expected > 0 && joined >= this.o.expected;
      const enough = this.o.maxWaitMs !== null && waited >= this.o.maxWaitMs && joined >= Math.max(1, this.o.minReceivers);
      if (all || enough || (this.o.expected === 0 && joined > 0)) {
        this.state = 'sending';
        this.startedAt = now;
        this.lastPump = now;
        this.o.onEvent?.({ kind: 'started', receivers: joined });
        this.o.log?.(`sending ${this.o.object.bytes} bytes to ${joined} receiver(s)`);
        this.announce();
        this.kick();
      } else if (now - this.lastAnnounce >= 200) {
        this.announce();
      }
      return;
    }
    if (now - this.lastAnnounce >= 100) this.announce();
    this.adjustRate(now);
    // Sweeps: activate waiting receivers the head has reached; at the end, start over for those still waiting.
    let waitingMin = Infinity;
    for (const r of this.rcv.values()) {
      if (r.state !== 'waiting') continue;
      if (this.inSweep(r)) this.setState(r, 'active', null);
      else waitingMin = Math.min(waitingMin, r.delivered);
    }
    if (this.head >= this.blocks && waitingMin !== Infinity) {
      this.head = waitingMin;
      this.sweeps++;
      this.o.log?.(`sweep ${this.sweeps + 1} from block ${waitingMin} for late receivers`);
      for (const r of this.rcv.values()) if (r.state === 'waiting' && this.inSweep(r)) this.setState(r, 'active', null);
    }
    this.dropSlow(now);
    this.checkFinished();
    this.kick();
  }

  private adjustRate(now: number): void {
    const losses: number[] = [];
    for (const r of this.rcv.values()) if (r.state === 'active' && r.delivered < this.blocks) losses.push(r.intervalLoss);
    losses.sort((a, b) => a - b);
    const median = losses.length ? (losses[Math.floor(losses.length / 2)] as number) : 0;
    if (this.congested || median > 0.1) {
      if (now - this.lastDecrease >= 100) {
        // Never below the floor, nor above the ceiling (a ceiling under the floor wins).
        this.rate = Math.min(this.maxRate, Math.max(MIN_RATE, this.rate * 0.85));
        this.lastDecrease = now;
        this.lastIncrease = now;
      }
    } else if (now - this.lastIncrease >= 50 && now - this.lastDecrease >= 200) {
      this.rate = Math.min(this.maxRate, this.rate * 1.15 + 250_000);
      this.lastIncrease = now;
    }
    this.congested = false;
  }

  /** The first block no active receiver can take yet. */
  private limit(): number {
    let lim = Infinity;
    for (const r of this.rcv.values()) if (r.state === 'active' && r.delivered < this.blocks) lim = Math.min(lim, r.delivered + r.window);
    return lim;
  }

  /**
   * A receiver holds the session back when it lags the head by three
   * quarters of its window or more (the sender is about to wait for it), or
   * when it loses more than a quarter of what is sent while the others lose
   * less than a tenth (its repairs take the others' rate: a slow link or
   * port), in both cases while another receiver keeps up: then it is slower
   * than the rest, not the session slow for all. Past `slowMs` of either, it
   * is dropped with the reason.
   */
  private dropSlow(now: number): void {
    const lagging = (r: Rcv): boolean => this.head < this.blocks && this.head - r.delivered >= 0.75 * r.window;
    const keepingUp = (r: Rcv): boolean => r.delivered >= this.blocks || (this.head - r.delivered < 0.5 * r.window && r.lossEwma < 0.1);
    const live = [...this.rcv.values()].filter((r) => r.state === 'active' && r.delivered < this.blocks);
    const others = (r: Rcv): Rcv[] => [...this.rcv.values()].filter((x) => x !== r && x.state === 'active');
    for (const r of live) {
      if (lagging(r)) r.blockedSince ??= now;
      else if (this.head >= this.blocks || this.head - r.delivered < 0.5 * r.window) r.blockedSince = null;
      const rest = others(r).map((x) => x.lossEwma).sort((a, b) => a - b);
      const restMedian = rest.length ? (rest[Math.floor(rest.length / 2)] as number) : 1;
      if (r.lossEwma > 0.25 && restMedian < 0.1) r.lossySince ??= now;
      else if (r.lossEwma < 0.15) r.lossySince = null;
      if (!others(r).some(keepingUp)) continue;
      const pct = Math.floor((100 * r.delivered) / Math.max(1, this.blocks));
      if (r.blockedSince !== null && now - r.blockedSince > this.o.slowMs) {
        this.drop(r.key, `too slow: held the session back for ${Math.round((now - r.blockedSince) / 1000)} s at ${pct} %`);
      } else if (r.lossySince !== null && now - r.lossySince > this.o.slowMs) {
        this.drop(r.key, `too slow: lost ${Math.round(r.lossEwma * 100)} % of the session's datagrams for ${Math.round((now - r.lossySince) / 1000)} s at ${pct} % (a slow or lossy link; the others lose ${Math.round(restMedian * 100)} %)`);
      }
    }
  }

  private checkFinished(): void {
    if (this.state !== 'sending') return;
    let live = 0;
    let done = 0;
    for (const r of this.rcv.values()) {
      if (r.state === 'active' || r.state === 'waiting') live++;
      else if (r.state === 'done') done++;
    }
    if (live > 0) return;
    const required = Math.max(1, this.o.maxWaitMs !== null ? this.o.minReceivers : this.o.expected);
    this.state = 'finished';
    this.end(done === this.rcv.size && done >= required);
  }

  private end(ok: boolean): void {
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.tickTimer = this.pumpTimer = null;
    this.socket.onWritable(null);
    // Tell the group, a few times: receivers that missed it time out on silence anyway.
    this.announce();
    setTimeout(() => this.announce(), 50).unref();
    setTimeout(() => this.announce(), 150).unref();
    this.o.onEvent?.({ kind: 'finished', ok });
    this.finish?.(ok);
  }

  /** Schedules a pump now (sending resumes after feedback opened the window or queued repairs). */
  private kick(): void {
    if (this.state !== 'sending' || this.waitingWritable || this.pumpTimer) return;
    this.pumpTimer = setTimeout(() => this.pump(), 0);
  }

  private pump(): void {
    this.pumpTimer = null;
    if (this.state !== 'sending') return;
    const now = Date.now();
    const burst = Math.max(this.rate * 0.004, 2 * SEGMENTS * this.seg);
    this.tokens = Math.min(burst, this.tokens + ((now - this.lastPump) * this.rate) / 1000);
    this.lastPump = now;
    const limit = this.limit();
    const seg = this.seg;
    const bs = this.o.blockSize;
    const batch = this.batch;
    const group = this.o.group;
    let more = true;
    while (this.tokens > 0) {
      let k = 0;
      let len = 0;
      let firstNew = -1;
      let short = false;
      while (k < SEGMENTS && !short) {
        let b: number;
        let isNew = false;
        if (this.qLen > 0) {
          b = this.queue[this.qHead] as number;
          this.qHead = (this.qHead + 1) % this.queue.length;
          this.qLen--;
          this.queuedTag[b & (this.ringSize - 1)] = -1;
        } else if (this.head < this.blocks && this.head < limit) {
          b = this.head++;
          if (this.head > this.maxSent) this.maxSent = this.head;
          isNew = true;
        } else {
          more = false;
          break;
        }
        if (isNew && firstNew < 0) firstNew = b;
        else if (!isNew) this.repairs++;
        const data = this.cache.block(b);
        const seq = this.seq++;
        writeDataHeader(batch, k * seg, this.session, b, seq);
        data.copy(batch, k * seg + DATA_HEADER_BYTES);
        len = k * seg + DATA_HEADER_BYTES + data.length;
        const slot = b & (this.ringSize - 1);
        this.sentTag[slot] = b;
        this.sentAt[slot] = now;
        this.sentSeq[slot] = seq;
        k++;
        if (data.length < bs) short = true; // a short datagram ends a GSO batch
      }
      if (k === 0) break;
      let sent = this.socket.sendSegments(batch.subarray(0, len), seg, group);
      if (sent < 0) {
        // Lost on the way out (a full device queue): count it, take it as congestion, and let the receivers ask again.
        this.sendErrors++;
        this.lastSendError = -sent;
        this.congested = true;
        sent = k;
      }
      if (sent < k) {
        // Put back what did not go: new blocks by moving the head back, repairs to the queue.
        this.seq -= k - sent;
        for (let i = sent; i < k; i++) {
          const b = batch.readUInt32BE(i * seg + 12);
          this.sentTag[b & (this.ringSize - 1)] = -1;
          if (firstNew >= 0 && b >= firstNew) this.head = Math.min(this.head, b);
          else this.requeue(b);
        }
        this.datagrams += sent;
        this.tokens -= sent * seg;
        if (sent === 0) {
          this.waitingWritable = true;
          this.socket.onWritable(() => {
            this.waitingWritable = false;
            this.kick();
          });
          return;
        }
        continue;
      }
      this.datagrams += k;
      this.tokens -= len;
      if (!more) break;
    }
    if (this.qLen > 0 || (this.head < this.blocks && this.head < limit)) {
      this.pumpTimer = setTimeout(() => this.pump(), 1);
    }
  }

  private requeue(b: number): void {
    const slot = b & (this.ringSize - 1);
    if (this.queuedTag[slot] === b || this.qLen === this.queue.length) return;
    this.queuedTag[slot] = b;
    this.qHead = (this.qHead - 1 + this.queue.length) % this.queue.length;
    this.queue[this.qHead] = b;
    this.qLen++;
    this.repairs--; // counted again when it goes
  }

  /**
   * A new ceiling while the session runs (an operator throttles a session
   * that crowds a production link, or lets a throttled one go faster):
   * lower takes effect at once, higher is reached as the rate grows.
   */
  setMaxRate(bps: number): void {
    if (!(bps > 0) || !Number.isFinite(bps)) throw new RangeError(`the rate ceiling must be above 0 bytes/s, got ${bps}`);
    this.maxRate = bps;
    this.rate = Math.min(this.rate, bps);
    this.kick();
  }

  stats(): SenderStats {
    const originals = Math.max(1, this.datagrams - this.repairs);
    return {
      session: this.id,
      state: this.state,
      objectBytes: this.o.object.bytes,
      rateBps: this.rate,
      maxRateBps: this.maxRate,
      sweeps: this.sweeps + 1,
      datagrams: this.datagrams,
      repairs: this.repairs,
      retransmittedShare: this.repairs / originals,
      sendErrors: this.sendErrors,
      lastSendError: this.lastSendError,
      elapsedMs: this.startedAt === null ? null : Date.now() - this.startedAt,
      receivers: [...this.rcv.values()].map((r) => ({
        id: r.key,
        address: r.peer.address,
        state: r.state,
        bytes: Math.min(this.o.object.bytes, r.delivered * this.o.blockSize),
        lossShare: r.received + r.seqLost > 0 ? r.seqLost / (r.received + r.seqLost) : 0,
        reason: r.reason,
      })),
    };
  }
}
