/**
 * The multicast receiver: joins one session, takes its blocks into a ring of
 * `window` slots, delivers them to a sink strictly in order (a file, or the
 * stdin of zstd on the way to a disk), hashes what it delivers, and reports
 * DONE only once the whole object has passed and its sha256 matches the
 * sender's (or, for an image's identity digest, once every byte has passed:
 * the deploy then checks each stream).
 *
 * What it asks for: every `statusMs` a STATUS with the first block it lacks
 * and a bitmap of the blocks it lacks after it (up to what it has seen, or
 * its whole window when the sender has gone quiet: the lost tail), plus its
 * loss and kernel drop counters, which drive the sender's rate.
 *
 * What it accepts: DATA of its session from its sender's address only, of
 * the right length for the block, inside its window. Anything else is
 * counted and ignored, so bytes of another session, image or partition can
 * never reach the sink.
 */
import { createHash, type Hash } from 'node:crypto';
import {
  ControlCode,
  DATA_HEADER_BYTES,
  DATA_WORD,
  DoneResult,
  MAX_NAK_BITS,
  MsgType,
  SessionState,
  decodeAnnounce,
  decodeControl,
  encodeDone,
  encodeJoin,
  encodeStatus,
  messageType,
  sameSession,
  sessionIdHex,
  type Announce,
  type SessionId,
} from '../protocol/mcast/codec.js';
import type { McastSocket } from '../net/mcast-udp.js';
import { udpPeer, type UdpPeer } from '../net/udp.js';

/**
 * The receiver's counters, in a Uint32Array shared with the native fast path
 * (rx_ring in native/fastudp.c: same order). Native code writes CONTIG,
 * HIGHEST and the counters as DATA arrives; JavaScript writes DELIVERED.
 */
export const RX = {
  SESSION_HI: 0,
  SESSION_LO: 1,
  SENDER_IP: 2,
  BLOCKS: 3,
  BS: 4,
  LAST_LEN: 5,
  W: 6,
  DELIVERED: 7,
  CONTIG: 8,
  HIGHEST: 9,
  RECEIVED: 10,
  DUPS: 11,
  SEQ_LOST: 12,
  MAX_SEQ: 13,
  HAVE_SEQ: 14,
  FLUSH_AT: 15,
  BAD: 16,
  FOREIGN: 17,
  ENABLED: 18,
  FIELDS: 19,
} as const;

export interface Sink {
  /**
   * Writes `chunk` at byte `position` of the object; synchronous (a copy
   * must be taken if it is kept). False: it took the chunk but wants no
   * more for now; delivery pauses until the receiver's `resume()`.
   */
  write(chunk: Buffer, position: number): boolean | void;
  /** Called about once a second with the bytes delivered so far (a file sink makes them durable and records them). */
  checkpoint?(bytes: number, blocks: number, session: SessionId, a: Announce): void;
}

export interface ReceiverOptions {
  /** Only this session (a server's receiver is told it); null: the first one announced on the group. */
  session: SessionId | null;
  receiverId: SessionId;
  /** Ring slots (blocks held out of order). */
  window: number;
  sink: Sink;
  /** Accept a session's announcement (e.g. the object's size and label); return a reason to refuse. */
  check?: (a: Announce) => string | null;
  /** A restarted receiver: blocks already delivered of this session, and the hash of their bytes. */
  resume?: { session: SessionId; blocks: number; hash: Hash } | null;
  statusMs?: number;
  /** Fail when the sender is silent this long once joined. */
  senderTimeoutMs?: number;
  /** Fail when no session is announced this long (null: wait). */
  joinTimeoutMs?: number | null;
  log?: (msg: string) => void;
}

export type ReceiveFailure = 'dropped' | 'refused' | 'cancelled' | 'timeout' | 'digest' | 'write' | 'ended';

export interface ReceiveResult {
  ok: boolean;
  failure: ReceiveFailure | null;
  reason: string | null;
  session: string | null;
  bytes: number;
  sha256: string | null;
  datagrams: number;
  duplicates: number;
  lost: number;
  kernelDrops: number;
}

