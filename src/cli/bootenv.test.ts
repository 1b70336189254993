import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootEnvStatus, buildArgs, packageRoot } from './bootenv.js';

test('packageRoot() finds scripts/build-bootenv.sh from src/cli/ (and from dist/src/cli/)', () => {
  const root = packageRoot();
  assert.ok(existsSync(join(root, 'scripts', 'build-bootenv.sh')));
  assert.equal(packageRoot(join(root, 'dist', 'src', 'cli')), root);
  assert.throws(() => packageRoot('/'), /Cannot find scripts\/build-bootenv\.sh/);
});

test('buildArgs() passes --out, then --cache and --force when given, as separate arguments', () => {
  assert.deepEqual(buildArgs('/pkg', '/data dir/bootenv', {}), ['/pkg/scripts/build-bootenv.sh', '--out', '/data dir/bootenv']);
  assert.deepEqual(buildArgs('/pkg', '/d/bootenv', { force: true, cache: '/var/cache/x' }), ['/pkg/scripts/build-bootenv.sh', '--out', '/d/bootenv', '--cache', '/var/cache/x', '--force']);
});

test('bootEnvStatus() is ready only when vmlinuz and initrd.img are non-empty files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-bootenv-'));
  try {
    assert.deepEqual(await bootEnvStatus(join(dir, 'absent')), { dir: join(dir, 'absent'), ready: false, files: [{ name: 'vmlinuz', bytes: null }, { name: 'initrd.img', bytes: null }], info: null });
    writeFileSync(join(dir, 'vmlinuz'), 'k');
    writeFileSync(join(dir, 'initrd.img'), '');
    assert.equal((await bootEnvStatus(dir)).ready, false);
    writeFileSync(join(dir, 'initrd.img'), 'i');
    writeFileSync(join(dir, 'bootenv.json'), 'garbage');
    const s = await bootEnvStatus(dir);
    assert.equal(s.ready, true);
    assert.equal(s.info, null);
    rmSync(join(dir, 'vmlinuz'));
    mkdirSync(join(dir, 'vmlinuz'));
    assert.deepEqual((await bootEnvStatus(dir)).files[0], { name: 'vmlinuz', bytes: null });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
