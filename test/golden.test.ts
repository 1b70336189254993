import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GOLDEN_REGEN_VAR, assertGolden, regeneratingGolden } from './golden.js';

/** A temp dir for one test; the environment given to assertGolden() never regenerates unless the test says so. */
function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'fb-golden-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const NO_REGEN = {};

test('assertGolden() fails on a missing golden file, naming it and UPDATE_GOLDEN=1, and does not write it', () => {
  withDir((dir) => {
    const file = join(dir, 'golden.txt');
    assert.throws(() => assertGolden(file, 'output\n', { env: NO_REGEN, rerun: 'node --import tsx --test x.test.ts' }), (err: unknown) => {
      assert.ok(err instanceof assert.AssertionError, String(err));
      assert.match(err.message, new RegExp(`golden file ${file} is missing`));
      assert.match(err.message, /UPDATE_GOLDEN=1 node --import tsx --test x\.test\.ts/);
      return true;
    });
    assert.equal(existsSync(file), false, 'a missing golden file must not be written silently');
  });
});

test('assertGolden() fails on a different golden file, naming it and the variable, and leaves it alone', () => {
  withDir((dir) => {
    const file = join(dir, 'golden.txt');
    writeFileSync(file, 'old\n');
    assert.throws(() => assertGolden(file, 'new\n', { env: NO_REGEN }), (err: unknown) => {
      assert.ok(err instanceof assert.AssertionError, String(err));
      assert.match(err.message, new RegExp(`differs from golden file ${file}`));
      assert.match(err.message, /UPDATE_GOLDEN=1/);
      return true;
    });
    assert.equal(readFileSync(file, 'utf8'), 'old\n');
  });
});

test('assertGolden() fails on an unreadable golden file (a directory), naming it', () => {
  withDir((dir) => {
    const file = join(dir, 'golden.txt');
    mkdirSync(file);
    assert.throws(() => assertGolden(file, 'x', { env: NO_REGEN }), new RegExp(`golden file ${file} cannot be read \\(EISDIR\\)`));
  });
});

test('assertGolden() passes on an equal golden file', () => {
  withDir((dir) => {
    const file = join(dir, 'golden.txt');
    writeFileSync(file, 'same\n');
    assertGolden(file, 'same\n', { env: NO_REGEN });
  });
});

test('assertGolden() writes the golden file only with UPDATE_GOLDEN=1', () => {
  withDir((dir) => {
    const file = join(dir, 'golden.txt');
    for (const value of ['0', 'true', '']) {
      assert.throws(() => assertGolden(file, 'fresh\n', { env: { [GOLDEN_REGEN_VAR]: value } }), /is missing/, `UPDATE_GOLDEN=${value}`);
    }
    assertGolden(file, 'fresh\n', { env: { [GOLDEN_REGEN_VAR]: '1' } });
    assert.equal(readFileSync(file, 'utf8'), 'fresh\n');
    assertGolden(file, 'newer\n', { env: { [GOLDEN_REGEN_VAR]: '1' } });
    assert.equal(readFileSync(file, 'utf8'), 'newer\n');
    assertGolden(file, 'newer\n', { env: NO_REGEN });
  });
  assert.equal(GOLDEN_REGEN_VAR, 'UPDATE_GOLDEN');
  assert.equal(regeneratingGolden({ UPDATE_GOLDEN: '1' }), true);
  assert.equal(regeneratingGolden({}), false);
});
