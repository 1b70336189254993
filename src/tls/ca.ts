/**
 * The certificates HTTPS is served with: Fleetboot's own certificate
 * authority and the server certificate it signs, kept in <dataDir>/tls, or
 * a certificate and key the admin configured (https.certFile/keyFile).
 *
 * <dataDir>/tls (0700; tightened with a warning when the group or others
 * can enter it):
 *   ca.key      the CA's private key (0600): never leaves this directory
 *   ca.crt      the CA certificate: what browsers import and agents pin
 *               (`fleetboot ca show`), 20 years
 *   server.key  the server's private key (0600)
 *   server.crt  the server certificate, 397 days (the most browsers take),
 *               for the names the caller wants (addresses, host names)
 * Every file is written to a temporary file with its mode set, synced,
 * then renamed over the old one, so a crash leaves the old file or the new
 * one, never half of one; keys are written before their certificates.
 *
 * The CA is made once and then kept: enrolled endpoint agents pin it (its
 * SHA-256), so replacing it would cut them off. Nothing here replaces an
 * existing CA: a CA certificate without its key, a key that does not match
 * it, or an expired CA stop the start with what to do. Only a ca.key
 * without ca.crt (a first start interrupted between the two writes; no
 * one can have pinned a certificate never written) is made again.
 *
 * The server certificate is issued again when it is missing or unreadable,
 * its key is missing or does not match, it is not signed by the current CA,
 * it expires within RENEW_BEFORE_DAYS, or it lacks one of the wanted names
 * (`reissueReason`); and on demand (`issueServerCertificate`, the renewal).
 * Clients that pin the CA, not the server certificate, keep working.
 *
 * An admin's certificate and key (and the CA that signed it, for agents to
 * pin) are used as they are and never written: `loadConfiguredTls` checks
 * that the key belongs to the certificate and that the CA issued it, naming
 * the files when not.
 */
import { generateKeyPairSync, createPrivateKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { chmod, lstat, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FleetbootError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { certificateNames, certificatePem, createCertificate, issuerFromCertificate, nameLine, selfIssuer } from './x509.js';

/** Validity of the CA certificate. */
export const CA_YEARS = 20;
/** Validity of a server certificate (Apple's and Chrome's limit is 398 days). */
export const SERVER_DAYS = 397;
/** A server certificate that expires within this many days is issued again. */
export const RENEW_BEFORE_DAYS = 30;
/** notBefore is this far back, for clients whose clock is a little behind. */
const BACKDATE_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

const DIR_MODE = 0o700;
const KEY_MODE = 0o600;
const CERT_MODE = 0o644;

const ORGANIZATION = 'Fleetboot';

export interface TlsPaths {
  dir: string;
  caKey: string;
  caCert: string;
  serverKey: string;
  serverCert: string;
}

export function tlsPaths(dataDir: string): TlsPaths {
  const dir = join(dataDir, 'tls');
  return { dir, caKey: join(dir, 'ca.key'), caCert: join(dir, 'ca.crt'), serverKey: join(dir, 'server.key'), serverCert: join(dir, 'server.crt') };
}

/** What the HTTPS server serves, and what clients pin. */
export interface TlsMaterial {
  /** PEM private key of the server certificate. */
  key: string;
  /** PEM server certificate (an admin's file may add intermediates after it). */
  cert: string;
  /** PEM CA certificate (what agents pin), or null: an admin's certificate without https.caFile. */
  ca: string | null;
  /** The admin's files (https.certFile, https.keyFile), not Fleetboot's own CA. */
  configured: boolean;
  /** Where each came from (messages, `fleetboot ca show`). */
  files: { cert: string; key: string; ca: string | null };
}

/** The admin's files (https.certFile, https.keyFile, https.caFile). */
export interface ConfiguredFiles {
  certFile: string;
  keyFile: string;
  caFile: string | null;
}

/** Why a server certificate must be issued again, or null when it serves. */
export function reissueReason(leaf: X509Certificate, ca: X509Certificate, wanted: readonly string[], now: Date): string | null {
  if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) return 'it is not signed by the current CA';
  const notAfter = new Date(leaf.validTo);
  if (notAfter.getTime() - now.getTime() < RENEW_BEFORE_DAYS * DAY_MS) {
    return notAfter <= now ? `it expired on ${notAfter.toISOString()}` : `it expires on ${notAfter.toISOString()}, within ${RENEW_BEFORE_DAYS} days`;
  }
  const present = new Set(certificateNames(leaf));
  const missing = wanted.filter((n) => !present.has(n.toLowerCase()));
  if (missing.length) return `it does not name ${missing.join(', ')}`;
  return null;
}

/** The certificate and key of Fleetboot's own CA. */
interface Ca {
  cert: X509Certificate;
  key: KeyObject;
  pem: string;
}

async function readIfThere(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new FleetbootError('IO', `Cannot read ${file}: ${errorMessage(err)}`, { cause: err });
  }
}

