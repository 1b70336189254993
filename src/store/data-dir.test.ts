import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePrivateFile, octal, prepareDataDir, tightenFileIfPresent } from './data-dir.js';

const mode = (p: string): string => octal(statSync(p).mode);

/** Run `fn` under `umask`, so a mode that comes out right is ours, not the umask's. */
function withUmask<T>(umask: number, fn: () => T): T {
  const old = process.umask(umask);
  try {
    return fn();
  } finally {
    process.umask(old);
  }
}

test('prepareDataDir() creates a new data directory 0700 (and its parents), whatever the umask', () => {
  const root = mkdtempSync(join(tmpdir(), 'fleetboot-datadir-'));
  try {
    const dir = join(root, 'srv', 'data');
    const st = withUmask(0, () => prepareDataDir(dir));
    assert.deepEqual(st, { created: true, tightenedFrom: null, problem: null });
    assert.equal(mode(dir), '0700');
    assert.deepEqual(prepareDataDir(dir), { created: false, tightenedFrom: null, problem: null });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('prepareDataDir() tightens an existing group/world-accessible directory to 0700 and says what it was', () => {
  const root = mkdtempSync(join(tmpdir(), 'fleetboot-datadir-'));
  try {
    const dir = join(root, 'data');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    assert.deepEqual(prepareDataDir(dir), { created: false, tightenedFrom: 0o755, problem: null });
    assert.equal(mode(dir), '0700');
    writeFileSync(join(root, 'file'), '');
    assert.throws(() => prepareDataDir(join(root, 'file')), /not a directory/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('ensurePrivateFile() creates 0600 under any umask and tightens an existing file without touching its content', () => {
  const root = mkdtempSync(join(tmpdir(), 'fleetboot-datadir-'));
  try {
    const fresh = join(root, 'fresh');
    withUmask(0, () => ensurePrivateFile(fresh));
    assert.equal(mode(fresh), '0600');
    const old = join(root, 'old');
    writeFileSync(old, 'keep me', { mode: 0o644 });
    chmodSync(old, 0o644);
    ensurePrivateFile(old);
    assert.equal(mode(old), '0600');
    assert.equal(readFileSync(old, 'utf8'), 'keep me');
    tightenFileIfPresent(join(root, 'absent'));
    writeFileSync(join(root, 'wal'), '');
    chmodSync(join(root, 'wal'), 0o664);
    tightenFileIfPresent(join(root, 'wal'));
    assert.equal(mode(join(root, 'wal')), '0600');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
