/**
 * For tests only: certificates made with the openssl CLI, and a small
 * Fleetboot server speaking the few /endpoint/v1 routes the agent uses
 * (the real one is src/http/routes/endpoint.ts). Under testdata/, so it is
 * neither a layer's code nor in the agent bundle.
 */
import { execFileSync } from 'node:child_process';
import { program } from '../../lib/programs.js';
import { generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  agentIdOf,
  ed25519PublicKey,
  enrollSigningBytes,
  packageSigningBytes,
  parseEnrollRequest,
  parseSessionRequest,
  parseWorkResult,
  sessionSigningBytes,
  sha256Hex,
  verifySignature,
  type AgentIdentity,
  type PackageManifest,
  type SignedPackage,
  type WorkItem,
  type WorkResult,
} from '../../model/endpoint.js';

export interface Pki {
  dir: string;
  caPem: string;
  caSha256: string;
  /** A leaf for 127.0.0.1 signed by the CA. */
  leafKey: string;
  leafCert: string;
  /** A second CA and a leaf for 127.0.0.1 signed by it. */
  otherCaPem: string;
  otherCaSha256: string;
  otherLeafKey: string;
  otherLeafCert: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync(program('openssl'), args, { cwd: dir, stdio: 'pipe' });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
}

function makeLeaf(dir: string, ca: string, name: string): void {
  writeFileSync(join(dir, `${name}.ext`), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=127.0.0.1']);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`]);
}

export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'fa-pki-'));
  makeCa(dir, 'ca');
  makeLeaf(dir, 'ca', 'leaf');
  makeCa(dir, 'other-ca');
  makeLeaf(dir, 'other-ca', 'other-leaf');
  const r = (f: string): string => readFileSync(join(dir, f), 'utf8');
  return {
    dir,
    caPem: r('ca.pem'),
    caSha256: sha256Hex(new X509Certificate(r('ca.pem')).raw),
    leafKey: r('leaf.key'),
    leafCert: r('leaf.pem'),
    otherCaPem: r('other-ca.pem'),
    otherCaSha256: sha256Hex(new X509Certificate(r('other-ca.pem')).raw),
    otherLeafKey: r('other-leaf.key'),
    otherLeafCert: r('other-leaf.pem'),
  };
}

interface FakeAgent {
  publicKey: KeyObject;
  state: 'active' | 'pending' | 'revoked';
  identity: AgentIdentity;
  token: string | null;
}

export interface RequestLog {
  method: string;
  path: string;
  query: URLSearchParams;
}

/** A test double of the server's /endpoint/v1. Set `answer` to force an error on a route. */
export class FakeServer {
  readonly server: Server;
  readonly agents = new Map<string, FakeAgent>();
  readonly sessions = new Map<string, { agentId: string; expires: number }>();
  readonly nonces = new Set<string>();
  readonly work = new Map<string, WorkItem[]>();
  /** Work handed to the first active agent that polls (its id is not known before it enrols). */
  anyWork: WorkItem[] = [];
  readonly results = new Map<number, WorkResult>();
  readonly files = new Map<string, Buffer>();
  readonly requests: RequestLog[] = [];
  readonly packageKeys = generateKeyPairSync('ed25519');
  /** Forced answers: path prefix (e.g. 'GET /work') -> status and error code, used once each. */
  readonly force: Array<{ route: string; status: number; error: string; retryAfter?: string }> = [];
  /** The CA served at GET /ca (the pinned one, or another to test a mismatch). */
  caPem: string;
  tokens = new Set<string>(['good-token-0123456789']);
  sessionSeconds = 300;
  longPollSeconds = 0;

  constructor(key: string, cert: string, caPem: string) {
    this.caPem = caPem;
    this.server = createServer({ key, cert }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => this.send(res, 500, { error: 'INTERNAL', message: String(err) }));
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  get packageKey(): string {
    return this.packageKeys.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  }

  /** A signed package of these files (name -> content) and argv; the files are served. */
  package(files: Record<string, string>, argv: string[], over: Partial<PackageManifest> = {}): SignedPackage {
    const list = Object.entries(files).map(([name, text]) => {
      const b = Buffer.from(text);
      this.files.set(sha256Hex(b), b);
      return { name, sha256: sha256Hex(b), size: b.length, executable: true };
    });
    const manifest: PackageManifest = { format: 'fleetboot-package', version: 1, name: 'pkg', revision: 1, files: list, argv, timeoutSeconds: 30, rebootCodes: [194], successCodes: [0], createdAt: '2026-12-01T10:00:00Z', ...over };
    return { manifest, signature: sign(null, packageSigningBytes(manifest), this.packageKeys.privateKey).toString('base64') };
  }

  queue(agentId: string, ...items: WorkItem[]): void {
    this.work.set(agentId, [...(this.work.get(agentId) ?? []), ...items]);
  }

  private send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const b = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json', 'content-length': b.length, ...headers });
    res.end(b);
  }

