/**
 * HTTPS end to end on loopback: a real server (startFleetboot, HTTP and
 * HTTPS on port 0, a temporary data directory), real peers (curl, node's
 * TLS client pinning only the CA) and the real CLI (`fleetboot serve`,
 * `fleetboot ca show|renew`).
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { loadConfig, type ConfigOverrides } from '../src/config/config.js';
import { silentLogger } from '../src/lib/log.js';
import { program } from '../src/lib/programs.js';
import { startFleetboot, type RunningFleetboot, type ServerInfoFile } from '../src/server.js';
import { certificatePem, createCertificate, fingerprint, selfIssuer } from '../src/tls/x509.js';
import { cli, ok, spawnServe, waitUntil } from './cli-helpers.js';

const execFileP = promisify(execFile);

function tempDir(t: TestContext, what: string): string {
  const dir = mkdtempSync(join(tmpdir(), `fleetboot-https-${what}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function start(t: TestContext, dataDir: string, over: ConfigOverrides = {}): Promise<RunningFleetboot> {
  const config = loadConfig({
    overrides: { dataDir, serverIp: '127.0.0.1', http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0, ...over.https }, tftp: { enabled: false }, dhcp: { mode: 'off' } },
  });
  const fb = await startFleetboot(config, { logger: silentLogger, ipxeDir: join(dataDir, 'no-ipxe'), eventStream: { heartbeatMs: 200 } });
  t.after(() => fb.close());
  return fb;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** SHA-256 (hex) of the certificate the server showed. */
  peer: string;
}

/** One HTTPS request on a new connection that trusts `ca` only (as an endpoint agent does). */
function pinned(port: number, ca: string, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers ?? {}, ca: [ca], agent: false }, (res) => {
      const socket = res.socket as TLSSocket;
      const peer = fingerprint(socket.getPeerX509Certificate() as X509Certificate);
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, peer }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

