/**
 * Hosts: a MAC address (unique, lower-case colon form), an optional name,
 * an optional assigned boot entry and an optional reserved IPv4 address
 * (unique; the DHCP server gives it to that MAC). Plain functions over a
 * Kysely handle, plus one synchronous read of the reservations for the
 * DHCP server (`hostReservations`).
 */
import { sql, type Kysely, type Expression, type ExpressionBuilder, type Nullable, type SqlBool } from 'kysely';
import { FleetbootError } from '../lib/errors.js';
import type { Store } from './db.js';
import type { Database } from './schema.js';
import { getEntry, type BootEntry } from './entries.js';
import { isReservableIPv4, isValidName, normaliseMac } from '../model/validate.js';
import { HOST_SORT_KEYS, IMPORT_MAX, type HostSortKey, type HostStatus } from '../model/host.js';

export { HOST_SORT_KEYS, IMPORT_MAX, type HostSortKey, type HostStatus };

export interface Host {
  mac: string;
  name: string | null;
  /** Name of the assigned boot entry, or null. */
  entry: string | null;
  /** Reserved IPv4 address (DHCP server mode), or null. */
  ip: string | null;
  /** 'pending': registered from the boot menu, waiting for an administrator (nothing may be assigned to it). */
  status: HostStatus;
  createdAt: string;
  updatedAt: string;
}

export interface NewHost {
  mac: string;
  /** Default 'approved'. */
  status?: HostStatus;
  name?: string | null;
  entry?: string | null;
  ip?: string | null;
}

