/**
 * Image revisions, token binding, reported identity and pending hosts.
 * Frozen: never edit a migration that has shipped; add a new one.
 *
 * - image_revisions: every capture adds revision N+1 of its image (its own
 *   directory, manifest and the manifest's sha256), 'ready' or 'pending'
 *   (imaging.captureApproval). images keeps one row per name with the
 *   current revision (null: none approved yet). Existing images become
 *   revision 1, current.
 * - tasks.revision: deploy: the revision it writes (pinned at creation or at
 *   the agent's start); capture: the revision it created. Active deploys of
 *   migrated images write revision 1 (what they were writing).
 * - tasks.requested_revision: the revision a deploy was asked for (null: the
 *   current one at its start); a retry asks for the same.
 * - tasks.token_ip: the client address the current token was handed to; the
 *   agent endpoints refuse the token from any other address.
 * - tasks.identity: the hardware identity the agent reported (JSON), before
 *   any transfer.
 * - hosts.status: 'approved' (default) or 'pending' (registered from the boot
 *   menu, waiting in the inbox for an administrator).
 */
import { createHash } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { idColumn } from './dialect.js';

interface OldImage {
  id: number;
  name: string;
  dir: string;
  manifest: string;
  size_bytes: number;
  source_mac: string | null;
  task_id: number | null;
  created_at: string;
}

export async function up(db: Kysely<unknown>): Promise<void> {
  const id = idColumn(db, '20261202T1200_revisions');
  await db.schema
    .createTable('image_revisions')
    .addColumn('id', 'integer', id)
    .addColumn('image', 'varchar(64)', (c) => c.notNull())
    .addColumn('number', 'integer', (c) => c.notNull())
    // ready | pending
    .addColumn('state', 'varchar(16)', (c) => c.notNull())
    // Directory name under <dataDir>/images/ (a UUID).
    .addColumn('dir', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('manifest', 'text', (c) => c.notNull())
    // sha256 (hex) of manifest.json as stored in the directory.
    .addColumn('manifest_sha256', 'varchar(64)', (c) => c.notNull())
    .addColumn('size_bytes', 'bigint', (c) => c.notNull())
    .addColumn('source_mac', 'varchar(17)')
    .addColumn('task_id', 'integer')
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('approved_at', 'varchar(32)')
    .addUniqueConstraint('image_revisions_image_number', ['image', 'number'])
    .execute();

  const old = (await sql<OldImage>`select id, name, dir, manifest, size_bytes, source_mac, task_id, created_at from images`.execute(db)).rows;
  await db.schema
    .createTable('images_v2')
    .addColumn('id', 'integer', id)
    .addColumn('name', 'varchar(64)', (c) => c.notNull().unique())
    // The revision deploys use; null while no revision is ready.
    .addColumn('current_revision', 'integer')
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .execute();
  for (const r of old) {
    // manifest.json was written as JSON.stringify(manifest, null, 2) + '\n' of the same object (recomputed here from the row).
    let parsed: unknown;
    try {
      parsed = JSON.parse(r.manifest);
    } catch (err) {
      throw new Error(`image '${r.name}': its manifest in the database is not JSON (${err instanceof Error ? err.message : String(err)}); the migration to image revisions cannot go on`);
    }
    const file = JSON.stringify(parsed, null, 2) + '\n';
    const sha = createHash('sha256').update(file).digest('hex');
    await sql`insert into images_v2 (id, name, current_revision, created_at) values (${r.id}, ${r.name}, 1, ${r.created_at})`.execute(db);
    await sql`insert into image_revisions (image, number, state, dir, manifest, manifest_sha256, size_bytes, source_mac, task_id, created_at, approved_at)
      values (${r.name}, 1, 'ready', ${r.dir}, ${r.manifest}, ${sha}, ${r.size_bytes}, ${r.source_mac}, ${r.task_id}, ${r.created_at}, ${r.created_at})`.execute(db);
  }
  await db.schema.dropTable('images').execute();
  await db.schema.alterTable('images_v2').renameTo('images').execute();

  await db.schema.alterTable('tasks').addColumn('revision', 'integer').execute();
  await db.schema.alterTable('tasks').addColumn('requested_revision', 'integer').execute();
  await sql`update tasks set revision = 1 where type = 'deploy' and state in ('queued', 'booting', 'waiting', 'running') and image in (select name from images)`.execute(db);
  await db.schema.alterTable('tasks').addColumn('token_ip', 'varchar(45)').execute();
  await db.schema.alterTable('tasks').addColumn('identity', 'text').execute();
  await db.schema.alterTable('hosts').addColumn('status', 'varchar(16)', (c) => c.notNull().defaultTo('approved')).execute();
}
