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
 * - Transfers are plain node:http(s) streams (no fetch / web streams in
 *   between), so a 2 GiB stream costs what the socket and the disk cost.
 */
import { createHash } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
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
  headers: IncomingHttpHeaders;
  body: Readable;
}

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

/** A TLS connection to host:port, accepted only when the leaf certificate's sha256 is `pin`. */
function pinnedConnect(peer: string, host: string, port: number, pin: string, signal: AbortSignal): Promise<TLSSocket> {
  return new Promise<TLSSocket>((resolve, reject) => {
    // No CA: the pin is the check (rejectUnauthorized would need the peer's own CA).
    const sock = tlsConnect({ host, port, ...(isIP(host) === 0 ? { servername: host } : {}), rejectUnauthorized: false, minVersion: 'TLSv1.2' });
    const onAbort = (): void => fail(new Error('aborted'));
    function fail(err: Error): void {
      signal.removeEventListener('abort', onAbort);
      sock.destroy();
      reject(err);
    }
    if (signal.aborted) return fail(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    const onError = (err: Error): void => fail(new Error(`TLS connection to node '${peer}' (${host}:${port}) failed: ${err.message}`));
    sock.once('error', onError);
    sock.once('secureConnect', () => {
      signal.removeEventListener('abort', onAbort);
      const cert = sock.getPeerX509Certificate();
      const shown = cert ? createHash('sha256').update(cert.raw).digest('hex') : null;
      if (shown !== pin) {
        sock.destroy();
        reject(
          new PeerRefused(
            `node '${peer}' at ${host}:${port} presented a certificate with sha256 ${shown ?? '(none)'}, but the shared store publishes ${pin} for it: refused, nothing was sent (another server at that address, or its certificate changed and it has not published the new one yet)`,
          ),
        );
        return;
      }
      sock.off('error', onError);
      // Until node:http takes the socket over, an error is reported through the request, not thrown.
      sock.on('error', () => undefined);
      resolve(sock);
    });
  });
}

/** The default PeerGet: node:https with the pin checked before the request is written, or node:http. */
export const peerGet: PeerGet = async (peer, path, headers, signal) => {
  const base = new URL(peer.baseUrl);
  const url = new URL(base.pathname.replace(/\/+$/, '') + path, base);
  const https = url.protocol === 'https:';
  if (https !== (peer.pin !== null)) throw new PeerRefused(`node '${peer.name}': ${url.protocol} URL ${peer.baseUrl} ${https ? 'without a certificate to pin' : 'with a pin'}`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port !== '' ? Number(url.port) : https ? 443 : 80;
  const sock = peer.pin !== null ? await pinnedConnect(peer.name, host, port, peer.pin, signal) : null;
  return new Promise<PeerResponse>((resolve, reject) => {
    const req = httpRequest(
      {
        host,
        port,
        method: 'GET',
        path: url.pathname + url.search,
        headers: { ...headers, host: url.host, connection: 'close' },
        signal,
        ...(sock ? { createConnection: () => sock } : { agent: false }),
      },
      (res: IncomingMessage) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }),
    );
    req.once('error', (err) => {
      sock?.destroy();
      reject(new Error(`GET ${url.href} from node '${peer.name}': ${err.message}`));
    });
    req.end();
  });
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
