import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SCRYPT, hashPassword, needsRehash, parsePasswordHash, verifyPassword } from './password-hash.js';

test('hashPassword() with the defaults: scrypt$32768$8$1$salt$hash, 16-byte salt, 64-byte key; verifyPassword() checks it', async () => {
  const h = await hashPassword('correct horse battery');
  assert.match(h, /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{86}$/);
  const parsed = parsePasswordHash(h);
  assert.deepEqual(parsed?.params, DEFAULT_SCRYPT);
  assert.equal(parsed?.salt.length, 16);
  assert.equal(parsed?.key.length, 64);
  assert.equal(await verifyPassword('correct horse battery', h), true);
  assert.equal(await verifyPassword('correct horse batterY', h), false);
  assert.equal(await verifyPassword('', h), false);
  assert.equal(needsRehash(h), false);
  assert.notEqual(await hashPassword('correct horse battery'), h, 'a new salt each time');
});

test('verifyPassword() compares after NFC: a composed and a decomposed é are the same password', async () => {
  const cheap = { ...DEFAULT_SCRYPT, N: 1024 };
  const h = await hashPassword('caf\u00e9 au lait!', cheap);
  assert.equal(await verifyPassword('cafe\u0301 au lait!', h), true);
});

test('a hash made with other parameters still verifies and needs a rehash', async () => {
  const cheap = { ...DEFAULT_SCRYPT, N: 1024, r: 4 };
  const h = await hashPassword('twelve chars!', cheap);
  assert.match(h, /^scrypt\$1024\$4\$1\$/);
  assert.equal(await verifyPassword('twelve chars!', h), true);
  assert.equal(needsRehash(h), true);
  assert.equal(needsRehash(h, cheap), false);
});

test('malformed or out-of-bounds stored hashes verify as false, never throw', async () => {
  const good = await hashPassword('twelve chars!', { ...DEFAULT_SCRYPT, N: 1024 });
  const [, , r, p, salt, key] = good.split('$');
  for (const bad of [
    '',
    'plain text',
    good.replace('scrypt$', 'bcrypt$'),
    `scrypt$1000$${r}$${p}$${salt}$${key}`, // N not a power of two
    `scrypt$${2 ** 22}$${r}$${p}$${salt}$${key}`, // N too large (4 GiB)
    `scrypt$${2 ** 20}$16$${p}$${salt}$${key}`, // 2 GiB of memory
    `scrypt$1024$${r}$99$${salt}$${key}`,
    `scrypt$1024$${r}$${p}$$${key}`,
    `scrypt$1024$${r}$${p}$${salt}$`,
    `${good}$extra`,
  ]) {
    assert.equal(parsePasswordHash(bad), null, bad);
    assert.equal(await verifyPassword('twelve chars!', bad), false, bad);
    assert.equal(needsRehash(bad), true, bad);
  }
});

test('hashPassword() refuses parameters out of bounds, naming them', async () => {
  await assert.rejects(hashPassword('x', { ...DEFAULT_SCRYPT, N: 3000 }), /'N' must be a power of two: current value is 3000/);
  await assert.rejects(hashPassword('x', { ...DEFAULT_SCRYPT, r: 0 }), /'r' must be an integer from 1 to 32: current value is 0/);
  await assert.rejects(hashPassword('x', { ...DEFAULT_SCRYPT, N: 2 ** 20, r: 8 }), /need 1024 MiB: at most 256 MiB/);
});
