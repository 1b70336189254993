/**
 * How nodes authenticate to each other: no passwords between nodes. Each
 * node has a secret of its own (src/store/node-secret.ts, 0600 in its data
 * directory); the shared store holds its sha256 (nodes.credential_hash). A
 * node calling another sends
 *
 *   Authorization: Node <name>:<secret>
 *
 * and the callee looks the name up in the shared store and compares the
 * hashes in constant time. The caller must be up (registered, heartbeating):
 * a node that is down gets no work and serves nobody. The secret crosses
 * the wire, so nodes send it over HTTPS only: the nodes do not share a CA
 * (each server has its own, src/tls/, or the admin's certificate), so the
 * caller pins the callee's certificate by the sha256 each node publishes in
 * the shared store (nodes.tls_sha256) and writes the request only on a
 * connection showing that certificate (src/replication/peer.ts). Plain HTTP
 * to a node with HTTPS off only with replication.allowPlainHttp.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import { FleetbootError } from '../lib/errors.js';
import { isValidName } from '../model/validate.js';
import type { Database } from '../store/schema.js';
import { hashNodeSecret, NODE_SECRET_RE } from '../store/node-secret.js';
import { DOWN_AFTER_BEATS, nodeWithCredential, type NodeRecord } from '../store/nodes.js';

export const NODE_AUTH_SCHEME = 'Node';

/** The Authorization header value a node sends: `Node <name>:<secret>`. */
export function nodeAuthorization(name: string, secret: string): string {
  if (!isValidName(name)) throw new TypeError(`nodeAuthorization(): not a node name: ${JSON.stringify(name)}`);
  if (!NODE_SECRET_RE.test(secret)) throw new TypeError('nodeAuthorization(): a node secret is 64 hex digits');
  return `${NODE_AUTH_SCHEME} ${name}:${secret}`;
}

/** `Node <name>:<secret>` -> its parts; null for anything else (another scheme, a malformed value). */
export function parseNodeAuthorization(header: string | undefined): { name: string; secret: string } | null {
  if (header === undefined) return null;
  const m = /^Node ([^\s:]{1,64}):([0-9a-f]{64})$/.exec(header.trim());
  if (!m || !isValidName(m[1] as string)) return null;
  return { name: m[1] as string, secret: m[2] as string };
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === 32 && y.length === 32 && timingSafeEqual(x, y);
}

/**
 * Who is calling, from its Authorization header: the calling node's record,
 * or FleetbootError UNAUTHORIZED (no or malformed credential, unknown node,
 * wrong secret: the message says which, not the secret) or FORBIDDEN (the
 * node is down: it stopped, or has not beaten for DOWN_AFTER_BEATS intervals).
 */
export async function verifyNodeCredential(db: Kysely<Database>, header: string | undefined, now: Date = new Date()): Promise<NodeRecord> {
  const cred = parseNodeAuthorization(header);
  if (!cred) {
    throw new FleetbootError('UNAUTHORIZED', `A node authenticates with "Authorization: ${NODE_AUTH_SCHEME} NAME:SECRET" (its name and the 64 hex digits of its secret): ${header === undefined ? 'no Authorization header' : 'the header is not of that form'}`);
  }
  const given = hashNodeSecret(cred.secret);
  const found = await nodeWithCredential(db, cred.name, now);
  if (!found) throw new FleetbootError('UNAUTHORIZED', `No node named '${cred.name}' is registered in the shared store`);
  if (!sameHash(given, found.credentialHash)) throw new FleetbootError('UNAUTHORIZED', `Wrong secret for node '${cred.name}'`);
  const n = found.node;
  if (n.state !== 'up') {
    const why = n.stoppedAt !== null ? `it stopped at ${n.stoppedAt}` : `its last heartbeat was ${n.heartbeatAgeSeconds} s ago (down after ${DOWN_AFTER_BEATS} x ${n.heartbeatSeconds} s)`;
    throw new FleetbootError('FORBIDDEN', `Node '${cred.name}' is down (${why}): a down node is refused until it beats again`);
  }
  return n;
}
