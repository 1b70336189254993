/**
 * Endpoint agents on installed machines (src/store/agents.ts, src/endpoints/).
 * Frozen: never edit a migration that has shipped; add a new one.
 *
 * - agents: one row per agent key. id is the first 32 hex digits of the
 *   sha256 of its public key (SPKI DER), public_key its base64; state
 *   active | pending | revoked; host_id the host it acts for (null while
 *   pending, or when that host was deleted); identity (JSON) what it
 *   reported when it enrolled (a copy of its key used on another machine is
 *   told by it); last_identity and last_ip what it reported last.
 * - agent_enrol_tokens: one-time (or N-use) enrolment secrets; only the
 *   sha256 (hex) of the secret is kept. Optional host or group: the agent
 *   becomes that host, or a host of that group found (or made) by its MAC.
 * - agent_sessions: short session secrets (sha256 only), with their agent.
 * - packages: software packages, by name and revision; manifest is the
 *   canonical JSON the server signed, signature its Ed25519 signature. The
 *   files are in <dataDir>/packages/<sha256>.
 * - agent_work: what an agent is to do for a host (inventory, hostname,
 *   reboot, package, wake), when it was handed out and how it ended.
 *   task_id: the imaging task a reboot is for (sent once per task).
 * - tasks.reboot (0/1): an enrolled machine reboots into the task (FOG's
 *   task reboot).
 */
import { type ColumnDefinitionBuilder, type Kysely } from 'kysely';
import { migrationDialect } from './dialect.js';

export async function up(db: Kysely<unknown>): Promise<void> {
  const dialect = migrationDialect(db, '20261211T1200_endpoint_agents');
  const id = (c: ColumnDefinitionBuilder): ColumnDefinitionBuilder => (dialect === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement());

  await db.schema
    .createTable('agents')
    .addColumn('id', 'varchar(32)', (c) => c.primaryKey())
    .addColumn('public_key', 'varchar(512)', (c) => c.notNull())
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('host_id', 'integer', (c) => c.references('hosts.id').onDelete('set null'))
    .addColumn('identity', 'text', (c) => c.notNull())
    .addColumn('last_identity', 'text')
    .addColumn('last_ip', 'varchar(64)')
    .addColumn('enrolled_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('approved_at', 'varchar(32)')
    .addColumn('revoked_at', 'varchar(32)')
    .addColumn('last_seen_at', 'varchar(32)')
    .addColumn('token_id', 'integer')
    .execute();
  await db.schema.createIndex('agents_host_id_idx').on('agents').column('host_id').execute();

  await db.schema
    .createTable('agent_enrol_tokens')
    .addColumn('id', 'integer', id)
    .addColumn('token_hash', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('host_id', 'integer', (c) => c.references('hosts.id').onDelete('cascade'))
    .addColumn('group_id', 'integer', (c) => c.references('groups.id').onDelete('cascade'))
    .addColumn('uses_left', 'integer', (c) => c.notNull())
    .addColumn('uses', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('created_by', 'varchar(200)', (c) => c.notNull())
    .addColumn('expires_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('revoked_at', 'varchar(32)')
    .execute();

  await db.schema
    .createTable('agent_sessions')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('agent_id', 'varchar(32)', (c) => c.notNull().references('agents.id').onDelete('cascade'))
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('expires_at', 'varchar(32)', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('agent_sessions_expires_idx').on('agent_sessions').column('expires_at').execute();

  await db.schema
    .createTable('packages')
    .addColumn('id', 'integer', id)
    .addColumn('name', 'varchar(64)', (c) => c.notNull())
    .addColumn('revision', 'integer', (c) => c.notNull())
    .addColumn('manifest', 'text', (c) => c.notNull())
    .addColumn('signature', 'varchar(256)', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('created_by', 'varchar(200)', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('packages_name_revision_idx').unique().on('packages').columns(['name', 'revision']).execute();

  await db.schema
    .createTable('agent_work')
    .addColumn('id', 'integer', id)
    .addColumn('host_id', 'integer', (c) => c.notNull().references('hosts.id').onDelete('cascade'))
    .addColumn('kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('package_id', 'integer', (c) => c.references('packages.id').onDelete('cascade'))
    .addColumn('task_id', 'integer')
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    .addColumn('not_before', 'varchar(32)')
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('created_by', 'varchar(200)', (c) => c.notNull())
    .addColumn('agent_id', 'varchar(32)')
    .addColumn('deliveries', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('sent_at', 'varchar(32)')
    .addColumn('finished_at', 'varchar(32)')
    .addColumn('exit_code', 'bigint')
    .addColumn('signal', 'varchar(16)')
    .addColumn('duration_ms', 'bigint')
    .addColumn('stdout', 'text')
    .addColumn('stderr', 'text')
    .addColumn('message', 'text')
    .addColumn('reboot_requested', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('agent_work_host_state_idx').on('agent_work').columns(['host_id', 'state']).execute();
  await db.schema.createIndex('agent_work_task_idx').on('agent_work').column('task_id').execute();

  await db.schema.alterTable('tasks').addColumn('reboot', 'integer', (c) => c.notNull().defaultTo(0)).execute();
}
