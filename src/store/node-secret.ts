/**
 * A node's own secret (its credential towards the other nodes): 32 random
 * bytes, hex, created at the node's first start in
 * <dataDir>/node-<name>.secret (mode 0600, written to a temporary file and
 * linked into place, as the API token: src/store/token.ts), reused
 * afterwards. The shared store holds only its sha256 (nodes.credential_hash).
 * Named after the node, so servers that share one data directory (tests,
 * or several nodes on one machine) each keep their own.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FleetbootError, errorMessage } from '../lib/errors.js';
import { isValidName } from '../model/validate.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './data-dir.js';

export const NODE_SECRET_RE = /^[0-9a-f]{64}$/;

export function nodeSecretPath(dataDir: string, name: string): string {
  if (!isValidName(name)) throw new TypeError(`nodeSecretPath(): not a node name: ${JSON.stringify(name)}`);
  return join(dataDir, `node-${name}.secret`);
}

/** The secret, or null when there is none (or it is malformed). */
export function readNodeSecret(dataDir: string, name: string): string | null {
  try {
    const t = readFileSync(nodeSecretPath(dataDir, name), 'utf8').trim();
    return NODE_SECRET_RE.test(t) ? t : null;
  } catch {
    return null;
  }
}

/** sha256 (hex) of a secret: what the store keeps. */
export function hashNodeSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** The existing secret, or a new one (atomic: two processes starting at once agree on one). */
export function ensureNodeSecret(dataDir: string, name: string): { secret: string; created: boolean } {
  const final = nodeSecretPath(dataDir, name);
  const existing = readNodeSecret(dataDir, name);
  if (existing) {
    chmodSync(final, PRIVATE_FILE_MODE);
    return { secret: existing, created: false };
  }
  mkdirSync(dataDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const secret = randomBytes(32).toString('hex');
  const tmp = join(dataDir, `.node-${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, `${secret}\n`, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
    chmodSync(tmp, PRIVATE_FILE_MODE);
    try {
      linkSync(tmp, final);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const raced = readNodeSecret(dataDir, name);
      if (raced) return { secret: raced, created: false };
      renameSync(tmp, final); // a malformed file is replaced
    }
  } catch (err) {
    throw new FleetbootError('IO', `Cannot write the node secret ${final}: ${errorMessage(err)}`, { cause: err });
  } finally {
    rmSync(tmp, { force: true });
  }
  return { secret, created: true };
}