export interface HostChanges {
  name?: string | null;
  entry?: string | null;
  /** null removes the reservation. */
  ip?: string | null;
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

function checkIp(ip: string | null | undefined): void {
  if (ip !== null && ip !== undefined && !isReservableIPv4(ip)) {
    throw new FleetbootError('INVALID_INPUT', `Invalid reserved address ${JSON.stringify(ip)}: expected a unicast IPv4 address such as 10.0.0.20`);
  }
}

/** CONFLICT when another host (not hostId) has this address reserved. */
async function checkIpFree(db: Db, ip: string | null | undefined, hostId: number | null): Promise<void> {
  if (ip === null || ip === undefined) return;
  const other = await db.selectFrom('hosts').select(['id', 'mac']).where('ip', '=', ip).executeTakeFirst();
  if (other && other.id !== hostId) throw new FleetbootError('CONFLICT', `Address ${ip} is already reserved for host ${other.mac}`);
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
    .select(['hosts.mac', 'hosts.name', 'boot_entries.name as entry', 'hosts.ip', 'hosts.status', 'hosts.created_at', 'hosts.updated_at']);
}

interface HostRow {
  mac: string;
  name: string | null;
  entry: string | null;
  ip: string | null;
  status: string;
  created_at: string;
  updated_at: string;
}

function toHost(r: HostRow): Host {
  return { mac: r.mac, name: r.name, entry: r.entry, ip: r.ip, status: r.status === 'pending' ? 'pending' : 'approved', createdAt: r.created_at, updatedAt: r.updated_at };
}

/** Hosts by MAC; `status` keeps only approved hosts or only the pending inbox. */
export async function listHosts(db: Db, filter: { status?: HostStatus } = {}): Promise<Host[]> {
  let q = hostQuery(db);
  if (filter.status !== undefined) q = q.where('hosts.status', '=', filter.status);
  return (await q.orderBy('hosts.mac').execute()).map(toHost);
}

export interface HostQuery {
  status?: HostStatus;
  /**
   * Search: matches part of the name, of the MAC in any spelling ("3456",
   * "34:56", "34-56"), of the reserved address, of the SMBIOS serial or of a
   * group's name. Case-insensitive.
   */
  q?: string;
  /** Only members of this group. */
  group?: string;
  sort?: HostSortKey;
  order?: 'asc' | 'desc';
  offset?: number;
  /** Absent: every match. */
  limit?: number;
}

export interface HostListItem extends Host {
  /** The groups the host is a member of, by name. */
  groups: string[];
}

const SORT_COLUMN = {
  name: 'hosts.name',
  mac: 'hosts.mac',
  entry: 'boot_entries.name',
  status: 'hosts.status',
  createdAt: 'hosts.created_at',
  updatedAt: 'hosts.updated_at',
} as const satisfies Record<HostSortKey, string>;

/** The tables the host list reads (boot_entries left-joined). */
type HostScope = Omit<Database, 'boot_entries'> & { boot_entries: Nullable<Database['boot_entries']> };

/** `%text%` for LIKE with its wildcards taken literally (escape character '\\'). */
function likeContaining(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * One page of hosts matching a query, with the number of all matches (the
 * console's "1–50 of 10,000"). Ties are broken by MAC, so pages never
 * overlap or skip a host.
 */
export async function queryHosts(db: Db, query: HostQuery = {}): Promise<{ hosts: HostListItem[]; total: number }> {
  const where = (eb: ExpressionBuilder<HostScope, 'hosts' | 'boot_entries'>): Expression<SqlBool> => {
    const parts: Expression<SqlBool>[] = [];
    if (query.status !== undefined) parts.push(eb('hosts.status', '=', query.status));
    if (query.group !== undefined) {
      parts.push(
        eb.exists(
          eb
            .selectFrom('group_members')
            .innerJoin('groups', 'groups.id', 'group_members.group_id')
            .select('group_members.mac')
            .whereRef('group_members.mac', '=', 'hosts.mac')
            .where('groups.name', '=', query.group),
        ),
      );
    }
    const q = query.q?.trim() ?? '';
    if (q !== '') {
      const text = likeContaining(q.toLowerCase());
      const any: Expression<SqlBool>[] = [
        sql<SqlBool>`lower(hosts.name) like ${text} escape '\\'`,
        sql<SqlBool>`hosts.ip like ${text} escape '\\'`,
        sql<SqlBool>`lower(hosts.mac) like ${text} escape '\\'`,
        eb.exists(eb.selectFrom('inventories').select('inventories.mac').whereRef('inventories.mac', '=', 'hosts.mac').where(sql<SqlBool>`lower(inventories.serial) like ${text} escape '\\'`)),
        eb.exists(
          eb
            .selectFrom('group_members')
            .innerJoin('groups', 'groups.id', 'group_members.group_id')
            .select('group_members.mac')
            .whereRef('group_members.mac', '=', 'hosts.mac')
            .where(sql<SqlBool>`lower(groups.name) like ${text} escape '\\'`),
        ),
      ];
      // Part of a MAC in any spelling: with ':' or '-' between bytes, against the stored
      // aa:bb:... form (byte-aligned: 00-00-05 is not 00:00:50); bare hex or Cisco's
      // dotted form, against its hex digits.
      const lower = q.toLowerCase();
      if (/^[0-9a-f]{1,2}([:-][0-9a-f]{1,2})+[:-]?$/.test(lower)) any.push(sql<SqlBool>`hosts.mac like ${likeContaining(lower.replace(/-/g, ':'))} escape '\\'`);
      else {
        const hex = lower.replace(/\./g, '');
        if (/^[0-9a-f]{2,12}$/.test(hex)) any.push(sql<SqlBool>`replace(hosts.mac, ':', '') like ${likeContaining(hex)} escape '\\'`);
      }
      parts.push(eb.or(any));
    }
    return eb.and(parts);
  };
  const countRow = await db.selectFrom('hosts').leftJoin('boot_entries', 'boot_entries.id', 'hosts.entry_id').select((eb) => eb.fn.countAll<number | string | bigint>().as('n')).where(where).executeTakeFirstOrThrow();
  const total = Number(countRow.n);
  const order = query.order ?? 'asc';
  let page = hostQuery(db).where(where).orderBy(SORT_COLUMN[query.sort ?? 'mac'], order);
  if ((query.sort ?? 'mac') !== 'mac') page = page.orderBy('hosts.mac', order);
  if (query.limit !== undefined) page = page.limit(query.limit).offset(query.offset ?? 0);
  else if (query.offset) page = page.limit(Number.MAX_SAFE_INTEGER).offset(query.offset);
  const hosts = (await page.execute()).map(toHost);
  const groups = new Map<string, string[]>();
  if (hosts.length > 0) {
    const rows = await db
      .selectFrom('group_members')
      .innerJoin('groups', 'groups.id', 'group_members.group_id')
      .select(['group_members.mac', 'groups.name'])
      .where('group_members.mac', 'in', hosts.map((h) => h.mac))
      .orderBy('groups.name')
      .execute();
    for (const r of rows) groups.set(r.mac, [...(groups.get(r.mac) ?? []), r.name]);
  }
  return { hosts: hosts.map((h) => ({ ...h, groups: groups.get(h.mac) ?? [] })), total };
}

/** The host with this MAC (any spelling), or null. INVALID_INPUT for a malformed MAC. */
export async function getHost(db: Db, macAddress: string): Promise<Host | null> {
  const r = await hostQuery(db).where('hosts.mac', '=', mac(macAddress)).executeTakeFirst();
  return r ? toHost(r) : null;
}

export async function createHost(db: Db, input: NewHost): Promise<Host> {
  const m = mac(input.mac);
  checkName(input.name);
  checkIp(input.ip);
  return db.transaction().execute(async (trx) => {
    if (await trx.selectFrom('hosts').select('id').where('mac', '=', m).executeTakeFirst()) {
      throw new FleetbootError('CONFLICT', `A host with MAC ${m} already exists`);
    }
    await checkIpFree(trx, input.ip, null);
    const now = new Date().toISOString();
    const status = input.status ?? 'approved';
    if (status === 'pending' && (input.entry || input.ip)) {
      throw new FleetbootError('INVALID_INPUT', `A pending host gets no entry and no reserved address: got entry ${JSON.stringify(input.entry ?? null)}, address ${JSON.stringify(input.ip ?? null)}`);
    }
    const eid = input.entry ? await entryId(trx, input.entry) : null;
    const ip = input.ip ?? null;
    await trx.insertInto('hosts').values({ mac: m, name: input.name ?? null, entry_id: eid, ip, status, created_at: now, updated_at: now }).execute();
    return { mac: m, name: input.name ?? null, entry: input.entry ?? null, ip, status, createdAt: now, updatedAt: now };
  });
}

/**
 * Change name, assigned entry and/or reserved address (null unassigns /
 * clears). NOT_FOUND for an unknown MAC, CONFLICT for an address another
 * host has.
 */
export async function updateHost(db: Db, macAddress: string, changes: HostChanges): Promise<Host> {
  const m = mac(macAddress);
  checkName(changes.name);
  checkIp(changes.ip);
  return db.transaction().execute(async (trx) => {
    const exists = await trx.selectFrom('hosts').select(['id', 'status']).where('mac', '=', m).executeTakeFirst();
    if (!exists) throw new FleetbootError('NOT_FOUND', `No host with MAC ${m}`);
    if (exists.status === 'pending' && ((changes.entry !== undefined && changes.entry !== null) || (changes.ip !== undefined && changes.ip !== null))) {
      throw new FleetbootError('CONFLICT', `Host ${m} is pending approval: approve it first (fleetboot host approve ${m})`);
    }
    await checkIpFree(trx, changes.ip, exists.id);
    const set: { name?: string | null; entry_id?: number | null; ip?: string | null; updated_at: string } = { updated_at: new Date().toISOString() };
    if (changes.name !== undefined) set.name = changes.name;
    if (changes.ip !== undefined) set.ip = changes.ip;
    if (changes.entry !== undefined) set.entry_id = changes.entry === null ? null : await entryId(trx, changes.entry);
    await trx.updateTable('hosts').set(set).where('id', '=', exists.id).execute();
    const r = await hostQuery(trx).where('hosts.id', '=', exists.id).executeTakeFirstOrThrow();
    return toHost(r);
  });
}

export interface ImportedHost {
  mac: string;
  name?: string | null;
  ip?: string | null;
  entry?: string | null;
  /** Groups to put the host in (made when missing). */
  groups?: string[];
}

/**
 * Add many hosts at once (FOG's CSV host import), all or none: every row is
 * checked first and INVALID_INPUT names each bad row by its number (1 = the
 * first); a MAC that is already a host is a CONFLICT, unless `skipExisting`
 * (then it is left as it is and counted). Missing groups are made. Returns
 * how many were added and which MACs were skipped.
 */
export async function importHosts(db: Db, rows: readonly ImportedHost[], opts: { skipExisting?: boolean } = {}): Promise<{ added: number; skipped: string[]; groupsCreated: string[] }> {
  if (rows.length > IMPORT_MAX) throw new FleetbootError('INVALID_INPUT', `At most ${IMPORT_MAX} hosts per import: got ${rows.length}`);
  const problems: string[] = [];
  const seen = new Map<string, number>();
  const ips = new Map<string, number>();
  const clean = rows.map((r, i) => {
    const n = i + 1;
    const m = normaliseMac(r.mac);
    if (!m) problems.push(`row ${n}: MAC ${JSON.stringify(r.mac)} is not six hex bytes`);
    else if (seen.has(m)) problems.push(`row ${n}: MAC ${m} is also on row ${seen.get(m)}`);
    else seen.set(m, n);
    if (r.name !== undefined && r.name !== null && !isValidName(r.name)) problems.push(`row ${n}: name ${JSON.stringify(r.name)} is not a valid name (letters, digits, . _ -)`);
    if (r.ip !== undefined && r.ip !== null) {
      if (!isReservableIPv4(r.ip)) problems.push(`row ${n}: address ${JSON.stringify(r.ip)} is not a unicast IPv4 address`);
      else if (ips.has(r.ip)) problems.push(`row ${n}: address ${r.ip} is also on row ${ips.get(r.ip)}`);
      else ips.set(r.ip, n);
    }
    for (const g of r.groups ?? []) if (!isValidName(g)) problems.push(`row ${n}: group ${JSON.stringify(g)} is not a valid name`);
    return { mac: m ?? '', name: r.name ?? null, ip: r.ip ?? null, entry: r.entry ?? null, groups: [...new Set(r.groups ?? [])] };
  });
  const fail = (list: string[]): never => {
    const shown = list.slice(0, 20).join('; ');
    throw new FleetbootError('INVALID_INPUT', `Nothing was imported: ${shown}${list.length > 20 ? `; and ${list.length - 20} more` : ''}`);
  };
  if (problems.length) fail(problems);
  return db.transaction().execute(async (trx) => {
    const existing = new Set<string>();
    const macs = clean.map((r) => r.mac);
    for (let i = 0; i < macs.length; i += 500) {
      for (const r of await trx.selectFrom('hosts').select('mac').where('mac', 'in', macs.slice(i, i + 500)).execute()) existing.add(r.mac);
    }
    if (existing.size && !opts.skipExisting) {
      const list = [...existing];
      throw new FleetbootError(
        'CONFLICT',
        `Nothing was imported: ${list.length} of the MACs ${list.length === 1 ? 'is' : 'are'} already ${list.length === 1 ? 'a host' : 'hosts'} (${list.slice(0, 10).join(', ')}${list.length > 10 ? ', ...' : ''}); skip existing hosts (--skip-existing, skipExisting) to import the others`,
      );
    }
    const todo = clean.filter((r) => !existing.has(r.mac));
    const wantIps = todo.flatMap((r) => (r.ip ? [r.ip] : []));
    const taken: string[] = [];
    for (let i = 0; i < wantIps.length; i += 500) {
      for (const r of await trx.selectFrom('hosts').select(['ip', 'mac']).where('ip', 'in', wantIps.slice(i, i + 500)).execute()) taken.push(`address ${r.ip} is already reserved for ${r.mac}`);
    }
    if (taken.length) fail(taken);
    const entryIds = new Map<string, number>();
    for (const e of new Set(todo.flatMap((r) => (r.entry ? [r.entry] : [])))) entryIds.set(e, await entryId(trx, e));
    const now = new Date().toISOString();
    const values = todo.map((r) => ({ mac: r.mac, name: r.name, ip: r.ip, entry_id: r.entry ? (entryIds.get(r.entry) ?? null) : null, status: 'approved', created_at: now, updated_at: now }));
    // 7 values per row: 100 rows stay under SQLite's default limit of bound parameters.
    for (let i = 0; i < values.length; i += 100) await trx.insertInto('hosts').values(values.slice(i, i + 100)).execute();
    const groupNames = [...new Set(todo.flatMap((r) => r.groups))];
    const groupIds = new Map<string, number>();
    const groupsCreated: string[] = [];
    for (const g of groupNames) {
      let row = await trx.selectFrom('groups').select('id').where('name', '=', g).executeTakeFirst();
      if (!row) {
        row = await trx.insertInto('groups').values({ name: g, created_at: now }).returning('id').executeTakeFirstOrThrow();
        groupsCreated.push(g);
      }
      groupIds.set(g, row.id);
    }
    const members = todo.flatMap((r) => r.groups.map((g) => ({ group_id: groupIds.get(g) ?? 0, mac: r.mac, added_at: now })));
    for (let i = 0; i < members.length; i += 200) await trx.insertInto('group_members').values(members.slice(i, i + 200)).execute();
    return { added: todo.length, skipped: clean.filter((r) => existing.has(r.mac)).map((r) => r.mac), groupsCreated };
  });
}

/** The names of the groups a host is a member of, sorted. */
export async function hostGroups(db: Db, macAddress: string): Promise<string[]> {
  const rows = await db.selectFrom('group_members').innerJoin('groups', 'groups.id', 'group_members.group_id').select('groups.name').where('group_members.mac', '=', mac(macAddress)).orderBy('groups.name').execute();
  return rows.map((r) => r.name);
}

/**
 * Assign one boot entry to many hosts (null unassigns), all or none:
 * NOT_FOUND naming every MAC that is no host, CONFLICT naming the pending
 * ones, INVALID_INPUT for an unknown entry. Returns the hosts changed.
 */
export async function assignEntry(db: Db, macAddresses: readonly string[], entry: string | null): Promise<Host[]> {
  const macs = [...new Set(macAddresses.map(mac))];
  return db.transaction().execute(async (trx) => {
    const found = macs.length === 0 ? [] : await trx.selectFrom('hosts').select(['id', 'mac', 'status']).where('mac', 'in', macs).execute();
    const known = new Set(found.map((h) => h.mac));
    const missing = macs.filter((m) => !known.has(m));
    if (missing.length) throw new FleetbootError('NOT_FOUND', `No host with MAC ${missing.join(', ')}`);
    const pending = found.filter((h) => h.status === 'pending').map((h) => h.mac);
    if (pending.length) throw new FleetbootError('CONFLICT', `Pending approval, so no entry can be assigned: ${pending.join(', ')} (approve them first)`);
    const eid = entry === null ? null : await entryId(trx, entry);
    if (found.length) await trx.updateTable('hosts').set({ entry_id: eid, updated_at: new Date().toISOString() }).where('id', 'in', found.map((h) => h.id)).execute();
    return (found.length ? await hostQuery(trx).where('hosts.mac', 'in', macs).orderBy('hosts.mac').execute() : []).map(toHost);
  });
}

export async function deleteHost(db: Db, macAddress: string): Promise<void> {
  const m = mac(macAddress);
  const r = await db.deleteFrom('hosts').where('mac', '=', m).executeTakeFirst();
  if (r.numDeletedRows === 0n) throw new FleetbootError('NOT_FOUND', `No host with MAC ${m}`);
}

/** Approve a pending host (optionally naming it). NOT_FOUND; CONFLICT when it is not pending. */
export async function approveHost(db: Db, macAddress: string, name?: string | null): Promise<Host> {
  const m = mac(macAddress);
  checkName(name);
  return db.transaction().execute(async (trx) => {
    const h = await trx.selectFrom('hosts').select(['id', 'status']).where('mac', '=', m).executeTakeFirst();
    if (!h) throw new FleetbootError('NOT_FOUND', `No host with MAC ${m}`);
    if (h.status !== 'pending') throw new FleetbootError('CONFLICT', `Host ${m} is not pending (it is already approved)`);
    const set: { status: string; updated_at: string; name?: string | null } = { status: 'approved', updated_at: new Date().toISOString() };
    if (name !== undefined && name !== null) set.name = name;
    await trx.updateTable('hosts').set(set).where('id', '=', h.id).execute();
    return toHost(await hostQuery(trx).where('hosts.id', '=', h.id).executeTakeFirstOrThrow());
  });
}

/**
 * Reject (delete) a pending host, with the inventory its machine sent (an
 * unapproved machine's word must not become the record a later host of
 * that MAC is compared with). NOT_FOUND; CONFLICT when it is not pending
 * (use deleteHost for approved ones).
 */
export async function rejectHost(db: Db, macAddress: string): Promise<void> {
  const m = mac(macAddress);
  const r = await db.transaction().execute(async (trx) => {
    const del = await trx.deleteFrom('hosts').where('mac', '=', m).where('status', '=', 'pending').executeTakeFirst();
    if (del.numDeletedRows > 0n) await trx.deleteFrom('inventories').where('mac', '=', m).execute();
    return del;
  });
  if (r.numDeletedRows > 0n) return;
  const h = await db.selectFrom('hosts').select('id').where('mac', '=', m).executeTakeFirst();
  throw h ? new FleetbootError('CONFLICT', `Host ${m} is not pending: remove it with host rm`) : new FleetbootError('NOT_FOUND', `No host with MAC ${m}`);
}

/** What the boot decision needs: the host (or null) and its assigned entry (or null). */
export async function findBootTarget(db: Db, macAddress: string): Promise<{ host: Host | null; entry: BootEntry | null }> {
  const host = await getHost(db, macAddress);
  if (!host || host.entry === null) return { host, entry: null };
  return { host, entry: await getEntry(db, host.entry) };
}

/** A host's reservation, in the shape of the lease engine's Reservation. */
export interface HostReservation {
  mac: string;
  ip: string;
  /** The host's name, or null. */
  hostname: string | null;
}

/**
 * Every host with a reserved address, by MAC, for the DHCP server: it
 * loads them at start and again when hosts change at run time.
 */
export async function hostReservations(db: Kysely<Database>): Promise<HostReservation[]> {
  const rows = await db.selectFrom('hosts').select(['mac', 'ip', 'name']).where('ip', 'is not', null).$narrowType<{ ip: string }>().orderBy('mac').execute();
  return rows.map((r) => ({ mac: r.mac, ip: r.ip, hostname: r.name }));
}
