import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generatePassword, GENERATED_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, passwordProblem } from './password.js';

test('passwordProblem() wants at least 12 characters, counted as characters, and no control characters', () => {
  assert.equal(MIN_PASSWORD_LENGTH, 12);
  assert.equal(passwordProblem('correct horse'), null);
  assert.equal(passwordProblem('a'.repeat(12)), null);
  assert.equal(passwordProblem('é'.repeat(12)), null, 'twelve characters, not bytes');
  assert.equal(passwordProblem('e\u0301'.repeat(6) + 'abcdef'), null, 'decomposed é counts once after NFC');
  assert.equal(passwordProblem('short'), 'must be at least 12 characters long: it has 5');
  assert.equal(passwordProblem('e\u0301'.repeat(11)), 'must be at least 12 characters long: it has 11');
  assert.match(passwordProblem('a'.repeat(1025)) ?? '', /at most 1024/);
  assert.match(passwordProblem('long enough password\n') ?? '', /control characters/);
  assert.match(passwordProblem('long enough\tpassword') ?? '', /control characters/);
});

test('generatePassword() gives 20 lower-case base32 characters, different each time, within the policy', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const p = generatePassword();
    assert.match(p, /^[a-z2-7]{20}$/);
    assert.equal(p.length, GENERATED_PASSWORD_LENGTH);
    assert.equal(passwordProblem(p), null);
    seen.add(p);
  }
  assert.equal(seen.size, 200);
  // Every symbol of the alphabet turns up (the mapping has no hole).
  assert.equal(new Set([...seen].join('')).size, 32);
});
