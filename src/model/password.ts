/**
 * Password policy and one-time passwords. What a person sets must be at
 * least MIN_PASSWORD_LENGTH characters (length beats composition rules,
 * NIST SP 800-63B 5.1.1.2); a generated one is 20 base32 characters from
 * the system's random source (100 bits), shown once by `fleetboot user add`.
 * Passwords are compared after Unicode NFC normalisation (the same word
 * typed on two keyboards may arrive composed or decomposed); hashing is
 * src/lib/password-hash.ts.
 */
import { randomBytes } from 'node:crypto';

export const MIN_PASSWORD_LENGTH = 12;
/** Longer ones are refused: scrypt's cost does not depend on it, but request bodies should stay small. */
export const MAX_PASSWORD_LENGTH = 1024;
export const GENERATED_PASSWORD_LENGTH = 20;

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** What is wrong with a password someone chose, or null. */
export function passwordProblem(password: string): string | null {
  const n = [...password.normalize('NFC')].length;
  if (n < MIN_PASSWORD_LENGTH) return `must be at least ${MIN_PASSWORD_LENGTH} characters long: it has ${n}`;
  if (n > MAX_PASSWORD_LENGTH) return `must be at most ${MAX_PASSWORD_LENGTH} characters long: it has ${n}`;
  if (/[\u0000-\u001f\u007f]/.test(password)) return 'must not contain control characters (a newline from a file or a pipe, for example)';
  return null;
}

/** A one-time password: 20 characters of lower-case base32 (256 is a multiple of 32, so each byte maps without bias). */
export function generatePassword(): string {
  return [...randomBytes(GENERATED_PASSWORD_LENGTH)].map((b) => BASE32[b & 31]).join('');
}
