/**
 * The API token: 32 random bytes, hex, created at first start in
 * <dataDir>/api-token (mode 0600, written to a temporary file then renamed so
 * a reader never sees half a token), and reused afterwards.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FleetbootError, errorMessage } from '../lib/errors.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './data-dir.js';

export const TOKEN_FILE = 'api-token';
const TOKEN_RE = /^[0-9a-f]{64}$/;

export function tokenPath(dataDir: string): string {
  return join(dataDir, TOKEN_FILE);
}

/** Read the token, or null when there is none (or it is malformed). */
export function readApiToken(dataDir: string): string | null {
  try {
    const t = readFileSync(tokenPath(dataDir), 'utf8').trim();
    return TOKEN_RE.test(t) ? t : null;
  } catch {
    return null;
  }
}

/**
 * Return the existing token or create one. A new token is written to a
 * temporary file and then linked into place (atomic, and two servers starting
 * at once agree on one token); a malformed token file is replaced by rename.
 */
export function ensureApiToken(dataDir: string): string {
  const existing = readApiToken(dataDir);
  if (existing) {
    chmodSync(tokenPath(dataDir), PRIVATE_FILE_MODE);
    return existing;
  }
  mkdirSync(dataDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const final = tokenPath(dataDir);
  const token = randomBytes(32).toString('hex');
  const tmp = join(dataDir, `.${TOKEN_FILE}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, `${token}\n`, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
    chmodSync(tmp, PRIVATE_FILE_MODE); // whatever the umask
    try {
      linkSync(tmp, final);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const raced = readApiToken(dataDir);
      if (raced) return raced;
      renameSync(tmp, final);
      return token;
    }
  } catch (err) {
    throw new FleetbootError('IO', `Cannot write the API token ${final}: ${errorMessage(err)}`, { cause: err });
  } finally {
    rmSync(tmp, { force: true });
  }
  return token;
}
