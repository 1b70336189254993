/**
 * The PostgreSQL URL of a shared store (`store.url`, `--database`,
 * FLEETBOOT_DATABASE_URL): recognised, checked and shown without its
 * password. Pure; the pool is opened in src/store/postgres.ts.
 */

export const DATABASE_URL_ENV = 'FLEETBOOT_DATABASE_URL';

/** True for postgres:// and postgresql:// URLs (the only other store is SQLite in dataDir). */
export function isPostgresUrl(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s);
}

/** The URL with its password replaced, for logs and messages. */
export function redactUrl(s: string): string {
  try {
    const u = new URL(s);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return s.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
  }
}

/** null when `s` is a usable PostgreSQL URL, else what is wrong with it (never echoing a password). */
export function databaseUrlProblem(s: string): string | null {
  if (!isPostgresUrl(s)) return 'must be a PostgreSQL URL (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, or postgres:///DATABASE?host=/socket/dir)';
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return 'is not a valid URL';
  }
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (db === '') return 'must name a database (the path: postgres://HOST/DATABASE)';
  if (db.includes('/')) return `has a path "${db}" that is not a single database name`;
  return null;
}

