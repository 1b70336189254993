/**
 * The last `capacity` bytes of a stream (a ring buffer), as UTF-8 text. When
 * the cut falls inside a multi-byte character, the character's remaining
 * bytes are replaced by one U+FFFD, so the text is always valid.
 */
export class TailBuffer {
  readonly capacity: number;
  private readonly buf: Buffer;
  /** Next write position. */
  private pos = 0;
  private filled = 0;
  /** Bytes seen in all. */
  total = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer: current value is ${capacity}`);
    this.capacity = capacity;
    this.buf = Buffer.alloc(capacity);
  }

  push(chunk: Uint8Array): void {
    this.total += chunk.length;
    let c = chunk;
    if (c.length >= this.capacity) {
      c = c.subarray(c.length - this.capacity);
      Buffer.from(c.buffer, c.byteOffset, c.byteLength).copy(this.buf, 0);
      this.pos = 0;
      this.filled = this.capacity;
      return;
    }
    const first = Math.min(c.length, this.capacity - this.pos);
    this.buf.set(c.subarray(0, first), this.pos);
    if (first < c.length) this.buf.set(c.subarray(first), 0);
    this.pos = (this.pos + c.length) % this.capacity;
    this.filled = Math.min(this.capacity, this.filled + c.length);
  }

  /** The kept bytes, oldest first. */
  bytes(): Buffer {
    if (this.filled < this.capacity) return Buffer.from(this.buf.subarray(0, this.filled));
    return Buffer.concat([this.buf.subarray(this.pos), this.buf.subarray(0, this.pos)]);
  }

  /** Whether bytes were dropped from the front. */
  get truncated(): boolean {
    return this.total > this.filled;
  }

  text(): string {
    let b = this.bytes();
    if (!this.truncated) return b.toString('utf8');
    // Skip continuation bytes (10xxxxxx) of a character whose start was cut.
    let skip = 0;
    while (skip < b.length && skip < 3 && ((b[skip] ?? 0) & 0xc0) === 0x80) skip++;
    if (skip === 0) return b.toString('utf8');
    b = b.subarray(skip);
    return `\ufffd${b.toString('utf8')}`;
  }
}
