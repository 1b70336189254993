import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError, resolveToken } from './client.js';
import { extractGlobalOptions } from './globals.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);
const D = 'd'.repeat(64);

test('resolveToken() takes --token, then --token-file, then FLEETBOOT_TOKEN, then <data-dir>/api-token', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-token-'));
  try {
    writeFileSync(join(dir, 'api-token'), `${D}\n`);
    writeFileSync(join(dir, 'copy'), `  ${B}\n\n`);
    const env = { FLEETBOOT_TOKEN: C };
    const g = (argv: string[], e: Record<string, string> = env) => extractGlobalOptions(argv, e).globals;
    assert.deepEqual(await resolveToken(g(['--token', A, '--token-file', join(dir, 'copy')]), dir), { token: A, source: '--token' });
    assert.deepEqual(await resolveToken(g([`--token-file=${join(dir, 'copy')}`]), dir), { token: B, source: '--token-file' });
    assert.deepEqual(await resolveToken(g([]), dir), { token: C, source: 'FLEETBOOT_TOKEN' });
    assert.deepEqual(await resolveToken(g([], { FLEETBOOT_TOKEN: '' }), dir), { token: D, source: 'data-dir' });
    assert.deepEqual(await resolveToken(g([], {}), dir), { token: D, source: 'data-dir' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resolveToken() says clearly when --token-file is missing, unreadable, empty or not one token', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-token-'));
  try {
    const g = (file: string) => extractGlobalOptions(['--token-file', file], { FLEETBOOT_TOKEN: C }).globals;
    const missing = join(dir, 'nope');
    await assert.rejects(resolveToken(g(missing), dir), (e: unknown) => e instanceof CliError && e.message === `Cannot read the API token file ${missing} (--token-file): it does not exist`);
    await assert.rejects(resolveToken(g(dir), dir), /--token-file\): it is a directory/);
    writeFileSync(join(dir, 'empty'), '\n  \n');
    await assert.rejects(resolveToken(g(join(dir, 'empty')), dir), /The API token from the file .*empty \(--token-file\) is empty/);
    writeFileSync(join(dir, 'two'), `${A}\n${B}\n`);
    await assert.rejects(resolveToken(g(join(dir, 'two')), dir), /must be one word/);
    if (process.getuid?.() !== 0) {
      writeFileSync(join(dir, 'locked'), A);
      chmodSync(join(dir, 'locked'), 0o000);
      await assert.rejects(resolveToken(g(join(dir, 'locked')), dir), /permission denied/);
    }
    // No source at all: the message names every way to give one.
    await assert.rejects(resolveToken(extractGlobalOptions([], {}).globals, dir), /No API token: cannot read .*api-token: it does not exist\. Pass --token-file FILE, set FLEETBOOT_TOKEN/);
    assert.throws(() => extractGlobalOptions(['--token-file'], {}), /option '--token-file' needs a value/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
