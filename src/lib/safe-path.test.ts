import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { program } from './programs.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_NAME_BYTES, MAX_SEGMENT_BYTES, normalizeRequestName, openInRoot, wireNameToUtf8, type SafePathFailure } from './safe-path.js';

test('normalizeRequestName() turns backslashes into separators and drops a leading slash', () => {
  assert.deepEqual(normalizeRequestName('Boot\\x64\\wdsnbp.com', '/srv/tftp'), { ok: true, segments: ['Boot', 'x64', 'wdsnbp.com'] });
  assert.deepEqual(normalizeRequestName('/pxelinux.0', '/srv/tftp'), { ok: true, segments: ['pxelinux.0'] });
  assert.deepEqual(normalizeRequestName('//a//./b', '/srv/tftp'), { ok: true, segments: ['a', 'b'] });
  // dnsmasq compatibility: a name starting with the root path itself.
  assert.deepEqual(normalizeRequestName('/srv/tftp/ipxe.efi', '/srv/tftp/'), { ok: true, segments: ['ipxe.efi'] });
  // An absolute path elsewhere is taken relative to the root.
  assert.deepEqual(normalizeRequestName('/etc/passwd', '/srv/tftp'), { ok: true, segments: ['etc', 'passwd'] });
});

test('normalizeRequestName() refuses .. segments anywhere', () => {
  for (const n of ['../etc/passwd', 'a/../../b', '..\\..\\x', '/..', 'a/..', '..']) {
    const r = normalizeRequestName(n, '/srv/tftp');
    assert.equal(r.ok, false, n);
    assert.ok(!r.ok && r.reason === 'access');
  }
  // '..' inside a name is not a segment.
  assert.deepEqual(normalizeRequestName('a..b', '/r'), { ok: true, segments: ['a..b'] });
});

test('normalizeRequestName() refuses the root itself', () => {
  for (const n of ['/', '.', '//./']) {
    const r = normalizeRequestName(n, '/r');
    assert.ok(!r.ok && r.reason === 'not-a-file', n);
  }
});

test('wireNameToUtf8() accepts UTF-8 bytes and refuses invalid ones', () => {
  assert.equal(wireNameToUtf8(Buffer.from('café', 'utf8').toString('latin1')), 'café');
  assert.equal(wireNameToUtf8('\u00ff\u00fe'), null);
});

test('normalizeRequestName() refuses NUL bytes and over-long names before any I/O', () => {
  const nul = normalizeRequestName('undionly.kpxe\0.txt', '/r');
  assert.ok(!nul.ok && nul.reason === 'access');
  const seg = normalizeRequestName('a/' + 'x'.repeat(MAX_SEGMENT_BYTES + 1), '/r');
  assert.ok(!seg.ok && seg.reason === 'not-found' && /too long/.test(seg.message), JSON.stringify(seg));
  assert.ok(normalizeRequestName('x'.repeat(MAX_SEGMENT_BYTES), '/r').ok);
  // Bytes count, not characters: 128 two-byte characters are 256 bytes.
  assert.ok(!normalizeRequestName('é'.repeat(128), '/r').ok);
  const total = normalizeRequestName('abcdefgh/'.repeat(Math.ceil((MAX_NAME_BYTES + 1) / 9)), '/r');
  assert.ok(!total.ok && total.reason === 'not-found' && /too long/.test(total.message));
});

