/**
 * The endpoint agents' challenge nonces, in the store so that every server
 * sharing it accepts a nonce any of them handed out (agents may reach
 * either through a load balancer). Taking one is a delete that returns the
 * row: of two servers taking the same nonce at once, one gets the row and
 * the other nothing, so a nonce is used once. Expired rows are swept by
 * `sweepAgentNonces` (the service calls it now and then).
 */
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export async function addAgentNonce(db: Kysely<Database>, nonce: string, expiresAt: string): Promise<void> {
  await db.insertInto('agent_nonces').values({ nonce, expires_at: expiresAt }).execute();
}

/** Deletes the nonce; true when it was there and not expired at `now` (ISO). */
export async function takeAgentNonce(db: Kysely<Database>, nonce: string, now: string): Promise<boolean> {
  const row = await db.deleteFrom('agent_nonces').where('nonce', '=', nonce).returning('expires_at').executeTakeFirst();
  return row !== undefined && row.expires_at > now;
}

/** Deletes the expired nonces; returns how many are left. */
export async function sweepAgentNonces(db: Kysely<Database>, now: string): Promise<number> {
  await db.deleteFrom('agent_nonces').where('expires_at', '<=', now).execute();
  const r = await db.selectFrom('agent_nonces').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}