export class MulticastReceiver {
  private session: SessionId | null;
  private sender: UdpPeer | null = null;
  private announce: Announce | null = null;
  private joined = false;
  private blocks = 0;
  private bs = 0;
  private lastLen = 0;
  private W = 0;
  private ring: Buffer = Buffer.alloc(0);
  private present: Uint8Array = new Uint8Array(0);
  /** Counters and positions (RX layout), shared with the native fast path when the socket has one. */
  private readonly st = new Uint32Array(RX.FIELDS);
  private native = false;
  private lastReceived = 0;
  private lastData = 0;
  private lastHeard = 0;
  private hash: Hash;
  private readonly naks = new Uint8Array(MAX_NAK_BITS / 8);
  private timer: NodeJS.Timeout | null = null;
  private lastJoin = 0;
  private lastCheckpoint = 0;
  private endedAt: number | null = null;
  private readonly startedAt = Date.now();
  private finishing: { result: number; reason: string; since: number } | null = null;
  private resolve: ((r: ReceiveResult) => void) | null = null;
  private readonly result: Promise<ReceiveResult>;
  private sha: string | null = null;
  private readonly flushAt: number;

  constructor(
    private readonly data: McastSocket,
    private readonly ctl: McastSocket,
    private readonly o: ReceiverOptions,
  ) {
    this.session = o.session;
    this.hash = o.resume?.hash ?? createHash('sha256');
    this.flushAt = 256;
    this.st[RX.FLUSH_AT] = this.flushAt;
    this.result = new Promise((r) => (this.resolve = r));
  }

  run(): Promise<ReceiveResult> {
    this.timer = setInterval(() => this.tick(), this.o.statusMs ?? 20);
    return this.result;
  }

  /** Datagrams from the group socket: DATA (unless the native fast path took it) and ANNOUNCE. */
  handleData(msg: Buffer, ip: number, port: number): void {
    if (msg.length >= DATA_HEADER_BYTES && msg.readUInt32BE(0) === DATA_WORD) {
      if (this.st[RX.ENABLED] === 1 && this.takeData(msg, ip)) this.flush();
      return;
    }
    const type = messageType(msg);
    if (type === MsgType.announce) this.onAnnounce(msg, ip, port);
  }

  /** After each batch from the group socket: deliver what the fast path made contiguous. */
  afterBatch(): void {
    const st = this.st;
    if (st[RX.ENABLED] === 1 && (st[RX.CONTIG] as number) - (st[RX.DELIVERED] as number) >= this.flushAt) this.flush();
    else if (st[RX.ENABLED] === 1 && st[RX.CONTIG] === this.blocks && st[RX.DELIVERED] !== this.blocks) this.flush();
  }

  /**
   * One DATA datagram into the ring; true when enough contiguous blocks wait
   * for delivery. The native fast path (rx_data in native/fastudp.c) does the
   * same, step for step.
   */
  private takeData(msg: Buffer, ip: number): boolean {
    const st = this.st;
    if (ip !== st[RX.SENDER_IP] || msg.readUInt32BE(4) !== st[RX.SESSION_HI] || msg.readUInt32BE(8) !== st[RX.SESSION_LO]) {
      st[RX.FOREIGN] = (st[RX.FOREIGN] as number) + 1;
      return false;
    }
    st[RX.RECEIVED] = (st[RX.RECEIVED] as number) + 1;
    const seq = msg.readUInt32BE(16);
    if (st[RX.HAVE_SEQ] === 0) {
      st[RX.MAX_SEQ] = seq;
      st[RX.HAVE_SEQ] = 1;
    } else {
      const gap = (seq - (st[RX.MAX_SEQ] as number)) >>> 0;
      if (gap > 0 && gap < 0x80000000) {
        st[RX.SEQ_LOST] = (st[RX.SEQ_LOST] as number) + gap - 1;
        st[RX.MAX_SEQ] = seq;
      }
    }
    const b = msg.readUInt32BE(12);
    const blocks = this.blocks;
    if (b >= blocks) return false;
    if (b >= (st[RX.HIGHEST] as number)) st[RX.HIGHEST] = b + 1;
    const contig = st[RX.CONTIG] as number;
    const delivered = st[RX.DELIVERED] as number;
    if (b < contig || b >= delivered + this.W) {
      st[RX.DUPS] = (st[RX.DUPS] as number) + 1;
      return false;
    }
    const slot = b % this.W;
    if (this.present[slot] === 1) {
      st[RX.DUPS] = (st[RX.DUPS] as number) + 1;
      return false;
    }
    if (msg.length - DATA_HEADER_BYTES !== (b === blocks - 1 ? this.lastLen : this.bs)) {
      st[RX.BAD] = (st[RX.BAD] as number) + 1;
      return false;
    }
    msg.copy(this.ring, slot * this.bs, DATA_HEADER_BYTES);
    this.present[slot] = 1;
    if (b !== contig) return false;
    const end = Math.min(blocks, delivered + this.W);
    let c = contig + 1;
    while (c < end && this.present[c % this.W] === 1) c++;
    st[RX.CONTIG] = c;
    return c - delivered >= this.flushAt || c === blocks;
  }

