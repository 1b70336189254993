/**
 * Hosts: a MAC address (unique, lower-case colon form), an optional name and
 * an optional assigned boot entry. Plain functions over a Kysely handle.
 */
import type { Kysely } from 'kysely';
import { FleetbootError } from '../lib/errors.js';
import type { Database } from './schema.js';
import { getEntry, type BootEntry } from './entries.js';
import { isValidName, normaliseMac } from './validate.js';

export interface Host {
  mac: string;
  name: string | null;
  /** Name of the assigned boot entry, or null. */
  entry: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface NewHost {
  mac: string;
  name?: string | null;
  entry?: string | null;
}

export interface HostChanges {
  name?: string | null;
  entry?: string | null;
}

type Db = Kysely<Database>;

function mac(input: string): string {
  const m = normaliseMac(input);
  if (!m) throw new FleetbootError('INVALID_INPUT', `Invalid MAC address ${JSON.stringify(input)}: expected six hex bytes such as 52:54:00:12:34:56`);
  return m;
}

function checkName(name: string | null | undefined): void {
  if (name !== null && name !== undefined && !isValidName(name)) {
    throw new FleetbootError('INVALID_INPUT', `Invalid host name ${JSON.stringify(name)}`);
  }
}

async function entryId(db: Db, name: string): Promise<number> {
  const r = await db.selectFrom('boot_entries').select('id').where('name', '=', name).executeTakeFirst();
  if (!r) throw new FleetbootError('INVALID_INPUT', `No boot entry named '${name}'`);
  return r.id;
}

function hostQuery(db: Db) {
  return db
    .selectFrom('hosts')
    .leftJoin('boot_entries', 'boot_entries.id', 'hosts.entry_id')
    .select(['hosts.mac', 'hosts.name', 'boot_entries.name as entry', 'hosts.created_at', 'hosts.updated_at']);
}

interface HostRow {
  mac: string;
  name: string | null;
  entry: string | null;
  created_at: string;
  updated_at: string;
}

function toHost(r: HostRow): Host {
  return { mac: r.mac, name: r.name, entry: r.entry, createdAt: r.created_at, updatedAt: r.updated_at };
}

export async function listHosts(db: Db): Promise<Host[]> {
  return (await hostQuery(db).orderBy('hosts.mac').execute()).map(toHost);
}

/** The host with this MAC (any spelling), or null. INVALID_INPUT for a malformed MAC. */
export async function getHost(db: Db, macAddress: string): Promise<Host | null> {
  const r = await hostQuery(db).where('hosts.mac', '=', mac(macAddress)).executeTakeFirst();
  return r ? toHost(r) : null;
}

export async function createHost(db: Db, input: NewHost): Promise<Host> {
  const m = mac(input.mac);
  checkName(input.name);
  return db.transaction().execute(async (trx) => {
    if (await trx.selectFrom('hosts').select('id').where('mac', '=', m).executeTakeFirst()) {
      throw new FleetbootError('CONFLICT', `A host with MAC ${m} already exists`);
    }
    const now = new Date().toISOString();
    const eid = input.entry ? await entryId(trx, input.entry) : null;
    await trx.insertInto('hosts').values({ mac: m, name: input.name ?? null, entry_id: eid, created_at: now, updated_at: now }).execute();
    return { mac: m, name: input.name ?? null, entry: input.entry ?? null, createdAt: now, updatedAt: now };
  });
}

/** Change name and/or assigned entry (null unassigns / clears). NOT_FOUND for an unknown MAC. */
export async function updateHost(db: Db, macAddress: string, changes: HostChanges): Promise<Host> {
  const m = mac(macAddress);
  checkName(changes.name);
  return db.transaction().execute(async (trx) => {
    const exists = await trx.selectFrom('hosts').select('id').where('mac', '=', m).executeTakeFirst();
    if (!exists) throw new FleetbootError('NOT_FOUND', `No host with MAC ${m}`);
    const set: { name?: string | null; entry_id?: number | null; updated_at: string } = { updated_at: new Date().toISOString() };
    if (changes.name !== undefined) set.name = changes.name;
    if (changes.entry !== undefined) set.entry_id = changes.entry === null ? null : await entryId(trx, changes.entry);
    await trx.updateTable('hosts').set(set).where('id', '=', exists.id).execute();
    const r = await hostQuery(trx).where('hosts.id', '=', exists.id).executeTakeFirstOrThrow();
    return toHost(r);
  });
}

export async function deleteHost(db: Db, macAddress: string): Promise<void> {
  const m = mac(macAddress);
  const r = await db.deleteFrom('hosts').where('mac', '=', m).executeTakeFirst();
  if (r.numDeletedRows === 0n) throw new FleetbootError('NOT_FOUND', `No host with MAC ${m}`);
}

/** What the boot decision needs: the host (or null) and its assigned entry (or null). */
export async function findBootTarget(db: Db, macAddress: string): Promise<{ host: Host | null; entry: BootEntry | null }> {
  const host = await getHost(db, macAddress);
  if (!host || host.entry === null) return { host, entry: null };
  return { host, entry: await getEntry(db, host.entry) };
}
