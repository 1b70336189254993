/** Hardware inventories: the last one collected per MAC (JSON). */
import type { Kysely } from 'kysely';
import { FleetbootError } from '../lib/errors.js';
import { parseInventory, type Inventory } from '../model/manifest.js';
import type { Database } from './schema.js';
import { normaliseMac } from '../model/validate.js';

type Db = Kysely<Database>;

function mac(input: string): string {
  const m = normaliseMac(input);
  if (!m) throw new FleetbootError('INVALID_INPUT', `Invalid MAC address ${JSON.stringify(input)}: expected six hex bytes such as 52:54:00:12:34:56`);
  return m;
}

export async function getInventory(db: Db, macAddress: string): Promise<{ inventory: Inventory; collectedAt: string } | null> {
  const r = await db.selectFrom('inventories').selectAll().where('mac', '=', mac(macAddress)).executeTakeFirst();
  return r ? { inventory: parseInventory(JSON.parse(r.inventory)), collectedAt: r.collected_at } : null;
}

/** Replace the MAC's inventory; collectedAt is when the server received it. */
export async function putInventory(db: Db, macAddress: string, inventory: Inventory): Promise<string> {
  const m = mac(macAddress);
  const now = new Date().toISOString();
  const text = JSON.stringify(inventory);
  const serial = inventory.smbios.serial;
  await db
    .insertInto('inventories')
    .values({ mac: m, inventory: text, collected_at: now, serial })
    .onConflict((oc) => oc.column('mac').doUpdateSet({ inventory: text, collected_at: now, serial }))
    .execute();
  return now;
}

/** Forget the MAC's inventory; false when there was none. */
export async function deleteInventory(db: Db, macAddress: string): Promise<boolean> {
  const r = await db.deleteFrom('inventories').where('mac', '=', mac(macAddress)).executeTakeFirst();
  return r.numDeletedRows > 0n;
}
