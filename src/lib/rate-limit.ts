/**
 * A token bucket per key (the boot-time endpoints key by client address):
 * `burst` requests at once, refilled at `perMinute`. Pure apart from the
 * injected clock; keys idle long enough to be full again are dropped, so the
 * map stays as small as the set of recent clients.
 */
export interface RateLimitOptions {
  burst: number;
  perMinute: number;
  /** Clock in ms; tests pass their own. */
  now?: () => number;
  /** Most keys kept; beyond it the oldest are dropped (a flood of source addresses cannot grow the map without bound). */
  maxKeys?: number;
}

export type RateAnswer = { allowed: true } | { allowed: false; retryAfterSeconds: number };

export class RateLimiter {
  readonly #burst: number;
  readonly #perMs: number;
  readonly #now: () => number;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(opts: RateLimitOptions) {
    if (!Number.isInteger(opts.burst) || opts.burst < 1) throw new RangeError(`RateLimiter: 'burst' must be a positive integer: current value is ${opts.burst}`);
    if (!(opts.perMinute > 0)) throw new RangeError(`RateLimiter: 'perMinute' must be positive: current value is ${opts.perMinute}`);
    this.#burst = opts.burst;
    this.#perMs = opts.perMinute / 60_000;
    this.#now = opts.now ?? Date.now;
    this.#maxKeys = opts.maxKeys ?? 100_000;
  }

  /** Take one token for `key`. */
  take(key: string): RateAnswer {
    const now = this.#now();
    const b = this.#buckets.get(key);
    let tokens = b ? Math.min(this.#burst, b.tokens + (now - b.at) * this.#perMs) : this.#burst;
    if (tokens < 1) {
      if (b) {
        b.tokens = tokens;
        b.at = now;
      }
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / this.#perMs / 1000)) };
    }
    tokens -= 1;
    this.#buckets.delete(key);
    this.#buckets.set(key, { tokens, at: now });
    this.#prune(now);
    return { allowed: true };
  }

  #prune(now: number): void {
    const fullAfterMs = this.#burst / this.#perMs;
    for (const [k, v] of this.#buckets) {
      if (this.#buckets.size <= this.#maxKeys && now - v.at < fullAfterMs) break;
      this.#buckets.delete(k);
    }
  }
}
