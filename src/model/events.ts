/**
 * Live events: what GET /api/v1/events streams to the console (Server-Sent
 * Events, src/http/routes/api-events.ts) as it happens. Types and pure
 * builders, nothing of the server: the browser imports them.
 *
 * On the wire each event is one SSE block:
 *   id: <epoch>-<seq>        epoch: this server run; seq: 1, 2, 3... in order
 *   event: <kind>            e.g. task.progress
 *   data: <JSON of the event, id and kind included>
 *
 * Kinds (the fields are the interfaces below):
 *   task.progress   a running task's figures, at most once a second per task
 *                   (the newest report wins); rateBps and etaSeconds are the
 *                   server's, as GET /api/v1/tasks/:id shows them
 *   task.state      a task was created or changed state (never coalesced; a
 *                   task's older progress never comes after it)
 *   host.pending    an unknown machine registered and waits in the inbox
 *   host.changed    a host was created, approved, rejected, changed or deleted
 *   host.imported   many hosts were added at once (an import): reload the list
 *   dhcp.lease      a lease changed (DHCP server mode): the row as GET
 *                   /api/v1/dhcp/leases shows it (state bound: granted)
 *   boot.event      a step of a machine's boot, as its timeline records it
 *   multicast.session  a multicast session waits, sends or ended
 *   multicast.member   a member of a running session joined, finished or was dropped
 * and three that describe the stream itself:
 *   ready           first after connecting (after the replay of a resume, or
 *                   of the events kept, with ?history=true)
 *   reset           the Last-Event-ID given is from another server run or too
 *                   old to replay: reload what you show, then carry on
 *   end             the server ends the stream, saying why: the session
 *                   ended (a reconnect gets 401), or the server stops (a
 *                   reconnect resumes, or gets reset from the next run)
 * They carry the id of the newest event so far: a resume from them replays
 * what came after.
 */
import type { BootEventDetail, BootEventKind, NewBootEvent } from './boot-event.js';
import { leaseActive, type Lease, type LeaseInfo } from './lease.js';
import type { TaskPhase, TaskState, TaskType } from './task.js';

export const LIVE_EVENT_KINDS = [
  'task.progress',
  'task.state',
  'host.pending',
  'host.changed',
  'host.imported',
  'dhcp.lease',
  'boot.event',
  'multicast.session',
  'multicast.member',
] as const;
export type LiveEventKind = (typeof LIVE_EVENT_KINDS)[number];

/** What every event has. */
export interface LiveEventBase {
  /** `<epoch>-<seq>` (also the SSE id). */
  id: string;
  /** When it happened (ISO-8601, the server's clock). */
  at: string;
  /**
   * The node (server sharing the PostgreSQL store) it happened on, when it
   * is not the one streaming it (src/events/relay.ts); absent for this
   * server's own events.
   */
  node?: string;
}

export interface TaskProgressEvent extends LiveEventBase {
  kind: 'task.progress';
  taskId: number;
  mac: string;
  phase: TaskPhase;
  bytesDone: number;
  bytesTotal: number | null;
  /** The partition being written or read, or null. */
  partition: number | null;
  /** Bytes a second, the server's smoothed figure; null until it can tell. */
  rateBps: number | null;
  /** Seconds left at that rate; null when it cannot tell. */
  etaSeconds: number | null;
  /** The agent's own words, or null. */
  message: string | null;
}

export interface TaskStateEvent extends LiveEventBase {
  kind: 'task.state';
  taskId: number;
  mac: string;
  type: TaskType;
  image: string | null;
  /** null: the task was just created (state scheduled or queued). */
  from: TaskState | null;
  state: TaskState;
  /** Why it failed or was cancelled, else null. */
  error: string | null;
  jobId: number | null;
}

export interface HostPendingEvent extends LiveEventBase {
  kind: 'host.pending';
  mac: string;
  name: string | null;
  /** The address it asked from, when known. */
  ip: string | null;
  /** How it registered: the boot menu's item, or a register task (imaging.unknownPolicy). */
  via: 'boot-menu' | 'register-task';
}

export const HOST_CHANGES = ['created', 'approved', 'rejected', 'updated', 'deleted'] as const;
export type HostChange = (typeof HOST_CHANGES)[number];

export interface HostChangedEvent extends LiveEventBase {
  kind: 'host.changed';
  mac: string;
  change: HostChange;
  /** The host after the change (null when it is gone: rejected, deleted). */
  name: string | null;
  status: 'approved' | 'pending' | null;
}

/** One event for an import (up to 20,000 hosts), not one per host. */
export interface HostsImportedEvent extends LiveEventBase {
  kind: 'host.imported';
  added: number;
  /** MACs already there, left as they were (skipExisting). */
  skipped: number;
  groupsCreated: string[];
}

