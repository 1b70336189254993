/**
 * A deploy's streams from a multicast session (TaskSpec.multicast), with
 * the server over HTTP for everything else and as the fallback.
 *
 * The session carries the image's stream files one after another. The
 * receiver (src/multicast/receiver.ts) delivers the object in order; each
 * file's bytes go into that file's stream, which deploy reads as it would
 * read the HTTP download (getStream). When the deploy reads slower than the
 * session sends, the streams fill, delivery pauses and the receiver's window
 * fills: the sender then waits for this machine, and drops it if it holds
 * the others back too long.
 *
 * Fallback: when the session drops this machine (too slow), is cancelled,
 * fails or ended before this machine had everything, every file not yet
 * complete continues by HTTP from the byte it had reached (Range), in
 * order, in the same streams: deploy never notices, and the task's progress
 * message says why. Whatever path the bytes took, deploy checks each
 * stream's sha256 against the manifest.
 */
import { PassThrough, type Readable } from 'node:stream';
import type { CompleteBody, FailBody, HardwareIdentity, MulticastSpec, ProgressReport, SlotAnswer, StreamReceipt, TaskState } from '../imaging/protocol.js';
import { parseSessionIdHex } from '../protocol/mcast/codec.js';
import { openMcast, type McastSocket } from '../net/mcast-udp.js';
import { defaultUdpBackend } from '../net/udp.js';
import { MulticastReceiver, type ReceiveResult } from '../multicast/receiver.js';
import { errorMessage } from './errors.js';
import type { Transport } from './transport.js';

export interface MulticastTransportOptions {
  /** The local IPv4 address to join the group on (the interface that reaches the server). */
  localAddress: string;
  /** Stream file -> its size (the manifest's streamBytes). */
  sizes: ReadonlyMap<string, number>;
  log?: (msg: string) => void;
  /** Said in the task's progress (why it went on by unicast). */
  note?: (msg: string) => void;
  /** Before going on by HTTP (the fallback waits for a transfer slot, as a unicast deploy does). */
  beforeUnicast?: () => Promise<void>;
}

export class MulticastTransport implements Transport {
  private readonly files: string[];
  private readonly starts: number[] = [];
  private readonly pushed: number[];
  private readonly streams: PassThrough[];
  private started: Promise<void> | null = null;
  private receiver: MulticastReceiver | null = null;
  private sockets: McastSocket[] = [];
  /** The HTTP fallback, once the session has let this machine go. */
  fallback: Promise<void> | null = null;
  /** How the session ended for this machine (null while it runs). */
  result: ReceiveResult | null = null;

  constructor(
    private readonly inner: Transport,
    private readonly spec: MulticastSpec,
    private readonly o: MulticastTransportOptions,
  ) {
    this.files = [...spec.files];
    let at = 0;
    for (const f of this.files) {
      const size = o.sizes.get(f);
      if (size === undefined) throw new Error(`the multicast session carries ${f}, which the manifest does not list`);
      this.starts.push(at);
      at += size;
    }
    if (at !== spec.objectBytes) throw new Error(`the multicast session carries ${spec.objectBytes} bytes, the manifest's streams ${at}`);
    this.pushed = this.files.map(() => 0);
    this.streams = this.files.map(() => new PassThrough({ highWaterMark: 8 << 20 }));
  }

  putStream(): Promise<StreamReceipt> {
    return Promise.reject(new Error('a multicast session only deploys'));
  }

  progress(report: ProgressReport): Promise<TaskState> {
    return this.inner.progress(report);
  }

  identify(identity: HardwareIdentity): Promise<void> {
    return this.inner.identify(identity);
  }

  slot(): Promise<SlotAnswer> {
    return this.inner.slot();
  }

  async complete(body: CompleteBody): Promise<void> {
    this.stop();
    await this.inner.complete(body);
  }

  async fail(body: FailBody): Promise<void> {
    this.stop();
    await this.inner.fail(body);
  }

  async getStream(file: string, offset: number, signal: AbortSignal): Promise<Readable> {
    const i = this.files.indexOf(file);
    if (i < 0 || offset !== 0) return this.inner.getStream(file, offset, signal);
    this.started ??= this.start(signal);
    await this.started;
    return this.streams[i] as PassThrough;
  }

