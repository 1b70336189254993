import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyRequest } from 'fastify';
import { MAX_SUMMARY, REMOVED, requestSummary, withoutSecrets } from './audit.js';
import { clearedSessionCookie, readCookie, sessionCookie } from './auth.js';

const req = (parts: { params?: unknown; query?: unknown; body?: unknown }): FastifyRequest => ({ params: {}, query: {}, body: undefined, ...parts }) as unknown as FastifyRequest;

test('withoutSecrets() replaces the values of secret-naming keys, at any depth, and keeps the rest', () => {
  assert.deepEqual(
    withoutSecrets({ name: 'alice', password: 'x', currentPassword: 'y', nested: { apiToken: 'z', list: [{ secret: 's', keep: 1 }] }, csrfToken: 'c', role: 'viewer' }),
    { name: 'alice', password: REMOVED, currentPassword: REMOVED, nested: { apiToken: REMOVED, list: [{ secret: REMOVED, keep: 1 }] }, csrfToken: REMOVED, role: 'viewer' },
  );
  assert.equal(withoutSecrets('plain'), 'plain');
  assert.deepEqual(withoutSecrets(['a', { Authorization: 'Bearer x' }]), ['a', { Authorization: REMOVED }]);
});

test('requestSummary(): params, query and JSON body, empty parts left out; a stream body is not one; long ones are cut', () => {
  assert.equal(requestSummary(req({})), null);
  assert.deepEqual(requestSummary(req({ params: { mac: 'm' }, query: { force: 'true' }, body: { password: 'p' } })), { params: { mac: 'm' }, query: { force: 'true' }, body: { password: REMOVED } });
  class FakeStream {
    readonly data = 'bytes';
  }
  assert.equal(requestSummary(req({ body: new FakeStream() })), null, 'an upload is not summarised');
  const long = requestSummary(req({ body: { macs: Array.from({ length: 1000 }, (_, i) => `52:54:00:00:${String(i).padStart(5, '0')}`) } })) as { truncated: boolean; text: string };
  assert.equal(long.truncated, true);
  assert.equal(long.text.length, MAX_SUMMARY);
  assert.ok(long.text.startsWith('{"body":{"macs":["52:54:00:00:00000"'));
});

test('readCookie() finds one cookie among others; the session cookie is HttpOnly, SameSite=Lax, Path=/, Secure only under TLS', () => {
  assert.equal(readCookie('a=1; fleetboot_session=abc; b=2', 'fleetboot_session'), 'abc');
  assert.equal(readCookie('xfleetboot_session=abc', 'fleetboot_session'), null);
  assert.equal(readCookie(undefined, 'fleetboot_session'), null);
  assert.equal(readCookie('fleetboot_session', 'fleetboot_session'), null);
  assert.equal(sessionCookie('s', { maxAgeSeconds: 3600, secure: false }), 'fleetboot_session=s; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600');
  assert.equal(sessionCookie('s', { maxAgeSeconds: 3600, secure: true }), 'fleetboot_session=s; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600; Secure');
  assert.equal(clearedSessionCookie(true), 'fleetboot_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0; Secure');
});
