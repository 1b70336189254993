/**
 * For tests that play an endpoint agent against the server's /endpoint/v1
 * (src/model/endpoint.ts) without the agent program: a machine with its own
 * Ed25519 key that signs nonces and speaks JSON, over app.inject or over
 * HTTP(S) with fetch. The real agent program is test/endpoint-agent.lab.test.ts's.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { enrollSigningBytes, sessionSigningBytes, type AgentIdentity, type WorkItem } from '../src/model/endpoint.js';

export type Json = Record<string, unknown>;
export interface Answer {
  status: number;
  body: Json;
}

/** One request of the protocol: path below /endpoint/v1, the session when there is one, the client address (inject only). */
export type Transport = (method: 'GET' | 'POST', path: string, body: unknown, session: string | null, remoteAddress?: string) => Promise<Answer>;

export function injectTransport(app: () => FastifyInstance): Transport {
  return async (method, path, body, session, remoteAddress) => {
    const r = await app().inject({
      method,
      url: `/endpoint/v1${path}`,
      ...(remoteAddress ? { remoteAddress } : {}),
      ...(session ? { headers: { authorization: `Bearer ${session}` } } : {}),
      ...(body !== undefined ? { payload: body as object } : {}),
    });
    return { status: r.statusCode, body: r.json<Json>() };
  };
}

export function fetchTransport(base: () => string): Transport {
  return async (method, path, body, session) => {
    const res = await fetch(`${base()}/endpoint/v1${path}`, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(session ? { authorization: `Bearer ${session}` } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Json) : {} };
  };
}

export const identityOf = (macs: string[], o: { uuid?: string | null; hostname?: string; serial?: string | null } = {}): AgentIdentity => ({
  macs,
  smbiosUuid: o.uuid ?? null,
  smbiosSerial: o.serial ?? null,
  hostname: o.hostname ?? 'pc-1',
  os: 'Debian GNU/Linux 12 (bookworm)',
  agentVersion: '0.1.0',
});

/** A machine with its own key, speaking the protocol as fleetboot-agent does. */
export class TestAgent {
  readonly priv: KeyObject;
  readonly pub: string;
  session = '';
  constructor(
    private readonly send: Transport,
    public identity: AgentIdentity,
  ) {
    const pair = generateKeyPairSync('ed25519');
    this.priv = pair.privateKey;
    this.pub = pair.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  }
  get id(): string {
    return createHash('sha256').update(Buffer.from(this.pub, 'base64')).digest('hex').slice(0, 32);
  }
  async nonce(): Promise<string> {
    const r = await this.send('POST', '/challenge', {}, null);
    if (r.status !== 200) throw new Error(`challenge: ${r.status} ${JSON.stringify(r.body)}`);
    return String(r.body['nonce']);
  }
  async enroll(token: string | null): Promise<Answer> {
    const nonce = await this.nonce();
    const signature = sign(null, enrollSigningBytes(nonce, this.pub), this.priv).toString('base64');
    return this.send('POST', '/enroll', { token, publicKey: this.pub, nonce, signature, identity: this.identity }, null);
  }
  async open(identity = this.identity, remoteAddress?: string): Promise<Answer> {
    const nonce = await this.nonce();
    const signature = sign(null, sessionSigningBytes(nonce, this.id), this.priv).toString('base64');
    const r = await this.send('POST', '/session', { agentId: this.id, nonce, signature, identity }, null, remoteAddress);
    if (r.status === 200) this.session = String(r.body['session']);
    return r;
  }
  async work(query = ''): Promise<Answer & { work: WorkItem[] }> {
    const r = await this.send('GET', `/work${query}`, undefined, this.session);
    return { ...r, work: (r.body['work'] as WorkItem[] | undefined) ?? [] };
  }
  async report(id: number, result: Json = {}): Promise<Answer> {
    const payload = { status: 'succeeded', exitCode: 0, signal: null, durationMs: 5, stdout: '', stderr: '', message: 'done', rebootRequested: false, inventory: null, ...result };
    return this.send('POST', `/work/${id}/result`, payload, this.session);
  }
}