async function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(program('curl'), ['-sS', '--max-time', '20', ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** A CA of someone else's and a server certificate it issued for 127.0.0.1, as files in `dir`. */
function foreignFiles(dir: string, names = ['127.0.0.1', 'localhost']) {
  const caKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caName = { commonName: 'Site CA', organization: 'Example' };
  const issuer = selfIssuer(caName, caKeys.privateKey, caKeys.publicKey);
  const ca = createCertificate({ kind: 'ca', subject: caName, publicKey: caKeys.publicKey, issuer, notBefore: new Date(Date.now() - 86_400_000), notAfter: new Date(Date.now() + 365 * 86_400_000) });
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const leaf = createCertificate({ kind: 'server', subject: { commonName: 'pxe', organization: 'Example' }, publicKey: keys.publicKey, issuer, notBefore: new Date(Date.now() - 86_400_000), notAfter: new Date(Date.now() + 90 * 86_400_000), names });
  const files = { certFile: join(dir, 'site.crt'), keyFile: join(dir, 'site.key'), caFile: join(dir, 'site-ca.crt') };
  writeFileSync(files.certFile, certificatePem(leaf));
  writeFileSync(files.keyFile, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(files.caFile, certificatePem(ca));
  return { ...files, leafSha256: fingerprint(new X509Certificate(leaf)) };
}

test('HTTPS from our own CA: curl trusts it with --cacert only; HTTP stays; the files are private; Secure cookies', async (t) => {
  const dir = tempDir(t, 'own');
  const fb = await start(t, dir);
  assert.ok(fb.httpsPort !== null && fb.httpsPort > 0);
  assert.equal(fb.httpsUrl, `https://127.0.0.1:${fb.httpsPort}`);
  const info = JSON.parse(readFileSync(join(dir, 'server.json'), 'utf8')) as ServerInfoFile;
  assert.equal(info.httpsUrl, fb.httpsUrl);
  assert.equal(info.httpsPort, fb.httpsPort);

  const tls = join(dir, 'tls');
  assert.equal(statSync(tls).mode & 0o777, 0o700);
  assert.equal(statSync(join(tls, 'ca.key')).mode & 0o777, 0o600);
  assert.equal(statSync(join(tls, 'server.key')).mode & 0o777, 0o600);

  // curl, a real TLS peer: the status over HTTPS with our CA...
  const status = await curl(['--cacert', join(tls, 'ca.crt'), `${fb.httpsUrl}/api/v1/status`, '-H', `authorization: Bearer ${fb.token}`]);
  assert.equal(status.code, 0, status.stderr);
  const s = JSON.parse(status.stdout) as { https: { port: number }; http: { port: number } };
  assert.deepEqual([s.https.port, s.http.port], [fb.httpsPort, fb.httpPort]);
  // ...refused with another CA (60: the peer certificate cannot be authenticated with the given CA certificates)...
  const other = foreignFiles(tempDir(t, 'other'));
  const refused = await curl(['--cacert', other.caFile, `${fb.httpsUrl}/api/v1/status`]);
  assert.equal(refused.code, 60, refused.stderr);
  // ...and by name: the certificate names 127.0.0.1 and localhost, so both match.
  assert.equal((await curl(['--cacert', join(tls, 'ca.crt'), '-o', '/dev/null', '-w', '%{http_code}', `https://localhost:${fb.httpsPort}/api/v1/status`])).stdout, '401');
  // The boot endpoints stay on plain HTTP.
  const boot = await curl(['-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${fb.httpPort}/boot.ipxe`]);
  assert.equal(boot.stdout, '200');

  // A login over HTTPS sets a Secure cookie; over HTTP not (src/http/auth.ts overTls).
  const ca = readFileSync(join(tls, 'ca.crt'), 'utf8');
  const created = await pinned(fb.httpsPort, ca, '/api/v1/users', { method: 'POST', headers: { authorization: `Bearer ${fb.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'vic', role: 'viewer' }) });
  assert.equal(created.status, 201, created.body);
  const { password } = JSON.parse(created.body) as { password: string };
  const login = await pinned(fb.httpsPort, ca, '/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'vic', password }) });
  assert.equal(login.status, 200, login.body);
  assert.match(String(login.headers['set-cookie']), /; Secure$/);
  const plain = await fetch(`${fb.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'vic', password }) });
  assert.equal(plain.status, 200);
  assert.doesNotMatch(plain.headers.get('set-cookie') ?? '', /Secure/);
});

test('a second start reuses the CA and the server certificate; a new name issues a server certificate under the same CA', async (t) => {
  const dir = tempDir(t, 'restart');
  const first = await start(t, dir);
  const before = first.tls?.info();
  await first.close();
  const ca = readFileSync(join(dir, 'tls', 'ca.crt'), 'utf8');

  const second = await start(t, dir);
  assert.deepEqual(second.tls?.info(), before);
  assert.equal((await pinned(second.httpsPort as number, ca, '/api/v1/tls')).peer, before?.server.sha256);
  await second.close();

  const third = await start(t, dir, { https: { names: ['fleetboot.test'] } });
  const after = third.tls?.info();
  assert.deepEqual(after?.ca, before?.ca, 'the same CA');
  assert.notEqual(after?.server.sha256, before?.server.sha256);
  assert.ok(after?.server.names.includes('fleetboot.test'));
  assert.equal(new X509Certificate(readFileSync(join(dir, 'tls', 'server.crt'))).checkHost('fleetboot.test'), 'fleetboot.test');
  assert.equal((await pinned(third.httpsPort as number, ca, '/api/v1/tls')).peer, after?.server.sha256);
});

test('renewal through the API swaps the server certificate live; a client pinning only the CA keeps working', async (t) => {
  const dir = tempDir(t, 'renew');
  const fb = await start(t, dir);
  const port = fb.httpsPort as number;
  const ca = readFileSync(join(dir, 'tls', 'ca.crt'), 'utf8');
  const auth = { authorization: `Bearer ${fb.token}` };

  const shown = await pinned(port, ca, '/api/v1/tls', { headers: auth });
  assert.equal(shown.status, 200);
  const before = JSON.parse(shown.body) as { ca: { pem: string; sha256: string }; server: { sha256: string; configured: boolean } };
  assert.equal(before.ca.pem, ca);
  assert.equal(before.server.sha256, shown.peer);
  assert.equal(before.server.configured, false);

  const renewed = await pinned(port, ca, '/api/v1/tls/renew', { method: 'POST', headers: auth });
  assert.equal(renewed.status, 200, renewed.body);
  const after = JSON.parse(renewed.body) as typeof before;
  assert.notEqual(after.server.sha256, before.server.sha256);
  assert.equal(after.ca.sha256, before.ca.sha256);
  assert.equal(renewed.peer, before.server.sha256, 'the renewal itself was served on the old certificate');

  // A new connection gets the new certificate, and trusts it through the CA alone.
  const next = await pinned(port, ca, '/api/v1/status', { headers: auth });
  assert.equal(next.status, 200);
  assert.equal(next.peer, after.server.sha256);
  assert.equal(fingerprint(new X509Certificate(readFileSync(join(dir, 'tls', 'server.crt')))), after.server.sha256);

  // A viewer may look but not renew.
  const token = await pinned(port, ca, '/api/v1/users', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'vera', role: 'viewer' }) });
  assert.equal(token.status, 201);
  const { password } = JSON.parse(token.body) as { password: string };
  const login = await pinned(port, ca, '/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'vera', password }) });
  const cookie = String(login.headers['set-cookie']).split(';')[0] as string;
  const { csrfToken } = JSON.parse(login.body) as { csrfToken: string };
  const refused = await pinned(port, ca, '/api/v1/tls/renew', { method: 'POST', headers: { cookie, 'x-csrf-token': csrfToken } });
  assert.equal(refused.status, 403, refused.body);
});

test('the endpoint agents\' protocol: the CA from /endpoint/v1/ca, the rest over HTTPS only, across a renewal', async (t) => {
  const dir = tempDir(t, 'endpoint');
  const fb = await start(t, dir);
  const port = fb.httpsPort as number;
  // What an agent fetches before it enrols, and compares with the SHA-256 it was given.
  const caRes = await fetch(`${fb.url}/endpoint/v1/ca`);
  const ca = await caRes.text();
  assert.equal(ca, readFileSync(join(dir, 'tls', 'ca.crt'), 'utf8'));
  assert.equal(fingerprint(new X509Certificate(ca)), fb.tls?.info().ca?.sha256);
  const plain = await fetch(`${fb.url}/endpoint/v1/challenge`, { method: 'POST' });
  assert.equal(plain.status, 403);
  assert.equal(((await plain.json()) as { error: string }).error, 'HTTPS_REQUIRED');
  const before = await pinned(port, ca, '/endpoint/v1/challenge', { method: 'POST' });
  assert.equal(before.status, 200, before.body);
  await fb.tls?.renew('a test');
  const after = await pinned(port, ca, '/endpoint/v1/challenge', { method: 'POST' });
  assert.equal(after.status, 200, after.body);
  assert.notEqual(after.peer, before.peer, 'a new server certificate, trusted through the same CA');
});

test('closing ends HTTPS event streams and keep-alive connections without waiting', async (t) => {
  const dir = tempDir(t, 'close');
  const fb = await start(t, dir);
  const ca = readFileSync(join(dir, 'tls', 'ca.crt'), 'utf8');
  const chunks: string[] = [];
  const ended = new Promise<void>((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: fb.httpsPort as number, path: '/api/v1/events', headers: { authorization: `Bearer ${fb.token}` }, ca: [ca] }, (res) => {
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
      res.setEncoding('utf8');
      res.on('data', (c: string) => chunks.push(c));
      res.on('end', resolve);
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  await waitUntil(() => chunks.join('').includes('event: ready') && chunks.join('').includes(': ping'), 'the stream to open and beat', 10_000);
  // And a keep-alive connection left idle after its request.
  const agent = new Agent({ keepAlive: true, ca: [ca] });
  t.after(() => agent.destroy());
  const idle = await new Promise<Socket>((resolve, reject) => {
    httpsRequest({ host: '127.0.0.1', port: fb.httpsPort as number, path: '/api/v1/status', headers: { authorization: `Bearer ${fb.token}` }, agent }, (res) => {
      const socket = res.socket; // given back to the agent (and res.socket null) once the response ends
      res.resume();
      res.on('end', () => resolve(socket));
    })
      .on('error', reject)
      .end();
  });
  assert.equal(idle.destroyed, false);
  const t0 = Date.now();
  await fb.close();
  await ended;
  assert.ok(Date.now() - t0 < 5000, `closing took ${Date.now() - t0} ms`);
  assert.match(chunks.join(''), /event: end\ndata: \{[^\n]*"reason":"the server is stopping"/);
  assert.equal(idle.destroyed, true, 'the idle keep-alive connection was ended');
});

test("the admin's certificate and key are served as they are; a key that does not match stops the start, naming the files", async (t) => {
  const dir = tempDir(t, 'configured');
  const files = foreignFiles(tempDir(t, 'site'));
  const fb = await start(t, dir, { https: { certFile: files.certFile, keyFile: files.keyFile, caFile: files.caFile } });
  const answer = await pinned(fb.httpsPort as number, readFileSync(files.caFile, 'utf8'), '/api/v1/tls', { headers: { authorization: `Bearer ${fb.token}` } });
  assert.equal(answer.peer, files.leafSha256);
  const info = JSON.parse(answer.body) as { server: { configured: boolean; sha256: string }; ca: { pem: string } };
  assert.equal(info.server.configured, true);
  assert.equal(info.ca.pem, readFileSync(files.caFile, 'utf8'));
  assert.ok(!existsSync(join(dir, 'tls')), 'no CA of our own is made');
  await fb.close();

  const stray = foreignFiles(tempDir(t, 'stray'));
  const config = loadConfig({
    overrides: { dataDir: dir, serverIp: '127.0.0.1', http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0, certFile: files.certFile, keyFile: stray.keyFile }, tftp: { enabled: false }, dhcp: { mode: 'off' } },
  });
  await assert.rejects(
    startFleetboot(config, { logger: silentLogger, ipxeDir: join(dir, 'no-ipxe') }),
    (err: Error) => err.message === `The private key in ${stray.keyFile} (https.keyFile) does not belong to the certificate in ${files.certFile} (https.certFile) for O=Example, CN=pxe: give the key the certificate was issued for`,
  );
  assert.ok(!existsSync(join(dir, 'server.json')));
});

test('fleetboot serve prints the HTTPS URL and the CA SHA-256; fleetboot ca show and ca renew', async (t) => {
  const dir = tempDir(t, 'cli');
  const { server, stderr } = spawnServe(dir);
  t.after(() => void server.kill('SIGTERM'));
  await waitUntil(() => existsSync(join(dir, 'server.json')) && stderr().includes('Console'), 'the server and its summary', 60_000, server);
  const info = JSON.parse(readFileSync(join(dir, 'server.json'), 'utf8')) as ServerInfoFile;
  const caCert = new X509Certificate(readFileSync(join(dir, 'tls', 'ca.crt')));
  const sha = fingerprint(caCert);
  assert.match(stderr(), new RegExp(`^  HTTPS      https://127\\.0\\.0\\.1:${info.httpsPort}/api/v1 \\(REST API\\), the console and the endpoint agents; TCP ${info.httpsPort} on 127\\.0\\.0\\.1$`, 'm'));
  assert.match(stderr(), new RegExp(`^             SHA-256 ${sha} \\(what \`fleetboot-agent enroll --ca-sha256\` takes\\)$`, 'm'));

  const [show, pem, json] = await Promise.all([cli(['ca', 'show', '--data-dir', dir]), cli(['ca', 'show', '--pem', '--data-dir', dir]), cli(['--json', 'ca', 'show', '--data-dir', dir])]);
  ok(show, 'ca show');
  assert.match(show.stdout, new RegExp(`^CA           O=Fleetboot, CN=Fleetboot CA .+\n  expires    \\d{4}-.+Z\n  SHA-256    ${sha}\n             ${caCert.fingerprint256}\n`));
  assert.match(show.stdout, /^  names      127\.0\.0\.1, .*localhost/m);
  assert.ok(show.stdout.endsWith(`\n${readFileSync(join(dir, 'tls', 'ca.crt'), 'utf8')}`), 'then the PEM');
  assert.equal(ok(pem, 'ca show --pem').stdout, readFileSync(join(dir, 'tls', 'ca.crt'), 'utf8'));
  const shown = JSON.parse(ok(json, 'ca show --json').stdout) as { ca: { sha256: string }; server: { sha256: string } };
  assert.equal(shown.ca.sha256, sha);

  const renew = ok(await cli(['ca', 'renew', '--data-dir', dir]), 'ca renew');
  const leaf = fingerprint(new X509Certificate(readFileSync(join(dir, 'tls', 'server.crt'))));
  assert.notEqual(leaf, shown.server.sha256);
  assert.match(renew.stdout, new RegExp(`^Renewed the server certificate: SHA-256 ${leaf}, valid until .+Z, for 127\\.0\\.0\\.1, .+\nThe CA is unchanged: SHA-256 ${sha}\n$`));

  // The enrolment line `fleetboot agent token create` prints comes from GET /api/v1/tls and /api/v1/status
  // (the address: the first non-loopback one the certificate names).
  const token = ok(await cli(['agent', 'token', 'create', '--data-dir', dir]), 'agent token create');
  assert.match(token.stderr, new RegExp(`^On the machine: fleetboot-agent enroll --server https://[0-9.]+:${info.httpsPort} --ca-sha256 ${sha} --token ${token.stdout.trim()}$`, 'm'));
});
