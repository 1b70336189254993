import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetbootError } from '../lib/errors.js';
import { hashNodeSecret } from '../store/node-secret.js';
import { markNodeStopped, registerNode } from '../store/nodes.js';
import { withTempStore } from '../store/temp-store.js';
import { nodeAuthorization, parseNodeAuthorization, verifyNodeCredential } from './auth.js';

const T0 = new Date('2026-12-13T10:00:00.000Z');
const at = (s: number): Date => new Date(T0.getTime() + s * 1000);
const SECRET_A = 'a1'.repeat(32);
const SECRET_B = 'b2'.repeat(32);

const fails = (code: string, re: RegExp) => (e: unknown) => e instanceof FleetbootError && e.code === code && re.test(e.message);

async function withNodes(fn: (db: Parameters<typeof verifyNodeCredential>[0]) => Promise<void>): Promise<void> {
  await withTempStore('node-auth', async (s) => {
    for (const [name, secret] of [['pxe-a', SECRET_A], ['pxe-b', SECRET_B]] as const) {
      await registerNode(s.db, { name, addresses: ['10.0.0.2'], subnets: [], httpUrl: null, httpsUrl: null, capacityBytes: null, freeBytes: null, version: '0.1.0', heartbeatSeconds: 10, credentialHash: hashNodeSecret(secret) }, T0);
    }
    await fn(s.db);
  });
}

test('nodeAuthorization() and parseNodeAuthorization(): "Node NAME:SECRET" and nothing else', () => {
  assert.equal(nodeAuthorization('pxe-a', SECRET_A), `Node pxe-a:${SECRET_A}`);
  assert.deepEqual(parseNodeAuthorization(`Node pxe-a:${SECRET_A}`), { name: 'pxe-a', secret: SECRET_A });
  for (const h of [undefined, '', `Bearer ${SECRET_A}`, `Node pxe-a ${SECRET_A}`, `Node pxe-a:${SECRET_A.slice(1)}`, `Node :${SECRET_A}`, `Node -x:${SECRET_A}`, `node pxe-a:${SECRET_A}`, `Node pxe-a:${SECRET_A.toUpperCase()}`]) {
    assert.equal(parseNodeAuthorization(h), null, String(h));
  }
  assert.throws(() => nodeAuthorization('bad name', SECRET_A), TypeError);
  assert.throws(() => nodeAuthorization('pxe-a', 'short'), TypeError);
});

test('verifyNodeCredential(): the right secret gives the calling node; wrong secret, unknown node, malformed header: 401', async () => {
  await withNodes(async (db) => {
    const n = await verifyNodeCredential(db, nodeAuthorization('pxe-a', SECRET_A), at(5));
    assert.equal(n.name, 'pxe-a');
    assert.equal(n.state, 'up');
    assert.equal((await verifyNodeCredential(db, nodeAuthorization('pxe-b', SECRET_B), at(5))).name, 'pxe-b');
    await assert.rejects(verifyNodeCredential(db, nodeAuthorization('pxe-a', SECRET_B), at(5)), fails('UNAUTHORIZED', /^Wrong secret for node 'pxe-a'$/));
    await assert.rejects(verifyNodeCredential(db, nodeAuthorization('pxe-z', SECRET_A), at(5)), fails('UNAUTHORIZED', /^No node named 'pxe-z' is registered in the shared store$/));
    await assert.rejects(verifyNodeCredential(db, undefined, at(5)), fails('UNAUTHORIZED', /"Authorization: Node NAME:SECRET".*: no Authorization header$/));
    await assert.rejects(verifyNodeCredential(db, `Bearer ${SECRET_A}`, at(5)), fails('UNAUTHORIZED', /the header is not of that form$/));
  });
});

test('verifyNodeCredential(): a node that is down (missed beats, or stopped) is refused with 403, saying why', async () => {
  await withNodes(async (db) => {
    await assert.rejects(verifyNodeCredential(db, nodeAuthorization('pxe-a', SECRET_A), at(31)), fails('FORBIDDEN', /^Node 'pxe-a' is down \(its last heartbeat was 31 s ago \(down after 3 x 10 s\)\): a down node is refused until it beats again$/));
    await markNodeStopped(db, 'pxe-b', hashNodeSecret(SECRET_B), at(2));
    await assert.rejects(verifyNodeCredential(db, nodeAuthorization('pxe-b', SECRET_B), at(3)), fails('FORBIDDEN', /^Node 'pxe-b' is down \(it stopped at 2026-12-13T10:00:02\.000Z\)/));
    // The wrong secret of a down node is still 401 (the secret is checked first).
    await assert.rejects(verifyNodeCredential(db, nodeAuthorization('pxe-b', SECRET_A), at(3)), fails('UNAUTHORIZED', /^Wrong secret/));
  });
});