  private async body(req: IncomingMessage): Promise<unknown> {
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    return parts.length ? (JSON.parse(Buffer.concat(parts).toString('utf8')) as unknown) : null;
  }

  private useNonce(nonce: string): boolean {
    return this.nonces.delete(nonce);
  }

  private sessionOf(req: IncomingMessage): { agentId: string } | { status: number; error: string } {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const s = m?.[1] ? this.sessions.get(m[1]) : undefined;
    if (!s) return { status: 401, error: 'SESSION_EXPIRED' };
    if (s.expires < Date.now()) return { status: 401, error: 'SESSION_EXPIRED' };
    const a = this.agents.get(s.agentId);
    if (!a) return { status: 401, error: 'UNKNOWN_AGENT' };
    if (a.state === 'revoked') return { status: 401, error: 'REVOKED' };
    return { agentId: s.agentId };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://x');
    const path = url.pathname.replace(/^\/endpoint\/v1/, '');
    const method = req.method ?? 'GET';
    this.requests.push({ method, path, query: url.searchParams });
    const forced = this.force.findIndex((f) => `${method} ${path}`.startsWith(f.route));
    if (forced >= 0) {
      const f = this.force.splice(forced, 1)[0] as (typeof this.force)[number];
      await this.body(req).catch(() => null);
      this.send(res, f.status, { error: f.error, message: 'forced by the test' }, f.retryAfter ? { 'retry-after': f.retryAfter } : {});
      return;
    }
    if (method === 'GET' && path === '/ca') return this.send(res, 200, this.caPem);
    if (method === 'POST' && path === '/challenge') {
      await this.body(req);
      const nonce = randomBytes(24).toString('base64url');
      this.nonces.add(nonce);
      return this.send(res, 200, { nonce, expiresInSeconds: 60 });
    }
    if (method === 'POST' && path === '/enroll') {
      const r = parseEnrollRequest(await this.body(req));
      const key = ed25519PublicKey(r.publicKey);
      if (!this.useNonce(r.nonce) || !verifySignature(key, enrollSigningBytes(r.nonce, r.publicKey), r.signature)) return this.send(res, 401, { error: 'BAD_SIGNATURE', message: 'no' });
      if (r.token !== null && !this.tokens.has(r.token)) return this.send(res, 403, { error: 'BAD_TOKEN', message: 'unknown token' });
      const agentId = agentIdOf(r.publicKey);
      const state = r.token === null ? 'pending' : 'active';
      this.agents.set(agentId, { publicKey: key, state, identity: r.identity, token: r.token });
      return this.send(res, 200, { agentId, state, host: r.token ? { mac: r.identity.macs[0] ?? '52:54:00:00:00:01', name: 'pc-1' } : null, packageKey: this.packageKey, pollSeconds: 60 });
    }
    if (method === 'POST' && path === '/session') {
      const r = parseSessionRequest(await this.body(req));
      const a = this.agents.get(r.agentId);
      if (!a) return this.send(res, 401, { error: 'UNKNOWN_AGENT', message: 'who?' });
      if (!this.useNonce(r.nonce) || !verifySignature(a.publicKey, sessionSigningBytes(r.nonce, r.agentId), r.signature)) return this.send(res, 401, { error: 'BAD_SIGNATURE', message: 'no' });
      if (a.state === 'revoked') return this.send(res, 401, { error: 'REVOKED', message: 'revoked by an admin' });
      const session = randomBytes(24).toString('base64url');
      this.sessions.set(session, { agentId: r.agentId, expires: Date.now() + this.sessionSeconds * 1000 });
      return this.send(res, 200, { session, expiresInSeconds: this.sessionSeconds, state: a.state, host: null, pollSeconds: 60, longPollSeconds: this.longPollSeconds, packageKey: this.packageKey });
    }
    const s = this.sessionOf(req);
    if ('status' in s) {
      await this.body(req).catch(() => null);
      return this.send(res, s.status, { error: s.error, message: 'no session' });
    }
    const a = this.agents.get(s.agentId) as FakeAgent;
    if (method === 'GET' && path === '/work') {
      let items: WorkItem[] = [];
      if (a.state === 'active') {
        items = [...(this.work.get(s.agentId) ?? []), ...this.anyWork];
        this.work.set(s.agentId, []);
        this.anyWork = [];
      }
      return this.send(res, 200, { state: a.state, pollSeconds: 60, work: items });
    }
    const rm = /^\/work\/(\d+)\/result$/.exec(path);
    if (method === 'POST' && rm) {
      this.results.set(Number(rm[1]), parseWorkResult(await this.body(req)));
      return this.send(res, 200, { ok: true });
    }
    const fm = /^\/files\/([0-9a-f]{64})$/.exec(path);
    if (method === 'GET' && fm) {
      const f = this.files.get(fm[1] as string);
      if (!f) return this.send(res, 404, { error: 'NOT_FOUND', message: 'no such file' });
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': f.length });
      res.end(f);
      return;
    }
    this.send(res, 404, { error: 'NOT_FOUND', message: `${method} ${path}` });
  }
}
