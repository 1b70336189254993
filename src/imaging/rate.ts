/**
 * Transfer rate and ETA from successive progress reports, computed by the
 * server (the agent only reports bytes). An exponential moving average over
 * the rates between reports smooths out bursts. Pure except for its map.
 */

export interface RateSample {
  bytes: number;
  atMs: number;
}

export interface RateState {
  last: RateSample;
  /** Smoothed bytes per second, or null before two samples. */
  rateBps: number | null;
}

/** Weight of the newest interval in the average. */
const ALPHA = 0.3;

/** The next state after a report of `bytes` at `atMs`. A report that goes backwards (a retried stream) restarts the count. */
export function nextRate(prev: RateState | undefined, bytes: number, atMs: number): RateState {
  if (!prev || bytes < prev.last.bytes || atMs < prev.last.atMs) return { last: { bytes, atMs }, rateBps: prev?.rateBps ?? null };
  const dt = atMs - prev.last.atMs;
  // Reports closer than 200 ms say little about the rate: keep the older sample.
  if (dt < 200) return prev;
  const instant = ((bytes - prev.last.bytes) * 1000) / dt;
  const rateBps = prev.rateBps === null ? instant : ALPHA * instant + (1 - ALPHA) * prev.rateBps;
  return { last: { bytes, atMs }, rateBps };
}

/** Seconds left at the smoothed rate, or null when unknown. */
export function etaSeconds(state: RateState, bytesTotal: number | null): number | null {
  if (bytesTotal === null || state.rateBps === null || state.rateBps <= 0) return null;
  return Math.max(0, Math.round((bytesTotal - state.last.bytes) / state.rateBps));
}

/** Per-task rate states. */
export class RateTracker {
  readonly #states = new Map<number, RateState>();

  report(taskId: number, bytes: number, bytesTotal: number | null, atMs: number): { rateBps: number | null; etaSeconds: number | null } {
    const s = nextRate(this.#states.get(taskId), bytes, atMs);
    this.#states.set(taskId, s);
    return { rateBps: s.rateBps === null ? null : Math.round(s.rateBps), etaSeconds: etaSeconds(s, bytesTotal) };
  }

  forget(taskId: number): void {
    this.#states.delete(taskId);
  }
}
