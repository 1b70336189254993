/**
 * Cluster signals: what one server does in memory, told to the other
 * servers sharing its PostgreSQL store (issue 15). A few named channels:
 * live events, endpoint agents to wake, hosts changed (DHCP reservations),
 * schedules or tasks changed (the scheduler's poke), a node started or
 * stopped (the node directories read the live nodes again), image
 * revisions or copies changed (replication pulls at once).
 *
 * - Sending is `pg_notify(channel, '<origin> <payload>')` through the
 *   store's Kysely (so inside no transaction of the caller: it goes out at
 *   once). PostgreSQL refuses payloads of 8000 bytes or more: a bigger one
 *   is dropped with a log line (callers keep theirs small: events are
 *   coalesced, MACs are short).
 * - Receiving is a dedicated `pg.Client` (not the pool: a pooled connection
 *   comes and goes, LISTEN needs one that stays), LISTENing on every
 *   channel. When its connection drops (PostgreSQL restarted, the backend
 *   was terminated, the network cut) it reconnects with a backoff (0.1 s
 *   doubling to 5 s) and then calls the `onResynced` listeners: whatever
 *   was sent while it was away is lost, so they refresh (reload the
 *   reservations, poke the scheduler, wake the long polls).
 * - Every process has its own random `origin`; PostgreSQL delivers a
 *   NOTIFY to its sender's LISTEN too, and those echoes are dropped here.
 * - On SQLite there is nobody to tell: `notify` does nothing, listeners
 *   never hear anything, and what each server does stays in its process
 *   (as it always was).
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Store } from './db.js';

export const CLUSTER_CHANNELS = ['fleetboot_events', 'fleetboot_agent', 'fleetboot_hosts', 'fleetboot_schedule', 'fleetboot_nodes', 'fleetboot_images'] as const;
export type ClusterChannel = (typeof CLUSTER_CHANNELS)[number];

/** PostgreSQL's limit is 8000 bytes, origin and space included. */
export const MAX_SIGNAL_BYTES = 7999;

export interface ClusterSignals {
  /** This process's id (sent with every signal; its own are not delivered back). */
  readonly origin: string;
  /** True on PostgreSQL (signals reach other servers), false on SQLite. */
  readonly shared: boolean;
  /** Calls `fn` with the payload of every signal on `channel` from another process. Returns the unsubscribe. */
  on(channel: ClusterChannel, fn: (payload: string) => void): () => void;
  /** Calls `fn` after the listening connection came back (signals may have been missed). */
  onResynced(fn: () => void): () => void;
  /** Tells the other servers. Never throws: a failure is logged. Resolves with false when nothing was sent. */
  notify(channel: ClusterChannel, payload?: string): Promise<boolean>;
  /** Resolves once LISTEN is in place (at once on SQLite). */
  ready(): Promise<void>;
  /** The PostgreSQL backend pid of the listening connection, or null (not connected, SQLite). */
  readonly listenPid: number | null;
  close(): Promise<void>;
}

export interface ClusterSignalsOptions {
  store: Store;
  /** The store's PostgreSQL URL; null or absent on SQLite. */
  url?: string | null;
  /** The listening connection's application_name (default 'fleetboot listen'). */
  applicationName?: string;
  log?: Logger;
  /** First reconnect delay (ms, default 100), doubled up to `maxRetryMs` (default 5,000). */
  retryMs?: number;
  maxRetryMs?: number;
}

