/**
 * Live updates: one EventSource per tab on /api/v1/events. The browser
 * reconnects by itself after a dropped connection and sends Last-Event-ID,
 * so the server replays what was missed. A `reset` event (the server
 * restarted, or the gap is too old to replay) makes every page reload its
 * data. Pages listen with useLive(); task progress is kept in one signal
 * per task so a tick re-renders one bar, not a table.
 */
import { signal, type Signal } from '@preact/signals';
import { useEffect, useRef } from 'preact/hooks';
import { LIVE_EVENT_KINDS, type TaskProgressEvent } from '../../src/model/events.js';
import { TASK_PHASES, type TaskPhase } from '../../src/model/task.js';

export type LiveState = 'connecting' | 'open' | 'closed';
export const liveState = signal<LiveState>('closed');

/** The figures of a task.progress event (src/model/events.ts) the bars show. */
export type TaskProgress = Pick<TaskProgressEvent, 'taskId' | 'bytesDone' | 'bytesTotal' | 'rateBps' | 'etaSeconds' | 'message' | 'phase'>;

const progress = new Map<number, Signal<TaskProgress | null>>();

/** The latest progress the stream brought for a task (null until one arrives). */
export function taskProgress(id: number): Signal<TaskProgress | null> {
  let s = progress.get(id);
  if (!s) {
    s = signal<TaskProgress | null>(null);
    progress.set(id, s);
  }
  return s;
}

type Listener = (kind: string, data: unknown) => void;
const listeners = new Set<Listener>();

/** The event kinds the server sends (src/model/events.ts), and `reset` (reload what you show). */
export const LIVE_KINDS = [...LIVE_EVENT_KINDS, 'reset'] as const;

let source: EventSource | null = null;

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function phaseOf(v: unknown): TaskPhase {
  return (TASK_PHASES as readonly unknown[]).includes(v) ? (v as TaskPhase) : 'transfer';
}

function onProgress(data: unknown): void {
  if (typeof data !== 'object' || data === null) return;
  const d = data as Record<string, unknown>;
  const id = num(d['taskId']);
  if (id === null) return;
  taskProgress(id).value = {
    taskId: id,
    bytesDone: num(d['bytesDone']) ?? 0,
    bytesTotal: num(d['bytesTotal']),
    rateBps: num(d['rateBps']),
    etaSeconds: num(d['etaSeconds']),
    message: str(d['message']),
    phase: phaseOf(d['phase']),
  };
}

export function startLive(): void {
  if (source) return;
  liveState.value = 'connecting';
  const es = new EventSource('/api/v1/events');
  source = es;
  es.onopen = () => {
    liveState.value = 'open';
  };
  es.onerror = () => {
    // CONNECTING: the browser retries by itself; CLOSED: it gave up (401 or a server error).
    liveState.value = es.readyState === EventSource.CLOSED ? 'closed' : 'connecting';
    if (es.readyState === EventSource.CLOSED && source === es) {
      source = null;
      setTimeout(() => startLive(), 5000);
    }
  };
  // The server ends the stream when the session ended (or it stops): a retry would get 401, so ask who is logged in.
  es.addEventListener('end', () => {
    es.close();
    if (source === es) source = null;
    liveState.value = 'closed';
    void import('./api.js').then((m) => m.loadMe()).then(() => setTimeout(() => startLive(), 3000));
  });
  for (const kind of LIVE_KINDS) {
    es.addEventListener(kind, (ev: MessageEvent<string>) => {
      let data: unknown = null;
      try {
        data = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (kind === 'task.progress') onProgress(data);
      for (const l of listeners) l(kind, data);
    });
  }
}

export function stopLive(): void {
  source?.close();
  source = null;
  liveState.value = 'closed';
}

/** Calls `fn` for each live event of the given kinds (and on `reset`) while the component is shown. */
export function useLive(kinds: readonly string[], fn: (kind: string, data: unknown) => void): void {
  const ref = useRef(fn);
  ref.current = fn;
  const key = kinds.join(',');
  useEffect(() => {
    const l: Listener = (kind, data) => {
      if (kind === 'reset' || kinds.includes(kind)) ref.current(kind, data);
    };
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, [key]);
}

/** Like useLive, but calls `fn` at most once per `ms` (a burst of events gives one reload). */
export function useLiveReload(kinds: readonly string[], reload: () => void, ms = 1000): void {
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => () => {
    if (timer.current) clearTimeout(timer.current);
  }, []);
  useLive(kinds, () => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      reload();
    }, ms);
  });
}
