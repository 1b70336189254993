/**
 * X.509 v3 certificates (RFC 5280) for Fleetboot's own certificate
 * authority: a CA certificate and the server certificates it signs, made
 * from DER (./asn1.ts) and signed with node:crypto. Node can parse and
 * verify certificates (X509Certificate) but not create them; these two
 * kinds are all Fleetboot needs, so they are built here instead of taking a
 * dependency.
 *
 * What goes in (RFC 5280 4.1 and 4.2):
 * - version 3, a random positive 16-byte serial (CA/Browser Forum: at least
 *   64 random bits), ecdsa-with-SHA256 as the signature algorithm (RFC 5758
 *   3.2: no parameters), ECDSA P-256 keys only (every TLS client takes
 *   them; node's sign() gives the DER Ecdsa-Sig-Value X.509 wants);
 * - issuer and subject as O=Fleetboot, CN=... in UTF8String; the issuer's
 *   Name is copied byte for byte from its certificate, since chain building
 *   compares the bytes;
 * - the CA: basicConstraints CA:true pathlen 0 (it signs servers only) and
 *   keyUsage keyCertSign + cRLSign, both critical;
 * - a server: basicConstraints CA:false and keyUsage digitalSignature
 *   (ECDHE key exchange signs with the key), both critical,
 *   extendedKeyUsage serverAuth, subjectAltName with its DNS names and IPv4
 *   addresses (clients match only these, never the CN);
 * - subjectKeyIdentifier (RFC 5280 4.2.1.2 method 1: SHA-1 of the public
 *   key's bits) and authorityKeyIdentifier (the issuer's), so a renewed
 *   server certificate chains to the same CA.
 */
import { createHash, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { isDnsName } from '../model/dns-name.js';
import * as der from '../lib/asn1.js';

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

/** keyUsage bits (RFC 5280 4.2.1.3). */
const KEY_USAGE = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

/** ub-common-name (RFC 5280 appendix A.1). */
const MAX_COMMON_NAME = 64;

export interface DistinguishedName {
  commonName: string;
  organization: string;
}

/** Who signs: its Name as its own certificate has it, its private key, its key identifier. */
export interface Issuer {
  name: Buffer;
  privateKey: KeyObject;
  keyId: Buffer;
}

export interface CertificateOptions {
  kind: 'ca' | 'server';
  subject: DistinguishedName;
  /** The certified key (the subject's). */
  publicKey: KeyObject;
  issuer: Issuer;
  notBefore: Date;
  notAfter: Date;
  /** A server's subjectAltName: DNS names and IPv4 addresses (at least one). */
  names?: readonly string[];
  /** 16 bytes; default random (tests pass their own). */
  serial?: Buffer;
}

/** The Name `O=<organization>, CN=<commonName>`. */
export function encodeName(n: DistinguishedName): Buffer {
  for (const [what, v] of [['commonName', n.commonName], ['organization', n.organization]] as const) {
    if (v.length === 0 || v.length > MAX_COMMON_NAME) throw new RangeError(`A certificate's ${what} must be 1-${MAX_COMMON_NAME} characters: current value is ${JSON.stringify(v)}`);
  }
  const rdn = (type: string, value: string): Buffer => der.setOf(der.sequence(der.oid(type), der.utf8String(value)));
  return der.sequence(rdn(OID.organization, n.organization), rdn(OID.commonName, n.commonName));
}

function requireP256(key: KeyObject, what: string): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new TypeError(`The ${what} must be an ECDSA P-256 key: it is ${key.asymmetricKeyType ?? 'not an asymmetric key'}${key.asymmetricKeyDetails?.namedCurve ? ` on ${key.asymmetricKeyDetails.namedCurve}` : ''}`);
  }
}

/** The key identifier of a public key: SHA-1 of its subjectPublicKey bits (RFC 5280 4.2.1.2, method 1). */
export function keyIdOf(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const outer = der.expectTlv(spki, 0, der.TAG.SEQUENCE, 'SubjectPublicKeyInfo');
  const algorithm = der.expectTlv(outer.content, 0, der.TAG.SEQUENCE, 'the key algorithm');
  const bits = der.expectTlv(outer.content, algorithm.end, der.TAG.BIT_STRING, 'subjectPublicKey');
  return createHash('sha1').update(bits.content.subarray(1)).digest();
}

/** A self-signed certificate's issuer: its own Name and key. */
export function selfIssuer(subject: DistinguishedName, privateKey: KeyObject, publicKey: KeyObject): Issuer {
  return { name: encodeName(subject), privateKey, keyId: keyIdOf(publicKey) };
}

/** The issuer a certificate (a CA's) and its private key make: its subject Name as encoded in it, its key identifier. */
export function issuerFromCertificate(cert: X509Certificate, privateKey: KeyObject): Issuer {
  if (!cert.checkPrivateKey(privateKey)) throw new RangeError(`The private key does not belong to the certificate of ${nameLine(cert.subject)}`);
  return { name: subjectNameOf(cert.raw), privateKey, keyId: keyIdOf(cert.publicKey) };
}

