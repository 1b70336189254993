/**
 * At most `limit` events per key in any `windowMs` (a sliding log, exact,
 * unlike the token bucket of rate-limit.ts whose refill lets a steady
 * trickle through): the login throttle counts failed attempts with it.
 * Pure apart from the injected clock. Kept in memory: a restart forgets
 * the counts, and several servers would each count their own.
 * Keys whose events all left the window are dropped when seen; beyond
 * `maxKeys` the least recently touched are dropped, so a flood of source
 * addresses or made-up user names cannot grow the map without bound.
 */
export interface AttemptWindowOptions {
  limit: number;
  windowMs: number;
  /** Clock in ms; tests pass their own. */
  now?: () => number;
  maxKeys?: number;
}

export type AttemptAnswer = { allowed: true } | { allowed: false; retryAfterSeconds: number };

export class AttemptWindow {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #maxKeys: number;
  /** key -> event times, oldest first; Map order = least recently touched first. */
  readonly #events = new Map<string, number[]>();

  constructor(opts: AttemptWindowOptions) {
    if (!Number.isInteger(opts.limit) || opts.limit < 1) throw new RangeError(`AttemptWindow: 'limit' must be a positive integer: current value is ${opts.limit}`);
    if (!(opts.windowMs > 0)) throw new RangeError(`AttemptWindow: 'windowMs' must be positive: current value is ${opts.windowMs}`);
    this.#limit = opts.limit;
    this.#windowMs = opts.windowMs;
    this.#now = opts.now ?? Date.now;
    this.#maxKeys = opts.maxKeys ?? 10_000;
  }

  /** The key's events still inside the window (dropping the rest, and the key when none is left). */
  #recent(key: string, now: number): number[] {
    const list = this.#events.get(key);
    if (!list) return [];
    const from = now - this.#windowMs;
    const kept = list.filter((t) => t > from);
    if (kept.length === 0) this.#events.delete(key);
    else if (kept.length !== list.length) this.#events.set(key, kept);
    return kept;
  }

  /** Whether one more event is allowed now; if not, how long until the oldest leaves the window. */
  check(key: string): AttemptAnswer {
    const now = this.#now();
    const recent = this.#recent(key, now);
    if (recent.length < this.#limit) return { allowed: true };
    const oldest = recent[recent.length - this.#limit] as number;
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((oldest + this.#windowMs - now) / 1000)) };
  }

  record(key: string): void {
    const now = this.#now();
    const recent = this.#recent(key, now);
    this.#events.delete(key);
    this.#events.set(key, [...recent, now].slice(-this.#limit));
    while (this.#events.size > this.#maxKeys) {
      const first = this.#events.keys().next();
      if (first.done) break;
      this.#events.delete(first.value);
    }
  }

  /** Take back the newest event of `key` (an attempt counted before its outcome was known, which then succeeded). */
  forgive(key: string): void {
    const list = this.#events.get(key);
    if (!list) return;
    if (list.length <= 1) this.#events.delete(key);
    else this.#events.set(key, list.slice(0, -1));
  }

  clear(key: string): void {
    this.#events.delete(key);
  }

  get size(): number {
    return this.#events.size;
  }
}
