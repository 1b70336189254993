/**
 * The agent's error classes. The agent imports nothing of the server (it is
 * bundled alone), so it does not use src/lib/errors.ts.
 */

/** A failure the agent reports as the task's reason (one clear line). */
export class AgentError extends Error {
  override name = 'AgentError';
}

/** The task was cancelled on the server (progress answer 'cancelled', or 409): stop, do not report a failure. */
export class CancelledError extends Error {
  override name = 'CancelledError';
  constructor(message = 'task cancelled on the server') {
    super(message);
  }
}

/**
 * An HTTP exchange with the server failed. `retryable`: a network error, 5xx
 * or 429 that outlived the retry window is still marked retryable so a caller
 * that can restart a whole stream (capture) knows it may try once more.
 */
export class TransportError extends Error {
  override name = 'TransportError';
  readonly status: number | null;
  readonly retryable: boolean;
  constructor(message: string, opts: { status?: number | null; retryable: boolean; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.status = opts.status ?? null;
    this.retryable = opts.retryable;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
