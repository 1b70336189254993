/**
 * For tests: stores that go away afterwards.
 * - `openTestStore(dir)`: a store whose files live in `dir`. Its database is
 *   <dir>/fleetboot.db, or, when FLEETBOOT_TEST_STORE=postgres (the test
 *   command's second pass, scripts/run-tests.mjs), a new database on the
 *   test run's PostgreSQL, dropped when the store is closed.
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

export async function openTestStore(dir: string, opts: Omit<OpenStoreOptions, 'url'> = {}): Promise<Store> {
  if (testStoreDialect() === 'sqlite') return openStore(dir, opts);
  const db = await createTestDatabase();
  let s: Store;
  try {
    s = await openStore(dir, { ...opts, url: db.url });
  } catch (err) {
    await db.drop();
    throw err;
  }
  const close = s.close.bind(s);
  return Object.assign(s, {
    async close() {
      await close();
      await db.drop();
    },
  });
}

/** The database URL a test server should get (config store.url): null on SQLite, a new database on PostgreSQL. */
export async function testDatabaseUrl(): Promise<string | null> {
  if (testStoreDialect() === 'sqlite') return null;
  return (await createTestDatabase()).url;
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
