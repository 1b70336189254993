/**
 * Progress: the task-wide byte counter, its periodic report to the transport
 * (every TaskSpec.progressIntervalSeconds), and the rate/ETA maths for the
 * console line. A 'cancelled' answer (or a CancelledError from the
 * transport) aborts the task's AbortController, which kills the children.
 */
import type { ProgressReport, TaskPhase } from '../imaging/protocol.js';
import { CancelledError } from './errors.js';
import type { Transport } from './transport.js';

/** Bytes per second over a sliding window of samples (bytesDone, time). */
export class RateMeter {
  private samples: { t: number; bytes: number }[] = [];
  constructor(private readonly windowMs = 10_000) {}

  add(bytesDone: number, nowMs: number): void {
    this.samples.push({ t: nowMs, bytes: bytesDone });
    while (this.samples.length > 2 && (this.samples[0] as { t: number }).t < nowMs - this.windowMs) this.samples.shift();
  }

  /** Bytes per second, or null until two samples some time apart exist. */
  rate(): number | null {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.t - first.t <= 0) return null;
    return Math.max(0, ((last.bytes - first.bytes) * 1000) / (last.t - first.t));
  }
}

/** Seconds left at `rate`, or null when unknown (no total, no rate, rate 0). */
export function etaSeconds(bytesDone: number, bytesTotal: number | null, rate: number | null): number | null {
  if (bytesTotal === null || rate === null || rate <= 0) return null;
  return Math.max(0, Math.ceil((bytesTotal - bytesDone) / rate));
}

/** "12.3 MB/s" (decimal units, as transfer rates are usually given). */
export function formatRate(bytesPerSecond: number | null): string {
  if (bytesPerSecond === null) return '-';
  if (bytesPerSecond >= 1e9) return `${(bytesPerSecond / 1e9).toFixed(2)} GB/s`;
  if (bytesPerSecond >= 1e6) return `${(bytesPerSecond / 1e6).toFixed(1)} MB/s`;
  return `${(bytesPerSecond / 1e3).toFixed(1)} kB/s`;
}

/** "1:02:03" / "2:03". */
export function formatDuration(seconds: number | null): string {
  if (seconds === null) return '-';
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const mm = h > 0 ? String(m).padStart(2, '0') : String(m);
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(s).padStart(2, '0')}`;
}

export class Progress {
  phase: TaskPhase = 'starting';
  bytesDone = 0;
  bytesTotal: number | null = null;
  partition: number | null = null;
  message: string | undefined;
  readonly meter = new RateMeter();
  private timer: NodeJS.Timeout | null = null;
  private inFlight = false;

  constructor(
    private readonly transport: Transport,
    private readonly intervalSeconds: number,
    private readonly abort: AbortController,
  ) {}

  report(): ProgressReport {
    const r: ProgressReport = { phase: this.phase, bytesDone: this.bytesDone, bytesTotal: this.bytesTotal, partition: this.partition };
    if (this.message !== undefined) r.message = this.message;
    return r;
  }

  /** Send a report now (phase changes); a 'cancelled' answer aborts the task. Not thrown: the abort carries it. */
  async send(): Promise<void> {
    if (this.inFlight) return;
    this.inFlight = true;
    this.meter.add(this.bytesDone, Date.now());
    try {
      const state = await this.transport.progress(this.report());
      if (state === 'cancelled' || state === 'failed' || state === 'done') this.abort.abort(new CancelledError(`task ${state} on the server`));
    } catch (e) {
      this.abort.abort(e);
    } finally {
      this.inFlight = false;
    }
  }

  /** Move to a phase and report it at once. */
  async enter(phase: TaskPhase, partition: number | null = this.partition, message?: string): Promise<void> {
    this.phase = phase;
    this.partition = partition;
    this.message = message;
    await this.send();
    this.throwIfAborted();
  }

  add(bytes: number): void {
    this.bytesDone += bytes;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.send(), Math.max(1, this.intervalSeconds) * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  throwIfAborted(): void {
    if (this.abort.signal.aborted) throw toError(this.abort.signal.reason);
  }
}

export function toError(reason: unknown): Error {
  return reason instanceof Error ? reason : new CancelledError();
}
