/**
 * The live event bus behind GET /api/v1/events (src/model/events.ts lists
 * the kinds). Services publish; each open stream subscribes. Pure: the
 * clock and the timer are injected, nothing here does I/O.
 *
 * - Ids are `<epoch>-<seq>`: the epoch names this server run (its start
 *   time in base 36), seq counts 1, 2, 3... in the order events are
 *   delivered. An id from another run is recognised as such.
 * - The newest events are kept for replay: at most `maxEvents` (5,000) and
 *   none older than `maxAgeMs` (5 minutes). A subscriber that gives the id
 *   of the last event it saw gets every event after it, then the live ones,
 *   with nothing lost or repeated between the two (subscribe() does both at
 *   once). An id from another run, or one whose successors are no longer
 *   kept, gets a `reset` instead: the client reloads what it shows.
 * - Progress is coalesced per task: the first report goes out at once, the
 *   ones within `progressIntervalMs` (1 s) of the last one sent wait, and
 *   only the newest of them goes out when the second is over. A task's
 *   state change is never coalesced, goes out at once, and drops the
 *   progress of that task still waiting (it is older than the change), so
 *   a state is never followed by a progress reported before it.
 */
import type { EventPublisher, LiveEvent, LiveEventInput, StreamEvent } from '../model/events.js';

export interface TimerHandle {
  cancel(): void;
}

export interface EventBusOptions {
  /** This server run's part of every id (default: the start time, ms in base 36). Lower-case letters and digits. */
  epoch?: string;
  /** Milliseconds since the epoch; tests pass their own. */
  now?: () => number;
  /** Runs `fn` after `ms` (default setTimeout, unref'd); tests pass their own. */
  setTimer?: (fn: () => void, ms: number) => TimerHandle;
  /** Events kept for replay, at most (default 5,000). */
  maxEvents?: number;
  /** Events kept for replay are at most this old (default 5 minutes). */
  maxAgeMs?: number;
  /** A task's progress goes out at most once in this time (default 1,000 ms). */
  progressIntervalMs?: number;
  /** A subscriber threw (it stays subscribed). */
  onSubscriberError?: (err: unknown) => void;
}

export type Listener = (e: LiveEvent) => void;

export interface Subscription {
  /** What to send before the live events: the replay and `ready`, or `reset`. */
  readonly first: ReadonlyArray<LiveEvent | StreamEvent>;
  unsubscribe(): void;
}

export interface EventBus extends EventPublisher {
  readonly epoch: string;
  /** Deliver an event (coalesced when it is a task's progress). Never throws. */
  publish(e: LiveEventInput): void;
  /**
   * From now on `fn` hears every event delivered. With `lastEventId` (the
   * id of the last event the client saw), `first` holds what it missed and
   * `ready`, or `reset` when that cannot be told; without it, `ready`,
   * after every event still kept when `history` is true.
   */
  subscribe(fn: Listener, opts?: { lastEventId?: string | null; history?: boolean }): Subscription;
  /** The newest event's id (`<epoch>-0` before the first). */
  lastId(): string;
  readonly subscriberCount: number;
  /** Drops waiting progress and every subscriber; later publishes are ignored. */
  close(): void;
}

const EPOCH_PATTERN = /^[0-9a-z]{1,16}$/;
const ID_PATTERN = /^([0-9a-z]{1,16})-(0|[1-9][0-9]{0,14})$/;
/** Per-task coalescing records kept before idle ones are swept. */
const SWEEP_ABOVE = 1024;

/** `<epoch>-<seq>` -> its parts, or null when it is not an id of this form. */
export function parseEventId(id: string): { epoch: string; seq: number } | null {
  const m = ID_PATTERN.exec(id);
  if (!m?.[1] || m[2] === undefined) return null;
  return { epoch: m[1], seq: Number(m[2]) };
}

function positive(name: string, v: number | undefined, def: number): number {
  if (v === undefined) return def;
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`Cannot create the event bus as '${name}' must be a positive number: current value is ${v}`);
  return v;
}

const defaultTimer = (fn: () => void, ms: number): TimerHandle => {
  const t = setTimeout(fn, ms);
  t.unref();
  return { cancel: () => clearTimeout(t) };
};

interface ProgressSlot {
  /** When this task's last progress went out (ms). */
  sentAt: number;
  waiting: Extract<LiveEventInput, { kind: 'task.progress' }> | null;
  timer: TimerHandle | null;
}

const TERMINAL = new Set(['done', 'failed', 'cancelled']);

