/**
 * Opening the database: the only module that touches the SQLite driver.
 * `openStore(dataDir)` creates <dataDir>/fleetboot.db (WAL, foreign keys, busy
 * timeout) and brings its schema up to date before anything uses it.
 * The database holds hosts, inventories and leases: the file is created 0600
 * before SQLite opens it (an older 0644 one is tightened), and so are its
 * -wal and -shm (SQLite gives them the database's mode when it creates them;
 * ones left behind by an older version or a crash are chmod-ed here).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { FleetbootError, errorMessage } from '../lib/errors.js';
import type { Database } from './schema.js';
import { ensurePrivateFile, PRIVATE_DIR_MODE, tightenFileIfPresent } from './data-dir.js';
import { migrations as allMigrations, type Migration } from './migrations/index.js';

export const DB_FILE = 'fleetboot.db';

export interface Store {
  readonly db: Kysely<Database>;
  readonly dataDir: string;
  /** Where boot-entry files live: <dataDir>/entries/<name>/<file>. */
  readonly entriesDir: string;
  /**
   * The driver handle, for store modules that must commit synchronously
   * (leases.ts: a lease is on disk before its OFFER/ACK leaves). Nothing
   * outside src/store/ uses it.
   */
  readonly sqlite: SQLite.Database;
  /**
   * Make every committed transaction survive a power loss (WAL with
   * synchronous=NORMAL only promises that at a checkpoint): call before
   * deleting files that a just-committed row stopped pointing at.
   */
  durable(): void;
  close(): Promise<void>;
}

export async function openStore(dataDir: string, opts: { migrations?: readonly Migration[] } = {}): Promise<Store> {
  mkdirSync(dataDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const entriesDir = join(dataDir, 'entries');
  mkdirSync(entriesDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const file = join(dataDir, DB_FILE);
  const sidecars = [`${file}-wal`, `${file}-shm`, `${file}-journal`];
  let sqlite: SQLite.Database;
  try {
    ensurePrivateFile(file);
    for (const f of sidecars) tightenFileIfPresent(f);
    sqlite = new SQLite(file);
    sqlite.pragma('journal_mode = WAL');
    for (const f of sidecars) tightenFileIfPresent(f);
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('synchronous = NORMAL');
  } catch (err) {
    throw new FleetbootError('IO', `Cannot open the database ${file}: ${errorMessage(err)}`, { cause: err });
  }
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  try {
    await migrate(db, opts.migrations ?? allMigrations);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  let closed = false;
  return {
    db,
    dataDir,
    entriesDir,
    sqlite,
    durable() {
      sqlite.pragma('wal_checkpoint(FULL)');
    },
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}

/**
 * Apply pending migrations in order, each in its own transaction together with
 * its row in fleetboot_migrations (Kysely's Migrator skips transactions on
 * SQLite; SQLite and PostgreSQL both have transactional DDL, so we use them).
 */
export async function migrate(db: Kysely<Database>, migrations: readonly Migration[]): Promise<string[]> {
  await db.schema
    .createTable('fleetboot_migrations')
    .ifNotExists()
    .addColumn('name', 'varchar(128)', (c) => c.primaryKey())
    .addColumn('applied_at', 'varchar(32)', (c) => c.notNull())
    .execute();
  const done = new Set((await db.selectFrom('fleetboot_migrations').select('name').execute()).map((r) => r.name));
  const known = new Set(migrations.map((m) => m.name));
  const unknown = [...done].filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new FleetbootError('CONFIG', `The database has migrations this version does not know (${unknown.join(', ')}): it was created by a newer Fleetboot`);
  }
  const applied: string[] = [];
  for (const m of migrations) {
    if (done.has(m.name)) continue;
    try {
      await db.transaction().execute(async (trx) => {
        await m.up(trx as unknown as Kysely<unknown>);
        await trx.insertInto('fleetboot_migrations').values({ name: m.name, applied_at: new Date().toISOString() }).execute();
      });
    } catch (err) {
      throw new FleetbootError('IO', `Database migration ${m.name} failed: ${errorMessage(err)}`, { cause: err });
    }
    applied.push(m.name);
  }
  return applied;
}
