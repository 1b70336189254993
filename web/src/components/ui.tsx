/**
 * The console's building blocks: a page frame that names itself and takes
 * focus on navigation, a data loader, status shown in words (never colour
 * alone), progress bars with readable values, a modal confirmation that
 * returns focus to its opener, and one polite live region.
 */
import type { ComponentChildren, JSX } from 'preact';
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { signal } from '@preact/signals';
import { errorText } from '../api.js';

/** A page: sets the document title and moves focus to its heading when it is shown (screen readers hear the new page). */
export function Page(props: { title: string; actions?: ComponentChildren; children: ComponentChildren }): JSX.Element {
  const h1 = useRef<HTMLHeadingElement>(null);
  useLayoutEffect(() => {
    document.title = `${props.title} · Fleetboot`;
    // Not on the first page of a visit (the browser starts at the top), on every navigation after.
    if (navigated) h1.current?.focus();
    navigated = true;
  }, [props.title]);
  return (
    <section class="page" aria-labelledby="page-title">
      <header class="page-head">
        <h1 id="page-title" tabIndex={-1} ref={h1}>
          {props.title}
        </h1>
        {props.actions ? <div class="actions">{props.actions}</div> : null}
      </header>
      {props.children}
    </section>
  );
}
let navigated = false;

export interface Loaded<T> {
  data: T | undefined;
  error: string | null;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` when `key` changes (and on reload()); the latest answer wins. */
export function useLoad<T>(load: () => Promise<T>, key: unknown[]): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const seq = useRef(0);
  useEffect(() => {
    const mine = ++seq.current;
    setLoading(true);
    load().then(
      (d) => {
        if (mine !== seq.current) return;
        setData(d);
        setError(null);
        setLoading(false);
      },
      (err: unknown) => {
        if (mine !== seq.current) return;
        setError(errorText(err));
        setLoading(false);
      },
    );
  }, [...key, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}

export function ErrorNote(props: { error: string | null }): JSX.Element | null {
  if (!props.error) return null;
  return (
    <p class="error" role="alert">
      <span aria-hidden="true">⚠ </span>
      {props.error}
    </p>
  );
}

const STATE_ICON: Record<string, string> = {
  running: '▶',
  queued: '…',
  scheduled: '◷',
  waiting: '…',
  done: '✓',
  succeeded: '✓',
  verified: '✓',
  ready: '✓',
  approved: '✓',
  failed: '✗',
  cancelled: '⊘',
  pending: '?',
  dropped: '✗',
  sent: '→',
  active: '✓',
  revoked: '⊘',
  usable: '✓',
  timeout: '✗',
  'hash-mismatch': '✗',
  'bad-signature': '✗',
  interrupted: '✗',
  refused: '✗',
  lost: '✗',
};

/** A state as a word with an icon beside it (the colour only repeats what the word says). */
export function State(props: { state: string }): JSX.Element {
  const s = props.state;
  return (
    <span class={`state state-${s.replace(/[^a-z-]/g, '')}`}>
      <span aria-hidden="true">{STATE_ICON[s] ?? '•'} </span>
      {s}
    </span>
  );
}

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** A progress bar with its value in words beside it (percent, rate, ETA), tied together for assistive technology. */
export function Progress(props: { id: string; done: number; total: number | null; rateBps?: number | null; etaSeconds?: number | null; label?: string }): JSX.Element {
  const pct = props.total ? Math.min(100, (props.done / props.total) * 100) : null;
  const parts = [pct === null ? formatBytes(props.done) : `${pct.toFixed(0)} %`];
  if (props.rateBps) parts.push(`${formatBytes(props.rateBps)}/s`);
  if (props.etaSeconds !== null && props.etaSeconds !== undefined) parts.push(`ETA ${formatDuration(props.etaSeconds)}`);
  const text = parts.join(', ');
  return (
    <span class="progress">
      <progress id={`${props.id}-bar`} max={100} value={pct ?? undefined} aria-label={props.label ?? 'Progress'} aria-valuetext={text} aria-describedby={`${props.id}-text`} />
      <span id={`${props.id}-text`} class="progress-text" data-progress-text>
        {text}
      </span>
    </span>
  );
}

/** Announcements for screen readers (one polite region for the whole console). */
export const announcement = signal('');
export function announce(text: string): void {
  announcement.value = '';
  queueMicrotask(() => {
    announcement.value = text;
  });
}

/**
 * A modal dialog (native <dialog>: the rest of the page is inert and focus
 * moves inside). Closing returns focus to whatever had it before.
 */
export function Dialog(props: { open: boolean; title: string; onClose: () => void; children: ComponentChildren }): JSX.Element {
  const ref = useRef<HTMLDialogElement>(null);
  const opener = useRef<Element | null>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (props.open && !d.open) {
      opener.current = document.activeElement;
      d.showModal();
    } else if (!props.open && d.open) {
      d.close();
    }
  }, [props.open]);
  const closed = (): void => {
    const o = opener.current;
    if (o instanceof HTMLElement) o.focus();
    props.onClose();
  };
  return (
    <dialog ref={ref} aria-labelledby="dialog-title" onClose={closed}>
      {props.open ? (
        <>
          <h2 id="dialog-title">{props.title}</h2>
          {props.children}
        </>
      ) : null}
    </dialog>
  );
}

/** A confirmation that names what will happen; resolves the action or shows its error. */
export function Confirm(props: { open: boolean; title: string; confirmLabel: string; danger?: boolean; onConfirm: () => Promise<void>; onClose: () => void; children: ComponentChildren }): JSX.Element {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (props.open) setError(null);
  }, [props.open]);
  const go = async (): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await props.onConfirm();
      props.onClose();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={props.open} title={props.title} onClose={props.onClose}>
      <div class="dialog-body">{props.children}</div>
      <ErrorNote error={error} />
      <div class="dialog-actions">
        <button type="button" onClick={props.onClose}>
          Cancel
        </button>
        <button type="button" class={props.danger ? 'danger' : 'primary'} disabled={busy} onClick={() => void go()}>
          {busy ? 'Working…' : props.confirmLabel}
        </button>
      </div>
    </Dialog>
  );
}

/**
 * After a deletion the button that opened the dialog is gone with its row,
 * and focus would fall to the page's body: give it to the page heading.
 * Call it with the data whose change may remove rows.
 */
export function useFocusKept(data: unknown): void {
  const focused = useRef<Element | null>(null);
  // Read while rendering, before this update changes the page.
  focused.current = document.activeElement;
  useEffect(() => {
    const el = focused.current;
    if (el && el !== document.body && !el.isConnected) document.getElementById('page-title')?.focus();
  }, [data]);
}

export function Empty(props: { children: ComponentChildren }): JSX.Element {
  return <p class="empty">{props.children}</p>;
}