export function createClusterSignals(o: ClusterSignalsOptions): ClusterSignals {
  const origin = randomBytes(8).toString('hex');
  const handlers = new Map<ClusterChannel, Set<(payload: string) => void>>();
  const resynced = new Set<() => void>();
  const on = (channel: ClusterChannel, fn: (payload: string) => void): (() => void) => {
    let set = handlers.get(channel);
    if (!set) handlers.set(channel, (set = new Set()));
    set.add(fn);
    return () => void set.delete(fn);
  };
  const onResynced = (fn: () => void): (() => void) => {
    resynced.add(fn);
    return () => void resynced.delete(fn);
  };

  const url = o.url ?? null;
  if (o.store.dialect !== 'postgres' || url === null) {
    return {
      origin,
      shared: false,
      on,
      onResynced,
      notify: () => Promise.resolve(false),
      ready: () => Promise.resolve(),
      listenPid: null,
      close: () => Promise.resolve(),
    };
  }

  const log = o.log?.child({ subsystem: 'cluster' });
  const firstRetry = o.retryMs ?? 100;
  const maxRetry = o.maxRetryMs ?? 5000;
  const appName = (o.applicationName ?? 'fleetboot listen').slice(0, 63);
  let client: pg.Client | null = null;
  let pid: number | null = null;
  let closed = false;
  let connectedOnce = false;
  let retry = firstRetry;
  let timer: NodeJS.Timeout | null = null;
  let readyResolve: (() => void) | null = null;
  const readyPromise = new Promise<void>((r) => (readyResolve = r));

  const dispatch = (channel: string, payload: string | undefined): void => {
    if (payload === undefined) return;
    const sp = payload.indexOf(' ');
    const from = sp < 0 ? payload : payload.slice(0, sp);
    if (from === origin) return;
    const set = handlers.get(channel as ClusterChannel);
    if (!set) return;
    const body = sp < 0 ? '' : payload.slice(sp + 1);
    for (const fn of set) {
      try {
        fn(body);
      } catch (err) {
        log?.error({ channel, err: errorMessage(err) }, `a listener of ${channel} failed`);
      }
    }
  };

  const schedule = (): void => {
    if (closed || timer !== null) return;
    const wait = retry;
    retry = Math.min(retry * 2, maxRetry);
    timer = setTimeout(() => {
      timer = null;
      void connect();
    }, wait);
    timer.unref();
  };

  const connect = async (): Promise<void> => {
    if (closed) return;
    const c = new pg.Client({ connectionString: url, application_name: appName, connectionTimeoutMillis: 10_000, keepAlive: true });
    let dropped = false;
    const lost = (why: string): void => {
      if (dropped) return;
      dropped = true;
      if (client === c) {
        client = null;
        pid = null;
      }
      c.removeAllListeners('notification');
      void c.end().catch(() => {});
      if (!closed) {
        log?.warn({ err: why }, `the cluster signal connection to PostgreSQL was lost (${why}): reconnecting`);
        schedule();
      }
    };
    c.on('error', (err) => lost(errorMessage(err)));
    c.on('end', () => lost('the connection ended'));
    c.on('notification', (m) => dispatch(m.channel, m.payload));
    try {
      await c.connect();
      for (const ch of CLUSTER_CHANNELS) await c.query(`LISTEN ${ch}`);
      const r = await c.query<{ pid: number }>('select pg_backend_pid() as pid');
      if (closed || dropped) {
        await c.end().catch(() => {});
        return;
      }
      client = c;
      pid = r.rows[0]?.pid ?? null;
      retry = firstRetry;
      const again = connectedOnce;
      connectedOnce = true;
      readyResolve?.();
      if (again) {
        log?.info({ pid }, 'the cluster signal connection is back: refreshing what may have been missed');
        for (const fn of resynced) {
          try {
            fn();
          } catch (err) {
            log?.error({ err: errorMessage(err) }, 'a refresh after reconnecting failed');
          }
        }
      }
    } catch (err) {
      lost(errorMessage(err));
    }
  };
  void connect();

  return {
    origin,
    shared: true,
    on,
    onResynced,
    async notify(channel, payload = '') {
      const msg = `${origin} ${payload}`;
      const bytes = Buffer.byteLength(msg);
      if (bytes > MAX_SIGNAL_BYTES) {
        log?.warn({ channel, bytes }, `a cluster signal on ${channel} was dropped: ${bytes} bytes is over PostgreSQL's NOTIFY limit (8000)`);
        return false;
      }
      if (closed) return false;
      try {
        await sql`select pg_notify(${channel}, ${msg})`.execute(o.store.db);
        return true;
      } catch (err) {
        log?.error({ channel, err: errorMessage(err) }, `telling the other servers on ${channel} failed`);
        return false;
      }
    },
    ready: () => readyPromise,
    get listenPid() {
      return pid;
    },
    async close() {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      const c = client;
      client = null;
      pid = null;
      readyResolve?.();
      handlers.clear();
      resynced.clear();
      if (c) {
        c.removeAllListeners('notification');
        await c.end().catch(() => {});
      }
    },
  };
}
