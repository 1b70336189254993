/**
 * What a multicast sender sends: one object, made of one file or of several
 * files one after another (an image's partition streams), read through a
 * ring of cached blocks so that repairs of recent blocks cost no read, and
 * hashed (sha256) as the first sweep reads it in order.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export interface ObjectPart {
  path: string;
  bytes: number;
}

/** Reads object bytes by position from a list of files (opened once, read with pread). */
export class FileObject {
  readonly bytes: number;
  private readonly parts: { fd: number; start: number; bytes: number; path: string }[] = [];

  constructor(parts: readonly ObjectPart[]) {
    let start = 0;
    try {
      for (const p of parts) {
        const fd = openSync(p.path, 'r');
        this.parts.push({ fd, start, bytes: p.bytes, path: p.path });
        const size = fstatSync(fd).size;
        if (size !== p.bytes) throw new Error(`${p.path}: ${size} bytes, expected ${p.bytes}`);
        start += p.bytes;
      }
    } catch (err) {
      this.close();
      throw err;
    }
    this.bytes = start;
  }

  /** One file, its size as it is now. */
  static ofFile(path: string): FileObject {
    const fd = openSync(path, 'r');
    try {
      return new FileObject([{ path, bytes: fstatSync(fd).size }]);
    } finally {
      closeSync(fd);
    }
  }

  /** Fills buf[off, off+len) from `position`; throws when a file came up short (it changed underneath). */
  read(position: number, buf: Buffer, off: number, len: number): void {
    let done = 0;
    for (const p of this.parts) {
      if (done === len) break;
      const at = position + done;
      if (at >= p.start + p.bytes) continue;
      const n = Math.min(len - done, p.start + p.bytes - at);
      let got = 0;
      while (got < n) {
        const r = readSync(p.fd, buf, off + done + got, n - got, at - p.start + got);
        if (r === 0) throw new Error(`${p.path}: ended at ${at - p.start + got} bytes, expected ${p.bytes}`);
        got += r;
      }
      done += n;
    }
    if (done !== len) throw new RangeError(`read past the object's end: ${position}+${len} > ${this.bytes}`);
  }

  close(): void {
    for (const p of this.parts.splice(0)) closeSync(p.fd);
  }
}

/**
 * A ring of `slots` blocks over a FileObject. `block(b)` returns the bytes of
 * block b (valid until the ring wraps past it); a miss reads ahead up to
 * `readAhead` blocks in one read. Bytes read in order from position 0 are
 * hashed on the way: `digest()` is the object's sha256 once every byte has
 * passed in order (null before; `hashRest()` then reads the remainder).
 */
export class BlockCache {
  private readonly ring: Buffer;
  private readonly tags: Float64Array;
  private readonly hash: Hash = createHash('sha256');
  private hashed = 0;
  private final: Buffer | null = null;
  readonly blocks: number;

  constructor(
    private readonly src: FileObject,
    readonly blockSize: number,
    private readonly slots: number,
    private readonly readAhead = 256,
  ) {
    this.ring = Buffer.allocUnsafe(slots * blockSize);
    this.tags = new Float64Array(slots).fill(-1);
    this.blocks = Math.ceil(src.bytes / blockSize);
    if (src.bytes === 0) this.final = this.hash.digest();
  }

  /** Bytes of block b (the last block may be short). */
  block(b: number): Buffer {
    const slot = b % this.slots;
    if (this.tags[slot] !== b) this.fill(b);
    const off = slot * this.blockSize;
    return this.ring.subarray(off, off + this.sizeOf(b));
  }

  sizeOf(b: number): number {
    return b === this.blocks - 1 ? this.src.bytes - b * this.blockSize : this.blockSize;
  }

  private fill(first: number): void {
    // Read ahead from `first`, never past the ring's end (one contiguous read) nor the object's.
    const slot = first % this.slots;
    const n = Math.min(this.readAhead, this.slots - slot, this.blocks - first);
    const position = first * this.blockSize;
    const len = Math.min(n * this.blockSize, this.src.bytes - position);
    const off = slot * this.blockSize;
    this.src.read(position, this.ring, off, len);
    for (let i = 0; i < n; i++) this.tags[slot + i] = first + i;
    if (position === this.hashed && this.final === null) {
      this.hash.update(this.ring.subarray(off, off + len));
      this.hashed += len;
      if (this.hashed === this.src.bytes) this.final = this.hash.digest();
    }
  }

  digest(): Buffer | null {
    return this.final;
  }

  /** Hashes what the sends have not read in order yet (after a sweep that skipped ahead). */
  hashRest(): Buffer {
    if (this.final) return this.final;
    const chunk = Buffer.allocUnsafe(1 << 20);
    while (this.hashed < this.src.bytes) {
      const len = Math.min(chunk.length, this.src.bytes - this.hashed);
      this.src.read(this.hashed, chunk, 0, len);
      this.hash.update(chunk.subarray(0, len));
      this.hashed += len;
    }
    this.final = this.hash.digest();
    return this.final;
  }
}
