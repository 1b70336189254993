import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** The root logger. Services take a child with `subsystem` (and per client `mac`, `xid`). */
export function createLogger(level: LevelWithSilent = 'info', destination?: NodeJS.WritableStream): Logger {
  return destination ? pino({ level, base: { pid: process.pid } }, destination) : pino({ level, base: { pid: process.pid } });
}

/** A logger that drops everything: for tests and tools that have no log. */
export const silentLogger: Logger = pino({ level: 'silent' });
