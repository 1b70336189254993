/**
 * Which database a migration runs on, for the few steps SQLite and
 * PostgreSQL need written differently. Another dialect is refused by name
 * rather than migrated by guess. Not a migration itself (index.ts lists
 * those).
 */
import { PostgresAdapter, SqliteAdapter, type ColumnDefinitionBuilder, type Kysely } from 'kysely';

export type MigrationDialect = 'sqlite' | 'postgres';

/** getExecutor() is marked internal in Kysely; its Migrator reads the adapter the same way. */
export function migrationDialect(db: Kysely<unknown>, migration: string): MigrationDialect {
  const adapter = db.getExecutor().adapter;
  if (adapter instanceof SqliteAdapter) return 'sqlite';
  if (adapter instanceof PostgresAdapter) return 'postgres';
  throw new Error(`migration ${migration} knows SQLite and PostgreSQL, not ${adapter.constructor.name}`);
}

/**
 * The id column's definition: AUTOINCREMENT on SQLite (what the migrations
 * always wrote there), an identity column on PostgreSQL (which has no
 * AUTOINCREMENT). `.addColumn('id', 'integer', idColumn(db, name))`.
 */
export function idColumn(db: Kysely<unknown>, migration: string): (c: ColumnDefinitionBuilder) => ColumnDefinitionBuilder {
  const dialect = migrationDialect(db, migration);
  return (c) => (dialect === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement());
}
