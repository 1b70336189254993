/**
 * Host groups: a name (NAME_PATTERN, unique) and its members, known hosts
 * by MAC. A host leaves its groups when it is deleted (foreign key). Plain
 * functions over a Kysely handle; each change is one transaction.
 */
import type { Kysely } from 'kysely';
import { FleetbootError } from '../lib/errors.js';
import { isValidName, normaliseMac } from '../model/validate.js';
import type { Database } from './schema.js';

export interface GroupInfo {
  name: string;
  members: number;
  createdAt: string;
}

export interface GroupMember {
  mac: string;
  /** The host's name, or null. */
  name: string | null;
  addedAt: string;
}

export interface GroupDetail {
  name: string;
  createdAt: string;
  members: GroupMember[];
}

type Db = Kysely<Database>;

const NAME_EXPECTED = 'expected letters, digits, . _ - (up to 64, starting with a letter or digit)';

export function checkGroupName(name: unknown): string {
  if (typeof name !== 'string' || !isValidName(name)) throw new FleetbootError('INVALID_INPUT', `Invalid group name ${JSON.stringify(name) ?? String(name)}: ${NAME_EXPECTED}`);
  return name;
}

/** MACs in any usual spelling -> lower-case colon form, duplicates dropped; INVALID_INPUT naming every bad one. */
function macList(macs: readonly string[]): string[] {
  if (macs.length === 0) throw new FleetbootError('INVALID_INPUT', 'Expected at least one MAC address');
  const bad = macs.filter((m) => normaliseMac(m) === null);
  if (bad.length) throw new FleetbootError('INVALID_INPUT', `Invalid MAC address${bad.length > 1 ? 'es' : ''} ${bad.map((m) => JSON.stringify(m)).join(', ')}: expected six hex bytes such as 52:54:00:12:34:56`);
  return [...new Set(macs.map((m) => normaliseMac(m) as string))];
}

async function groupId(db: Db, name: string): Promise<number> {
  const g = await db.selectFrom('groups').select('id').where('name', '=', checkGroupName(name)).executeTakeFirst();
  if (!g) throw new FleetbootError('NOT_FOUND', `No group named '${name}' (fleetboot group add ${name})`);
  return g.id;
}

export async function listGroups(db: Db): Promise<GroupInfo[]> {
  const rows = await db
    .selectFrom('groups')
    .leftJoin('group_members', 'group_members.group_id', 'groups.id')
    .select(['groups.name', 'groups.created_at', (eb) => eb.fn.count<number>('group_members.mac').as('members')])
    .groupBy(['groups.id', 'groups.name', 'groups.created_at'])
    .orderBy('groups.name')
    .execute();
  return rows.map((r) => ({ name: r.name, members: Number(r.members), createdAt: r.created_at }));
}

/** The group with its members (by MAC), or null. */
export async function getGroup(db: Db, name: string): Promise<GroupDetail | null> {
  const g = await db.selectFrom('groups').select(['id', 'name', 'created_at']).where('name', '=', checkGroupName(name)).executeTakeFirst();
  if (!g) return null;
  const members = await db
    .selectFrom('group_members')
    .innerJoin('hosts', 'hosts.mac', 'group_members.mac')
    .select(['group_members.mac', 'hosts.name', 'group_members.added_at'])
    .where('group_members.group_id', '=', g.id)
    .orderBy('group_members.mac')
    .execute();
  return { name: g.name, createdAt: g.created_at, members: members.map((m) => ({ mac: m.mac, name: m.name, addedAt: m.added_at })) };
}

/** The members' MACs (NOT_FOUND for an unknown group). */
export async function groupMacs(db: Db, name: string): Promise<string[]> {
  const id = await groupId(db, name);
  return (await db.selectFrom('group_members').select('mac').where('group_id', '=', id).orderBy('mac').execute()).map((r) => r.mac);
}

