/**
 * Users, sessions, per-user API tokens and the audit log (src/store/users.ts,
 * sessions.ts, api-tokens.ts, audit.ts). Frozen: never edit a migration that
 * has shipped; add a new one.
 *
 * - users: name (unique), role (viewer | operator | admin), password_hash
 *   (`scrypt$N$r$p$salt$hash`, src/lib/password-hash.ts), disabled_at,
 *   must_change_password (0/1: the password was generated and shown once).
 * - sessions: id is the sha256 (hex) of the cookie's secret, never the
 *   secret; the CSRF token; created, last seen (idle timeout) and expires
 *   (absolute timeout) times; address and user agent at login; revoked_at.
 *   They go with their user.
 * - api_tokens: per user, named (unique per user among unrevoked tokens: a
 *   partial index, which SQLite and PostgreSQL both have), a role, the
 *   sha256 (hex) of the secret (unique), expiry (null: never), last use,
 *   revoked_at. They go with their user.
 * - audit_log: one row per change asked through the API: when, who (a text,
 *   so a row outlives its user), from where, method, route pattern and URL,
 *   status, and a summary of the request without its secrets.
 *
 * Timestamps are ISO-8601 text, as everywhere in this store. Ids are
 * AUTOINCREMENT integers on SQLite and identity columns on PostgreSQL;
 * another dialect is refused by name rather than migrated by guess.
 */
import { sql, type ColumnDefinitionBuilder, type Kysely } from 'kysely';
import { migrationDialect } from './dialect.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  const dialect = migrationDialect(db, '20261208T1200_users_sessions_audit');
  const id = (c: ColumnDefinitionBuilder): ColumnDefinitionBuilder => (dialect === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement());

  await db.schema
    .createTable('users')
    .addColumn('id', 'integer', id)
    .addColumn('name', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('role', 'varchar(16)', (c) => c.notNull())
    .addColumn('password_hash', 'varchar(255)', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('updated_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('disabled_at', 'varchar(32)')
    .addColumn('must_change_password', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .createTable('sessions')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('csrf_token', 'varchar(64)', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('last_seen_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('expires_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('ip', 'varchar(64)')
    .addColumn('user_agent', 'varchar(512)')
    .addColumn('revoked_at', 'varchar(32)')
    .execute();
  await db.schema.createIndex('sessions_user_id_idx').on('sessions').column('user_id').execute();
  await db.schema.createIndex('sessions_expires_at_idx').on('sessions').column('expires_at').execute();

  await db.schema
    .createTable('api_tokens')
    .addColumn('id', 'integer', id)
    .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('name', 'varchar(64)', (c) => c.notNull())
    .addColumn('role', 'varchar(16)', (c) => c.notNull())
    .addColumn('token_hash', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('expires_at', 'varchar(32)')
    .addColumn('last_used_at', 'varchar(32)')
    .addColumn('revoked_at', 'varchar(32)')
    .execute();
  await db.schema
    .createIndex('api_tokens_user_name_idx')
    .unique()
    .on('api_tokens')
    .columns(['user_id', 'name'])
    .where(sql.ref('revoked_at'), 'is', null)
    .execute();

  await db.schema
    .createTable('audit_log')
    .addColumn('id', 'integer', id)
    .addColumn('at', 'varchar(32)', (c) => c.notNull())
    .addColumn('actor', 'varchar(200)', (c) => c.notNull())
    .addColumn('ip', 'varchar(64)')
    .addColumn('method', 'varchar(10)', (c) => c.notNull())
    .addColumn('route', 'varchar(300)')
    .addColumn('url', 'varchar(2048)', (c) => c.notNull())
    .addColumn('status', 'integer', (c) => c.notNull())
    .addColumn('summary', 'text')
    .execute();
  await db.schema.createIndex('audit_log_at_idx').on('audit_log').column('at').execute();
}