/** A scratch directory: DIR/root (the root) and DIR/outside (with a secret), removed afterwards. */
async function withTree(fn: (root: string, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fb-safepath-'));
  try {
    const root = join(dir, 'root');
    await mkdir(join(root, 'sub'), { recursive: true });
    await mkdir(join(dir, 'outside', 'sub'), { recursive: true });
    await writeFile(join(root, 'sub', 'f.bin'), 'hello');
    await writeFile(join(dir, 'outside', 'secret'), 'nope');
    await writeFile(join(dir, 'outside', 'sub', 'f.bin'), 'outside!');
    await fn(root, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function outcome(root: string, name: string, opts?: Parameters<typeof openInRoot>[2]): Promise<SafePathFailure | 'ok'> {
  const r = await openInRoot(root, name, opts);
  if (r.ok) await r.handle.close();
  return r.ok ? 'ok' : r.reason;
}

test('openInRoot() opens a regular file inside the root, with its size and stat from the descriptor', async () => {
  await withTree(async (root) => {
    const ok = await openInRoot(root, 'sub\\f.bin');
    assert.ok(ok.ok);
    try {
      assert.equal(ok.size, 5);
      assert.equal(ok.stat.size, 5);
      assert.ok(ok.stat.isFile());
      assert.equal(ok.relative, join('sub', 'f.bin'));
      assert.equal((await ok.handle.readFile()).toString(), 'hello');
    } finally {
      await ok.handle.close();
    }
    assert.equal(await outcome(root, join(root, 'sub/f.bin')), 'ok', 'a name starting with the root path');
    assert.equal(await outcome(root, './sub//f.bin'), 'ok');
  });
});

test('openInRoot() refuses .., absolute paths elsewhere, NUL bytes, over-long names, directories and FIFOs', async () => {
  await withTree(async (root) => {
    execFileSync(program('mkfifo'), [join(root, 'fifo')]);
    assert.equal(await outcome(root, '../outside/secret'), 'access');
    assert.equal(await outcome(root, 'sub/../../outside/secret'), 'access');
    assert.equal(await outcome(root, '/etc/passwd'), 'not-found', 'absolute names are inside the root');
    assert.equal(await outcome(root, 'sub/f.bin\0'), 'access');
    assert.equal(await outcome(root, 'x'.repeat(300)), 'not-found');
    assert.equal(await outcome(root, 'sub/'.repeat(1100) + 'f.bin'), 'not-found');
    assert.equal(await outcome(root, 'missing'), 'not-found');
    assert.equal(await outcome(root, 'sub/f.bin/x'), 'not-found');
    assert.equal(await outcome(root, 'sub'), 'not-a-file');
    assert.equal(await outcome(root, '/'), 'not-a-file');
    assert.equal(await outcome(root, 'fifo'), 'not-a-file');
    assert.equal(await outcome(join(root, 'nope'), 'sub/f.bin'), 'not-found', 'a missing root');
  });
});

test('openInRoot() follows symlinks that stay inside the root and refuses those that leave it', async () => {
  await withTree(async (root, dir) => {
    await symlink('sub/f.bin', join(root, 'file-link')); // final component, relative, inside
    await symlink(join(root, 'sub'), join(root, 'dir-link')); // a directory, absolute, inside
    await symlink(join(dir, 'outside', 'secret'), join(root, 'escape')); // final component, out
    await symlink('../outside', join(root, 'escape-dir')); // a directory, relative, out
    await symlink('/etc', join(root, 'etc')); // a directory, absolute, out
    await symlink('loop', join(root, 'loop'));
    assert.equal(await outcome(root, 'file-link'), 'ok');
    assert.equal(await outcome(root, 'dir-link/f.bin'), 'ok');
    const viaDir = await openInRoot(root, 'dir-link/f.bin');
    assert.ok(viaDir.ok);
    assert.equal(viaDir.relative, join('sub', 'f.bin'), 'the real path is reported');
    await viaDir.handle.close();
    assert.equal(await outcome(root, 'dir-link'), 'not-a-file');
    assert.equal(await outcome(root, 'escape'), 'access');
    assert.equal(await outcome(root, 'escape-dir/secret'), 'access');
    assert.equal(await outcome(root, 'etc/passwd'), 'access');
    assert.equal(await outcome(root, 'loop'), 'access');
  });
});

test('openInRoot() refuses a file replaced by a symlink after the check (O_NOFOLLOW)', async () => {
  await withTree(async (root, dir) => {
    const r = await openInRoot(root, 'sub/f.bin', {
      async beforeOpen(path) {
        await unlink(path);
        await symlink(join(dir, 'outside', 'secret'), path);
      },
    });
    if (r.ok) await r.handle.close();
    assert.ok(!r.ok && r.reason === 'access' && /symlink/.test(r.message), JSON.stringify(r));
  });
});

test('openInRoot() refuses a file whose directory was swapped for a symlink out of the root after the check', async () => {
  await withTree(async (root, dir) => {
    const r = await openInRoot(root, 'sub/f.bin', {
      async beforeOpen() {
        await rename(join(root, 'sub'), join(root, 'sub-old'));
        await symlink(join(dir, 'outside', 'sub'), join(root, 'sub'));
      },
    });
    if (r.ok) await r.handle.close();
    assert.ok(!r.ok && r.reason === 'access' && /outside the root/.test(r.message), JSON.stringify(r));
  });
});

test('openInRoot() gives the file that was checked even when its name is replaced after the open', async () => {
  await withTree(async (root, dir) => {
    const r = await openInRoot(root, 'sub/f.bin');
    assert.ok(r.ok);
    try {
      await unlink(join(root, 'sub', 'f.bin'));
      await symlink(join(dir, 'outside', 'secret'), join(root, 'sub', 'f.bin'));
      assert.equal((await r.handle.readFile()).toString(), 'hello');
    } finally {
      await r.handle.close();
    }
  });
});