/** CONFLICT when the name is taken. */
export async function createGroup(db: Db, name: string): Promise<GroupDetail> {
  checkGroupName(name);
  return db.transaction().execute(async (trx) => {
    if (await trx.selectFrom('groups').select('id').where('name', '=', name).executeTakeFirst()) throw new FleetbootError('CONFLICT', `A group named '${name}' already exists`);
    const now = new Date().toISOString();
    await trx.insertInto('groups').values({ name, created_at: now }).execute();
    return { name, createdAt: now, members: [] };
  });
}

/**
 * Delete a group (its memberships go with it; jobs keep its name). CONFLICT
 * while a schedule submits tasks for it, naming the schedules.
 */
export async function deleteGroup(db: Db, name: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const id = await groupId(trx, name);
    const used = await trx.selectFrom('schedules').select(['id', 'name']).where('group_name', '=', name).orderBy('id').execute();
    if (used.length) {
      const which = used.map((s) => `#${s.id}${s.name ? ` (${s.name})` : ''}`).join(', ');
      throw new FleetbootError('CONFLICT', `Group '${name}' is used by schedule${used.length > 1 ? 's' : ''} ${which}: remove ${used.length > 1 ? 'them' : 'it'} first (fleetboot schedule rm)`);
    }
    await trx.deleteFrom('groups').where('id', '=', id).execute();
  });
}

/**
 * Add hosts to a group, all or none. Every MAC must be an approved host:
 * NOT_FOUND naming the unknown ones (and how to add a host), CONFLICT
 * naming pending ones. MACs already members stay (reported in `already`).
 */
export async function addGroupMembers(db: Db, name: string, macs: readonly string[]): Promise<{ group: GroupDetail; added: string[]; already: string[] }> {
  const list = macList(macs);
  return db.transaction().execute(async (trx) => {
    const id = await groupId(trx, name);
    const hosts = await trx.selectFrom('hosts').select(['mac', 'status']).where('mac', 'in', list).execute();
    const known = new Map(hosts.map((h) => [h.mac, h.status]));
    const unknown = list.filter((m) => !known.has(m));
    if (unknown.length) {
      const one = unknown.length === 1;
      throw new FleetbootError('NOT_FOUND', `No host with MAC ${unknown.join(', ')}: a group member must be a known host; add ${one ? 'it' : 'them'} first (fleetboot host add ${one ? unknown[0] : 'MAC'} [--name NAME])`);
    }
    const pending = list.filter((m) => known.get(m) === 'pending');
    if (pending.length) throw new FleetbootError('CONFLICT', `Host${pending.length > 1 ? 's' : ''} ${pending.join(', ')} ${pending.length > 1 ? 'are' : 'is'} pending approval: approve first (fleetboot host approve MAC)`);
    const present = new Set((await trx.selectFrom('group_members').select('mac').where('group_id', '=', id).where('mac', 'in', list).execute()).map((r) => r.mac));
    const added = list.filter((m) => !present.has(m));
    const now = new Date().toISOString();
    if (added.length) await trx.insertInto('group_members').values(added.map((mac) => ({ group_id: id, mac, added_at: now }))).execute();
    const group = await getGroup(trx, name);
    if (!group) throw new FleetbootError('NOT_FOUND', `No group named '${name}'`);
    return { group, added, already: list.filter((m) => present.has(m)) };
  });
}

/** Remove hosts from a group, all or none: NOT_FOUND naming MACs that are not members. */
export async function removeGroupMembers(db: Db, name: string, macs: readonly string[]): Promise<GroupDetail> {
  const list = macList(macs);
  return db.transaction().execute(async (trx) => {
    const id = await groupId(trx, name);
    const present = new Set((await trx.selectFrom('group_members').select('mac').where('group_id', '=', id).where('mac', 'in', list).execute()).map((r) => r.mac));
    const missing = list.filter((m) => !present.has(m));
    if (missing.length) throw new FleetbootError('NOT_FOUND', `${missing.join(', ')} ${missing.length > 1 ? 'are not members' : 'is not a member'} of group '${name}': nothing was removed`);
    await trx.deleteFrom('group_members').where('group_id', '=', id).where('mac', 'in', list).execute();
    const group = await getGroup(trx, name);
    if (!group) throw new FleetbootError('NOT_FOUND', `No group named '${name}'`);
    return group;
  });
}