  private async start(signal: AbortSignal): Promise<void> {
    const session = parseSessionIdHex(this.spec.session);
    const receiverId = parseSessionIdHex(this.spec.receiver);
    if (!session || !receiverId) throw new Error(`malformed multicast session or receiver id: ${this.spec.session} ${this.spec.receiver}`);
    const backend = defaultUdpBackend();
    let receiver: MulticastReceiver | null = null;
    const data = await openMcast(backend, {
      address: this.spec.address,
      port: this.spec.port,
      shared: true,
      join: { group: this.spec.address, interfaceAddress: this.o.localAddress },
      rcvbuf: 32 << 20,
      onMessage: (m, ip, port) => receiver?.handleData(m, ip, port),
      onBatch: () => receiver?.afterBatch(),
      onError: (err) => this.o.log?.(`multicast socket: ${err.message}`),
    });
    this.sockets.push(data);
    const ctl = await openMcast(backend, { address: this.o.localAddress, port: 0, onMessage: (m, ip) => receiver?.handleControl(m, ip), onError: () => undefined });
    this.sockets.push(ctl);
    receiver = new MulticastReceiver(data, ctl, {
      session,
      receiverId,
      window: this.spec.window,
      sink: { write: (chunk, position) => this.deliver(chunk, position) },
      // The server's sender may wait minutes for the other members to boot.
      senderTimeoutMs: 30_000,
      joinTimeoutMs: 30_000,
      log: this.o.log,
    });
    this.receiver = receiver;
    this.o.log?.(`multicast: joining session ${this.spec.session} on ${this.spec.address}:${this.spec.port} (${backend} sockets)`);
    const onAbort = (): void => receiver?.abort('the task was stopped');
    signal.addEventListener('abort', onAbort, { once: true });
    void receiver.run().then((r) => {
      signal.removeEventListener('abort', onAbort);
      this.result = r;
      this.closeSockets();
      if (r.ok) {
        this.o.log?.(`multicast: the whole image arrived (${r.datagrams} datagrams, ${r.lost} lost and repaired)`);
        return;
      }
      if (signal.aborted) return;
      const why = r.reason ?? r.failure ?? 'the session ended';
      this.o.log?.(`multicast: ${why}; going on by unicast`);
      this.o.note?.(`multicast: ${why}; going on by unicast`);
      this.fallback = this.unicast(signal);
    });
  }

  /** The receiver's in-order bytes into the files' streams; false asks it to pause (a stream is full). */
  private deliver(chunk: Buffer, position: number): boolean {
    let more = true;
    let off = 0;
    while (off < chunk.length) {
      const at = position + off;
      let i = this.starts.length - 1;
      while (i > 0 && (this.starts[i] as number) > at) i--;
      const start = this.starts[i] as number;
      const size = (this.o.sizes.get(this.files[i] as string) as number) - (at - start);
      const n = Math.min(size, chunk.length - off);
      const s = this.streams[i] as PassThrough;
      if (n > 0) {
        // The receiver's ring is reused: the stream keeps a copy.
        if (!s.write(Buffer.from(chunk.subarray(off, off + n)))) {
          more = false;
          s.once('drain', () => this.receiver?.resume());
        }
        this.pushed[i] = (this.pushed[i] as number) + n;
        off += n;
      }
      if (this.pushed[i] === this.o.sizes.get(this.files[i] as string)) s.end();
      if (n === 0) break;
    }
    return more;
  }

  /** Every file not yet complete, by HTTP from where it stopped, in order, into the same streams. */
  private async unicast(signal: AbortSignal): Promise<void> {
    try {
      await this.o.beforeUnicast?.();
      for (const [i, file] of this.files.entries()) {
        const size = this.o.sizes.get(file) as number;
        const s = this.streams[i] as PassThrough;
        if ((this.pushed[i] as number) >= size) continue;
        const src = await this.inner.getStream(file, this.pushed[i] as number, signal);
        for await (const c of src) {
          const chunk = c as Buffer;
          this.pushed[i] = (this.pushed[i] as number) + chunk.length;
          if (!s.write(chunk)) await new Promise<void>((resolve) => s.once('drain', () => resolve()));
        }
        s.end();
      }
    } catch (err) {
      const e = new Error(`unicast after multicast: ${errorMessage(err)}`);
      for (const s of this.streams) if (!s.writableEnded) s.destroy(e);
    }
  }

  private closeSockets(): void {
    for (const s of this.sockets.splice(0)) void s.close();
  }

  private stop(): void {
    this.receiver?.abort('the task ended');
    this.closeSockets();
  }
}
