/** Loads the commented hex fixtures of this directory (see capture.ts). */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const testdataDir = dirname(fileURLToPath(import.meta.url));

export interface Fixture {
  /** File name without .hex, e.g. "ovmf-edk2-01-client-discover-67". */
  name: string;
  /** The leading comment lines, without '# '. */
  comments: string[];
  bytes: Buffer;
}

/** Parse a commented hex file: '#' starts a comment, whitespace is ignored. */
export function parseHex(text: string): { comments: string[]; bytes: Buffer } {
  const comments: string[] = [];
  let hex = '';
  for (const line of text.split('\n')) {
    const at = line.indexOf('#');
    if (at >= 0) comments.push(line.slice(at + 1).trim());
    hex += (at >= 0 ? line.slice(0, at) : line).replace(/\s+/g, '');
  }
  if (!/^([0-9a-f]{2})*$/i.test(hex)) throw new Error('fixture is not hex');
  return { comments, bytes: Buffer.from(hex, 'hex') };
}

export function loadFixtures(): Fixture[] {
  return readdirSync(testdataDir)
    .filter((f) => f.endsWith('.hex'))
    .sort()
    .map((f) => ({ name: f.slice(0, -4), ...parseHex(readFileSync(join(testdataDir, f), 'utf8')) }));
}

export function loadFixture(name: string): Buffer {
  return parseHex(readFileSync(join(testdataDir, `${name}.hex`), 'utf8')).bytes;
}
