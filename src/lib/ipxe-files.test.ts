import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIpxeManifest, parseIpxeManifest } from './ipxe-files.js';

test('parseIpxeManifest() reads what formatIpxeManifest() writes and drops malformed entries', () => {
  const entry = { sha256: 'a'.repeat(64), bytes: 70000, source: '/usr/lib/ipxe/undionly.kpxe', copiedAt: '2026-12-07T10:00:00.000Z' };
  assert.deepEqual(parseIpxeManifest(formatIpxeManifest({ 'undionly.kpxe': entry })), { 'undionly.kpxe': entry });
  assert.deepEqual(parseIpxeManifest(JSON.stringify({ files: { 'ipxe.efi': { ...entry, sha256: 'zz' }, 'x.efi': 3 } })), {});
  assert.deepEqual(parseIpxeManifest('not json'), {});
  assert.deepEqual(parseIpxeManifest('[]'), {});
});