export function createEventBus(opts: EventBusOptions = {}): EventBus {
  const now = opts.now ?? Date.now;
  const setTimer = opts.setTimer ?? defaultTimer;
  const epoch = opts.epoch ?? now().toString(36);
  if (!EPOCH_PATTERN.test(epoch)) throw new RangeError(`Cannot create the event bus as 'epoch' must be 1 to 16 lower-case letters or digits: current value is ${JSON.stringify(epoch)}`);
  const maxEvents = Math.floor(positive('maxEvents', opts.maxEvents, 5000));
  const maxAgeMs = positive('maxAgeMs', opts.maxAgeMs, 5 * 60_000);
  const interval = positive('progressIntervalMs', opts.progressIntervalMs, 1000);

  // The replay ring: seqs firstSeq..seq, oldest at `start`.
  const ring: Array<{ event: LiveEvent; ms: number } | undefined> = new Array<undefined>(maxEvents);
  let start = 0;
  let count = 0;
  let seq = 0;
  const listeners = new Set<Listener>();
  const progress = new Map<number, ProgressSlot>();
  let closed = false;

  const idOf = (n: number): string => `${epoch}-${n}`;
  const firstSeq = (): number => seq - count + 1;

  function prune(): void {
    const oldest = now() - maxAgeMs;
    while (count > 0) {
      const e = ring[start];
      if (e === undefined || e.ms >= oldest) break;
      ring[start] = undefined;
      start = (start + 1) % maxEvents;
      count--;
    }
  }

  function deliver(input: LiveEventInput): void {
    const ms = now();
    seq++;
    const event = { ...input, id: idOf(seq), at: input.at ?? new Date(ms).toISOString() } as LiveEvent;
    if (count === maxEvents) {
      start = (start + 1) % maxEvents;
      count--;
    }
    ring[(start + count) % maxEvents] = { event, ms };
    count++;
    prune();
    for (const fn of listeners) {
      try {
        fn(event);
      } catch (err) {
        opts.onSubscriberError?.(err);
      }
    }
  }

  function sweep(): void {
    if (progress.size <= SWEEP_ABOVE) return;
    const t = now();
    for (const [id, s] of progress) if (s.waiting === null && t - s.sentAt >= interval) progress.delete(id);
  }

  function publishProgress(e: Extract<LiveEventInput, { kind: 'task.progress' }>): void {
    const s = progress.get(e.taskId);
    const t = now();
    if (!s || (s.waiting === null && t - s.sentAt >= interval)) {
      progress.set(e.taskId, { sentAt: t, waiting: null, timer: null });
      deliver(e);
      sweep();
      return;
    }
    // Within the second: the newest waits (at = when it was reported), the older waiting one is dropped.
    s.waiting = { ...e, at: e.at ?? new Date(t).toISOString() };
    if (s.timer === null) {
      s.timer = setTimer(
        () => {
          s.timer = null;
          const w = s.waiting;
          if (w === null || closed || progress.get(e.taskId) !== s) return;
          s.waiting = null;
          s.sentAt = now();
          deliver(w);
        },
        Math.max(0, s.sentAt + interval - t),
      );
    }
  }

  function publishState(e: Extract<LiveEventInput, { kind: 'task.state' }>): void {
    const s = progress.get(e.taskId);
    if (s) {
      s.timer?.cancel();
      s.timer = null;
      s.waiting = null;
      if (TERMINAL.has(e.state)) progress.delete(e.taskId);
    }
    deliver(e);
  }

  function replayFrom(lastEventId: string): Array<LiveEvent | StreamEvent> {
    const reset = (reason: string): StreamEvent[] => [{ kind: 'reset', id: idOf(seq), reason }];
    const p = parseEventId(lastEventId);
    if (p === null) return reset(`${JSON.stringify(lastEventId.slice(0, 40))} is not an event id of this server`);
    if (p.epoch !== epoch) return reset(`event ${lastEventId} is from another run of the server (it restarted)`);
    if (p.seq > seq) return reset(`event ${lastEventId} is newer than the newest (${idOf(seq)})`);
    prune();
    if (p.seq < firstSeq() - 1) return reset(`the events after ${lastEventId} are no longer kept (the newest ${maxEvents} of the last ${Math.round(maxAgeMs / 1000)} s are)`);
    const out = keptAfter(p.seq);
    return [...out, { kind: 'ready', id: idOf(seq), resumed: true, replayed: out.length }];
  }

  /** The events kept whose seq is above `after`. */
  function keptAfter(after: number): LiveEvent[] {
    const out: LiveEvent[] = [];
    for (let i = Math.max(0, after - firstSeq() + 1); i < count; i++) {
      const e = ring[(start + i) % maxEvents];
      if (e) out.push(e.event);
    }
    return out;
  }

  return {
    epoch,
    publish(e) {
      if (closed) return;
      if (e.kind === 'task.progress') publishProgress(e);
      else if (e.kind === 'task.state') publishState(e);
      else deliver(e);
    },
    subscribe(fn, o = {}) {
      const last = o.lastEventId ?? null;
      let first: Array<LiveEvent | StreamEvent>;
      if (last !== null && last !== '') first = replayFrom(last);
      else {
        if (o.history === true) prune();
        const kept = o.history === true ? keptAfter(0) : [];
        first = [...kept, { kind: 'ready', id: idOf(seq), resumed: false, replayed: kept.length }];
      }
      if (!closed) listeners.add(fn);
      return {
        first,
        unsubscribe: () => void listeners.delete(fn),
      };
    },
    lastId: () => idOf(seq),
    get subscriberCount() {
      return listeners.size;
    },
    close() {
      closed = true;
      for (const s of progress.values()) s.timer?.cancel();
      progress.clear();
      listeners.clear();
    },
  };
}
