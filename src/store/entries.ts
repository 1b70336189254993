/**
 * Boot entries: a kernel, ordered initrds and a command line, by unique name.
 * Sources are http(s) URLs or names of files in <dataDir>/entries/<name>/.
 * Plain functions over a Kysely handle; rows are mapped to `BootEntry`.
 */
import type { Kysely } from 'kysely';
import { FleetbootError } from '../lib/errors.js';
import type { Database } from './schema.js';
import { isValidName } from '../model/validate.js';

export interface BootEntry {
  name: string;
  kernel: string;
  initrds: string[];
  cmdline: string;
  createdAt: string;
}

export interface NewBootEntry {
  name: string;
  kernel: string;
  initrds?: readonly string[];
  cmdline?: string;
}

type Db = Kysely<Database>;

async function initrdsOf(db: Db, entryIds: number[]): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  if (entryIds.length === 0) return out;
  const rows = await db
    .selectFrom('boot_entry_initrds')
    .select(['entry_id', 'source'])
    .where('entry_id', 'in', entryIds)
    .orderBy('entry_id')
    .orderBy('position')
    .execute();
  for (const r of rows) {
    const list = out.get(r.entry_id) ?? [];
    list.push(r.source);
    out.set(r.entry_id, list);
  }
  return out;
}

export async function listEntries(db: Db): Promise<BootEntry[]> {
  const rows = await db.selectFrom('boot_entries').selectAll().orderBy('name').execute();
  const initrds = await initrdsOf(
    db,
    rows.map((r) => r.id),
  );
  return rows.map((r) => ({ name: r.name, kernel: r.kernel, initrds: initrds.get(r.id) ?? [], cmdline: r.cmdline, createdAt: r.created_at }));
}

export async function getEntry(db: Db, name: string): Promise<BootEntry | null> {
  const r = await db.selectFrom('boot_entries').selectAll().where('name', '=', name).executeTakeFirst();
  if (!r) return null;
  const initrds = await initrdsOf(db, [r.id]);
  return { name: r.name, kernel: r.kernel, initrds: initrds.get(r.id) ?? [], cmdline: r.cmdline, createdAt: r.created_at };
}

/** Insert an entry; CONFLICT when the name is taken. Opens its own transaction. */
export async function createEntry(db: Db, input: NewBootEntry): Promise<BootEntry> {
  if (!isValidName(input.name)) throw new FleetbootError('INVALID_INPUT', `Invalid entry name ${JSON.stringify(input.name)}`);
  const createdAt = new Date().toISOString();
  const initrds = [...(input.initrds ?? [])];
  await db.transaction().execute(async (trx) => {
    const exists = await trx.selectFrom('boot_entries').select('id').where('name', '=', input.name).executeTakeFirst();
    if (exists) throw new FleetbootError('CONFLICT', `A boot entry named '${input.name}' already exists`);
    const { id } = await trx
      .insertInto('boot_entries')
      .values({ name: input.name, kernel: input.kernel, cmdline: input.cmdline ?? '', created_at: createdAt })
      .returning('id')
      .executeTakeFirstOrThrow();
    if (initrds.length > 0) {
      await trx
        .insertInto('boot_entry_initrds')
        .values(initrds.map((source, position) => ({ entry_id: id, position, source })))
        .execute();
    }
  });
  return { name: input.name, kernel: input.kernel, initrds, cmdline: input.cmdline ?? '', createdAt };
}

/**
 * Delete an entry. An entry that hosts use is refused with CONFLICT (naming
 * the hosts) unless `force`, which unassigns those hosts in the same
 * transaction. Returns the MACs that were unassigned.
 */
export async function deleteEntry(db: Db, name: string, opts: { force?: boolean } = {}): Promise<{ unassigned: string[] }> {
  return db.transaction().execute(async (trx) => {
    const entry = await trx.selectFrom('boot_entries').select('id').where('name', '=', name).executeTakeFirst();
    if (!entry) throw new FleetbootError('NOT_FOUND', `No boot entry named '${name}'`);
    const users = (await trx.selectFrom('hosts').select('mac').where('entry_id', '=', entry.id).orderBy('mac').execute()).map((r) => r.mac);
    if (users.length > 0 && !opts.force) {
      const shown = users.slice(0, 5).join(', ') + (users.length > 5 ? `, … (${users.length} in all)` : '');
      throw new FleetbootError('CONFLICT', `Boot entry '${name}' is assigned to ${users.length} host(s) (${shown}); unassign them first or delete with force`);
    }
    if (users.length > 0) {
      await trx.updateTable('hosts').set({ entry_id: null, updated_at: new Date().toISOString() }).where('entry_id', '=', entry.id).execute();
    }
    await trx.deleteFrom('boot_entry_initrds').where('entry_id', '=', entry.id).execute();
    await trx.deleteFrom('boot_entries').where('id', '=', entry.id).execute();
    return { unassigned: users };
  });
}
