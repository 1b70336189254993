/** For tests: a store in a new temporary data directory, closed and removed after `fn`. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from './db.js';

export async function withTempStore(prefix: string, fn: (s: Store, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `fleetboot-${prefix}-`));
  const s = await openStore(dir);
  try {
    await fn(s, dir);
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
