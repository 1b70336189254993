/**
 * DHCP leases (server mode). Two faces:
 * - `openLeaseStore(store)`: the lease engine's store (model/lease.ts
 *   LeaseStore): load, conditional writes, one row. On SQLite it is
 *   synchronous, prepared statements on the driver handle, so the DHCP
 *   service commits every allocation before its OFFER/ACK is sent without
 *   awaiting anything (in WAL mode a committed write survives a kill -9 of
 *   the process; synchronous=NORMAL only risks the last transactions on a
 *   power loss). `kyselyLeaseStore(db)` runs the same SQL through Kysely,
 *   asynchronously, for PostgreSQL (and, in tests, SQLite).
 * - `listLeases(db)`: the rows for the API and the CLI, through Kysely.
 *
 * Every write is conditional and says whether it took effect, so servers
 * sharing one database and the same pools never give one address to two
 * clients (issue 15; model/lease.ts LeaseWrite says what each kind checks).
 * The SQL is the same on SQLite (>= 3.35 for UPDATE ... RETURNING; the
 * upsert's WHERE needs 3.24) and PostgreSQL: on PostgreSQL, INSERT ... ON
 * CONFLICT DO UPDATE ... WHERE locks the conflicting row and checks the
 * WHERE against its latest committed version, so of two servers claiming
 * one free address at once exactly one gets a row back.
 */
import { sql, type Kysely } from 'kysely';
import type SQLite from 'better-sqlite3';
import { leaseActive, leaseKey, type AsyncLeaseStore, type Lease, type LeaseInfo, type LeaseState, type LeaseStore, type LeaseWrite, type SyncLeaseStore } from '../model/lease.js';
import type { Store } from './db.js';
import type { Database } from './schema.js';

const STATES: ReadonlySet<string> = new Set(['offered', 'bound', 'released', 'expired', 'declined']);

interface Row {
  ip: string;
  mac: string;
  client_id: string | null;
  state: string;
  expires_at: number | string;
  hostname: string | null;
  updated_at: number | string;
}

function toLease(r: Row): Lease {
  return {
    ip: r.ip,
    mac: r.mac,
    clientId: r.client_id,
    state: (STATES.has(r.state) ? r.state : 'expired') as LeaseState,
    expiresAt: Number(r.expires_at),
    hostname: r.hostname,
    updatedAt: Number(r.updated_at),
  };
}

// The statements, written once for both faces. `:name` marks a parameter (a colon then a letter;
// no other colon in them is followed by a letter): better-sqlite3 binds them by name (@name),
// kyselyLeaseStore binds the same values in order through Kysely's `sql`.
const PARAM = /:([a-zA-Z][a-zA-Z0-9]*)/g;
const COLUMNS = 'ip, mac, client_id, state, expires_at, hostname, updated_at';
const SELECT_ONE = `SELECT ${COLUMNS} FROM dhcp_leases WHERE ip = :ip`;
const SELECT_ALL = `SELECT ${COLUMNS} FROM dhcp_leases`;
const SELECT_CLIENT = `SELECT ${COLUMNS} FROM dhcp_leases WHERE client_key = :key`;
const CLAIM = `INSERT INTO dhcp_leases (ip, mac, client_id, client_key, state, expires_at, hostname, updated_at)
  VALUES (:ip, :mac, :clientId, :key, :state, :expiresAt, :hostname, :updatedAt)
  ON CONFLICT (ip) DO UPDATE SET mac = excluded.mac, client_id = excluded.client_id, client_key = excluded.client_key,
    state = excluded.state, expires_at = excluded.expires_at, hostname = excluded.hostname, updated_at = excluded.updated_at
  WHERE dhcp_leases.client_key = excluded.client_key OR dhcp_leases.state NOT IN ('offered', 'bound', 'declined')
    OR dhcp_leases.expires_at <= :now
  RETURNING ip`;
const END = `UPDATE dhcp_leases SET state = :state, expires_at = :expiresAt, updated_at = :updatedAt
  WHERE ip = :ip AND client_key = :owner AND state IN (:from1, :from2)
  RETURNING ip`;
const DECLINE = `UPDATE dhcp_leases SET mac = :mac, client_id = :clientId, client_key = :key, state = :state,
    expires_at = :expiresAt, hostname = :hostname, updated_at = :updatedAt
  WHERE ip = :ip AND client_key = :owner
  RETURNING ip`;
// A declined address loses its marker as it expires: mac '' and the key of (mac '', no identifier).
const RECLAIM = `UPDATE dhcp_leases SET mac = CASE WHEN state = 'declined' THEN '' ELSE mac END,
    client_key = CASE WHEN state = 'declined' THEN 'hw:' ELSE client_key END, state = 'expired', updated_at = :now
  WHERE ip = :ip AND state IN ('offered', 'bound', 'declined') AND expires_at <= :now
  RETURNING ip`;

type Params = Record<string, string | number | null>;

const TEXT: Readonly<Record<LeaseWrite['kind'], string>> = { claim: CLAIM, end: END, decline: DECLINE, reclaim: RECLAIM };

