/**
 * A Writable that writes one large file front to back, around the page
 * cache (O_DIRECT) where the file system allows it. For streams of GiBs
 * that must be durable before they count (replicated image copies,
 * src/replication/service.ts) and that the server will not read back soon.
 *
 * Why: written through the page cache, each GiB costs the writer the
 * kernel's page allocation and copy (on a VM whose freed memory goes back
 * to its host, every page is a fault in the host too: 2 GiB took 3.5-4.3 s
 * of system time on the benchmark machine, O_DIRECT 0.2 s), then the final
 * fsync waits for all of it, and meanwhile what the server serves hot
 * (boot files, the boot environment) is pushed out of the cache.
 *
 * How:
 * - The bytes are copied into SLOTS slots of SLOT_BYTES inside one
 *   WebAssembly.Memory: its pages are page-aligned, as O_DIRECT needs of
 *   the memory it writes from (Node's Buffers are not).
 * - A full slot is written with one pwrite at its place in the file; one
 *   write is in flight at a time, in file order, so the file is always a
 *   prefix of the stream: a cut or a crash leaves no hole, and a resume at
 *   the file's size is right. The other slots fill meanwhile; when none is
 *   free, the stream waits (backpressure).
 * - A write whose position and length are multiples of DIRECT_ALIGN goes
 *   through the O_DIRECT descriptor; any other (the head, up to the first
 *   boundary, of a resume at an odd byte; the tail) through a plain one
 *   (the page cache: the caller's fsync writes it out).
 * - Where O_DIRECT is refused (tmpfs and some FUSE file systems refuse the
 *   open; a write may fail with EINVAL), every write goes through the plain
 *   descriptor, fdatasynced every FLUSH_EVERY bytes in the background so
 *   that the caller's fsync has only the tail left.
 * - The sink does not fsync at the end: the caller does, when it decides
 *   the file is complete. When the stream is destroyed (the source failed),
 *   what it had received is still written, so a resume need not fetch it
 *   again; `settled` resolves once every write is done and the descriptors
 *   are closed (await it before looking at the file's size).
 */
import { close, constants, fdatasync, open, write } from 'node:fs';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';

/** O_DIRECT positions and lengths are multiples of this (4 KiB sectors or 512-byte ones). */
export const DIRECT_ALIGN = 4096;
const SLOT_BYTES = 4 * 1024 * 1024;
const SLOTS = 4;
/** Without O_DIRECT: fdatasync in the background every this many bytes. */
const FLUSH_EVERY = 64 * 1024 * 1024;
const WASM_PAGE = 65536;

/** WebAssembly.Memory, which TypeScript's Node types do not declare: only its page-aligned buffer is used. */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
const Wasm = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number }) => WasmMemory } }).WebAssembly;

const openP = promisify(open);
const closeP = promisify(close);

/** Slot memories of closed sinks, reused (a WebAssembly.Memory reserves much address space). */
const spare: WasmMemory[] = [];
const MAX_SPARE = 2;

export interface FileSinkOptions {
  /** Where the bytes go: the file's size when resuming (it must exist), 0 to start it over (it is created or truncated). */
  start: number;
  /** Mode of a file created (default 0o600). */
  mode?: number;
  /** false: never O_DIRECT (tests). */
  direct?: boolean;
  /**
   * Called with every chunk before it is taken (to count and hash it
   * without one more stream in between); what it throws fails the stream,
   * and nothing of that chunk is written.
   */
  tap?: (chunk: Buffer) => void;
}

interface Pending {
  slot: Buffer;
  len: number;
  pos: number;
}

export class FileSink extends Writable {
  /** True while writes go around the page cache (false from the start, or after the file system refused O_DIRECT). */
  direct: boolean;
  /** Resolves when every write is done and the file is closed (never rejects: errors are the stream's). */
  readonly settled: Promise<void>;
  /** The file's size as written so far (always a prefix of the stream). */
  written: number;

  private readonly memory: WasmMemory;
  private readonly free: Buffer[] = [];
  private readonly queue: Pending[] = [];
  private cur: Buffer | null = null;
  private fill = 0;
  private cap = 0;
  /** File position of the next byte taken into a slot. */
  private pos: number;
  private writing = false;
  private flushing: Promise<void> | null = null;
  private sinceFlush = 0;
  private failed: Error | null = null;
  /** A write that waits for a free slot. */
  private waiting: (() => void) | null = null;
  /** Called when nothing is queued or in flight. */
  private idle: (() => void) | null = null;
  private resolveSettled: () => void = () => undefined;

