import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { hashNodeSecret } from '../store/node-secret.js';
import { markNodeStopped, registerNode } from '../store/nodes.js';
import { withTempStore } from '../store/temp-store.js';
import { nodeAuthorization } from '../nodes/auth.js';
import { installErrorHandlers } from './errors.js';
import { nodeAuthHook } from './node-auth.js';

const SECRET = 'c3'.repeat(32);

test('nodeAuthHook(): the calling node on req.node; 401 (www-authenticate: Node) for bad credentials, 403 for a down node', async () => {
  await withTempStore('node-auth-hook', async (s) => {
    await registerNode(s.db, { name: 'pxe-a', addresses: ['10.0.0.2'], subnets: [], httpUrl: null, httpsUrl: null, capacityBytes: null, freeBytes: null, version: 'x', heartbeatSeconds: 10, credentialHash: hashNodeSecret(SECRET) });
    const app = Fastify();
    installErrorHandlers(app);
    app.decorateRequest('node', null);
    app.register(async (scope) => {
      scope.addHook('onRequest', nodeAuthHook(s));
      scope.get('/node/v1/whoami', async (req) => ({ node: req.node?.name ?? null }));
    });
    try {
      const get = (authorization?: string) => app.inject({ method: 'GET', url: '/node/v1/whoami', headers: authorization ? { authorization } : {} });
      const good = await get(nodeAuthorization('pxe-a', SECRET));
      assert.deepEqual([good.statusCode, good.json()], [200, { node: 'pxe-a' }]);
      for (const h of [undefined, `Bearer ${SECRET}`, nodeAuthorization('pxe-a', 'd4'.repeat(32)), nodeAuthorization('pxe-z', SECRET)]) {
        const r = await get(h);
        assert.equal(r.statusCode, 401, String(h));
        assert.equal(r.headers['www-authenticate'], 'Node');
        assert.equal(r.json<{ error: string }>().error, 'UNAUTHORIZED');
      }
      await markNodeStopped(s.db, 'pxe-a', hashNodeSecret(SECRET));
      const down = await get(nodeAuthorization('pxe-a', SECRET));
      assert.equal(down.statusCode, 403);
      assert.match(down.json<{ message: string }>().message, /^Node 'pxe-a' is down \(it stopped at /);
    } finally {
      await app.close();
    }
  });
});