  /** Datagrams on the control socket: CONTROL from the sender. */
  handleControl(msg: Buffer, ip: number): void {
    if (messageType(msg) !== MsgType.control || this.session === null || this.sender === null || ip !== this.sender.ip || !sameSession(msg, this.session)) return;
    const c = decodeControl(msg);
    if (!c || c.receiver.hi !== this.o.receiverId.hi >>> 0 || c.receiver.lo !== this.o.receiverId.lo >>> 0) return;
    this.lastHeard = Date.now();
    if (c.code === ControlCode.accepted) {
      if (!this.joined) this.o.log?.(`joined session ${sessionIdHex(this.session)} (${c.reason})`);
      this.joined = true;
    } else if (c.code === ControlCode.dropped) this.fail('dropped', `dropped by the sender: ${c.reason}`);
    else if (c.code === ControlCode.refused) this.fail('refused', `refused by the sender: ${c.reason}`);
    else if (c.code === ControlCode.cancelled) this.fail('cancelled', `the session was cancelled: ${c.reason}`);
    else if (c.code === ControlCode.bye && this.finishing) this.end();
  }

  private onAnnounce(msg: Buffer, ip: number, port: number): void {
    const a = decodeAnnounce(msg);
    if (!a) return;
    if (this.session !== null && (a.session.hi !== this.session.hi >>> 0 || a.session.lo !== this.session.lo >>> 0)) return;
    if (this.sender !== null && ip !== this.sender.ip) return;
    if (this.announce === null) {
      if (a.state === SessionState.finished || a.state === SessionState.cancelled) return;
      const refusal = this.o.check?.(a) ?? null;
      if (refusal !== null) {
        if (this.o.session !== null) this.fail('refused', refusal);
        return; // not ours: wait for another session on the group
      }
      this.session = a.session;
      this.sender = udpPeer(ip, port);
      this.bs = a.blockSize;
      this.blocks = Math.ceil(a.objectBytes / a.blockSize);
      this.lastLen = a.objectBytes - (this.blocks - 1) * a.blockSize;
      this.W = Math.max(1, Math.min(this.o.window, a.window, Math.max(1, this.blocks)));
      this.ring = Buffer.allocUnsafe(this.W * this.bs);
      this.present = new Uint8Array(this.W);
      const r = this.o.resume;
      const st = this.st;
      if (r && r.session.hi === a.session.hi && r.session.lo === a.session.lo) {
        st[RX.DELIVERED] = st[RX.CONTIG] = Math.min(r.blocks, this.blocks);
      } else if (r) {
        this.hash = createHash('sha256');
      }
      st[RX.SESSION_HI] = a.session.hi;
      st[RX.SESSION_LO] = a.session.lo;
      st[RX.SENDER_IP] = ip;
      st[RX.BLOCKS] = this.blocks;
      st[RX.BS] = this.bs;
      st[RX.LAST_LEN] = this.lastLen;
      st[RX.W] = this.W;
      this.native = this.data.attachRing(this.ring, this.present, st);
      st[RX.ENABLED] = 1;
      this.o.log?.(`session ${sessionIdHex(a.session)} from ${this.sender.address}: ${a.label} (${a.objectBytes} bytes)${this.delivered ? `, resuming at block ${this.delivered}` : ''}${this.native ? '' : ' (no native fast path)'}`);
      this.lastHeard = Date.now();
      this.join();
      if (this.blocks === 0) this.complete();
    }
    this.announce = a;
    this.lastHeard = Date.now();
    if (a.state === SessionState.cancelled) this.fail('cancelled', 'the sender cancelled the session');
    else if (a.state === SessionState.finished && !this.finishing) this.endedAt ??= Date.now(); // its CONTROL may still say why
    else if (this.delivered === this.blocks && !this.finishing) this.complete();
  }

