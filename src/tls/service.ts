/**
 * The TLS service: the certificate HTTPS serves, kept current while the
 * server runs.
 *
 * - start(): Fleetboot's own CA and server certificate (./ca.ts: made or
 *   issued again as needed), or the admin's files (checked, never written).
 * - check(), once a day: a server certificate of our own that expires
 *   within 30 days, or lacks a name now wanted (a new interface address),
 *   is issued again under the same CA; the admin's certificate is only
 *   warned about (it is renewed where it comes from).
 * - renew(): a new server certificate under the same CA at once (POST
 *   /api/v1/tls/renew, `fleetboot ca renew`); with the admin's files, they
 *   are read again (after the admin replaced them).
 * Each new certificate goes to `onChange`, which swaps it into the running
 * HTTPS server (setSecureContext): new connections get it, open ones keep
 * theirs. Clients that pin the CA, as endpoint agents do, never notice.
 * Renewals run one at a time.
 */
import { X509Certificate } from 'node:crypto';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Service } from '../lib/service.js';
import { issueServerCertificate, loadConfiguredTls, prepareOwnTls, RENEW_BEFORE_DAYS, type ConfiguredFiles, type OwnTlsOptions, type TlsMaterial } from './ca.js';
import { certificateNames, fingerprint, nameLine } from './x509.js';

export const CHECK_INTERVAL_MS = 24 * 60 * 60 * 1000;

export interface TlsServiceOptions {
  dataDir: string;
  /** The admin's certificate (https.certFile, keyFile, caFile), or null: Fleetboot's own CA. */
  configured: ConfiguredFiles | null;
  /** The names a certificate of our own must have, read at start and at each check (./names.ts). */
  names: () => readonly string[];
  /** For the CA's name. */
  hostname: string;
  log: Logger;
  /** Default: the system clock. */
  now?: () => Date;
  /** Between checks; default a day. */
  checkIntervalMs?: number;
  /** A new certificate to serve (not called for the first one: start() returns). */
  onChange?: (m: TlsMaterial) => void;
}

/** What GET /api/v1/tls and `fleetboot ca show` tell. */
export interface TlsInfo {
  /** The CA clients pin, or null: an admin's certificate without https.caFile. */
  ca: { pem: string; sha256: string; notAfter: string; subject: string } | null;
  server: { sha256: string; notAfter: string; names: string[]; issuedBy: string; configured: boolean };
}

export interface TlsService extends Service {
  /** What HTTPS serves now; start() first. */
  material(): TlsMaterial;
  info(): TlsInfo;
  /** The daily check (see the header); tests call it. */
  check(): Promise<void>;
  /** A new server certificate now (see the header); `why` goes into the log. */
  renew(why: string): Promise<TlsInfo>;
}

function tlsInfo(m: TlsMaterial): TlsInfo {
  const leaf = new X509Certificate(m.cert);
  let ca: TlsInfo['ca'] = null;
  if (m.ca !== null) {
    const c = new X509Certificate(m.ca);
    ca = { pem: m.ca, sha256: fingerprint(c), notAfter: new Date(c.validTo).toISOString(), subject: nameLine(c.subject) };
  }
  return {
    ca,
    server: { sha256: fingerprint(leaf), notAfter: new Date(leaf.validTo).toISOString(), names: certificateNames(leaf), issuedBy: nameLine(leaf.issuer), configured: m.configured },
  };
}

export function createTlsService(o: TlsServiceOptions): TlsService {
  const log = o.log.child({ subsystem: 'tls' });
  const now = o.now ?? (() => new Date());
  let current: TlsMaterial | null = null;
  let timer: NodeJS.Timeout | null = null;
  /** The renewal or check running (they run one at a time). */
  let queue: Promise<unknown> = Promise.resolve();

  const own = (): OwnTlsOptions => ({ dataDir: o.dataDir, names: o.names(), hostname: o.hostname, now: now(), log });
  const material = (): TlsMaterial => {
    if (current === null) throw new Error('The TLS service has not started');
    return current;
  };
  const serve = (m: TlsMaterial): void => {
    current = m;
    o.onChange?.(m);
  };
  /** Run `step` after the one before it. */
  const serial = <T>(step: () => Promise<T>): Promise<T> => {
    const run = queue.then(step, step);
    queue = run.catch(() => undefined);
    return run;
  };

  const warnIfExpiring = (m: TlsMaterial): void => {
    const leaf = new X509Certificate(m.cert);
    const end = new Date(leaf.validTo);
    if (end.getTime() - now().getTime() < RENEW_BEFORE_DAYS * 24 * 60 * 60 * 1000) {
      const when = end <= now() ? `expired on ${end.toISOString()}` : `expires on ${end.toISOString()}, within ${RENEW_BEFORE_DAYS} days`;
      log.warn({ file: m.files.cert, notAfter: end.toISOString() }, `the certificate in ${m.files.cert} (https.certFile) ${when}: renew it where it comes from, then \`fleetboot ca renew\` reads it again`);
    }
  };

  const check = (): Promise<void> =>
    serial(async () => {
      if (o.configured !== null) {
        warnIfExpiring(material());
        return;
      }
      const r = await prepareOwnTls(own(), false);
      if (r.issued !== null) serve(r.material);
    });

  return {
    name: 'tls',
    async start() {
      if (o.configured !== null) {
        current = await loadConfiguredTls(o.configured);
        log.info({ cert: o.configured.certFile, key: o.configured.keyFile, ca: o.configured.caFile }, `HTTPS serves the configured certificate ${o.configured.certFile}`);
        warnIfExpiring(current);
      } else {
        current = (await prepareOwnTls(own(), true)).material;
      }
      timer = setInterval(() => {
        check().catch((err: unknown) => log.error({ err: errorMessage(err) }, 'the daily check of the server certificate failed'));
      }, o.checkIntervalMs ?? CHECK_INTERVAL_MS);
      timer.unref();
    },
    async close() {
      if (timer !== null) clearInterval(timer);
      timer = null;
      await queue;
    },
    material,
    info: () => tlsInfo(material()),
    check,
    renew(why) {
      return serial(async () => {
        const before = material();
        let next: TlsMaterial;
        if (o.configured !== null) {
          next = await loadConfiguredTls(o.configured);
          log.info({ cert: o.configured.certFile, why }, `the configured certificate ${o.configured.certFile} was read again`);
        } else {
          next = await issueServerCertificate(own(), why);
        }
        if (before.ca !== null && next.ca !== before.ca) {
          // Only an admin's https.caFile can change; agents pinning the old CA will refuse the new certificate.
          log.warn({ ca: next.files.ca }, `the CA certificate changed: endpoint agents pinned to the old one cannot connect until enrolled again`);
        }
        serve(next);
        return tlsInfo(next);
      });
    },
  };
}
