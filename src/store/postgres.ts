/**
 * PostgreSQL as the store: the URL (`store.url`, `--database`,
 * FLEETBOOT_DATABASE_URL), the connection pool, and what makes PostgreSQL
 * answer like SQLite for the code above it:
 * - int8 (bigint, count(*)) and numeric come back as JavaScript numbers
 *   (pg's default is a string); a value past 2^53 is an error, not a
 *   silently rounded number;
 * - the database should use the C collation, so ORDER BY and `<` on text
 *   (names, MACs, ISO timestamps) mean what they mean on SQLite (BINARY);
 *   `collationProblem` says so and `doctor` reports it.
 * Only db.ts opens a pool; nothing else imports `pg`.
 */
import pg from 'pg';
import { FleetbootError } from '../lib/errors.js';
export { DATABASE_URL_ENV, databaseUrlProblem, isPostgresUrl, redactUrl } from '../model/database-url.js';

const INT8_OID = 20;
const NUMERIC_OID = 1700;

function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new FleetbootError('IO', `PostgreSQL returned the integer ${text}, which is past what Fleetboot can hold exactly (2^53)`);
  return n;
}

/** pg's type parsers, with int8 and numeric as numbers. */
const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
    if (format !== 'binary') {
      if (oid === INT8_OID) return parseInt8;
      if (oid === NUMERIC_OID) return (v: string) => Number(v);
    }
    return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
  },
};

export interface PoolOptions {
  /** Shown in pg_stat_activity (the node's name). */
  applicationName?: string;
  max?: number;
}

export function createPool(url: string, o: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: o.max ?? 10,
    application_name: (o.applicationName ?? 'fleetboot').slice(0, 63),
    types: TYPES,
    // A server that cannot reach the database says so instead of hanging.
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client whose connection drops emits 'error' on the pool; without a
  // listener that would crash the process. The next query reconnects.
  pool.on('error', () => {});
  return pool;
}

/** Why this database's collation would order text differently from SQLite, or null. */
export function collationProblem(datcollate: string): string | null {
  return datcollate === 'C' || datcollate === 'POSIX'
    ? null
    : `the database's collation is "${datcollate}", not "C": names and timestamps sort differently from SQLite (create it with: createdb -E UTF8 --locale=C -T template0 NAME)`;
}
