/**
 * Opening the database: the only module that touches the drivers.
 * `openStore(dataDir)` creates <dataDir>/fleetboot.db (WAL, foreign keys, busy
 * timeout) and brings its schema up to date before anything uses it;
 * `openStore(dataDir, { url: 'postgres://...' })` uses that PostgreSQL
 * database instead (src/store/postgres.ts), with the same schema and the
 * same code above it (Kysely's two dialects). Several servers may open one
 * PostgreSQL database at the same moment: the migrations run under an
 * advisory lock, so each runs once.
 * The database holds hosts, inventories and leases: the file is created 0600
 * before SQLite opens it (an older 0644 one is tightened), and so are its
 * -wal and -shm (SQLite gives them the database's mode when it creates them;
 * ones left behind by an older version or a crash are chmod-ed here).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import { FleetbootError, errorMessage } from '../lib/errors.js';
import type { Database } from './schema.js';
import { ensurePrivateFile, PRIVATE_DIR_MODE, tightenFileIfPresent } from './data-dir.js';
import { migrations as allMigrations, type Migration } from './migrations/index.js';
import { createPool, redactUrl } from './postgres.js';

export const DB_FILE = 'fleetboot.db';

export type StoreDialect = 'sqlite' | 'postgres';

export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: StoreDialect;
  /** Where the database is, for logs: the SQLite file, or the PostgreSQL URL without its password. */
  readonly location: string;
  readonly dataDir: string;
  /** Where boot-entry files live: <dataDir>/entries/<name>/<file>. */
  readonly entriesDir: string;
  /**
   * The driver handle, for store modules that must commit synchronously
   * (leases.ts: a lease is on disk before its OFFER/ACK leaves). Nothing
   * outside src/store/ uses it. null on PostgreSQL.
   */
  readonly sqlite: SQLite.Database | null;
  /**
   * Make every committed transaction survive a power loss (WAL with
   * synchronous=NORMAL only promises that at a checkpoint): call before
   * deleting files that a just-committed row stopped pointing at. On
   * PostgreSQL a commit is already durable (synchronous_commit).
   */
  durable(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** A PostgreSQL URL: the store lives there instead of <dataDir>/fleetboot.db. */
  url?: string | null;
  /** Shown in PostgreSQL's pg_stat_activity (the node's name). */
  applicationName?: string;
  migrations?: readonly Migration[];
}

export async function openStore(dataDir: string, opts: OpenStoreOptions = {}): Promise<Store> {
  mkdirSync(dataDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const entriesDir = join(dataDir, 'entries');
  mkdirSync(entriesDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (opts.url) return openPostgres(dataDir, entriesDir, opts.url, opts);
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
  return storeOf({ db, dialect: 'sqlite', location: file, dataDir, entriesDir, sqlite }, async () => {
    sqlite.pragma('wal_checkpoint(FULL)');
  });
}

function storeOf(fields: Omit<Store, 'durable' | 'close'>, durable: () => Promise<void>): Store {
  let closed = false;
  return {
    ...fields,
    durable,
    async close() {
      if (closed) return;
      closed = true;
      await fields.db.destroy();
    },
  };
}

/** Held (per session) while migrations run, so two servers starting together run each migration once. */
const MIGRATION_LOCK = '7308620119186091009';

async function openPostgres(dataDir: string, entriesDir: string, url: string, opts: OpenStoreOptions): Promise<Store> {
  const location = redactUrl(url);
  const pool = createPool(url, opts.applicationName ? { applicationName: opts.applicationName } : {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    try {
      await sql`select 1`.execute(db);
    } catch (err) {
      throw new FleetbootError('IO', `Cannot connect to the database ${location}: ${errorMessage(err)}`, { cause: err });
    }
    // One connection holds the lock for the whole run (as Kysely's Migrator does on PostgreSQL).
    await db.connection().execute(async (conn) => {
      await sql`select pg_advisory_lock(${MIGRATION_LOCK}::bigint)`.execute(conn);
      try {
        await migrate(conn, opts.migrations ?? allMigrations);
      } finally {
        await sql`select pg_advisory_unlock(${MIGRATION_LOCK}::bigint)`.execute(conn);
      }
    });
  } catch (err) {
    await db.destroy();
    throw err;
  }
  // A commit is durable when it returns (synchronous_commit).
  return storeOf({ db, dialect: 'postgres', location, dataDir, entriesDir, sqlite: null }, async () => {});
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

/** The SQLite driver handle, for the few synchronous paths; an error on PostgreSQL (callers choose their PostgreSQL path first). */
export function sqliteOf(store: Store): SQLite.Database {
  if (store.sqlite === null) throw new TypeError(`This needs the SQLite store; the store is ${store.location}`);
  return store.sqlite;
}

/** A unique constraint refused the write (SQLite's SQLITE_CONSTRAINT_UNIQUE/PRIMARYKEY, PostgreSQL's 23505). */
export function isUniqueViolation(err: unknown): boolean {
  if (typeof err !== 'object' || err === null || !('code' in err)) return false;
  const code = (err as { code: unknown }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
