/**
 * The endpoint agent's log: one line per step on stdout, for journald.
 * 'json' (default): `{"time","level","msg",...fields}`; 'plain':
 * `LEVEL msg key=value ...` (journald adds the time). No dependency: the
 * agent is bundled alone, so pino (src/lib/log.ts) is not used here.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'plain';
export type LogFields = Record<string, unknown>;

export interface AgentLog {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LogOptions {
  /** Default 'json'. */
  format?: LogFormat;
  /** Lowest level written (default 'info'). */
  level?: LogLevel;
  /** Where lines go (default process.stdout). */
  write?: (line: string) => void;
  /** Clock (default Date.now). */
  now?: () => number;
}

export function createAgentLog(opts: LogOptions = {}): AgentLog {
  const { format = 'json', level = 'info', write = (l: string) => void process.stdout.write(l), now = Date.now } = opts;
  const emit = (lvl: LogLevel, msg: string, fields: LogFields = {}): void => {
    if (ORDER[lvl] < ORDER[level]) return;
    if (format === 'json') {
      write(`${JSON.stringify({ time: new Date(now()).toISOString(), level: lvl, msg, ...fields })}\n`);
    } else {
      const kv = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
      write(`${lvl.toUpperCase()} ${msg}${kv.length ? ` ${kv.join(' ')}` : ''}\n`);
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

/** A log that drops everything (tests). */
export const silentAgentLog: AgentLog = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

/** A log that keeps its entries (tests). */
export function memoryAgentLog(): AgentLog & { entries: Array<{ level: LogLevel; msg: string; fields: LogFields }> } {
  const entries: Array<{ level: LogLevel; msg: string; fields: LogFields }> = [];
  const push = (level: LogLevel) => (msg: string, fields: LogFields = {}): void => void entries.push({ level, msg, fields });
  return { entries, debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error') };
}

/** The message of anything thrown. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