/** The subject Name of a DER certificate, as its bytes. */
export function subjectNameOf(certificate: Buffer): Buffer {
  const cert = der.expectTlv(certificate, 0, der.TAG.SEQUENCE, 'Certificate');
  const tbs = der.expectTlv(cert.content, 0, der.TAG.SEQUENCE, 'TBSCertificate');
  const fields = der.readChildren(tbs.content);
  // version [0] is there in v2 and v3 certificates; then serial, signature, issuer, validity, subject.
  const subject = fields[(fields[0]?.tag === 0xa0 ? 1 : 0) + 4];
  if (subject === undefined || subject.tag !== der.TAG.SEQUENCE) throw new der.Asn1DecodeError('The certificate has no subject Name where RFC 5280 puts it');
  return tbs.content.subarray(subject.start, subject.end);
}

/** Whether `name` can go into a subjectAltName here: an IPv4 address or a DNS name. */
export function isCertificateName(name: string): boolean {
  return isIPv4(name) || isDnsName(name);
}

function generalName(name: string): Buffer {
  if (isIPv4(name)) return der.implicit(7, Buffer.from(name.split('.').map(Number)));
  if (isDnsName(name)) return der.implicit(2, Buffer.from(name.toLowerCase(), 'ascii'));
  throw new RangeError(`A subjectAltName entry must be an IPv4 address or a DNS name: current value is ${JSON.stringify(name)}`);
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  // DER leaves out a BOOLEAN that has its DEFAULT (critical FALSE).
  return der.sequence(der.oid(id), ...(critical ? [der.boolean(true)] : []), der.octetString(value));
}

/** 16 random bytes, top bit clear (positive) and the next one set (no leading zero to drop). */
function randomSerial(): Buffer {
  const b = randomBytes(16);
  b[0] = ((b[0] as number) & 0x7f) | 0x40;
  return b;
}

/** A DER certificate signed by `o.issuer`. */
export function createCertificate(o: CertificateOptions): Buffer {
  requireP256(o.publicKey, 'certified key');
  requireP256(o.issuer.privateKey, "issuer's key");
  if (!(o.notBefore < o.notAfter)) throw new RangeError(`notBefore must come before notAfter: current values are ${o.notBefore.toISOString()} and ${o.notAfter.toISOString()}`);
  const serial = o.serial ?? randomSerial();
  if (serial.length !== 16 || ((serial[0] as number) & 0x80) !== 0) throw new RangeError(`A serial must be 16 bytes with the top bit clear (positive): current value is ${serial.toString('hex')}`);
  const keyId = keyIdOf(o.publicKey);
  const authority = extension(OID.authorityKeyIdentifier, false, der.sequence(der.implicit(0, o.issuer.keyId)));
  const subjectKey = extension(OID.subjectKeyIdentifier, false, der.octetString(keyId));
  let extensions: Buffer[];
  if (o.kind === 'ca') {
    extensions = [
      extension(OID.basicConstraints, true, der.sequence(der.boolean(true), der.integer(0))),
      extension(OID.keyUsage, true, der.namedBits([KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign])),
      subjectKey,
      authority,
    ];
  } else {
    const names = o.names ?? [];
    if (names.length === 0) throw new RangeError('A server certificate needs at least one name (DNS name or IPv4 address) for its subjectAltName');
    extensions = [
      extension(OID.basicConstraints, true, der.sequence()),
      extension(OID.keyUsage, true, der.namedBits([KEY_USAGE.digitalSignature])),
      extension(OID.extKeyUsage, false, der.sequence(der.oid(OID.serverAuth))),
      extension(OID.subjectAltName, false, der.sequence(...names.map(generalName))),
      subjectKey,
      authority,
    ];
  }
  const algorithm = der.sequence(der.oid(OID.ecdsaWithSha256));
  const tbs = der.sequence(
    der.explicit(0, der.integer(2)), // v3
    der.integer(serial),
    algorithm,
    o.issuer.name,
    der.sequence(der.time(o.notBefore), der.time(o.notAfter)),
    encodeName(o.subject),
    o.publicKey.export({ type: 'spki', format: 'der' }),
    der.explicit(3, der.sequence(...extensions)),
  );
  const signature = sign('sha256', tbs, o.issuer.privateKey);
  return der.sequence(tbs, algorithm, der.bitString(signature));
}

/** PEM text of a DER certificate. */
export function certificatePem(certificate: Buffer): string {
  const b64 = certificate.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`;
}

/**
 * The DNS names and IP addresses of a certificate's subjectAltName (DNS
 * names lower-cased), from node's rendering of it ("DNS:a, IP Address:b").
 */
export function certificateNames(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (san === undefined) return [];
  const out: string[] = [];
  for (const part of san.split(', ')) {
    // Node quotes an entry that holds characters it would otherwise mistake for separators.
    const m = /^(DNS|IP Address):"?([^"]*)"?$/.exec(part);
    if (m) out.push(m[1] === 'DNS' ? (m[2] as string).toLowerCase() : (m[2] as string));
  }
  return out;
}

/** A Name as node renders it ("O=Fleetboot\nCN=..."), on one line ("O=Fleetboot, CN=..."). */
export function nameLine(name: string): string {
  return name.replace(/\n/g, ', ');
}

/** SHA-256 of a certificate's DER, lower-case hex (what `fleetboot-agent enroll --ca-sha256` takes). */
export function fingerprint(cert: X509Certificate): string {
  return createHash('sha256').update(cert.raw).digest('hex');
}

/** A hex fingerprint in the colon form openssl and browsers show (AB:CD:...). */
export function colonHex(hex: string): string {
  return (hex.toUpperCase().match(/../g) ?? []).join(':');
}
