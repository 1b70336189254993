/**
 * When to ask the server next: pure functions of an injected random source
 * (Math.random in the agent, a fixed sequence in tests).
 *
 * - The first poll comes within seconds of start (0 to START_DELAY_MS), so a
 *   room of machines powered on together does not ask in the same second.
 * - Regular polls: pollSeconds × (1 ± POLL_JITTER).
 * - Errors (network, 5xx, 429): exponential backoff with "full jitter"
 *   (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015):
 *   random(0, min(cap, base × 2^attempt)); a Retry-After raises the wait to
 *   what the server asked, never above the cap. The attempt count resets
 *   after a success.
 */
import { POLL_JITTER } from '../model/endpoint.js';

export type Random = () => number;

export const START_DELAY_MS = 3000;
export const BACKOFF_BASE_MS = 2000;
export const BACKOFF_CAP_MS = 300_000;
/** After a long-poll answer the agent asks again at once, plus up to this. */
export const LONG_POLL_GAP_MS = 1000;

export interface BackoffOptions {
  baseMs?: number;
  capMs?: number;
}

function unit(random: Random): number {
  const r = random();
  return Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0.5;
}

/** The first poll's delay: 0 to START_DELAY_MS. */
export function startDelayMs(random: Random): number {
  return Math.floor(unit(random) * START_DELAY_MS);
}

/** The wait before the next regular poll: pollSeconds × (1 ± POLL_JITTER), at least 1 s. */
export function pollDelayMs(pollSeconds: number, random: Random): number {
  const base = Math.max(1, pollSeconds) * 1000;
  return Math.round(base * (1 - POLL_JITTER + 2 * POLL_JITTER * unit(random)));
}

/** The wait before retry number `attempt` (0 for the first retry after an error). */
export function backoffDelayMs(attempt: number, random: Random, opts: BackoffOptions = {}): number {
  const { baseMs = BACKOFF_BASE_MS, capMs = BACKOFF_CAP_MS } = opts;
  if (!Number.isInteger(attempt) || attempt < 0) throw new RangeError(`attempt must be a non-negative integer: current value is ${attempt}`);
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 40));
  return Math.floor(unit(random) * ceiling);
}

/**
 * A Retry-After header (seconds, or an HTTP date) as milliseconds from
 * `nowMs`, or null when absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | null {
  if (value === undefined) return null;
  const v = value.trim();
  if (/^\d{1,9}$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return null;
  return Math.max(0, t - nowMs);
}

/** The backoff wait, raised to the server's Retry-After (bounded by the cap). */
export function retryDelayMs(attempt: number, random: Random, retryAfterMs: number | null, opts: BackoffOptions = {}): number {
  const capMs = opts.capMs ?? BACKOFF_CAP_MS;
  const d = backoffDelayMs(attempt, random, opts);
  if (retryAfterMs === null) return d;
  return Math.min(capMs, Math.max(d, retryAfterMs));
}
