/**
 * The HTTPS listener: the same Fastify app that serves plain HTTP, behind a
 * node:https server of its own. Fastify owns one server per instance, so
 * this one hands each request to the app's router (`app.routing`): hooks,
 * authentication, schemas, error handlers and the event stream all run as
 * on HTTP, and `req.protocol` is 'https' (the socket is encrypted), which
 * makes session cookies `Secure` (src/http/auth.ts).
 *
 * - Timeouts as Fastify sets them on its own server (keep-alive 72 s, no
 *   request timeout, so long uploads are not cut).
 * - TLS 1.2 and 1.3 only.
 * - `setCertificate` swaps the certificate for new connections
 *   (setSecureContext): open connections keep the one they began with.
 * - `close()` runs beside `app.close()`: no new connections; idle ones end
 *   at once; each open request's connection ends when its response does
 *   (event streams end in app.close()'s preClose); what is still open after
 *   `graceMs` is cut, so closing never hangs on a slow client.
 */
import { createServer, type ServerOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';

export interface HttpsListenerOptions {
  host: string;
  /** 0: a free port the kernel picks (see `port` after listening). */
  port: number;
  /** PEM key and certificate (chain). */
  key: string;
  cert: string;
  log: Logger;
  /** How long close() waits for open requests before it cuts them (default 10 s). */
  graceMs?: number;
}

export interface HttpsListener {
  /** The port bound. */
  readonly port: number;
  /** Serve this key and certificate to new connections. */
  setCertificate(m: { key: string; cert: string }): void;
  /** See the header; idempotent. */
  close(): Promise<void>;
}

function contextOptions(m: { key: string; cert: string }): ServerOptions {
  return { key: m.key, cert: m.cert, minVersion: 'TLSv1.2' };
}

/** Listen for HTTPS with `app` (which must be ready: after its own listen()). */
export async function listenHttps(app: FastifyInstance, o: HttpsListenerOptions): Promise<HttpsListener> {
  const log = o.log.child({ subsystem: 'https' });
  let closing: Promise<void> | null = null;
  const server = createServer(contextOptions(o), (req, res) => {
    // Once closing, a connection ends with its response instead of waiting for another request:
    // end(), not destroy(), so what TLS still holds of the response is sent first.
    res.on('finish', () => {
      if (closing !== null) req.socket.end();
    });
    app.routing(req, res);
  });
  server.keepAliveTimeout = app.initialConfig.keepAliveTimeout ?? 72_000;
  server.requestTimeout = 0; // Fastify's default on its own server (not in initialConfig's type): uploads take as long as they take
  server.setTimeout(app.initialConfig.connectionTimeout ?? 0);
  server.on('tlsClientError', (err, socket) => {
    // A client that does not trust the certificate gives up here (curl without --cacert, a browser before the CA is imported).
    log.debug({ ip: socket.remoteAddress, err: errorMessage(err) }, 'TLS handshake failed');
    socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: o.host, port: o.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    setCertificate(m) {
      server.setSecureContext(contextOptions(m));
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        const cut = setTimeout(() => {
          log.warn({ port }, `HTTPS connections still open ${o.graceMs ?? 10_000} ms after closing began: cut`);
          server.closeAllConnections();
        }, o.graceMs ?? 10_000);
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
