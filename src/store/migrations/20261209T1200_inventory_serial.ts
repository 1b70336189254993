/**
 * The SMBIOS serial number of each inventory in a column of its own, so the
 * host list can be searched by serial (the console's host search) without
 * reading every inventory's JSON. Filled from the inventories already
 * collected. Frozen: never edit a migration that has shipped; add a new one.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('inventories').addColumn('serial', 'varchar(256)').execute();
  const rows = await sql<{ mac: string; inventory: string }>`select mac, inventory from inventories`.execute(db);
  for (const r of rows.rows) {
    const serial = serialOf(r.inventory);
    if (serial !== null) await sql`update inventories set serial = ${serial} where mac = ${r.mac}`.execute(db);
  }
}

/** smbios.serial of an inventory's JSON text, or null (the shape of that time, read defensively). */
function serialOf(text: string): string | null {
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || !('smbios' in v)) return null;
    const s: unknown = v.smbios;
    if (typeof s !== 'object' || s === null || !('serial' in s)) return null;
    return typeof s.serial === 'string' ? s.serial.slice(0, 256) : null;
  } catch {
    return null;
  }
}
