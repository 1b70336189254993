/**
 * Golden files: a test's output compared with a file kept in the repository.
 *
 * A missing or different golden file fails the test, naming the file and how
 * to regenerate it; only `UPDATE_GOLDEN=1` in the environment (re)writes it
 * (then review the diff before committing). A golden file is never written
 * silently: a test that passed only because it wrote its own expectation
 * would prove nothing (pixiecore's `-update` flag works the same way).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';

/** The environment variable that regenerates golden files. */
export const GOLDEN_REGEN_VAR = 'UPDATE_GOLDEN';

export interface GoldenOptions {
  /** Where to read the variable (default process.env; tests pass their own). */
  env?: Readonly<Record<string, string | undefined>>;
  /** The command that reruns the test, for the message, e.g. `node --import tsx --test src/x.test.ts`. */
  rerun?: string;
}

/** Whether this run regenerates golden files (`UPDATE_GOLDEN=1`). */
export function regeneratingGolden(env: Readonly<Record<string, string | undefined>> = process.env): boolean {
  return env[GOLDEN_REGEN_VAR] === '1';
}

/**
 * Assert that `actual` equals the content of the golden file `file`. With
 * UPDATE_GOLDEN=1 the file is written with `actual` instead (and the assertion
 * passes). Throws an AssertionError naming the file and the variable when the
 * file is missing, unreadable, or different.
 */
export function assertGolden(file: string, actual: string, opts: GoldenOptions = {}): void {
  const regen = `${GOLDEN_REGEN_VAR}=1${opts.rerun ? ` ${opts.rerun}` : ' (set for this test run)'}`;
  if (regeneratingGolden(opts.env ?? process.env)) {
    writeFileSync(file, actual);
    return;
  }
  let expected: string;
  try {
    expected = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'is missing' : `cannot be read (${code ?? String(err)})`;
    throw new assert.AssertionError({ message: `golden file ${file} ${why}; write it with ${regen}, then review and commit it` });
  }
  assert.equal(actual, expected, `output differs from golden file ${file}; if the change is intended, regenerate it with ${regen} and review the diff`);
}
