/**
 * How a node reaches another to pull image copies (issue 15, verified
 * replication): over the peer's HTTPS with its certificate pinned, or, only
 * when the administrator allows it, over plain HTTP.
 *
 * - Pinning: every node publishes the sha256 of the certificate its HTTPS
 *   serves (nodes.tls_sha256, set at register and at every heartbeat,
 *   src/nodes/service.ts). The puller makes the TLS connection itself,
 *   without a CA (each server has its own, src/tls/), and accepts it only
 *   when the leaf certificate shown has that sha256; only then is the
 *   request, with its `Authorization: Node NAME:SECRET`, written on it. A
 *   peer showing another certificate gets nothing (PeerRefused, saying
 *   which sha256 was shown and which is published).
 * - No fallback: a peer with an https_url is reached over HTTPS only (a
 *   failure there is a failure, never a retry over HTTP). A peer with HTTPS
 *   off (no https_url) is reached over its http_url only when
 *   replication.allowPlainHttp is true (default false: the node credential
 *   would cross in clear); integrity never depends on the transport (every
 *   byte is checked against the shared store's sha256s).
 * - The exchange is one HTTP/1.1 GET with `Connection: close`, written
 *   and read here on the socket (./peer.ts exchange): the answer's head is
 *   parsed (status line and headers, at most MAX_HEAD_BYTES, no chunked
 *   bodies: the node routes send Content-Length), and the body is the
 *   socket itself, read straight by the caller. node:http's per-chunk
 *   parsing and stream hops were a tenth of a 2 GiB pull's CPU; the caller
 *   checks every body's length and sha256 anyway.
 */
import { createHash } from 'node:crypto';
import { connect as tcpConnect, isIP, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { errorMessage } from '../lib/errors.js';
import type { NodeRecord } from '../store/nodes.js';

/** Where and how to reach a peer. */
export interface PeerTarget {
  name: string;
  /** Its base URL (https_url when pinned, http_url otherwise). */
  baseUrl: string;
  /** The certificate sha256 to pin (https), or null (plain http, allowed by replication.allowPlainHttp). */
  pin: string | null;
}

export interface PeerResponse {
  status: number;
  /** Header names in lower case; a header given twice has its values joined with ', '. */
  headers: Readonly<Record<string, string>>;
  /** The body (the socket: read it to its end, or destroy it). */
  body: Readable;
}

/** An answer's status line and headers are at most this long. */
const MAX_HEAD_BYTES = 64 * 1024;

/** GET `path` (absolute, under the peer's base URL) from `peer` with `headers`; the body is a stream. */
export type PeerGet = (peer: PeerTarget, path: string, headers: Readonly<Record<string, string>>, signal: AbortSignal) => Promise<PeerResponse>;

/** The peer cannot be used (no allowed transport, or its certificate is not the published one): try another. */
export class PeerRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeerRefused';
  }
}

/**
 * How to reach `node` (see the header): a target, or PeerRefused saying
 * why it cannot be used.
 */
export function peerTarget(node: Pick<NodeRecord, 'name' | 'httpUrl' | 'httpsUrl' | 'tlsSha256'>, allowPlainHttp: boolean): PeerTarget {
  if (node.httpsUrl !== null) {
    if (node.tlsSha256 === null) {
      throw new PeerRefused(`node '${node.name}' has HTTPS (${node.httpsUrl}) but publishes no certificate sha256 to pin (an older Fleetboot?): not pulled from (no fallback to plain HTTP)`);
    }
    return { name: node.name, baseUrl: node.httpsUrl, pin: node.tlsSha256 };
  }
  if (node.httpUrl === null) throw new PeerRefused(`node '${node.name}' publishes no URL`);
  if (!allowPlainHttp) {
    throw new PeerRefused(`node '${node.name}' has HTTPS off: its copies are pulled over plain HTTP (${node.httpUrl}) only with replication.allowPlainHttp: true (the node credential would cross in clear)`);
  }
  return { name: node.name, baseUrl: node.httpUrl, pin: null };
}

