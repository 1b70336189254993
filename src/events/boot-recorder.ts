/**
 * The boot event recorder: the services (DHCP, TFTP, HTTP boot routes,
 * imaging tasks) report each step of a machine's boot here as it happens;
 * the recorder gives it a time and a MAC, hands it to subscribers at once
 * and stores it in batches (one transaction every `flushMs`), so a DHCP or
 * TFTP reply never waits for the database.
 *
 * A MAC for a step that knows only the client's address: the last MAC seen
 * with that address in a recorded step (a DHCP answer, a boot decision),
 * else `resolveMac` when the batch is stored (the neighbour table, the DHCP
 * leases). Nothing found: stored without one (the address stays).
 *
 * Bounded: one client (by MAC, else address) records at most 200 steps at
 * once and 10 a second after that (a flood of junk TFTP requests or DHCP
 * discovers cannot push the others' history out); at most `maxQueue` steps
 * wait to be stored; both kinds of excess are counted and dropped, with one
 * warning per batch. The table keeps the newest `keepRows` rows and none
 * older than `keepDays` (pruned once a minute).
 */
import type { Logger } from '../lib/log.js';
import { errorMessage } from '../lib/errors.js';
import { RateLimiter } from '../lib/rate-limit.js';
import { cleanSummary, type NewBootEvent } from '../model/boot-event.js';
import type { Store } from '../store/db.js';
import { insertBootEvents, pruneBootEvents } from '../store/boot-events.js';

export type StampedBootEvent = NewBootEvent & { at: string };

export interface BootRecorderOptions {
  store: Store;
  log: Logger;
  /** The MAC of a client address no recorded step named (neighbour table, leases); null: unknown. */
  resolveMac?: (ip: string) => Promise<string | null>;
  now?: () => number;
  flushMs?: number;
  maxQueue?: number;
  keepRows?: number;
  keepDays?: number;
  /** Steps one client may record at once (then 10 a second); default 200. */
  clientBurst?: number;
  /** Hears every step reported, before the limits (the metrics count them all: src/metrics/fleetboot.ts). Must not throw. */
  onStep?: (e: NewBootEvent) => void;
}

export interface BootRecorder {
  /** Report a step (never throws, never waits). */
  record(e: NewBootEvent): void;
  /** Each step as it is recorded (with the MAC when it is known then); returns the unsubscribe. */
  subscribe(fn: (e: StampedBootEvent) => void): () => void;
  /** Store what waits now. */
  flush(): Promise<void>;
  close(): Promise<void>;
  /** Steps dropped because too many waited, or their client made too many. */
  readonly dropped: number;
}

/** Addresses remembered with their MAC. */
const MAX_ADDRESSES = 10_000;
const PRUNE_EVERY_MS = 60_000;

export function createBootRecorder(o: BootRecorderOptions): BootRecorder {
  const log = o.log.child({ subsystem: 'events' });
  const now = o.now ?? Date.now;
  const maxQueue = o.maxQueue ?? 20_000;
  const keepRows = o.keepRows ?? 200_000;
  const keepDays = o.keepDays ?? 30;
  const macOf = new Map<string, string>();
  const subscribers = new Set<(e: StampedBootEvent) => void>();
  let queue: StampedBootEvent[] = [];
  let dropped = 0;
  let droppedReported = 0;
  let closed = false;
  let flushing: Promise<void> | null = null;
  let lastPrune = now();
  const perClient = new RateLimiter({ burst: o.clientBurst ?? 200, perMinute: 600, now, maxKeys: MAX_ADDRESSES });

  function learn(ip: string, mac: string): void {
    macOf.delete(ip);
    macOf.set(ip, mac);
    if (macOf.size > MAX_ADDRESSES) {
      const oldest = macOf.keys().next();
      if (!oldest.done) macOf.delete(oldest.value);
    }
  }

  async function store(batch: StampedBootEvent[]): Promise<void> {
    const resolved = new Map<string, string | null>();
    for (const e of batch) {
      if (e.mac !== null || e.ip === null) continue;
      let mac = macOf.get(e.ip) ?? null;
      if (mac === null && o.resolveMac) {
        if (!resolved.has(e.ip)) resolved.set(e.ip, await o.resolveMac(e.ip).catch(() => null));
        mac = resolved.get(e.ip) ?? null;
      }
      e.mac = mac;
    }
    await insertBootEvents(o.store.db, batch);
    if (now() - lastPrune >= PRUNE_EVERY_MS) {
      lastPrune = now();
      const removed = await pruneBootEvents(o.store.db, { keepRows, olderThan: new Date(now() - keepDays * 86_400_000).toISOString() });
      if (removed > 0) log.debug({ removed }, 'old boot events pruned');
    }
  }

  function flush(): Promise<void> {
    if (flushing) return flushing.then(() => (queue.length ? flush() : undefined));
    if (queue.length === 0) return Promise.resolve();
    const batch = queue;
    queue = [];
    flushing = store(batch)
      .catch((err: unknown) => log.error({ err: errorMessage(err), events: batch.length }, 'storing boot events failed'))
      .finally(() => {
        flushing = null;
        if (dropped > droppedReported) {
          log.warn({ dropped: dropped - droppedReported }, `${dropped - droppedReported} boot event(s) not recorded: a client made more than 10 a second, or more than ${maxQueue} waited to be stored`);
          droppedReported = dropped;
        }
      });
    return flushing;
  }

  const timer = setInterval(() => void flush(), o.flushMs ?? 500);
  timer.unref();

  return {
    record(e) {
      if (closed) return;
      o.onStep?.(e);
      if (queue.length >= maxQueue || !perClient.take(e.mac ?? e.ip ?? '-').allowed) {
        dropped++;
        return;
      }
      let mac = e.mac;
      if (mac !== null && e.ip !== null) learn(e.ip, mac);
      else if (mac === null && e.ip !== null) mac = macOf.get(e.ip) ?? null;
      const stamped: StampedBootEvent = { kind: e.kind, mac, ip: e.ip, summary: cleanSummary(e.summary), detail: e.detail, at: e.at ?? new Date(now()).toISOString() };
      queue.push(stamped);
      for (const fn of subscribers) {
        try {
          fn(stamped);
        } catch (err) {
          log.error({ err: errorMessage(err) }, 'a boot event subscriber failed');
        }
      }
    },
    subscribe(fn) {
      subscribers.add(fn);
      return () => void subscribers.delete(fn);
    },
    flush,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      await flush();
    },
    get dropped() {
      return dropped;
    },
  };
}
