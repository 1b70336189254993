/**
 * Enrolment: pin the server's CA, make this machine's own Ed25519 key,
 * prove possession of it (a signed server nonce) and bind it to the host.
 * With a token the server binds it at once; without one the agent is
 * pending until an admin approves it. A new enrolment always makes a new
 * key: a key is never reused across identities.
 */
import { sign, type KeyObject } from 'node:crypto';
import { agentIdOf, enrollSigningBytes, type EnrollRequest } from '../model/endpoint.js';
import { parseChallenge, parseEnrollAnswer } from './answers.js';
import { EndpointClient, fetchPinnedCa, normaliseFingerprint, normaliseServer } from './client.js';
import { AgentError } from './errors.js';
import type { AgentLog } from './log.js';
import type { AgentOs } from './os.js';
import { publicKeyB64, type AgentRecord, type StateDir } from './state.js';

export function signB64(key: KeyObject, data: Buffer): string {
  return sign(null, data, key).toString('base64');
}

/** A fresh challenge nonce. */
export async function challenge(client: EndpointClient): Promise<string> {
  return parseChallenge(await client.json('POST', '/challenge', { body: {} })).nonce;
}


/**
 * Enrol through an already pinned client: a new key (written 0600 before
 * the server sees it), a signed challenge, agent.json written on success.
 */
export async function enrollWithClient(client: EndpointClient, state: StateDir, os: AgentOs, token: string | null, log: AgentLog, now = new Date()): Promise<AgentRecord> {
  const key = state.newKey();
  const publicKey = publicKeyB64(key);
  const identity = os.identity();
  const nonce = await challenge(client);
  const req: EnrollRequest = { token, publicKey, nonce, signature: signB64(key, enrollSigningBytes(nonce, publicKey)), identity };
  const answer = parseEnrollAnswer(await client.json('POST', '/enroll', { body: req }));
  const expected = agentIdOf(publicKey);
  if (answer.agentId !== expected) throw new AgentError('SERVER', `the server named this agent ${answer.agentId}, but its key's id is ${expected}`);
  const rec: AgentRecord = { server: client.server, agentId: answer.agentId, identity, packageKey: answer.packageKey, state: answer.state, enrolledAt: now.toISOString() };
  state.writeAgent(rec);
  log.info(answer.state === 'pending' ? 'enrolled: pending until an admin approves this agent' : 'enrolled', {
    agentId: answer.agentId,
    state: answer.state,
    host: answer.host?.name ?? answer.host?.mac ?? null,
    withToken: token !== null,
  });
  return rec;
}

export interface EnrollOptions {
  server: string;
  caSha256: string;
  token: string | null;
  state: StateDir;
  os: AgentOs;
  log: AgentLog;
  timeoutMs?: number;
}

/**
 * `fleetboot-agent enroll`: check the arguments, pin the CA (ca.pem), move
 * an earlier enrolment aside and enrol with a new key.
 */
export async function enroll(opts: EnrollOptions): Promise<AgentRecord> {
  const server = normaliseServer(opts.server);
  const fp = normaliseFingerprint(opts.caSha256);
  if (opts.token !== null && !/^[A-Za-z0-9_-]{16,128}$/.test(opts.token)) throw new AgentError('USAGE', '--token must be an enrolment token (16 to 128 letters, digits, _ or -)');
  const { state, log } = opts;
  state.ensure();
  const caPem = await fetchPinnedCa(server, fp, opts.timeoutMs);
  log.info('pinned the server CA', { server, caSha256: fp });
  if (state.readAgent() !== null) {
    const moved = state.moveAside(new Date());
    log.info('moved the earlier enrolment aside', { moved });
  }
  state.writeCa(caPem);
  const client = new EndpointClient(opts.timeoutMs === undefined ? { server, caPem } : { server, caPem, timeoutMs: opts.timeoutMs });
  try {
    return await enrollWithClient(client, state, opts.os, opts.token, log);
  } finally {
    client.close();
  }
}
