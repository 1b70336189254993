/**
 * HTTPS to the Fleetboot server, trusting only the pinned CA.
 *
 * Pinning (enrolment): GET {server}/endpoint/v1/ca is the one request made
 * without certificate checks; what it returns is trusted only when the
 * SHA-256 of the certificate's DER equals the fingerprint the admin gave
 * (`--ca-sha256`, read off the server: `fleetboot` prints it). Every other
 * request uses node's https with `ca: [that PEM]`, which replaces the
 * system's trust store, and node's usual host-name check: a certificate of
 * any other CA is refused, and the server's own certificate may be renewed
 * at any time under the same CA (nothing is pinned on the leaf).
 */
import { X509Certificate } from 'node:crypto';
import { Agent, request, type RequestOptions } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { ENDPOINT_PREFIX, sha256Hex } from '../model/endpoint.js';
import { parseErrorBody } from './answers.js';
import { parseRetryAfter } from './backoff.js';
import { AgentError } from './errors.js';

const MAX_JSON_BYTES = 8 * 1024 * 1024;
const MAX_CA_BYTES = 64 * 1024;
export const REQUEST_TIMEOUT_MS = 30_000;

/** A fingerprint as 64 lower-case hex digits: colons, spaces and case are ignored. */
export function normaliseFingerprint(input: string): string {
  const hex = input.replace(/[:\s]/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new AgentError('USAGE', `--ca-sha256 must be a SHA-256 fingerprint (64 hex digits, colons allowed): current value is ${JSON.stringify(input.slice(0, 120))}`);
  return hex;
}

/** aa:bb:... form, for messages people compare with what the server prints. */
export function colonHex(hex: string): string {
  return hex.toUpperCase().replace(/(..)(?!$)/g, '$1:');
}

/** The server's base URL, checked: https, no credentials, query or fragment; no trailing slash. */
export function normaliseServer(input: string): string {
  let u: URL;
  try {
    u = new URL(input);
  } catch {
    throw new AgentError('USAGE', `--server must be a URL such as https://fleetboot.example:8443: current value is ${JSON.stringify(input)}`);
  }
  if (u.protocol !== 'https:') throw new AgentError('USAGE', `--server must be an https:// URL (the agent speaks only HTTPS to a pinned CA): current value is ${JSON.stringify(input)}`);
  if (u.username || u.password || u.search || u.hash) throw new AgentError('USAGE', `--server must have no user, query or fragment: current value is ${JSON.stringify(input)}`);
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

/** The certificate of a PEM (the first one) and the SHA-256 of its DER. */
export function caCertificate(pem: string): { pem: string; sha256: string; subject: string; isCa: boolean } {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    throw new AgentError('SERVER', `the server's CA certificate cannot be read: ${(err as Error).message}`);
  }
  return { pem: cert.toString(), sha256: sha256Hex(cert.raw), subject: cert.subject.replace(/\n/g, ', '), isCa: cert.ca };
}

/** Why a request failed: `status` null for network errors and timeouts. */
export class RequestError extends Error {
  override name = 'RequestError';
  readonly status: number | null;
  /** The `error` code of the server's JSON answer (SESSION_EXPIRED, REVOKED, ...). */
  readonly code: string | null;
  readonly retryAfterMs: number | null;
  constructor(message: string, status: number | null, code: string | null = null, retryAfterMs: number | null = null, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }

  /** Network errors, 5xx and 429: worth another try later. */
  get retryable(): boolean {
    return this.status === null || this.status >= 500 || this.status === 429;
  }
}

function readBody(res: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    res.on('data', (c: Buffer) => {
      n += c.length;
      if (n > max) {
        res.destroy(new Error(`answer larger than ${max} bytes`));
        return;
      }
      parts.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(parts)));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('answer cut short')));
  });
}

/**
 * Fetch the server's CA certificate without checking the server (the only
 * such request) and keep it only if its SHA-256 is `expectedSha256`.
 * Returns the certificate's PEM.
 */
