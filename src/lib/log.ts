import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import { prettyDestination } from './log-pretty.js';

export type { Logger };

/** 'pretty': one human-readable line per event; 'json': pino's JSON lines; 'auto': pretty on a terminal. */
export type LogFormat = 'auto' | 'pretty' | 'json';

/** 'auto' -> 'pretty' when `out` is a terminal, else 'json'. */
export function resolveLogFormat(format: LogFormat, out: unknown = process.stdout): 'pretty' | 'json' {
  if (format !== 'auto') return format;
  return typeof out === 'object' && out !== null && 'isTTY' in out && out.isTTY === true ? 'pretty' : 'json';
}

export interface LogOptions {
  /** Default 'json' (what tests and tools parse); `fleetboot serve` passes `log.format` from the config ('auto' unless set). */
  format?: LogFormat;
  /** Colour the level in pretty lines, when the destination is a terminal (default false). */
  colors?: boolean;
}

/**
 * The root logger. Services take a child with `subsystem` (and per client `mac`, `xid`).
 * `destination` defaults to stdout.
 */
export function createLogger(level: LevelWithSilent = 'info', destination?: NodeJS.WritableStream, opts: LogOptions = {}): Logger {
  const options = { level, base: { pid: process.pid } };
  const out = destination ?? process.stdout;
  if (resolveLogFormat(opts.format ?? 'json', out) === 'pretty') {
    const colors = opts.colors === true && 'isTTY' in out && out.isTTY === true;
    const dest: DestinationStream = prettyDestination(out, { colors });
    return pino(options, dest);
  }
  return destination ? pino(options, destination) : pino(options);
}

/** A logger that drops everything: for tests and tools that have no log. */
export const silentLogger: Logger = pino({ level: 'silent' });