  constructor(
    private readonly plainFd: number,
    private directFd: number | null,
    start: number,
    private readonly tap: ((chunk: Buffer) => void) | null = null,
  ) {
    super({ highWaterMark: 64 * 1024 });
    this.direct = directFd !== null;
    this.pos = start;
    this.written = start;
    this.memory = spare.pop() ?? new Wasm.Memory({ initial: (SLOTS * SLOT_BYTES) / WASM_PAGE });
    for (let i = 0; i < SLOTS; i++) this.free.push(Buffer.from(this.memory.buffer, i * SLOT_BYTES, SLOT_BYTES));
    this.settled = new Promise<void>((resolve) => (this.resolveSettled = resolve));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.tap !== null) {
      try {
        this.tap(chunk);
      } catch (err) {
        return cb(err instanceof Error ? err : new Error(String(err)));
      }
    }
    let off = 0;
    const step = (): void => {
      if (this.failed) return cb(this.failed);
      while (off < chunk.length) {
        if (this.cur === null) {
          const s = this.free.pop();
          if (!s) {
            this.waiting = step;
            return;
          }
          this.cur = s;
          this.fill = 0;
          // The first slot of a resume at an odd byte ends at a boundary; every later one starts at one.
          this.cap = SLOT_BYTES - (this.pos % DIRECT_ALIGN);
        }
        const n = chunk.copy(this.cur, this.fill, off, Math.min(chunk.length, off + this.cap - this.fill));
        off += n;
        this.fill += n;
        if (this.fill === this.cap) this.seal();
      }
      cb();
    };
    step();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.seal();
    this.whenIdle(() => cb(this.failed));
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.waiting = null;
    // The source failed: what was received is still written (unless writing is what failed).
    if (!this.failed) this.seal();
    this.whenIdle(() => {
      void (async () => {
        await this.flushing;
        await closeP(this.plainFd).catch(() => undefined);
        if (this.directFd !== null) await closeP(this.directFd).catch(() => undefined);
        this.directFd = null;
        if (spare.length < MAX_SPARE) spare.push(this.memory);
        this.resolveSettled();
        cb(err);
      })();
    });
  }

  /** Queue the slot being filled (if it holds anything). */
  private seal(): void {
    if (this.cur === null) return;
    if (this.fill === 0) {
      this.free.push(this.cur);
    } else {
      this.queue.push({ slot: this.cur, len: this.fill, pos: this.pos });
      this.pos += this.fill;
    }
    this.cur = null;
    this.fill = 0;
    this.pump();
  }

  private whenIdle(fn: () => void): void {
    if (!this.writing && (this.queue.length === 0 || this.failed)) fn();
    else this.idle = fn;
  }

  private pump(): void {
    if (this.writing || this.failed) return;
    const w = this.queue.shift();
    if (!w) {
      const fn = this.idle;
      this.idle = null;
      fn?.();
      return;
    }
    this.writing = true;
    this.writeAt(w, 0, () => {
      this.writing = false;
      this.free.push(w.slot);
      if (this.failed) {
        this.queue.length = 0;
        const fn = this.idle;
        this.idle = null;
        fn?.();
      }
      const wt = this.waiting;
      this.waiting = null;
      wt?.();
      this.pump();
    });
  }

  /** Write w's bytes from `done` on; `next` once all are written or the sink failed. */
  private writeAt(w: Pending, done: number, next: () => void): void {
    const pos = w.pos + done;
    const len = w.len - done;
    const viaDirect = this.directFd !== null && pos % DIRECT_ALIGN === 0 && len % DIRECT_ALIGN === 0;
    const fd = viaDirect && this.directFd !== null ? this.directFd : this.plainFd;
    write(fd, w.slot, done, len, pos, (err, n) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (viaDirect && code === 'EINVAL') {
          // The file system took the O_DIRECT open but not the write: plain writes from here on.
          const d = this.directFd;
          this.directFd = null;
          this.direct = false;
          if (d !== null) close(d, () => undefined);
          return this.writeAt(w, done, next);
        }
        this.failed = new Error(`writing ${len} bytes at byte ${pos} failed: ${err.message}`);
        return next();
      }
      this.written = pos + n;
      if (!viaDirect) this.flushSometimes(n);
      if (n < len) return this.writeAt(w, done + n, next);
      next();
    });
  }

  private flushSometimes(n: number): void {
    this.sinceFlush += n;
    if (this.sinceFlush < FLUSH_EVERY || this.flushing) return;
    this.sinceFlush = 0;
    // An error here is left to the caller's fsync, which reports it.
    this.flushing = new Promise<void>((resolve) => fdatasync(this.plainFd, () => resolve())).then(() => {
      this.flushing = null;
    });
  }
}

/**
 * A FileSink for `path` (see the header): from byte `start` of a file
 * that exists, or a new (or truncated) file when `start` is 0.
 */
export async function openFileSink(path: string, opts: FileSinkOptions): Promise<FileSink> {
  if (!(Number.isSafeInteger(opts.start) && opts.start >= 0)) throw new RangeError(`openFileSink: start must be a byte offset >= 0, got ${opts.start}`);
  const plain = await openP(path, opts.start > 0 ? 'r+' : 'w', opts.mode ?? 0o600);
  let direct: number | null = null;
  if (opts.direct !== false) {
    // Refused on tmpfs and some FUSE file systems (EINVAL): plain writes then.
    direct = await openP(path, constants.O_WRONLY | constants.O_DIRECT).catch(() => null);
  }
  return new FileSink(plain, direct, opts.start, opts.tap ?? null);
}