/** Write `data` to `file` atomically with `mode` (see the header). */
async function writeAtomic(file: string, data: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.chmod(mode); // the umask does not decide
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new FleetbootError('IO', `Cannot write ${file}: ${errorMessage(err)}`, { cause: err });
  }
}

/** Create <dataDir>/tls 0700, or take group and other access away from it (warned). */
async function prepareDir(dir: string, log: Logger): Promise<void> {
  await mkdir(dir, { recursive: true, mode: DIR_MODE });
  const st = await lstat(dir);
  if (!st.isDirectory()) throw new FleetbootError('CONFIG', `${dir} must be a directory (Fleetboot's certificate authority lives there): it is not`);
  if ((st.mode & 0o077) !== 0) {
    await chmod(dir, DIR_MODE);
    log.warn({ subsystem: 'tls', dir, was: (st.mode & 0o777).toString(8) }, `${dir} was open to other users (mode 0${(st.mode & 0o777).toString(8)}); it is now 0700`);
  }
}

/** A private key file must be 0600: tightened (warned) when it is not. */
async function tightenKey(file: string, log: Logger): Promise<void> {
  const st = await lstat(file);
  if ((st.mode & 0o077) !== 0) {
    await chmod(file, KEY_MODE);
    log.warn({ subsystem: 'tls', file, was: (st.mode & 0o777).toString(8) }, `the private key ${file} was readable by other users (mode 0${(st.mode & 0o777).toString(8)}); it is now 0600`);
  }
}

function newKeyPair(): { privateKey: KeyObject; publicKey: KeyObject; pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicKey, pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

function parseCertificate(pem: string, file: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new FleetbootError('CONFIG', `${file} (${what}) does not hold a PEM certificate: ${errorMessage(err)}`, { cause: err });
  }
}

function parseKey(pem: string, file: string, what: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new FleetbootError('CONFIG', `${file} (${what}) does not hold an unencrypted PEM private key: ${errorMessage(err)}`, { cause: err });
  }
}

const REPLACE_CA = 'Restore it from a backup; or move ca.key and ca.crt away to make a new CA at the next start, and enroll every endpoint agent again (they pin this one)';

/**
 * The CA: read, or (`create`, at start only) made when ca.crt does not
 * exist (see the header). A running server never makes one: its clients
 * pin the one it started with.
 */
