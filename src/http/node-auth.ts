/**
 * Routes that only other nodes call (replication, issue 15): an onRequest
 * hook that authenticates the calling node from `Authorization: Node
 * NAME:SECRET` against the shared store (src/nodes/auth.ts) and puts its
 * record on `req.node`. 401 for a missing, malformed or wrong credential or
 * an unknown node (with `www-authenticate: Node`), 403 for a node that is
 * down. Register such routes outside /api/v1 (whose routes take users'
 * credentials, src/http/auth.ts), in a scope with this hook:
 *
 *   app.register(async (scope) => {
 *     scope.addHook('onRequest', nodeAuthHook(store));
 *     scope.get('/node/v1/...', async (req) => ... req.node ...);
 *   });
 */
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { FleetbootError } from '../lib/errors.js';
import { NODE_AUTH_SCHEME, verifyNodeCredential } from '../nodes/auth.js';
import type { NodeRecord } from '../store/nodes.js';
import type { Store } from '../store/db.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The calling node, on routes behind nodeAuthHook (null elsewhere). */
    node: NodeRecord | null;
  }
}

export function nodeAuthHook(store: Store, now: () => Date = () => new Date()): onRequestHookHandler {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    try {
      req.node = await verifyNodeCredential(store.db, req.headers.authorization, now());
    } catch (err) {
      if (err instanceof FleetbootError && err.code === 'UNAUTHORIZED') void reply.header('www-authenticate', NODE_AUTH_SCHEME);
      throw err;
    }
  };
}
