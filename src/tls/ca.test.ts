import { strict as assert } from 'node:assert';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { createLogger } from '../lib/log.js';
import { issueServerCertificate, loadConfiguredTls, prepareOwnTls, reissueReason, tlsPaths, type OwnTlsOptions } from './ca.js';
import { wantedNames } from './names.js';
import { createTlsService } from './service.js';
import { certificatePem, createCertificate, selfIssuer } from './x509.js';

const DAY = 24 * 60 * 60 * 1000;
const T0 = new Date('2027-01-10T12:00:00Z');
const NAMES = ['10.0.0.5', '127.0.0.1', 'localhost', 'pxe.example'];

function setup(t: TestContext) {
  const dataDir = mkdtempSync(join(tmpdir(), 'fleetboot-tls-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const opts = (over: Partial<OwnTlsOptions> = {}): OwnTlsOptions => ({ dataDir, names: NAMES, hostname: 'pxe', now: T0, log: createLogger('debug', sink), ...over });
  const messages = (): string[] => logs.map((l) => String(l.msg));
  return { dataDir, paths: tlsPaths(dataDir), opts, messages };
}

const mode = (f: string): number => statSync(f).mode & 0o777;
const cert = (f: string): X509Certificate => new X509Certificate(readFileSync(f));

test('prepareOwnTls() makes the CA and a server certificate: private directory and keys, written whole', async (t) => {
  const { paths, opts, messages } = setup(t);
  const r = await prepareOwnTls(opts(), true);
  assert.equal(r.issued, `${paths.serverCert} does not exist`);
  assert.equal(mode(paths.dir), 0o700);
  assert.equal(mode(paths.caKey), 0o600);
  assert.equal(mode(paths.serverKey), 0o600);
  assert.deepEqual(readdirSync(paths.dir).sort(), ['ca.crt', 'ca.key', 'server.crt', 'server.key']); // no temporary file left
  const ca = cert(paths.caCert);
  const leaf = cert(paths.serverCert);
  assert.equal(ca.ca, true);
  assert.match(ca.subject, /^O=Fleetboot\nCN=Fleetboot CA pxe [0-9a-f]{8}$/);
  assert.equal(new Date(ca.validTo).getUTCFullYear(), 2047);
  assert.ok(leaf.verify(ca.publicKey));
  assert.equal(leaf.subjectAltName, 'IP Address:10.0.0.5, IP Address:127.0.0.1, DNS:localhost, DNS:pxe.example');
  assert.equal(new Date(leaf.validTo).getTime(), T0.getTime() + 397 * DAY);
  assert.equal(new Date(leaf.validFrom).getTime(), T0.getTime() - 3600_000); // an hour back, for clocks a little behind
  assert.equal(r.material.cert, readFileSync(paths.serverCert, 'utf8'));
  assert.equal(r.material.ca, readFileSync(paths.caCert, 'utf8'));
  assert.equal(r.material.configured, false);
  assert.ok(messages().some((m) => m.startsWith('certificate authority created')));
  assert.ok(messages().includes(`server certificate issued: ${paths.serverCert} does not exist`));
});

test('prepareOwnTls() keeps what serves, and issues again (same CA) for a new name, near expiry, or another CA', async (t) => {
  const { paths, opts, messages } = setup(t);
  await prepareOwnTls(opts(), true);
  const ca1 = readFileSync(paths.caCert, 'utf8');
  const leaf1 = readFileSync(paths.serverCert, 'utf8');

  const again = await prepareOwnTls(opts({ now: new Date(T0.getTime() + 100 * DAY) }), true);
  assert.equal(again.issued, null);
  assert.equal(readFileSync(paths.serverCert, 'utf8'), leaf1);
  // Fewer names wanted (an address gone): still kept.
  assert.equal((await prepareOwnTls(opts({ names: ['127.0.0.1'] }), true)).issued, null);

  const more = await prepareOwnTls(opts({ names: [...NAMES, '192.168.7.7', 'new.example'] }), true);
  assert.equal(more.issued, 'it does not name 192.168.7.7, new.example');
  assert.equal(readFileSync(paths.caCert, 'utf8'), ca1, 'the CA stays');
  assert.match(cert(paths.serverCert).subjectAltName ?? '', /IP Address:192\.168\.7\.7, DNS:new\.example$/);

  const late = await prepareOwnTls(opts({ names: [...NAMES, '192.168.7.7', 'new.example'], now: new Date(T0.getTime() + 370 * DAY) }), true);
  assert.match(late.issued ?? '', /^it expires on 2028-02-11T12:00:00\.000Z, within 30 days$/);
  assert.equal(readFileSync(paths.caCert, 'utf8'), ca1);

  // Another CA (ca.* moved away): the server certificate of the old one is issued again under the new one.
  rmSync(paths.caCert);
  rmSync(paths.caKey);
  const other = await prepareOwnTls(opts(), true);
  assert.equal(other.issued, 'it is not signed by the current CA');
  assert.notEqual(readFileSync(paths.caCert, 'utf8'), ca1);
  assert.ok(cert(paths.serverCert).verify(cert(paths.caCert).publicKey));
  assert.ok(messages().filter((m) => m.startsWith('certificate authority created')).length === 2);
});

test('prepareOwnTls() never replaces a CA it cannot use, and says what to do', async (t) => {
  const { paths, opts } = setup(t);
  await prepareOwnTls(opts(), true);
  const key = readFileSync(paths.caKey);
  rmSync(paths.caKey);
  await assert.rejects(prepareOwnTls(opts(), true), (err: Error) => err.message.startsWith(`${paths.caCert} is there but its private key ${paths.caKey} is not`) && /enroll every endpoint agent again/.test(err.message));
  writeFileSync(paths.caKey, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await assert.rejects(prepareOwnTls(opts(), true), new RegExp(`The private key ${paths.caKey} does not belong to the CA certificate ${paths.caCert}`));
  writeFileSync(paths.caKey, key);
  await assert.rejects(prepareOwnTls(opts({ now: new Date(T0.getTime() + 21 * 365 * DAY) }), true), /expired on 2047-01-10T12:00:00\.000Z/);
  // The daily check and the renewal never make a CA.
  rmSync(paths.caCert);
  await assert.rejects(prepareOwnTls(opts(), false), /is gone: no server certificate can be issued under the CA this server started with/);
  await assert.rejects(issueServerCertificate(opts(), 'test'), /is gone/);
  // A key without its certificate (a first start cut short) is replaced.
  const r = await prepareOwnTls(opts(), true);
  assert.equal(r.issued, 'it is not signed by the current CA');
});

test('prepareOwnTls() tightens a directory and keys others could read, with a warning', async (t) => {
  const { paths, opts, messages } = setup(t);
  await prepareOwnTls(opts(), true);
  chmodSync(paths.dir, 0o755);
  chmodSync(paths.caKey, 0o644);
  chmodSync(paths.serverKey, 0o640);
  await prepareOwnTls(opts(), true);
  assert.equal(mode(paths.dir), 0o700);
  assert.equal(mode(paths.caKey), 0o600);
  assert.equal(mode(paths.serverKey), 0o600);
  assert.ok(messages().includes(`${paths.dir} was open to other users (mode 0755); it is now 0700`));
  assert.ok(messages().includes(`the private key ${paths.caKey} was readable by other users (mode 0644); it is now 0600`));
});

test('prepareOwnTls() issues again when the server key is missing, foreign or unreadable', async (t) => {
  const { paths, opts } = setup(t);
  await prepareOwnTls(opts(), true);
  rmSync(paths.serverKey);
  assert.equal((await prepareOwnTls(opts(), true)).issued, `its key ${paths.serverKey} does not exist`);
  writeFileSync(paths.serverKey, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
  assert.equal((await prepareOwnTls(opts(), true)).issued, `its key ${paths.serverKey} does not belong to it`);
  writeFileSync(paths.serverCert, 'garbage');
  assert.match((await prepareOwnTls(opts(), true)).issued ?? '', /^it cannot be read/);
});

test('reissueReason() names an expired certificate', async (t) => {
  const { paths, opts } = setup(t);
  await prepareOwnTls(opts(), true);
  assert.equal(reissueReason(cert(paths.serverCert), cert(paths.caCert), NAMES, new Date(T0.getTime() + 400 * DAY)), `it expired on ${new Date(T0.getTime() + 397 * DAY).toISOString()}`);
});

/** An admin's CA and a certificate it issued, as files. */
function adminFiles(dir: string) {
  const caKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caName = { commonName: 'Site CA', organization: 'Example' };
  const caDer = createCertificate({ kind: 'ca', subject: caName, publicKey: caKeys.publicKey, issuer: selfIssuer(caName, caKeys.privateKey, caKeys.publicKey), notBefore: new Date('2026-01-01Z'), notAfter: new Date('2036-01-01Z') });
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const leafDer = createCertificate({ kind: 'server', subject: { commonName: 'pxe.example', organization: 'Example' }, publicKey: keys.publicKey, issuer: selfIssuer(caName, caKeys.privateKey, caKeys.publicKey), notBefore: new Date('2026-01-01Z'), notAfter: new Date('2027-06-01Z'), names: ['pxe.example'] });
  const f = { certFile: join(dir, 'site.crt'), keyFile: join(dir, 'site.key'), caFile: join(dir, 'site-ca.crt') };
  writeFileSync(f.certFile, certificatePem(leafDer));
  writeFileSync(f.keyFile, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(f.caFile, certificatePem(caDer));
  return f;
}

test('loadConfiguredTls() uses the admin\'s files as they are, and refuses a key or CA that does not belong', async (t) => {
  const { dataDir, paths } = setup(t);
  const f = adminFiles(dataDir);
  const m = await loadConfiguredTls(f);
  assert.equal(m.cert, readFileSync(f.certFile, 'utf8'));
  assert.equal(m.key, readFileSync(f.keyFile, 'utf8'));
  assert.equal(m.ca, readFileSync(f.caFile, 'utf8'));
  assert.equal(m.configured, true);
  assert.equal((await loadConfiguredTls({ ...f, caFile: null })).ca, null);
  assert.ok(!existsSync(paths.dir), 'nothing of our own CA is made');

  const other = adminFiles(mkdtempSync(join(tmpdir(), 'fleetboot-tls-other-')));
  await assert.rejects(
    loadConfiguredTls({ ...f, keyFile: other.keyFile }),
    (err: Error) => err.message === `The private key in ${other.keyFile} (https.keyFile) does not belong to the certificate in ${f.certFile} (https.certFile) for O=Example, CN=pxe.example: give the key the certificate was issued for`,
  );
  await assert.rejects(loadConfiguredTls({ ...f, caFile: other.caFile }), new RegExp(`The CA in ${other.caFile} \\(https.caFile, O=Example, CN=Site CA\\) did not issue the certificate in ${f.certFile}`));
  await assert.rejects(loadConfiguredTls({ ...f, certFile: join(dataDir, 'missing.crt') }), /Cannot read .*missing\.crt \(https\.certFile\): ENOENT/);
  writeFileSync(join(dataDir, 'empty.crt'), 'not a certificate');
  await assert.rejects(loadConfiguredTls({ ...f, certFile: join(dataDir, 'empty.crt') }), /empty\.crt \(https\.certFile\) does not hold a PEM certificate/);
  await assert.rejects(loadConfiguredTls({ ...f, keyFile: f.certFile }), /site\.crt \(https\.keyFile\) does not hold an unencrypted PEM private key/);
});

test('the TLS service renews under the same CA, swaps the certificate in, and checks daily', async (t) => {
  const { dataDir, paths } = setup(t);
  let clock = T0;
  let names = NAMES;
  const changes: string[] = [];
  const svc = createTlsService({ dataDir, configured: null, names: () => names, hostname: 'pxe', log: createLogger('silent'), now: () => clock, onChange: (m) => changes.push(m.cert) });
  t.after(() => svc.close());
  await svc.start();
  const first = svc.info();
  assert.equal(first.server.configured, false);
  assert.deepEqual(first.server.names, NAMES);
  assert.equal(first.server.issuedBy, first.ca?.subject);
  assert.equal(first.ca?.pem, readFileSync(paths.caCert, 'utf8'));
  assert.match(first.ca?.sha256 ?? '', /^[0-9a-f]{64}$/);

  const renewed = await svc.renew('asked by a test');
  assert.notEqual(renewed.server.sha256, first.server.sha256);
  assert.deepEqual(renewed.ca, first.ca);
  assert.deepEqual(changes, [readFileSync(paths.serverCert, 'utf8')]);
  assert.deepEqual(svc.info(), renewed);

  await svc.check(); // nothing to do
  assert.equal(changes.length, 1);
  names = [...NAMES, '10.9.9.9'];
  await svc.check();
  assert.equal(changes.length, 2);
  assert.ok(svc.info().server.names.includes('10.9.9.9'));
  clock = new Date(T0.getTime() + 380 * DAY);
  await svc.check();
  assert.equal(changes.length, 3);
  assert.equal(svc.info().server.notAfter, new Date(clock.getTime() + 397 * DAY).toISOString());
  // Two renewals at once run one after the other: each gets a certificate of its own.
  const [a, b] = await Promise.all([svc.renew('one'), svc.renew('two')]);
  assert.notEqual(a.server.sha256, b.server.sha256);
  assert.equal(svc.info().server.sha256, b.server.sha256);
});

test('the TLS service with the admin\'s files reads them again on renewal', async (t) => {
  const { dataDir } = setup(t);
  const f = adminFiles(dataDir);
  const svc = createTlsService({ dataDir, configured: f, names: () => NAMES, hostname: 'pxe', log: createLogger('silent') });
  t.after(() => svc.close());
  await svc.start();
  const before = svc.info();
  assert.equal(before.server.configured, true);
  assert.deepEqual(before.server.names, ['pxe.example']);
  assert.equal(before.ca?.subject, 'O=Example, CN=Site CA');
  const next = adminFiles(join(dataDir));
  assert.deepEqual(next, f); // the same paths, new contents
  const after = await svc.renew('replaced by the admin');
  assert.notEqual(after.server.sha256, before.server.sha256);
  assert.notEqual(after.ca?.sha256, before.ca?.sha256);
});

test("the TLS service warns when the admin's certificate is near its expiry (it cannot renew it)", async (t) => {
  const { dataDir, opts, messages } = setup(t);
  const f = adminFiles(dataDir);
  let clock = new Date('2027-01-01T00:00:00Z');
  const svc = createTlsService({ dataDir, configured: f, names: () => NAMES, hostname: 'pxe', log: opts().log, now: () => clock });
  t.after(() => svc.close());
  await svc.start();
  const warning = `the certificate in ${f.certFile} (https.certFile) expires on 2027-06-01T00:00:00.000Z, within 30 days: renew it where it comes from, then \`fleetboot ca renew\` reads it again`;
  assert.ok(!messages().includes(warning));
  clock = new Date('2027-05-15T00:00:00Z');
  await svc.check();
  assert.ok(messages().includes(warning), messages().join('\n'));
});

test('wantedNames(): server address first, interfaces, loopback, the host name when it is one, extras; each once', () => {
  assert.deepEqual(wantedNames({ serverIp: '10.0.0.5', addresses: ['127.0.0.1', '10.0.0.5', '172.17.0.1'], hostname: 'PXE-1', extra: ['Boot.Example', '10.0.0.5'] }), ['10.0.0.5', '127.0.0.1', '172.17.0.1', 'localhost', 'pxe-1', 'boot.example']);
  assert.deepEqual(wantedNames({ serverIp: '10.0.0.5', addresses: [], hostname: 'bad_name', extra: [] }), ['10.0.0.5', '127.0.0.1', 'localhost']);
});