async function loadOrCreateCa(paths: TlsPaths, hostname: string, now: Date, log: Logger, create: boolean): Promise<Ca> {
  const certText = await readIfThere(paths.caCert);
  const keyText = await readIfThere(paths.caKey);
  if (certText !== null) {
    if (keyText === null) throw new FleetbootError('CONFIG', `${paths.caCert} is there but its private key ${paths.caKey} is not: the CA cannot sign a server certificate. ${REPLACE_CA}`);
    const cert = parseCertificate(certText, paths.caCert, "Fleetboot's CA certificate");
    const key = parseKey(keyText, paths.caKey, "Fleetboot's CA key");
    if (!cert.checkPrivateKey(key)) throw new FleetbootError('CONFIG', `The private key ${paths.caKey} does not belong to the CA certificate ${paths.caCert}. ${REPLACE_CA}`);
    if (new Date(cert.validTo) <= now) throw new FleetbootError('CONFIG', `The CA certificate ${paths.caCert} expired on ${new Date(cert.validTo).toISOString()}. Move ca.key and ca.crt away to make a new CA at the next start, and enroll every endpoint agent again`);
    await tightenKey(paths.caKey, log);
    return { cert, key, pem: certText };
  }
  if (!create) throw new FleetbootError('CONFIG', `The CA certificate ${paths.caCert} is gone: no server certificate can be issued under the CA this server started with. ${REPLACE_CA}`);
  if (keyText !== null) log.warn({ subsystem: 'tls', file: paths.caKey }, `${paths.caKey} has no certificate beside it (an interrupted first start): a new CA replaces it`);
  const keys = newKeyPair();
  // ub-common-name is 64: "Fleetboot CA " + host + " " + 8 hex digits.
  const subject = { commonName: `Fleetboot CA ${hostname.slice(0, 42)} ${randomBytes(4).toString('hex')}`, organization: ORGANIZATION };
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + CA_YEARS);
  const der = createCertificate({ kind: 'ca', subject, publicKey: keys.publicKey, issuer: selfIssuer(subject, keys.privateKey, keys.publicKey), notBefore: new Date(now.getTime() - BACKDATE_MS), notAfter });
  const pem = certificatePem(der);
  await writeAtomic(paths.caKey, keys.pem, KEY_MODE);
  await writeAtomic(paths.caCert, pem, CERT_MODE);
  const cert = new X509Certificate(der);
  log.info({ subsystem: 'tls', file: paths.caCert, subject: subject.commonName, notAfter: notAfter.toISOString(), sha256: cert.fingerprint256 }, `certificate authority created: ${paths.caCert} (its key ${paths.caKey}, mode 0600)`);
  return { cert, key: keys.privateKey, pem };
}

/** Issue a server certificate for `names` under `ca`, write it with a new key, and return it. */
async function issue(paths: TlsPaths, ca: Ca, names: readonly string[], now: Date): Promise<TlsMaterial> {
  const keys = newKeyPair();
  const caEnd = new Date(ca.cert.validTo);
  const end = new Date(Math.min(now.getTime() + SERVER_DAYS * DAY_MS, caEnd.getTime()));
  const der = createCertificate({
    kind: 'server',
    subject: { commonName: (names[0] ?? 'fleetboot').slice(0, 64), organization: ORGANIZATION },
    publicKey: keys.publicKey,
    issuer: issuerFromCertificate(ca.cert, ca.key),
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: end,
    names,
  });
  const pem = certificatePem(der);
  await writeAtomic(paths.serverKey, keys.pem, KEY_MODE);
  await writeAtomic(paths.serverCert, pem, CERT_MODE);
  return { key: keys.pem, cert: pem, ca: ca.pem, configured: false, files: { cert: paths.serverCert, key: paths.serverKey, ca: paths.caCert } };
}

/** Why the server certificate on disk cannot serve (missing, unreadable, not matching, reissueReason), or null. */
async function problemOfServerFiles(paths: TlsPaths, ca: Ca, names: readonly string[], now: Date, log: Logger): Promise<string | null> {
  const certText = await readIfThere(paths.serverCert);
  const keyText = await readIfThere(paths.serverKey);
  if (certText === null) return `${paths.serverCert} does not exist`;
  if (keyText === null) return `its key ${paths.serverKey} does not exist`;
  let cert: X509Certificate;
  let key: KeyObject;
  try {
    cert = new X509Certificate(certText);
    key = createPrivateKey(keyText);
  } catch (err) {
    return `it cannot be read (${errorMessage(err)})`;
  }
  if (!cert.checkPrivateKey(key)) return `its key ${paths.serverKey} does not belong to it`;
  const reason = reissueReason(cert, ca.cert, names, now);
  if (reason === null) await tightenKey(paths.serverKey, log);
  return reason;
}

export interface OwnTlsOptions {
  dataDir: string;
  /** What the server certificate must name: IPv4 addresses and DNS names. */
  names: readonly string[];
  /** For the CA's name. */
  hostname: string;
  now: Date;
  log: Logger;
}

/** What `prepareOwnTls` found: the material to serve, and whether the server certificate is new. */
export interface OwnTls {
  material: TlsMaterial;
  /** Why a server certificate was issued, or null: the one there was kept. */
  issued: string | null;
}