/** The lease's row as GET /api/v1/dhcp/leases shows it. */
export interface DhcpLeaseEvent extends LiveEventBase, LeaseInfo {
  kind: 'dhcp.lease';
}

export interface BootStepEvent extends LiveEventBase {
  kind: 'boot.event';
  /** The MAC when known as the step happened (a TFTP or HTTP fetch may only know the address). */
  mac: string | null;
  ip: string | null;
  /** What the timeline calls its kind: dhcp, tftp, http, decision, task. */
  step: BootEventKind;
  summary: string;
  detail: BootEventDetail;
}

export type MulticastSessionState = 'waiting' | 'sending' | 'finished' | 'cancelled' | 'failed';

export interface MulticastSessionEvent extends LiveEventBase {
  kind: 'multicast.session';
  sessionId: number;
  jobId: number | null;
  image: string;
  revision: number;
  state: MulticastSessionState;
  /** Why it failed, or what went wrong for some members, else null. */
  error: string | null;
}

export interface MulticastMemberEvent extends LiveEventBase {
  kind: 'multicast.member';
  sessionId: number;
  /** null: a receiver the session does not know (not admitted). */
  taskId: number | null;
  /** The sender's word for the receiver: joined, then active, waiting, done, failed or dropped. */
  state: string;
  reason: string | null;
}

export type LiveEvent =
  | TaskProgressEvent
  | TaskStateEvent
  | HostPendingEvent
  | HostChangedEvent
  | HostsImportedEvent
  | DhcpLeaseEvent
  | BootStepEvent
  | MulticastSessionEvent
  | MulticastMemberEvent;

export interface ReadyEvent {
  kind: 'ready';
  /** The newest event's id so far (`<epoch>-0` before the first). */
  id: string;
  /** A Last-Event-ID was given and what came after it was replayed. */
  resumed: boolean;
  /** How many events came before it: the ones missed (a resume), the ones kept (?history=true), else 0. */
  replayed: number;
}

export interface ResetEvent {
  kind: 'reset';
  /** The newest event's id so far. */
  id: string;
  /** Why the resume was refused (another server run, too old, not an id of ours). */
  reason: string;
}

export interface EndEvent {
  kind: 'end';
  /** The newest event's id so far. */
  id: string;
  reason: string;
}

/** The stream's own events. */
export type StreamEvent = ReadyEvent | ResetEvent | EndEvent;

type WithoutIdAt<E> = E extends LiveEvent ? Omit<E, 'id' | 'at'> & { at?: string } : never;

/** An event as a service publishes it: the bus gives it its id (and its time, when absent). */
export type LiveEventInput = WithoutIdAt<LiveEvent>;

/** Where services publish events (the bus, src/events/bus.ts). Never throws, never waits. */
export interface EventPublisher {
  publish(e: LiveEventInput): void;
}

export function isLiveEventKind(v: unknown): v is LiveEventKind {
  return typeof v === 'string' && (LIVE_EVENT_KINDS as readonly string[]).includes(v);
}

/** The fields of a task that a task.state event names. */
export interface TaskFacts {
  id: number;
  mac: string;
  type: TaskType;
  image: string | null;
  jobId: number | null;
}

/** Task `t` went from `from` (null: it was just created) to `to`; `error` is kept for failed and cancelled only. */
export function taskStateEvent(t: TaskFacts, from: TaskState | null, to: TaskState, error: string | null): LiveEventInput {
  return {
    kind: 'task.state',
    taskId: t.id,
    mac: t.mac,
    type: t.type,
    image: t.image,
    from,
    state: to,
    error: to === 'failed' || to === 'cancelled' ? error : null,
    jobId: t.jobId,
  };
}

/** A lease the DHCP server just stored, as GET /api/v1/dhcp/leases shows it, at `now` (ms). */
export function leaseEvent(l: Readonly<Lease>, now: number): LiveEventInput {
  return {
    kind: 'dhcp.lease',
    ip: l.ip,
    mac: l.mac,
    clientId: l.clientId,
    hostname: l.hostname,
    state: l.state,
    expiresAt: new Date(l.expiresAt).toISOString(),
    updatedAt: new Date(l.updatedAt).toISOString(),
    active: leaseActive(l, now),
  };
}

/** A recorded step of a machine's boot (src/events/boot-recorder.ts), as a boot.event. */
export function bootStepEvent(e: NewBootEvent & { at: string }): LiveEventInput {
  return { kind: 'boot.event', at: e.at, mac: e.mac, ip: e.ip, step: e.kind, summary: e.summary, detail: e.detail };
}
