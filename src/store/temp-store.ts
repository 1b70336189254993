/**
 * For tests: stores that go away afterwards.
 * - `openTestStore(dir)`: a store whose files live in `dir`. Its database is
 *   <dir>/fleetboot.db, or, when FLEETBOOT_TEST_STORE=postgres (the test
 *   command's second pass, scripts/run-tests.mjs), a database of its own on
 *   the test run's PostgreSQL; a server started on `dir` finds it through
 *   `testStoreOverrides(dir)`.
 * - `withTempStore(prefix, fn)`: the same in a new temporary directory,
 *   closed and removed after `fn`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type OpenStoreOptions, type Store } from './db.js';
import { createTestDatabase, TEST_STORE_ENV } from './test-postgres.js';

/** Which database tests get: 'postgres' when the test command asks for its PostgreSQL pass. */
export function testStoreDialect(): 'sqlite' | 'postgres' {
  return process.env[TEST_STORE_ENV] === 'postgres' ? 'postgres' : 'sqlite';
}

const databases = new Map<string, Promise<string>>();

/**
 * The PostgreSQL database of data directory `dir` in this test process (one
 * per directory, so a test's store and the server it starts on that
 * directory share it), or null on SQLite. Left for the test run's
 * PostgreSQL to take away when it stops.
 */
export function testDatabaseUrl(dir: string): Promise<string | null> {
  if (testStoreDialect() === 'sqlite') return Promise.resolve(null);
  let url = databases.get(dir);
  if (!url) {
    url = createTestDatabase().then((d) => d.url);
    databases.set(dir, url);
  }
  return url;
}

/** Config overrides that put a test server's store where openTestStore(dir) puts it. */
export async function testStoreOverrides(dir: string): Promise<{ store?: { url: string } }> {
  const url = await testDatabaseUrl(dir);
  return url === null ? {} : { store: { url } };
}

export async function openTestStore(dir: string, opts: Omit<OpenStoreOptions, 'url'> = {}): Promise<Store> {
  return openStore(dir, { ...opts, url: await testDatabaseUrl(dir) });
}

export async function withTempStore(prefix: string, fn: (s: Store, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `fleetboot-${prefix}-`));
  const s = await openTestStore(dir);
  try {
    await fn(s, dir);
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
