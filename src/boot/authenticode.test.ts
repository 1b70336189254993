import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEBIAN_SIGNED_DIR } from '../config/config.js';
import { authenticodeDigest, peLayout, verifyAuthenticode } from './authenticode.js';

// Debian's signed shim and GRUB, as scripts/install-deps.sh extracts them (the test needs them: it fails without).
const shim = () => readFileSync(join(DEBIAN_SIGNED_DIR, 'shimx64.efi.signed'));
const grub = () => readFileSync(join(DEBIAN_SIGNED_DIR, 'grubnetx64.efi.signed'));

test("Debian's shim verifies: signed by Microsoft's UEFI CA, the digest matches the file", () => {
  const v = verifyAuthenticode(shim());
  assert.equal(v.signed, true, JSON.stringify(v));
  if (!v.signed) return;
  assert.equal(v.algorithm, 'sha256');
  assert.match(v.issuer, /Microsoft Corporation UEFI CA 2011/);
  assert.match(v.digest, /^[0-9a-f]{64}$/);
});

test("Debian's GRUB verifies: signed by Debian's Secure Boot CA", () => {
  const v = verifyAuthenticode(grub());
  assert.equal(v.signed, true, JSON.stringify(v));
  if (v.signed) assert.match(v.issuer, /Debian Secure Boot CA/);
});

test('one byte changed anywhere that is hashed: refused as changed after signing', () => {
  const b = grub();
  const layout = peLayout(b);
  const first = layout.sections[0];
  assert.ok(first);
  for (const at of [10, first.offset + 100, Math.floor(b.length / 2)]) {
    const c = Buffer.from(b);
    c[at] = (c[at] as number) ^ 0xff;
    const v = verifyAuthenticode(c);
    assert.equal(v.signed, false, `byte ${at}`);
    if (!v.signed) assert.match(v.reason, /changed after it was signed|not a PE|malformed/);
    if (!v.signed && at !== 10) assert.equal(v.present, true, 'a signature is there, it does not verify');
  }
});

test('the checksum field and the certificate table entry are outside the digest', () => {
  const b = shim();
  const layout = peLayout(b);
  const c = Buffer.from(b);
  c.writeUInt32LE(0x12345678, layout.checksumOffset);
  assert.equal(authenticodeDigest(c), authenticodeDigest(b));
});

test('an unsigned EFI executable, the table removed, and junk: "not signed" with the reason, never a throw', () => {
  const b = shim();
  const layout = peLayout(b);
  const stripped = Buffer.from(b);
  stripped.writeUInt32LE(0, layout.certEntryOffset);
  stripped.writeUInt32LE(0, layout.certEntryOffset + 4);
  const v = verifyAuthenticode(stripped);
  assert.deepEqual(v, { signed: false, present: false, reason: 'it has no signature (no certificate table)' });
  assert.match((verifyAuthenticode(Buffer.from('#!/bin/sh\necho hi\n')) as { reason: string }).reason, /not a PE/);
  assert.equal(verifyAuthenticode(Buffer.alloc(0)).signed, false);
  // Truncations and random corruption of the signature: a verdict every time.
  for (const cut of [64, 200, 1024, b.length - 100, b.length - 3000]) assert.equal(verifyAuthenticode(b.subarray(0, cut)).signed, false, `cut at ${cut}`);
  // GRUB carries one signature (shim carries two: Microsoft's 2011 and 2023 CAs; either verifies it).
  const g = grub();
  const sig = peLayout(g).certTable;
  assert.ok(sig);
  // (Some bytes of a signature are not signed themselves: certificates of the chain, unsigned attributes.)
  let refused = 0;
  for (let i = 0; i < 200; i++) {
    const c = Buffer.from(g);
    const at = sig.offset + 8 + ((i * 7919) % (sig.size - 8));
    c[at] = (c[at] as number) ^ (1 + (i % 255));
    const v = verifyAuthenticode(c);
    assert.equal(typeof v.signed, 'boolean');
    if (!v.signed) refused++;
  }
  assert.ok(refused > 100, `only ${refused} of 200 corrupted signatures were refused`);
});
