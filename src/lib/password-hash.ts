/**
 * Password hashes with scrypt from node:crypto (RFC 7914; no native
 * dependency). The stored form describes itself, so the parameters can be
 * raised later without a migration:
 *
 *   scrypt$N$r$p$SALT$HASH      (SALT and HASH in base64, without padding)
 *
 * Defaults: N = 2^15, r = 8, p = 1 (32 MiB and about 100 ms per guess on
 * a small VM; OWASP's cheat sheet suggests N = 2^17, 128 MiB: raise
 * DEFAULT_SCRYPT when the servers allow it, and hashes made with other
 * parameters are redone at the next login, see needsRehash), a 16-byte
 * salt, a 64-byte key. The async `crypto.scrypt` runs in libuv's thread
 * pool, not on the event loop. Comparison is constant-time.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
  keyLength: number;
  saltLength: number;
}

export const DEFAULT_SCRYPT: Readonly<ScryptParams> = Object.freeze({ N: 2 ** 15, r: 8, p: 1, keyLength: 64, saltLength: 16 });

/** Bounds on what a stored hash may ask for: a corrupt or hostile row must not make a login allocate gigabytes. */
const MAX_MEMORY = 256 * 2 ** 20;
const LIMITS = { N: [2 ** 10, 2 ** 20], r: [1, 32], p: [1, 16], keyLength: [16, 128], saltLength: [8, 64] } as const;

function derive(password: string, salt: Buffer, params: Pick<ScryptParams, 'N' | 'r' | 'p' | 'keyLength'>): Promise<Buffer> {
  // Node refuses when 128 * N * r reaches maxmem (32 MiB by default), which N = 2^15, r = 8 does exactly: give it twice that.
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scrypt(Buffer.from(password.normalize('NFC'), 'utf8'), salt, params.keyLength, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

function checkParams(p: ScryptParams): void {
  for (const [k, [lo, hi]] of Object.entries(LIMITS) as Array<[keyof ScryptParams, readonly [number, number]]>) {
    const v = p[k];
    if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`scrypt parameter '${k}' must be an integer from ${lo} to ${hi}: current value is ${v}`);
  }
  if ((p.N & (p.N - 1)) !== 0) throw new RangeError(`scrypt parameter 'N' must be a power of two: current value is ${p.N}`);
  if (128 * p.N * p.r > MAX_MEMORY) throw new RangeError(`scrypt parameters N ${p.N} and r ${p.r} need ${(128 * p.N * p.r) / 2 ** 20} MiB: at most ${MAX_MEMORY / 2 ** 20} MiB`);
}

const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '');

/** Hash a password for storage (a new random salt each time). */
export async function hashPassword(password: string, params: Readonly<ScryptParams> = DEFAULT_SCRYPT): Promise<string> {
  checkParams(params);
  const salt = randomBytes(params.saltLength);
  const key = await derive(password, salt, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${b64(salt)}$${b64(key)}`;
}

interface ParsedHash {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

/** The stored form taken apart, or null when it is not one this module wrote (or asks for out-of-bounds work). */
export function parsePasswordHash(stored: string): ParsedHash | null {
  const m = /^scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9+/]{8,128})\$([A-Za-z0-9+/]{16,256})$/.exec(stored);
  if (!m) return null;
  const salt = Buffer.from(m[4] as string, 'base64');
  const key = Buffer.from(m[5] as string, 'base64');
  const params: ScryptParams = { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]), keyLength: key.length, saltLength: salt.length };
  try {
    checkParams(params);
  } catch {
    return null;
  }
  return { params, salt, key };
}

/** Whether `password` matches `stored`; false (never an exception) for a malformed stored hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const h = parsePasswordHash(stored);
  if (!h) return false;
  const key = await derive(password, h.salt, h.params);
  return timingSafeEqual(key, h.key);
}

/** Whether a stored hash was made with other parameters than `params` (rehash it at the next successful login). */
export function needsRehash(stored: string, params: Readonly<ScryptParams> = DEFAULT_SCRYPT): boolean {
  const h = parsePasswordHash(stored);
  return !h || h.params.N !== params.N || h.params.r !== params.r || h.params.p !== params.p || h.params.keyLength !== params.keyLength || h.params.saltLength !== params.saltLength;
}
