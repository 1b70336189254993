/** Every migration, in order. Names are timestamps: never rename or reorder. */
import type { Kysely } from 'kysely';
import * as m20251123T1200 from './20251123T1200_initial.js';

export interface Migration {
  readonly name: string;
  up(db: Kysely<unknown>): Promise<void>;
}

export const migrations: readonly Migration[] = [{ name: '20251123T1200_initial', up: m20251123T1200.up }];
