/**
 * Fleetboot's Prometheus series (GET /api/v1/metrics, README "Metrics").
 *
 * Counted as things happen, in memory (a Map increment; no store write per
 * packet): every boot step the services report (`bootStep`, called by the
 * wiring before the boot recorder, whose per-client rate limit must not
 * thin the counts) and the live events of imaging and multicast
 * (`liveEvent`). Read when scraped: the DHCP service's packet counters,
 * the boot recorder's dropped steps, and two GROUP BY queries (tasks by
 * state, multicast sessions by state).
 *
 * Labels are bounded: a DHCP answer's reason is a class of the answer
 * (what boot file it carried), not its free-text reason; an HTTP fetch is
 * classed by path prefix; a value outside the known ones is 'other'.
 */
import type { NewBootEvent } from '../model/boot-event.js';
import type { LiveEvent } from '../model/events.js';
import type { Store } from '../store/db.js';
import { countMulticastSessionsByState, countTasksByState } from '../store/metrics.js';
import { formatExposition, type MetricFamily, type MetricType, type Sample } from './exposition.js';

/** A DHCP service's packet counters (src/net/dhcp-sockets.ts DhcpStats). */
export interface DhcpPacketStats {
  received: number;
  replied: number;
  ignored: number;
  malformed: number;
  sendErrors: number;
  /** The DHCP server's (src/net/dhcp-server.ts): lease writes lost to another server sharing the store, messages unanswered after MAX_TRIES lost claims, messages dropped with the store's queue full. */
  lostWrites?: number;
  gaveUp?: number;
  overloaded?: number;
}

export interface MetricsSources {
  store: Store;
  /** The running DHCP service's counters and its mode, or null: no DHCP service. */
  dhcp: () => { mode: string; stats: Readonly<DhcpPacketStats> } | null;
  /** Boot steps the recorder did not store (its rate limit, its queue). */
  bootEventsDropped: () => number;
  version: string;
  /** ms since the epoch; default Date.now. */
  now?: () => number;
}

export interface FleetbootMetrics {
  /** A step of a machine's boot, as a service reported it. Never throws. */
  bootStep(e: NewBootEvent): void;
  /** A live event (task progress and state, multicast sessions). Never throws. */
  liveEvent(e: LiveEvent): void;
  /** The exposition text, with the gauges read now. */
  render(): Promise<string>;
}

/** The classes of DHCP answers (label `reason`). */
export type DhcpAnswerReason = 'ipxe-script' | 'http-boot' | 'boot-file' | 'bios-menu' | 'no-boot-file';

export const DECISIONS = ['entry', 'menu', 'local', 'task', 'wait', 'refuse', 'fail-task', 'register'] as const;

/** Tasks whose rate and last bytes are remembered (a task that never ends cannot grow the map past this). */
const MAX_TRACKED_TASKS = 10_000;