/** The parameters of one write's statement (TEXT[w.kind]). */
function paramsOf(w: LeaseWrite): Params {
  const l = w.lease;
  switch (w.kind) {
    case 'claim':
      return { ip: l.ip, mac: l.mac, clientId: l.clientId, key: leaseKey(l), state: l.state, expiresAt: l.expiresAt, hostname: l.hostname, updatedAt: l.updatedAt, now: l.updatedAt };
    case 'end':
      return { ip: l.ip, state: l.state, expiresAt: l.expiresAt, updatedAt: l.updatedAt, owner: w.owner, from1: w.from[0], from2: w.from[1] };
    case 'decline':
      return { ip: l.ip, mac: l.mac, clientId: l.clientId, key: leaseKey(l), state: l.state, expiresAt: l.expiresAt, hostname: l.hostname, updatedAt: l.updatedAt, owner: w.owner };
    case 'reclaim':
      return { ip: l.ip, now: l.updatedAt };
  }
}

/**
 * The engine's store on this database: synchronous prepared statements on
 * SQLite (the fast path), the same SQL through Kysely on PostgreSQL.
 */
export function openLeaseStore(store: Store): LeaseStore {
  return store.sqlite !== null ? sqliteLeaseStore(store.sqlite) : kyselyLeaseStore(store.db);
}

/** Prepared statements on the driver handle: nothing is awaited, as before claims existed. */
export function sqliteLeaseStore(sqlite: SQLite.Database): SyncLeaseStore {
  const prep = (text: string) => sqlite.prepare<[Params], { ip: string }>(text.replace(PARAM, '@$1'));
  const byKind = { claim: prep(CLAIM), end: prep(END), decline: prep(DECLINE), reclaim: prep(RECLAIM) };
  const one = sqlite.prepare<[{ ip: string }], Row>(SELECT_ONE.replace(PARAM, '@$1'));
  const all = sqlite.prepare<[], Row>(SELECT_ALL);
  return {
    sync: true,
    load: () => all.all().map(toLease),
    row(ip) {
      const r = one.get({ ip });
      return r ? toLease(r) : null;
    },
    commit(w) {
      return byKind[w.kind].get(paramsOf(w)) !== undefined;
    },
  };
}

/** A statement split at its parameters, once: Kysely's `sql` takes the fragments as a template would. */
function compile(text: string): { fragments: TemplateStringsArray; names: string[] } {
  const parts = text.split(PARAM);
  const strings = parts.filter((_, i) => i % 2 === 0);
  const names = parts.filter((_, i) => i % 2 === 1);
  return { fragments: Object.assign([...strings], { raw: [...strings] }), names };
}

/** The same statements through Kysely, asynchronously (PostgreSQL; SQLite in tests). */
export function kyselyLeaseStore(db: Kysely<Database>): AsyncLeaseStore {
  const compiled = new Map([CLAIM, END, DECLINE, RECLAIM, SELECT_ONE, SELECT_ALL, SELECT_CLIENT].map((t) => [t, compile(t)]));
  const run = async <R>(text: string, params: Params): Promise<R[]> => {
    const c = compiled.get(text);
    if (!c) throw new Error('kyselyLeaseStore: not one of the lease statements');
    const values = c.names.map((n) => {
      const v = params[n];
      if (v === undefined) throw new Error(`lease statement parameter :${n} has no value`);
      return v;
    });
    return (await sql<R>(c.fragments, ...values).execute(db)).rows;
  };
  return {
    sync: false,
    load: async () => (await run<Row>(SELECT_ALL, {})).map(toLease),
    async row(ip) {
      const [r] = await run<Row>(SELECT_ONE, { ip });
      return r ? toLease(r) : null;
    },
    rowsOfClient: async (key) => (await run<Row>(SELECT_CLIENT, { key })).map(toLease),
    async commit(w) {
      return (await run<{ ip: string }>(TEXT[w.kind], paramsOf(w))).length > 0;
    },
  };
}

export type { LeaseInfo } from '../model/lease.js';

/** Every lease row, by address (numerically), with `active` computed at `now`. */
export async function listLeases(db: Kysely<Database>, now: number = Date.now()): Promise<LeaseInfo[]> {
  const rows = await db.selectFrom('dhcp_leases').selectAll().execute();
  const key = (ip: string): number => ip.split('.').reduce((n, p) => n * 256 + Number(p), 0);
  return rows
    .map(toLease)
    .sort((a, b) => key(a.ip) - key(b.ip))
    .map((l) => ({
      ip: l.ip,
      mac: l.mac,
      clientId: l.clientId,
      hostname: l.hostname,
      state: l.state,
      expiresAt: new Date(l.expiresAt).toISOString(),
      updatedAt: new Date(l.updatedAt).toISOString(),
      active: leaseActive(l, now),
    }));
}

/** The MAC holding a live (offered or bound, not expired) lease on `ip`, or null. */
export async function leaseMacOf(db: Kysely<Database>, ip: string, now: number = Date.now()): Promise<string | null> {
  const r = await db.selectFrom('dhcp_leases').select('mac').where('ip', '=', ip).where('state', 'in', ['offered', 'bound']).where('expires_at', '>', now).executeTakeFirst();
  return r && r.mac !== '' ? r.mac : null;
}