/**
 * Make sure <dataDir>/tls holds a CA and a server certificate that serves
 * (`reissueReason`), issuing one when not (logged with the reason). At
 * start (`createCa`) the CA is made when there is none; the daily check
 * only ever uses the existing one.
 */
export async function prepareOwnTls(o: OwnTlsOptions, createCa: boolean): Promise<OwnTls> {
  const paths = tlsPaths(o.dataDir);
  await prepareDir(paths.dir, o.log);
  const ca = await loadOrCreateCa(paths, o.hostname, o.now, o.log, createCa);
  const problem = await problemOfServerFiles(paths, ca, o.names, o.now, o.log);
  if (problem === null) {
    o.log.debug({ subsystem: 'tls', file: paths.serverCert }, 'server certificate kept');
    const material = { key: await readFile(paths.serverKey, 'utf8'), cert: await readFile(paths.serverCert, 'utf8'), ca: ca.pem, configured: false, files: { cert: paths.serverCert, key: paths.serverKey, ca: paths.caCert } };
    return { material, issued: null };
  }
  return { material: await issueUnder(paths, ca, o, problem), issued: problem };
}

/** Issue a new server certificate under the existing CA, whatever the old one (the renewal), logged with `reason`. */
export async function issueServerCertificate(o: OwnTlsOptions, reason: string): Promise<TlsMaterial> {
  const paths = tlsPaths(o.dataDir);
  await prepareDir(paths.dir, o.log);
  return issueUnder(paths, await loadOrCreateCa(paths, o.hostname, o.now, o.log, false), o, reason);
}

async function issueUnder(paths: TlsPaths, ca: Ca, o: OwnTlsOptions, reason: string): Promise<TlsMaterial> {
  const m = await issue(paths, ca, o.names, o.now);
  const cert = new X509Certificate(m.cert);
  o.log.info({ subsystem: 'tls', file: paths.serverCert, names: o.names, notAfter: new Date(cert.validTo).toISOString(), sha256: cert.fingerprint256 }, `server certificate issued: ${reason}`);
  return m;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * The admin's certificate (with any intermediates after it), key and
 * optional CA, checked: the key belongs to the certificate, and the CA
 * issued it or the last certificate of its chain.
 */
export async function loadConfiguredTls(f: ConfiguredFiles): Promise<TlsMaterial> {
  const read = async (file: string, key: string): Promise<string> => {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      throw new FleetbootError('CONFIG', `Cannot read ${file} (${key}): ${errorMessage(err)}`, { cause: err });
    }
  };
  const certText = await read(f.certFile, 'https.certFile');
  const keyText = await read(f.keyFile, 'https.keyFile');
  const chain = (certText.match(PEM_CERTIFICATE) ?? []).map((pem) => parseCertificate(pem, f.certFile, 'https.certFile'));
  const leaf = chain[0];
  if (leaf === undefined) throw new FleetbootError('CONFIG', `${f.certFile} (https.certFile) does not hold a PEM certificate (-----BEGIN CERTIFICATE-----)`);
  const key = parseKey(keyText, f.keyFile, 'https.keyFile');
  if (!leaf.checkPrivateKey(key)) {
    throw new FleetbootError('CONFIG', `The private key in ${f.keyFile} (https.keyFile) does not belong to the certificate in ${f.certFile} (https.certFile) for ${nameLine(leaf.subject)}: give the key the certificate was issued for`);
  }
  let caText: string | null = null;
  if (f.caFile !== null) {
    caText = await read(f.caFile, 'https.caFile');
    const ca = parseCertificate(caText, f.caFile, 'https.caFile');
    const top = chain[chain.length - 1] as X509Certificate;
    const issued = top.fingerprint256 === ca.fingerprint256 || (top.checkIssued(ca) && top.verify(ca.publicKey));
    if (!issued) {
      throw new FleetbootError('CONFIG', `The CA in ${f.caFile} (https.caFile, ${nameLine(ca.subject)}) did not issue the certificate in ${f.certFile} (https.certFile, issued by ${nameLine(top.issuer)}): agents pinning it could not connect`);
    }
  }
  return { key: keyText, cert: certText, ca: caText, configured: true, files: { cert: f.certFile, key: f.keyFile, ca: f.caFile } };
}
