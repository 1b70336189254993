/**
 * Certificates made by x509.ts, read by two independent parsers: node's
 * X509Certificate and the real peer, `openssl x509 -text` and `openssl
 * verify` (OpenSSL's chain building: names, key identifiers, extensions,
 * signatures).
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { program } from '../lib/programs.js';
import { certificateNames, certificatePem, colonHex, createCertificate, encodeName, fingerprint, issuerFromCertificate, keyIdOf, selfIssuer, subjectNameOf } from './x509.js';

const p256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const CA_NAME = { commonName: 'Fleetboot CA test 1a2b', organization: 'Fleetboot' };

function makeCa(notAfter = new Date('2046-01-01T00:00:00Z')) {
  const keys = p256();
  const der = createCertificate({ kind: 'ca', subject: CA_NAME, publicKey: keys.publicKey, issuer: selfIssuer(CA_NAME, keys.privateKey, keys.publicKey), notBefore: new Date('2026-01-01T00:00:00Z'), notAfter });
  return { keys, cert: new X509Certificate(der), der };
}

function makeServer(ca: ReturnType<typeof makeCa>, names: string[]) {
  const keys = p256();
  const der = createCertificate({
    kind: 'server',
    subject: { commonName: 'fleetboot.example', organization: 'Fleetboot' },
    publicKey: keys.publicKey,
    issuer: issuerFromCertificate(ca.cert, ca.keys.privateKey),
    notBefore: new Date('2026-06-01T00:00:00Z'),
    notAfter: new Date('2027-07-03T00:00:00Z'),
    names,
  });
  return { keys, cert: new X509Certificate(der), der };
}

function openssl(args: string[]): string {
  return execFileSync(program('openssl'), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

test('a CA and a server certificate as node reads them', () => {
  const ca = makeCa();
  const server = makeServer(ca, ['10.0.0.5', 'fleetboot.example', 'localhost', '127.0.0.1']);
  assert.equal(ca.cert.ca, true);
  assert.equal(server.cert.ca, false);
  assert.equal(ca.cert.subject, 'O=Fleetboot\nCN=Fleetboot CA test 1a2b');
  assert.equal(ca.cert.issuer, ca.cert.subject);
  assert.equal(server.cert.issuer, ca.cert.subject);
  assert.equal(server.cert.subject, 'O=Fleetboot\nCN=fleetboot.example');
  assert.equal(server.cert.subjectAltName, 'IP Address:10.0.0.5, DNS:fleetboot.example, DNS:localhost, IP Address:127.0.0.1');
  assert.deepEqual(certificateNames(server.cert), ['10.0.0.5', 'fleetboot.example', 'localhost', '127.0.0.1']);
  assert.equal(server.cert.checkIP('10.0.0.5'), '10.0.0.5');
  assert.equal(server.cert.checkIP('10.0.0.6'), undefined);
  assert.equal(server.cert.checkHost('fleetboot.example'), 'fleetboot.example');
  assert.equal(server.cert.checkHost('other.example'), undefined);
  assert.ok(ca.cert.verify(ca.keys.publicKey), 'the CA is self-signed');
  assert.ok(server.cert.verify(ca.keys.publicKey), 'the server certificate is signed by the CA');
  assert.ok(!server.cert.verify(p256().publicKey));
  assert.ok(server.cert.checkIssued(ca.cert));
  assert.ok(server.cert.checkPrivateKey(server.keys.privateKey));
  assert.equal(ca.cert.validTo, 'Jan  1 00:00:00 2046 GMT');
  assert.deepEqual(server.cert.keyUsage, ['1.3.6.1.5.5.7.3.1']); // node lists the extended key usage here: serverAuth
  assert.equal(server.cert.serialNumber.length, 32);
  assert.equal(fingerprint(ca.cert), ca.cert.fingerprint256.replace(/:/g, '').toLowerCase());
  assert.equal(colonHex(fingerprint(ca.cert)), ca.cert.fingerprint256);
  assert.ok(subjectNameOf(ca.der).equals(encodeName(CA_NAME)));
});

test('openssl reads the extensions and verifies the chain', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-x509-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ca = makeCa(new Date('2061-03-04T05:06:07Z')); // after 2049: GeneralizedTime
  const server = makeServer(ca, ['192.168.1.2', 'pxe.example.org']);
  writeFileSync(join(dir, 'ca.pem'), certificatePem(ca.der));
  writeFileSync(join(dir, 'server.pem'), certificatePem(server.der));
  const caText = openssl(['x509', '-noout', '-text', '-in', join(dir, 'ca.pem')]);
  assert.match(caText, /Version: 3 \(0x2\)/);
  assert.match(caText, /Signature Algorithm: ecdsa-with-SHA256/);
  assert.match(caText, /Not After : Mar {2}4 05:06:07 2061 GMT/);
  assert.match(caText, /X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
  assert.match(caText, /X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
  assert.match(caText, /ASN1 OID: prime256v1/);
  const serverText = openssl(['x509', '-noout', '-text', '-in', join(dir, 'server.pem')]);
  assert.match(serverText, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
  assert.match(serverText, /X509v3 Key Usage: critical\s+Digital Signature\n/);
  assert.match(serverText, /X509v3 Extended Key Usage: \s+TLS Web Server Authentication/);
  assert.match(serverText, /X509v3 Subject Alternative Name: \s+IP Address:192\.168\.1\.2, DNS:pxe\.example\.org/);
  // The server's authority key identifier is the CA's subject key identifier.
  const caKeyId = colonHex(keyIdOf(ca.keys.publicKey).toString('hex'));
  assert.match(caText, new RegExp(`X509v3 Subject Key Identifier: \\s+${caKeyId}`));
  assert.match(serverText, new RegExp(`X509v3 Authority Key Identifier: \\s+(keyid:)?${caKeyId}`));
  assert.match(serverText, new RegExp(`X509v3 Subject Key Identifier: \\s+${colonHex(keyIdOf(server.keys.publicKey).toString('hex'))}`));
  // openssl's own fingerprint is ours.
  assert.equal(openssl(['x509', '-noout', '-fingerprint', '-sha256', '-in', join(dir, 'ca.pem')]).trim(), `sha256 Fingerprint=${colonHex(fingerprint(ca.cert))}`);
  // Chain building, purpose checks (sslserver: serverAuth, digitalSignature) and the host name and address.
  const verify = (args: string[]): string => openssl(['verify', '-attime', String(Date.parse('2026-07-01T00:00:00Z') / 1000), '-CAfile', join(dir, 'ca.pem'), ...args, join(dir, 'server.pem')]);
  assert.equal(verify(['-purpose', 'sslserver', '-x509_strict']).trim(), `${join(dir, 'server.pem')}: OK`);
  assert.match(verify(['-verify_hostname', 'pxe.example.org']), /: OK/);
  assert.match(verify(['-verify_ip', '192.168.1.2']), /: OK/);
  assert.throws(() => verify(['-verify_hostname', 'other.example.org']), /hostname mismatch/);
  // Another CA of the same name but another key: refused.
  const other = makeCa();
  writeFileSync(join(dir, 'other.pem'), certificatePem(other.der));
  assert.throws(() => openssl(['verify', '-CAfile', join(dir, 'other.pem'), join(dir, 'server.pem')]), /signature failure|unable to get local issuer/);
});

test('createCertificate() refuses what it cannot make, saying why', () => {
  const ca = makeCa();
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const base = { kind: 'server' as const, subject: { commonName: 'x', organization: 'Fleetboot' }, publicKey: p256().publicKey, issuer: issuerFromCertificate(ca.cert, ca.keys.privateKey), notBefore: new Date('2026-01-01Z'), notAfter: new Date('2027-01-01Z'), names: ['a.example'] };
  assert.throws(() => createCertificate({ ...base, publicKey: rsa.publicKey }), /must be an ECDSA P-256 key: it is rsa/);
  assert.throws(() => createCertificate({ ...base, names: [] }), /needs at least one name/);
  assert.throws(() => createCertificate({ ...base, names: ['bad_name'] }), /must be an IPv4 address or a DNS name: current value is "bad_name"/);
  assert.throws(() => createCertificate({ ...base, notAfter: base.notBefore }), /notBefore must come before notAfter/);
  assert.throws(() => createCertificate({ ...base, subject: { commonName: 'x'.repeat(65), organization: 'Fleetboot' } }), /commonName must be 1-64 characters/);
  assert.throws(() => createCertificate({ ...base, serial: Buffer.alloc(16, 0xff) }), /top bit clear/);
  assert.throws(() => issuerFromCertificate(ca.cert, p256().privateKey), /does not belong to the certificate of O=Fleetboot, CN=Fleetboot CA test 1a2b/);
});
