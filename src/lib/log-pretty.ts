/**
 * The human-readable log: a synchronous pino destination that turns each
 * JSON line into one line of text,
 *
 *   14:05:09.123 INFO  http     HTTP listening; iPXE script at http://10.0.0.5:8080/boot.ipxe port=8080
 *
 * time (local), level, subsystem, message, then the other fields as
 * key=value: nested objects flattened with dotted keys (`req.method=GET`),
 * arrays of plain values joined with commas, strings quoted only when they
 * hold spaces, quotes or '=', errors as their message. `pid`, `hostname`
 * and pino's own keys are left out. A line that is not JSON is passed
 * through unchanged. Our own code rather than pino-pretty: no extra
 * dependency and no worker thread, and the terminal sees each line as soon
 * as it is logged.
 */

/** What pino needs of a destination. */
export interface LineSink {
  write(text: string): unknown;
}

export interface PrettyOptions {
  /** ANSI colours for the level (default false). */
  colors?: boolean;
}

const LEVELS: Record<number, { name: string; color: string }> = {
  10: { name: 'TRACE', color: '\x1b[90m' },
  20: { name: 'DEBUG', color: '\x1b[90m' },
  30: { name: 'INFO', color: '\x1b[32m' },
  40: { name: 'WARN', color: '\x1b[33m' },
  50: { name: 'ERROR', color: '\x1b[31m' },
  60: { name: 'FATAL', color: '\x1b[1;31m' },
};
const RESET = '\x1b[0m';
const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'subsystem', 'v']);
/** Nested objects deeper than this are printed as compact JSON. */
const MAX_DEPTH = 2;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function text(s: string): string {
  return s !== '' && /^[^\s"'=\\]+$/.test(s) ? s : JSON.stringify(s);
}

function scalar(v: unknown): string | null {
  if (typeof v === 'string') return text(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return null;
}

/** key=value pairs for one field (objects flattened, errors shortened). */
function pairs(key: string, v: unknown, depth: number, out: string[]): void {
  const s = scalar(v);
  if (s !== null) {
    out.push(`${key}=${s}`);
  } else if (Array.isArray(v)) {
    const items = v.map(scalar);
    out.push(`${key}=${items.every((x) => x !== null) ? text(v.map(String).join(',')) : JSON.stringify(v)}`);
  } else if (isRecord(v)) {
    if (typeof v.message === 'string' && (typeof v.stack === 'string' || typeof v.type === 'string')) {
      // pino's error serializer: {type, message, stack}
      const type = typeof v.type === 'string' && v.type !== 'Error' ? `${v.type}: ` : '';
      out.push(`${key}=${text(type + v.message)}`);
    } else if (depth >= MAX_DEPTH) {
      out.push(`${key}=${JSON.stringify(v)}`);
    } else {
      for (const [k, x] of Object.entries(v)) pairs(`${key}.${k}`, x, depth + 1, out);
    }
  }
  // undefined and functions cannot come out of JSON: nothing to print
}

function clock(t: unknown): string {
  const d = typeof t === 'number' || typeof t === 'string' ? new Date(t) : new Date();
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** One pino JSON line -> one text line (without the newline). */
export function formatLogLine(line: string, opts: PrettyOptions = {}): string {
  let rec: unknown;
  try {
    rec = JSON.parse(line);
  } catch {
    return line;
  }
  if (!isRecord(rec)) return line;
  const lv = typeof rec.level === 'number' ? LEVELS[rec.level] : undefined;
  const name = (lv?.name ?? String(rec.level ?? '')).padEnd(5);
  const level = opts.colors && lv ? `${lv.color}${name}${RESET}` : name;
  const subsystem = typeof rec.subsystem === 'string' ? rec.subsystem : '';
  const fields: string[] = [];
  for (const [k, v] of Object.entries(rec)) if (!OMIT.has(k)) pairs(k, v, 0, fields);
  const msg = typeof rec.msg === 'string' ? rec.msg : '';
  return [clock(rec.time), level, subsystem.padEnd(7), msg, ...fields].join(' ').trimEnd();
}

/** A pino destination writing formatted lines to `out` (synchronously when `out` is). */
export function prettyDestination(out: LineSink, opts: PrettyOptions = {}): LineSink {
  return {
    write(chunk: string): void {
      for (const line of chunk.split('\n')) if (line !== '') out.write(`${formatLogLine(line, opts)}\n`);
    },
  };
}
