/**
 * Files of boot entries on disk: <dataDir>/entries/<name>/<file>. Names are
 * validated before any path is built; writes go to a temporary file in the
 * same directory and are renamed into place (a reader never sees half a file).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FleetbootError } from '../lib/errors.js';
import { isValidFileName, isValidName } from '../model/validate.js';

function check(name: string, file?: string): void {
  if (!isValidName(name)) throw new FleetbootError('INVALID_INPUT', `Invalid entry name ${JSON.stringify(name)}`);
  if (file !== undefined && !isValidFileName(file)) throw new FleetbootError('INVALID_INPUT', `Invalid file name ${JSON.stringify(file)}`);
}

export function entryDir(entriesDir: string, name: string): string {
  check(name);
  return join(entriesDir, name);
}

export function entryFilePath(entriesDir: string, name: string, file: string): string {
  check(name, file);
  return join(entriesDir, name, file);
}

/** Size of a regular file of an entry, or null when there is none. */
export async function entryFileSize(entriesDir: string, name: string, file: string): Promise<number | null> {
  try {
    const st = await stat(entryFilePath(entriesDir, name, file));
    return st.isFile() ? st.size : null;
  } catch {
    return null;
  }
}

/**
 * Stream `source` into the entry's directory as `file` (temp file + rename).
 * Refuses more than `maxBytes`. Returns the size and SHA-256.
 */
export async function writeEntryFile(
  entriesDir: string,
  name: string,
  file: string,
  source: Readable,
  opts: { maxBytes?: number } = {},
): Promise<{ size: number; sha256: string }> {
  const dir = entryDir(entriesDir, name);
  const dest = entryFilePath(entriesDir, name, file);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${file}.${randomBytes(6).toString('hex')}.part`);
  const hash = createHash('sha256');
  const max = opts.maxBytes ?? Number.MAX_SAFE_INTEGER;
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      if (size > max) {
        cb(new FleetbootError('INVALID_INPUT', `File ${file} is larger than the limit of ${max} bytes`));
        return;
      }
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(source, meter, createWriteStream(tmp, { flags: 'wx', mode: 0o644 }));
    await rename(tmp, dest);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return { size, sha256: hash.digest('hex') };
}

/** Remove an entry's directory and everything in it (nothing if absent). */
export async function removeEntryFiles(entriesDir: string, name: string): Promise<void> {
  await rm(entryDir(entriesDir, name), { recursive: true, force: true });
}
