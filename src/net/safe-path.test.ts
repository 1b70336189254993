import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { program } from '../lib/programs.js';
import { normalizeRequestName, openInRoot, wireNameToUtf8 } from './safe-path.js';

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

test('openInRoot() opens files inside the root and refuses everything else', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fb-safepath-'));
  try {
    const root = join(dir, 'root');
    await mkdir(join(root, 'sub'), { recursive: true });
    await writeFile(join(root, 'sub', 'f.bin'), 'hello');
    await writeFile(join(dir, 'secret'), 'nope');
    await symlink(join(dir, 'secret'), join(root, 'escape'));
    await symlink('sub/f.bin', join(root, 'inside-link'));
    await symlink('/etc', join(root, 'etcdir'));
    execFileSync(program('mkfifo'), [join(root, 'fifo')]);

    const ok = await openInRoot(root, 'sub\\f.bin');
    assert.ok(ok.ok);
    assert.equal(ok.size, 5);
    assert.equal(ok.relative, join('sub', 'f.bin'));
    await ok.handle.close();

    const viaLink = await openInRoot(root, '/inside-link');
    assert.ok(viaLink.ok);
    await viaLink.handle.close();

    const expect = async (name: string, reason: string): Promise<void> => {
      const r = await openInRoot(root, name);
      if (r.ok) await r.handle.close();
      assert.equal(r.ok ? 'ok' : r.reason, reason, name);
    };
    await expect('escape', 'access');
    await expect('etcdir/passwd', 'access');
    await expect('../secret', 'access');
    await expect('/etc/passwd', 'not-found');
    await expect('missing', 'not-found');
    await expect('sub/f.bin/x', 'not-found');
    await expect('sub', 'not-a-file');
    await expect('fifo', 'not-a-file');
    await expect(join(root, 'sub/f.bin'), 'ok');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
