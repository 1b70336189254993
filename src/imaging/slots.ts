/**
 * Transfer slots (FOG's "max clients"): at most `maxTransfers` tasks move
 * image bytes at once; the others wait in a FIFO queue ordered by when they
 * first asked. Pure: the caller passes the active tasks' slot state (kept in
 * the database, so it survives a restart) and writes the answer back.
 */
import type { SlotAnswer } from './protocol.js';

export interface SlotHolder {
  id: number;
  /** When the task first asked for a slot (ISO), or null when it never did. */
  requestedAt: string | null;
  /** When it got its slot (ISO), or null when it holds none. */
  grantedAt: string | null;
  /** Last contact from its agent (ms since the epoch). */
  lastSeenMs: number;
}

export interface SlotPolicy {
  maxTransfers: number;
  /** What a waiting agent is told: ask again after this many seconds. */
  retryAfterSeconds: number;
  /**
   * A waiting task whose agent has not asked for this long no longer keeps
   * its place ahead of the others (it is probably gone; the reaper fails it
   * later). It gets its place back, at the end, when it asks again.
   */
  staleWaitMs: number;
}

/** The answer for task `id` asking at `nowMs`, given every active task's slot state (the asker included). */
export function decideSlot(tasks: readonly SlotHolder[], id: number, nowMs: number, policy: SlotPolicy): SlotAnswer {
  const me = tasks.find((t) => t.id === id);
  if (me?.grantedAt) return { granted: true };
  const held = tasks.filter((t) => t.grantedAt !== null).length;
  const free = Math.max(0, policy.maxTransfers - held);
  const queue = tasks
    .filter((t) => t.grantedAt === null && t.requestedAt !== null && (t.id === id || nowMs - t.lastSeenMs <= policy.staleWaitMs))
    .sort((a, b) => (a.requestedAt ?? '').localeCompare(b.requestedAt ?? '') || a.id - b.id);
  let index = queue.findIndex((t) => t.id === id);
  // Not yet in the queue (first request): at its end.
  if (index < 0) index = queue.length;
  if (index < free) return { granted: true };
  return { granted: false, position: index - free + 1, retryAfterSeconds: policy.retryAfterSeconds };
}