class Counter {
  readonly #values = new Map<string, { labels: Record<string, string>; value: number }>();
  inc(labels: Record<string, string>, by = 1): void {
    const key = JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
    const s = this.#values.get(key);
    if (s) s.value += by;
    else this.#values.set(key, { labels, value: by });
  }
  samples(): Sample[] {
    return [...this.#values.values()].map((s) => ({ labels: s.labels, value: s.value }));
  }
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/** The answer's message type, lower-case, from a step like "DISCOVER -> OFFER". */
export function answerKind(step: string): string {
  const reply = step.split('->')[1]?.trim().toUpperCase() ?? '';
  return reply === 'OFFER' ? 'offer' : reply === 'ACK' ? 'ack' : reply === 'NAK' ? 'nak' : 'other';
}

/** The class of a DHCP answer from its boot event's detail. */
export function answerReason(detail: Readonly<Record<string, unknown>>): DhcpAnswerReason {
  const file = str(detail.file);
  if (file === null || file === '') return 'no-boot-file';
  if (/-> menu\b/.test(str(detail.reason) ?? '')) return 'bios-menu';
  if (detail.via === 'http') return detail.ipxe === true ? 'ipxe-script' : 'http-boot';
  return 'boot-file';
}

/** What an HTTP fetch of the boot chain was, by its path. */
export function httpFetchKind(what: unknown, path: string): string {
  if (what === 'script') return 'script';
  if (path.startsWith('/boot/entries/')) return 'entry-file';
  if (path.startsWith('/boot/env/')) return 'boot-env';
  if (path.startsWith('/tftp/')) return 'tftp-file';
  return 'other';
}

function statusClass(status: unknown): string {
  return typeof status === 'number' && status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other';
}

function oneOf<T extends string>(value: unknown, known: readonly T[]): T | 'other' {
  return typeof value === 'string' && (known as readonly string[]).includes(value) ? (value as T) : 'other';
}

const TFTP_OUTCOMES = ['done', 'failed', 'aborted', 'refused'] as const;
const TERMINAL_TASK = ['done', 'failed', 'cancelled'] as const;
const TASK_TYPES = ['capture', 'deploy', 'inventory', 'register'] as const;
const SESSION_ENDS = ['finished', 'failed', 'cancelled'] as const;

export function createFleetbootMetrics(src: MetricsSources): FleetbootMetrics {
  const now = src.now ?? Date.now;
  const startedAt = now();
  const dhcpAnswers = new Counter();
  const tftpTransfers = new Counter();
  const tftpBytes = new Counter();
  const httpRequests = new Counter();
  const httpBytes = new Counter();
  const decisions = new Counter();
  const imagingBytes = new Counter();
  const tasksEnded = new Counter();
  const sessionsEnded = new Counter();
  /** taskId -> the last bytesDone and smoothed rate reported. */
  const transfers = new Map<number, { bytes: number; rateBps: number | null }>();

  function bootStep(e: NewBootEvent): void {
    const d = e.detail;
    switch (e.kind) {
      case 'dhcp':
        dhcpAnswers.inc({ mode: oneOf(d.mode, ['proxy', 'server']), port: oneOf(d.port, ['dhcp', 'pxe']), kind: answerKind(str(d.step) ?? ''), reason: answerReason(d) });
        break;
      case 'tftp': {
        const outcome = oneOf(d.outcome, TFTP_OUTCOMES);
        tftpTransfers.inc({ outcome });
        if (typeof d.bytes === 'number' && d.bytes > 0) tftpBytes.inc({ outcome }, d.bytes);
        break;
      }
      case 'http': {
        const kind = httpFetchKind(d.what, str(d.path) ?? '');
        httpRequests.inc({ kind, status: statusClass(d.status) });
        if (typeof d.status === 'number' && d.status < 400 && typeof d.bytes === 'number' && d.bytes > 0) httpBytes.inc({ kind }, d.bytes);
        break;
      }
      case 'decision':
        decisions.inc({ decision: oneOf(d.decision, DECISIONS) });
        break;
      default:
        break;
    }
  }

  function liveEvent(e: LiveEvent): void {
    if (e.kind === 'task.progress') {
      const prev = transfers.get(e.taskId);
      // A report that goes backwards is a retried stream: count from its new start.
      const delta = prev === undefined ? e.bytesDone : e.bytesDone >= prev.bytes ? e.bytesDone - prev.bytes : e.bytesDone;
      if (delta > 0) imagingBytes.inc({ phase: e.phase }, delta);
      transfers.delete(e.taskId);
      transfers.set(e.taskId, { bytes: e.bytesDone, rateBps: e.rateBps });
      if (transfers.size > MAX_TRACKED_TASKS) {
        const oldest = transfers.keys().next();
        if (!oldest.done) transfers.delete(oldest.value);
      }
    } else if (e.kind === 'task.state') {
      if ((TERMINAL_TASK as readonly string[]).includes(e.state)) {
        transfers.delete(e.taskId);
        tasksEnded.inc({ type: oneOf(e.type, TASK_TYPES), state: e.state });
      }
    } else if (e.kind === 'multicast.session') {
      if ((SESSION_ENDS as readonly string[]).includes(e.state)) sessionsEnded.inc({ state: e.state });
    }
  }

  const fam = (name: string, type: MetricType, help: string, samples: Sample[]): MetricFamily => ({ name, type, help, samples });

  async function render(): Promise<string> {
    const [tasks, sessions] = await Promise.all([countTasksByState(src.store.db), countMulticastSessionsByState(src.store.db)]);
    const dhcp = src.dhcp();
    const dhcpPackets: Sample[] = dhcp
      ? (
          [
            ['received', dhcp.stats.received],
            ['replied', dhcp.stats.replied],
            ['ignored', dhcp.stats.ignored],
            ['malformed', dhcp.stats.malformed],
            ['send-error', dhcp.stats.sendErrors],
          ] as const
        ).map(([result, value]) => ({ labels: { mode: dhcp.mode, result }, value }))
      : [];
    const st = dhcp?.stats;
    const leaseConflicts: Sample[] =
      dhcp && st && st.lostWrites !== undefined
        ? (
            [
              ['lost-write', st.lostWrites],
              ['gave-up', st.gaveUp ?? 0],
              ['queue-full', st.overloaded ?? 0],
            ] as const
          ).map(([result, value]) => ({ labels: { result }, value }))
        : [];
    let rate = 0;
    let active = 0;
    for (const t of transfers.values()) {
      active++;
      rate += t.rateBps ?? 0;
    }
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    return formatExposition([
      fam('fleetboot_build_info', 'gauge', 'Always 1; the version in a label.', [{ labels: { version: src.version }, value: 1 }]),
      fam('fleetboot_start_time_seconds', 'gauge', 'When the metrics began counting (the server start), seconds since the epoch.', [{ value: Math.floor(startedAt / 1000) }]),
      fam('fleetboot_dhcp_answers_total', 'counter', 'DHCP answers sent to network-booting clients, by message (offer, ack, nak), port (dhcp 67, pxe 4011) and reason (what boot file the answer carried).', dhcpAnswers.samples()),
      fam('fleetboot_dhcp_packets_total', 'counter', 'DHCP packets received by the DHCP service, and what became of them (replied, ignored, malformed, send-error).', dhcpPackets),
      fam('fleetboot_dhcp_lease_conflicts_total', 'counter', 'DHCP server: lease writes lost to another server sharing the store (lost-write; the row is re-read and the message decided again), messages left unanswered after 3 lost claims (gave-up), messages dropped while the store queue was full (queue-full).', leaseConflicts),
      fam('fleetboot_tftp_transfers_total', 'counter', 'TFTP transfers ended, by outcome (done, failed, aborted, refused).', tftpTransfers.samples()),
      fam('fleetboot_tftp_sent_bytes_total', 'counter', 'Bytes sent (done) or acknowledged (otherwise) by TFTP transfers, by outcome.', tftpBytes.samples()),
      fam('fleetboot_http_boot_requests_total', 'counter', 'HTTP requests of the boot chain: the iPXE script (/boot.ipxe), entry files, the boot environment, TFTP files over HTTP; by kind and status class.', httpRequests.samples()),
      fam('fleetboot_http_boot_sent_bytes_total', 'counter', 'Bytes of boot-chain files answered with a status below 400 (Content-Length), by kind.', httpBytes.samples()),
      fam('fleetboot_http_boot_decisions_total', 'counter', 'Boot decisions made by /boot/decide, by decision kind.', decisions.samples()),
      fam('fleetboot_boot_events_dropped_total', 'counter', 'Boot steps not stored in the timeline (a client over its rate, or the queue full); they are counted above all the same.', [{ value: src.bootEventsDropped() }]),
      fam('fleetboot_tasks', 'gauge', 'Imaging tasks in the store, by state and type.', tasks.map((g) => ({ labels: { state: g.keys.state ?? '', type: g.keys.type ?? '' }, value: g.count }))),
      fam('fleetboot_tasks_ended_total', 'counter', 'Imaging tasks that ended while this server ran, by type and final state.', tasksEnded.samples()),
      fam('fleetboot_imaging_transferred_bytes_total', 'counter', 'Image bytes the agents reported moved (progress reports), by phase.', imagingBytes.samples()),
      fam('fleetboot_imaging_transfer_rate_bytes_per_second', 'gauge', 'The summed smoothed rate of the tasks reporting progress now.', [{ value: Math.round(rate) }]),
      fam('fleetboot_imaging_transfers_active', 'gauge', 'Tasks that reported progress and have not ended.', [{ value: active }]),
      fam('fleetboot_multicast_sessions', 'gauge', 'Multicast sessions in the store, by state (waiting and sending are active).', sessions.map((g) => ({ labels: { state: g.keys.state ?? '' }, value: g.count }))),
      fam('fleetboot_multicast_sessions_ended_total', 'counter', 'Multicast sessions that ended while this server ran, by final state.', sessionsEnded.samples()),
      fam('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', [{ value: mem.rss }]),
      fam('process_cpu_seconds_total', 'counter', 'User and system CPU time spent, in seconds.', [{ value: (cpu.user + cpu.system) / 1e6 }]),
    ]);
  }

  return {
    bootStep(e) {
      try {
        bootStep(e);
      } catch {
        // counting must never break a service
      }
    },
    liveEvent(e) {
      try {
        liveEvent(e);
      } catch {
        // likewise
      }
    },
    render,
  };
}