export async function fetchPinnedCa(server: string, expectedSha256: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<string> {
  const url = new URL(`${server}${ENDPOINT_PREFIX}/ca`);
  const body = await new Promise<Buffer>((resolve, reject) => {
    const req = request(url, { method: 'GET', rejectUnauthorized: false, agent: false, timeout: timeoutMs, headers: { accept: 'application/x-pem-file, text/plain' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new AgentError('SERVER', `GET ${url.href} answered ${res.statusCode ?? '?'}: is this a Fleetboot server?`));
        return;
      }
      readBody(res, MAX_CA_BYTES).then(resolve, reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => reject(err instanceof AgentError ? err : new AgentError('NETWORK', `cannot fetch the CA from ${url.href}: ${err.message}`)));
    req.end();
  });
  const ca = caCertificate(body.toString('utf8'));
  if (ca.sha256 !== expectedSha256) {
    throw new AgentError(
      'CA_MISMATCH',
      `the server's CA certificate has SHA-256 ${colonHex(ca.sha256)}, not the pinned ${colonHex(expectedSha256)} (--ca-sha256): refusing to trust it (check the fingerprint the server prints, or whether something is between this machine and ${server})`,
    );
  }
  if (!ca.isCa) throw new AgentError('SERVER', `the certificate at ${url.href} (${ca.subject}) is not a CA certificate`);
  return ca.pem;
}

export interface ClientOptions {
  server: string;
  caPem: string;
  timeoutMs?: number;
}

export interface CallOptions {
  body?: unknown;
  bearer?: string | null;
  timeoutMs?: number;
}

/** JSON requests to /endpoint/v1 over HTTPS trusting only the pinned CA. */
export class EndpointClient {
  readonly server: string;
  private readonly agent: Agent;
  private readonly timeoutMs: number;

  constructor(opts: ClientOptions) {
    this.server = opts.server;
    this.timeoutMs = opts.timeoutMs ?? REQUEST_TIMEOUT_MS;
    // `ca` replaces node's bundled roots and the system's: only the pinned CA is trusted.
    this.agent = new Agent({ ca: [opts.caPem], keepAlive: true, maxSockets: 4 });
  }

  url(path: string): URL {
    return new URL(`${this.server}${ENDPOINT_PREFIX}${path}`);
  }

  private open(method: string, path: string, opts: CallOptions, onResponse: (res: IncomingMessage) => void, reject: (err: unknown) => void): void {
    const url = this.url(path);
    const headers: Record<string, string> = { accept: 'application/json' };
    let payload: Buffer | null = null;
    if (opts.body !== undefined) {
      payload = Buffer.from(JSON.stringify(opts.body));
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    if (opts.bearer) headers['authorization'] = `Bearer ${opts.bearer}`;
    const timeout = opts.timeoutMs ?? this.timeoutMs;
    const ro: RequestOptions = { method, agent: this.agent, headers, timeout };
    const req = request(url, ro, onResponse);
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeout} ms`)));
    req.on('error', (err) => reject(new RequestError(`${method} ${url.pathname}: ${err.message}`, null, null, null, { cause: err })));
    req.end(payload ?? undefined);
  }

  private async failure(method: string, path: string, res: IncomingMessage): Promise<RequestError> {
    const status = res.statusCode ?? 0;
    const text = (await readBody(res, 64 * 1024).catch(() => Buffer.alloc(0))).toString('utf8');
    let parsed: { error: string; message: string } | null = null;
    try {
      parsed = parseErrorBody(JSON.parse(text) as unknown);
    } catch {
      parsed = null;
    }
    const retryAfter = parseRetryAfter(typeof res.headers['retry-after'] === 'string' ? res.headers['retry-after'] : undefined, Date.now());
    const detail = parsed ? `${parsed.error}${parsed.message ? `: ${parsed.message}` : ''}` : text.slice(0, 200).replace(/\s+/g, ' ');
    return new RequestError(`${method} ${ENDPOINT_PREFIX}${path} answered ${status}${detail ? ` (${detail})` : ''}`, status, parsed?.error ?? null, retryAfter);
  }

  /** A JSON request; resolves with the parsed answer of a 2xx, rejects with RequestError otherwise. */
  json(method: 'GET' | 'POST', path: string, opts: CallOptions = {}): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.open(method, path, opts, (res) => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          this.failure(method, path, res).then(reject, reject);
          return;
        }
        readBody(res, MAX_JSON_BYTES).then(
          (b) => {
            try {
              resolve(b.length === 0 ? null : (JSON.parse(b.toString('utf8')) as unknown));
            } catch (err) {
              reject(new RequestError(`${method} ${ENDPOINT_PREFIX}${path}: the answer is not JSON (${(err as Error).message})`, status));
            }
          },
          (err: unknown) => reject(new RequestError(`${method} ${ENDPOINT_PREFIX}${path}: ${(err as Error).message}`, null)),
        );
      }, reject);
    });
  }

  /**
   * GET a file, handing each chunk to `onChunk`; rejects (and stops reading)
   * when `onChunk` throws, e.g. on more bytes than expected.
   */
  download(path: string, bearer: string, onChunk: (chunk: Buffer) => void, timeoutMs = 10 * 60_000): Promise<void> {
    return new Promise((resolve, reject) => {
      this.open('GET', path, { bearer, timeoutMs }, (res) => {
        const status = res.statusCode ?? 0;
        if (status !== 200) {
          this.failure('GET', path, res).then(reject, reject);
          return;
        }
        res.on('data', (c: Buffer) => {
          try {
            onChunk(c);
          } catch (err) {
            res.destroy();
            reject(err);
          }
        });
        res.on('end', () => resolve());
        res.on('error', (err) => reject(new RequestError(`GET ${ENDPOINT_PREFIX}${path}: ${err.message}`, null)));
        res.on('aborted', () => reject(new RequestError(`GET ${ENDPOINT_PREFIX}${path}: the answer was cut short`, null)));
      }, reject);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
