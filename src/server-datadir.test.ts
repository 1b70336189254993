/**
 * The data directory as `startFleetboot` leaves it: private to the server's
 * user (0700, database with -wal/-shm, token and server.json 0600), an older
 * lax one tightened with a warning; and a server with no boot environment
 * starts and answers boots.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig, type ConfigOverrides } from './config/config.js';
import { createLogger, silentLogger } from './lib/log.js';
import { startFleetboot } from './server.js';

const mode = (p: string): string => `0${(statSync(p).mode & 0o777).toString(8)}`;

function config(dataDir: string, extra: ConfigOverrides = {}): ReturnType<typeof loadConfig> {
  return loadConfig({ overrides: { dataDir, serverIp: '127.0.0.1', http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0 }, tftp: { enabled: false }, dhcp: { mode: 'off' }, ...extra } });
}

test('startFleetboot() on a fresh data directory: directory 0700, database (+ -wal, -shm), API token and server.json 0600', async () => {
  const root = mkdtempSync(join(tmpdir(), 'fleetboot-secrets-'));
  const dir = join(root, 'data');
  const old = process.umask(0o022); // the usual umask, which would give 0755 and 0644
  try {
    const fb = await startFleetboot(config(dir), { logger: silentLogger, ipxeDir: join(root, 'no-ipxe') });
    try {
      assert.equal(mode(dir), '0700');
      assert.equal(mode(join(dir, 'fleetboot.db')), '0600');
      assert.ok(existsSync(join(dir, 'fleetboot.db-wal')), 'WAL mode: the -wal file exists while the server runs');
      assert.equal(mode(join(dir, 'fleetboot.db-wal')), '0600');
      assert.equal(mode(join(dir, 'fleetboot.db-shm')), '0600');
      assert.equal(mode(join(dir, 'api-token')), '0600');
      assert.equal(mode(join(dir, 'server.json')), '0600');
      assert.equal(mode(join(dir, 'entries')), '0700');
      assert.equal(fb.firstStart, true);
    } finally {
      await fb.close();
    }
    const again = await startFleetboot(config(dir), { logger: silentLogger, ipxeDir: join(root, 'no-ipxe') });
    assert.equal(again.firstStart, false);
    await again.close();
  } finally {
    process.umask(old);
    rmSync(root, { recursive: true, force: true });
  }
});

test('startFleetboot() tightens a data directory and database left group/world-readable by an older version, and warns', async () => {
  const root = mkdtempSync(join(tmpdir(), 'fleetboot-secrets-'));
  const dir = join(root, 'data');
  try {
    const first = await startFleetboot(config(dir), { logger: silentLogger, ipxeDir: join(root, 'no-ipxe') });
    await first.close();
    chmodSync(dir, 0o755);
    chmodSync(join(dir, 'fleetboot.db'), 0o644);
    chmodSync(join(dir, 'api-token'), 0o644);
    let log = '';
    const sink = new Writable({ write(chunk: Buffer, _enc, cb) { log += chunk.toString(); cb(); } });
    const fb = await startFleetboot(config(dir), { logger: createLogger('info', sink), ipxeDir: join(root, 'no-ipxe') });
    await fb.close();
    assert.equal(mode(dir), '0700');
    assert.equal(mode(join(dir, 'fleetboot.db')), '0600');
    assert.equal(mode(join(dir, 'api-token')), '0600');
    const warn = log.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { level: number; msg: string; was?: string }).find((r) => r.level === 40 && /data directory/.test(r.msg));
    assert.ok(warn, log);
    assert.equal(warn.was, '0755');
    assert.match(warn.msg, /was mode 0755 .* now 0700/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('startFleetboot() starts and answers boots with an empty boot environment directory', async () => {
  const root = mkdtempSync(join(tmpdir(), 'fleetboot-secrets-'));
  try {
    const bootEnvDir = join(root, 'bootenv');
    mkdirSync(bootEnvDir);
    const fb = await startFleetboot(config(join(root, 'data'), { imaging: { bootEnvDir } }), { logger: silentLogger, ipxeDir: join(root, 'no-ipxe') });
    try {
      const script = await fetch(`${fb.url}/boot.ipxe`);
      assert.equal(script.status, 200);
      const decide = await (await fetch(`${fb.url}/boot/decide?mac=52-54-00-00-00-01`)).text();
      assert.match(decide, /^#!ipxe/);
      assert.equal((await fetch(`${fb.url}/boot/env/vmlinuz`)).status, 404);
    } finally {
      await fb.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
