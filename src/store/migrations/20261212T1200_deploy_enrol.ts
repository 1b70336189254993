/**
 * Deploys that enrol the machine's endpoint agent (`task deploy --enrol`,
 * src/imaging/tasks.ts, src/endpoints/service.ts).
 * Frozen: never edit a migration that has shipped; add a new one.
 *
 * - tasks.enrol (0/1): a deploy writes a one-use enrolment token for its
 *   host into the deployed Linux root filesystem.
 * - agent_enrol_tokens.task_id: the deploy task that made the token (null:
 *   made by an administrator). A new token for the task revokes the
 *   unused earlier ones (the agent asked for its task again).
 * - agent_enrol_tokens.mac_bound (0/1): the token enrols only an agent that
 *   reports its host's MAC among its own.
 * Existing rows: no enrol, no task, not MAC-bound.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('tasks').addColumn('enrol', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('agent_enrol_tokens').addColumn('task_id', 'integer').execute();
  await db.schema.alterTable('agent_enrol_tokens').addColumn('mac_bound', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.createIndex('agent_enrol_tokens_task_idx').on('agent_enrol_tokens').column('task_id').execute();
}