/**
 * Wait for `sock` to be connected (`ready`: 'connect', or 'secureConnect'
 * for TLS), then `accept` it (it throws PeerRefused to refuse). The socket
 * is destroyed when it fails, is refused, or `signal` aborts first.
 */
function connected<S extends Socket>(sock: S, ready: 'connect' | 'secureConnect', what: string, signal: AbortSignal, accept: (sock: S) => void): Promise<S> {
  return new Promise<S>((resolve, reject) => {
    const onAbort = (): void => fail(new Error('aborted'));
    function fail(err: Error): void {
      signal.removeEventListener('abort', onAbort);
      sock.destroy();
      reject(err);
    }
    if (signal.aborted) return fail(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    const onError = (err: Error): void => fail(new Error(`${what} failed: ${err.message}`));
    sock.once('error', onError);
    sock.once(ready, () => {
      sock.off('error', onError);
      try {
        accept(sock);
      } catch (err) {
        return fail(err instanceof Error ? err : new Error(String(err)));
      }
      signal.removeEventListener('abort', onAbort);
      resolve(sock);
    });
  });
}

/** A TLS connection to host:port, accepted only when the leaf certificate's sha256 is `pin`. */
function pinnedConnect(peer: string, host: string, port: number, pin: string, signal: AbortSignal): Promise<TLSSocket> {
  // No CA: the pin is the check (rejectUnauthorized would need the peer's own CA).
  const sock = tlsConnect({ host, port, ...(isIP(host) === 0 ? { servername: host } : {}), rejectUnauthorized: false, minVersion: 'TLSv1.2' });
  return connected(sock, 'secureConnect', `TLS connection to node '${peer}' (${host}:${port})`, signal, (s) => {
    const cert = s.getPeerX509Certificate();
    const shown = cert ? createHash('sha256').update(cert.raw).digest('hex') : null;
    if (shown !== pin) {
      throw new PeerRefused(
        `node '${peer}' at ${host}:${port} presented a certificate with sha256 ${shown ?? '(none)'}, but the shared store publishes ${pin} for it: refused, nothing was sent (another server at that address, or its certificate changed and it has not published the new one yet)`,
      );
    }
  });
}

/** A plain TCP connection to host:port (replication.allowPlainHttp). */
function plainConnect(peer: string, host: string, port: number, signal: AbortSignal): Promise<Socket> {
  return connected(tcpConnect({ host, port }), 'connect', `connection to node '${peer}' (${host}:${port})`, signal, () => undefined);
}

/** The request's head: GET `target` with `headers` (names of letters, digits and '-', values on one line). */
export function requestHead(target: string, host: string, headers: Readonly<Record<string, string>>): string {
  const lines = [`GET ${target} HTTP/1.1`, `host: ${host}`];
  for (const [k, v] of Object.entries(headers)) {
    if (!/^[A-Za-z0-9-]+$/.test(k) || /[\r\n]/.test(v)) throw new Error(`header ${JSON.stringify(k)} cannot be sent: a name of letters, digits and '-' and a value on one line are expected, got ${JSON.stringify(`${k}: ${v}`).slice(0, 200)}`);
    if (k.toLowerCase() !== 'host' && k.toLowerCase() !== 'connection') lines.push(`${k}: ${v}`);
  }
  lines.push('connection: close', '', '');
  return lines.join('\r\n');
}

/** An answer's status line and headers (the text before the blank line); throws saying what is wrong. */
export function parseHead(text: string): { status: number; headers: Record<string, string> } {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) throw new Error(`an HTTP/1.x status line was expected, got ${JSON.stringify((lines[0] ?? '').slice(0, 100))}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0 || /^[ \t]/.test(line)) throw new Error(`a header line 'name: value' was expected, got ${JSON.stringify(line.slice(0, 100))}`);
    const name = line.slice(0, colon).toLowerCase();
    if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) throw new Error(`a header name was expected, got ${JSON.stringify(name.slice(0, 100))}`);
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const te = headers['transfer-encoding'];
  if (te !== undefined) throw new Error(`a body with Content-Length was expected, got transfer-encoding: ${te.slice(0, 100)}`);
  return { status: Number(m[1]), headers };
}

/**
 * Write `head` on `sock` and read the answer's head: its status and
 * headers, and the socket as the body (the bytes read past the head are
 * put back). Rejects, with the socket destroyed, when the connection fails
 * or closes first, the head is too long or malformed, or `signal` aborts.
 */
function exchange(sock: Socket, head: string, signal: AbortSignal, what: string): Promise<PeerResponse> {
  return new Promise<PeerResponse>((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const cleanup = (): void => {
      sock.off('data', onData);
      sock.off('error', onError);
      sock.off('end', onEnd);
      signal.removeEventListener('abort', onAbort);
    };
    const fail = (err: Error): void => {
      cleanup();
      sock.destroy();
      reject(err);
    };
    const onAbort = (): void => fail(new Error('aborted'));
    const onError = (err: Error): void => fail(new Error(`${what}: ${err.message}`));
    const onEnd = (): void => fail(new Error(`${what}: the connection closed before the answer's header ended (${buf.length} bytes came)`));
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > MAX_HEAD_BYTES) fail(new Error(`${what}: the answer's header is longer than ${MAX_HEAD_BYTES} bytes`));
        return;
      }
      if (end > MAX_HEAD_BYTES) return fail(new Error(`${what}: the answer's header is longer than ${MAX_HEAD_BYTES} bytes`));
      let parsed: ReturnType<typeof parseHead>;
      try {
        parsed = parseHead(buf.subarray(0, end).toString('latin1'));
      } catch (err) {
        return fail(new Error(`${what}: ${errorMessage(err)}`));
      }
      cleanup();
      sock.pause();
      const rest = buf.subarray(end + 4);
      if (rest.length > 0) sock.unshift(rest);
      // From here the caller reads (or destroys) the body; an abort still ends it.
      const onAbortBody = (): void => void sock.destroy(new Error('aborted'));
      signal.addEventListener('abort', onAbortBody, { once: true });
      sock.once('close', () => signal.removeEventListener('abort', onAbortBody));
      resolve({ status: parsed.status, headers: parsed.headers, body: sock });
    };
    if (signal.aborted) return fail(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    sock.on('data', onData);
    sock.once('error', onError);
    sock.once('end', onEnd);
    sock.write(head);
  });
}

/** The default PeerGet: over TLS with the pin checked before the request is written, or over plain TCP (see the header). */
export const peerGet: PeerGet = async (peer, path, headers, signal) => {
  const base = new URL(peer.baseUrl);
  const url = new URL(base.pathname.replace(/\/+$/, '') + path, base);
  const https = url.protocol === 'https:';
  if (https !== (peer.pin !== null)) throw new PeerRefused(`node '${peer.name}': ${url.protocol} URL ${peer.baseUrl} ${https ? 'without a certificate to pin' : 'with a pin'}`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port !== '' ? Number(url.port) : https ? 443 : 80;
  const head = requestHead(url.pathname + url.search, url.host, headers);
  const sock = peer.pin !== null ? await pinnedConnect(peer.name, host, port, peer.pin, signal) : await plainConnect(peer.name, host, port, signal);
  return exchange(sock, head, signal, `GET ${url.href} from node '${peer.name}'`);
};

/** Read a whole (small) body. */
export async function readBody(body: Readable, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    n += b.length;
    if (n > max) {
      body.destroy();
      throw new Error(`answer longer than ${max} bytes`);
    }
    parts.push(b);
  }
  return Buffer.concat(parts);
}
