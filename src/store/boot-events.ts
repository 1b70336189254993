/**
 * Boot events in the store (src/model/boot-event.ts): written in batches by
 * the recorder (src/events/boot-recorder.ts), read as one machine's
 * timeline, pruned to a bound.
 */
import type { Kysely } from 'kysely';
import { BOOT_EVENT_KINDS, type BootEvent, type BootEventDetail, type BootEventKind, type NewBootEvent } from '../model/boot-event.js';
import type { Database } from './schema.js';

type Db = Kysely<Database>;

/** Rows per INSERT (7 values each: well under SQLite's and PostgreSQL's parameter limits). */
const ROWS_PER_INSERT = 200;

/** Store a batch, in order, in one transaction. */
export async function insertBootEvents(db: Db, events: ReadonlyArray<NewBootEvent & { at: string }>): Promise<void> {
  if (events.length === 0) return;
  await db.transaction().execute(async (trx) => {
    for (let i = 0; i < events.length; i += ROWS_PER_INSERT) {
      const rows = events.slice(i, i + ROWS_PER_INSERT).map((e) => ({ at: e.at, kind: e.kind, mac: e.mac, ip: e.ip, summary: e.summary, detail: JSON.stringify(e.detail) }));
      await trx.insertInto('boot_events').values(rows).execute();
    }
  });
}

function parseDetail(text: string): BootEventDetail {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return {};
  const out: BootEventDetail = {};
  for (const [k, x] of Object.entries(v)) if (x === null || typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') out[k] = x;
  return out;
}

function kindOf(s: string): BootEventKind | null {
  return BOOT_EVENT_KINDS.find((k) => k === s) ?? null;
}

/** One machine's newest `limit` events (before id `beforeId` when given), oldest first. */
export async function listBootEvents(db: Db, mac: string, opts: { limit?: number; beforeId?: number } = {}): Promise<BootEvent[]> {
  const limit = Math.max(1, Math.min(5000, Math.floor(opts.limit ?? 200)));
  let q = db.selectFrom('boot_events').selectAll().where('mac', '=', mac);
  if (opts.beforeId !== undefined) q = q.where('id', '<', opts.beforeId);
  const rows = await q.orderBy('id', 'desc').limit(limit).execute();
  const out: BootEvent[] = [];
  for (const r of rows.reverse()) {
    const kind = kindOf(r.kind);
    if (kind === null) continue; // written by a later version: not ours to show
    out.push({ id: r.id, at: r.at, kind, mac: r.mac, ip: r.ip, summary: r.summary, detail: parseDetail(r.detail) });
  }
  return out;
}

/** Keep the newest `keepRows` rows and none older than `olderThan` (ISO); the number removed. */
export async function pruneBootEvents(db: Db, opts: { keepRows: number; olderThan: string }): Promise<number> {
  const top = await db.selectFrom('boot_events').select((eb) => eb.fn.max('id').as('top')).executeTakeFirst();
  const maxId = Number(top?.top ?? 0);
  let removed = 0;
  if (maxId > opts.keepRows) {
    const r = await db.deleteFrom('boot_events').where('id', '<=', maxId - opts.keepRows).executeTakeFirst();
    removed += Number(r.numDeletedRows);
  }
  const r2 = await db.deleteFrom('boot_events').where('at', '<', opts.olderThan).executeTakeFirst();
  return removed + Number(r2.numDeletedRows);
}
