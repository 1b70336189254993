/**
 * Waiting in tests for the thing a test needs (a log line, a file, a state),
 * not for a fixed time: poll a check until it holds, with a deadline and a
 * message that names what did not happen.
 */

/**
 * Poll `check` every `intervalMs` (default 10) until it returns something
 * other than null, undefined or false, and return that. Throws
 * `Error("<what> did not happen within <ms> ms")` after `ms`, with
 * `detail()` appended when given (e.g. the log lines seen).
 */
export async function waitFor<T>(
  what: string,
  check: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  ms: number,
  opts: { intervalMs?: number; detail?: () => string } = {},
): Promise<T> {
  const { intervalMs = 10, detail } = opts;
  if (!(ms > 0)) throw new RangeError(`waitFor(): 'ms' must be a positive number: current value is ${ms}`);
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms${detail ? `\n${detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs)); // poll interval; the deadline above bounds the wait
  }
}