  private join(): void {
    if (!this.session || !this.sender) return;
    this.lastJoin = Date.now();
    this.ctl.send(encodeJoin({ session: this.session, receiver: this.o.receiverId, contig: this.delivered, window: this.W }), this.sender);
  }

  private get delivered(): number {
    return this.st[RX.DELIVERED] as number;
  }

  private get contig(): number {
    return this.st[RX.CONTIG] as number;
  }

  private paused = false;

  /** The sink wants more again (after its write returned false). */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.resolve !== null) this.flush();
  }

  private flush(): void {
    const bs = this.bs;
    const st = this.st;
    while (this.delivered < this.contig && !this.paused) {
      const from = this.delivered;
      const slot = from % this.W;
      const end = Math.min(this.contig, from + (this.W - slot));
      const n = end - from;
      const bytes = end === this.blocks ? (n - 1) * bs + this.lastLen : n * bs;
      const chunk = this.ring.subarray(slot * bs, slot * bs + bytes);
      this.hash.update(chunk);
      try {
        if (this.o.sink.write(chunk, from * bs) === false) this.paused = true;
      } catch (err) {
        this.fail('write', `writing at byte ${from * bs}: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
      // Free the slots before moving DELIVERED on: the fast path accepts blocks up to DELIVERED + W.
      this.present.fill(0, slot, slot + n);
      st[RX.DELIVERED] = end;
    }
    if (this.delivered === this.blocks && !this.finishing) this.complete();
  }

  /** Every block has passed: check the digest when the sender has announced it, then say DONE. */
  private complete(): void {
    const a = this.announce;
    if (!a || this.finishing || this.resolve === null) return;
    if (!a.digestFinal) return; // the sender is still hashing its first sweep: the next ANNOUNCE carries it
    this.sha = this.hash.digest('hex');
    if (a.digestIsSha256 && this.sha !== a.digest.toString('hex')) {
      this.finishing = { result: DoneResult.digestMismatch, reason: `sha256 mismatch: expected ${a.digest.toString('hex')}, got ${this.sha}`, since: Date.now() };
    } else {
      this.finishing = { result: DoneResult.verified, reason: '', since: Date.now() };
    }
    if (this.session) this.o.sink.checkpoint?.(this.delivered * this.bs, this.delivered, this.session, a);
    this.sendDone();
  }

  private sendDone(): void {
    if (!this.finishing || !this.session || !this.sender) return;
    this.ctl.send(encodeDone({ session: this.session, receiver: this.o.receiverId, result: this.finishing.result, reason: this.finishing.reason }), this.sender);
  }

  private tick(): void {
    if (this.resolve === null) return;
    const now = Date.now();
    if (this.session === null || this.sender === null) {
      if (this.o.joinTimeoutMs != null && now - this.startedAt > this.o.joinTimeoutMs) {
        this.fail('timeout', `no session announced on the group within ${Math.round(this.o.joinTimeoutMs / 1000)} s`);
      }
      return;
    }
    const timeout = this.o.senderTimeoutMs ?? 10_000;
    if (now - this.lastHeard > timeout) {
      this.fail('timeout', `the sender has been silent for ${Math.round(timeout / 1000)} s`);
      return;
    }
    if (this.st[RX.RECEIVED] !== this.lastReceived) {
      this.lastReceived = this.st[RX.RECEIVED] as number;
      this.lastData = this.lastHeard = now;
    }
    if (this.finishing) {
      // DONE until the sender says bye; it may have been lost, and the sender may be gone: give up waiting after 2 s.
      if (now - this.finishing.since > 2000) this.end();
      else this.sendDone();
      return;
    }
    if (this.endedAt !== null && now - this.endedAt > 1000) {
      this.fail('ended', 'the sender ended the session before this receiver had the whole object');
      return;
    }
    if (!this.joined && now - this.lastJoin >= 200) this.join();
    if (this.contig > this.delivered) this.flush();
    if (this.announce && now - this.lastCheckpoint >= 1000 && this.delivered > 0) {
      this.lastCheckpoint = now;
      this.o.sink.checkpoint?.(this.delivered * this.bs, this.delivered, this.session, this.announce);
    }
    this.sendStatus(now);
  }

  private sendStatus(now: number): void {
    if (!this.session || !this.sender || this.W === 0) return;
    const idle = now - this.lastData > 3 * (this.o.statusMs ?? 20);
    const seen = idle ? this.blocks : (this.st[RX.HIGHEST] as number);
    const end = Math.min(this.blocks, this.delivered + this.W, this.contig + MAX_NAK_BITS, Math.max(seen, this.contig));
    const bits = Math.max(0, end - this.contig);
    const naks = this.naks;
    naks.fill(0, 0, Math.ceil(bits / 8));
    for (let i = 0; i < bits; i++) {
      if (this.present[(this.contig + i) % this.W] !== 1) naks[i >> 3] = (naks[i >> 3] as number) | (1 << (i & 7));
    }
    this.ctl.send(
      encodeStatus({
        session: this.session,
        receiver: this.o.receiverId,
        contig: this.delivered,
        highest: Math.max(this.st[RX.HIGHEST] as number, this.delivered),
        received: this.st[RX.RECEIVED] as number,
        seqLost: this.st[RX.SEQ_LOST] as number,
        rxDropped: this.data.receiveDrops() ?? 0,
        nakBase: this.contig,
        nakBits: bits,
        naks,
        ...(this.st[RX.HAVE_SEQ] === 1 ? { maxSeq: this.st[RX.MAX_SEQ] as number } : {}),
      }),
      this.sender,
    );
  }

  private fail(failure: ReceiveFailure, reason: string): void {
    this.finish(false, failure, reason);
  }

  private end(): void {
    const f = this.finishing;
    if (!f) return;
    if (f.result === DoneResult.verified) this.finish(true, null, null);
    else this.finish(false, 'digest', f.reason);
  }

  private finish(ok: boolean, failure: ReceiveFailure | null, reason: string | null): void {
    const resolve = this.resolve;
    if (!resolve) return;
    this.resolve = null;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.st[RX.ENABLED] = 0;
    if (this.native) this.data.attachRing(null);
    resolve({
      ok,
      failure,
      reason,
      session: this.session ? sessionIdHex(this.session) : null,
      bytes: Math.min(this.announce?.objectBytes ?? 0, this.delivered * this.bs),
      sha256: this.sha,
      datagrams: this.st[RX.RECEIVED] as number,
      duplicates: this.st[RX.DUPS] as number,
      lost: this.st[RX.SEQ_LOST] as number,
      kernelDrops: this.data.receiveDrops() ?? 0,
    });
  }

  /** Gives up (the caller is stopping). */
  abort(reason: string): void {
    this.fail('cancelled', reason);
  }

  progress(): { bytes: number; total: number } {
    return { bytes: Math.min(this.announce?.objectBytes ?? 0, this.delivered * this.bs), total: this.announce?.objectBytes ?? 0 };
  }
}
