/**
 * Images: one row per image name, pointing at its directory under
 * <dataDir>/images/ and holding the manifest. The files are managed by
 * src/imaging/image-store.ts; this module holds only the SQL.
 */
import type { Kysely, Selectable } from 'kysely';
import { parseManifest, type Manifest } from '../imaging/manifest.js';
import { FleetbootError } from '../lib/errors.js';
import type { Database, ImageTable } from './schema.js';
import { finishTask } from './tasks.js';

export interface ImageInfo {
  name: string;
  createdAt: string;
  /** Bytes stored (sum of the compressed streams). */
  sizeBytes: number;
  /** Size of the captured disk. */
  diskBytes: number;
  tableType: 'dos' | 'gpt';
  partitions: number;
  sourceMac: string | null;
  taskId: number | null;
}

type Db = Kysely<Database>;

function toImage(r: Selectable<ImageTable>): { info: ImageInfo; manifest: Manifest; dir: string } {
  const manifest = parseManifest(JSON.parse(r.manifest));
  return {
    info: {
      name: r.name,
      createdAt: r.created_at,
      sizeBytes: Number(r.size_bytes),
      diskBytes: manifest.diskBytes,
      tableType: manifest.table.type,
      partitions: manifest.partitions.length,
      sourceMac: r.source_mac,
      taskId: r.task_id,
    },
    manifest,
    dir: r.dir,
  };
}

export async function listImages(db: Db): Promise<ImageInfo[]> {
  return (await db.selectFrom('images').selectAll().orderBy('name').execute()).map((r) => toImage(r).info);
}

export async function getImage(db: Db, name: string): Promise<{ info: ImageInfo; manifest: Manifest } | null> {
  const r = await getImageRecord(db, name);
  return r ? { info: r.info, manifest: r.manifest } : null;
}

/** getImage plus the directory name (under <dataDir>/images/). */
export async function getImageRecord(db: Db, name: string): Promise<{ info: ImageInfo; manifest: Manifest; dir: string } | null> {
  const r = await db.selectFrom('images').selectAll().where('name', '=', name).executeTakeFirst();
  return r ? toImage(r) : null;
}

/** Every directory an image row points at. */
export async function imageDirs(db: Db): Promise<string[]> {
  return (await db.selectFrom('images').select('dir').execute()).map((r) => r.dir);
}

/**
 * Point `manifest.name` at directory `dir` (insert or replace the row).
 * Returns the directory the name pointed at before, or null.
 */
export async function putImage(db: Db, dir: string, manifest: Manifest, opts: { finishTask?: number } = {}): Promise<string | null> {
  const sizeBytes = manifest.partitions.reduce((s, p) => s + p.streamBytes, 0);
  return db.transaction().execute(async (trx) => {
    // The capture task ends as done in the same transaction, or nothing changes:
    // a task cancelled, failed or reaped meanwhile never replaces the image.
    if (opts.finishTask !== undefined && !(await finishTask(trx, opts.finishTask, 'done'))) {
      throw new FleetbootError('CONFLICT', `Task #${opts.finishTask} is no longer active: its capture is not stored`);
    }
    const old = await trx.selectFrom('images').select(['id', 'dir']).where('name', '=', manifest.name).executeTakeFirst();
    const values = { dir, manifest: JSON.stringify(manifest), size_bytes: sizeBytes, source_mac: manifest.source.mac, task_id: manifest.source.taskId, created_at: manifest.createdAt };
    if (old) await trx.updateTable('images').set(values).where('id', '=', old.id).execute();
    else await trx.insertInto('images').values({ name: manifest.name, ...values }).execute();
    return old ? old.dir : null;
  });
}

/** Delete the row; returns its directory, or null when there was none. */
export async function deleteImageRow(db: Db, name: string): Promise<string | null> {
  const r = await db.deleteFrom('images').where('name', '=', name).returning('dir').executeTakeFirst();
  return r ? r.dir : null;
}
