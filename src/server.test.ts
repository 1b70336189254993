import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeUdpPortPair } from '../test/dhcp-helpers.js';
import { loadConfig } from './config/config.js';
import { FleetbootError } from './lib/errors.js';
import { silentLogger } from './lib/log.js';
import { populateTftpRoot, resolveServerIp, startFleetboot } from './server.js';
import { parseIpxeManifest } from './lib/ipxe-files.js';
import { createHash } from 'node:crypto';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'fleetboot-server-'));
}

test('populateTftpRoot() copies missing iPXE binaries as regular files and keeps existing ones', async () => {
  const dir = tmp();
  try {
    const src = join(dir, 'ipxe');
    mkdirSync(src);
    writeFileSync(join(src, 'undionly.kpxe'), 'bios');
    writeFileSync(join(src, 'snponly.efi'), 'efi');
    const root = join(dir, 'root', 'tftp');
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, 'snponly.efi'), 'custom');
    const copied = await populateTftpRoot(root, silentLogger, src);
    assert.deepEqual(copied, ['undionly.kpxe']);
    assert.ok(lstatSync(join(root, 'undionly.kpxe')).isFile());
    assert.equal(readFileSync(join(root, 'snponly.efi'), 'utf8'), 'custom');
    assert.ok(!existsSync(join(root, 'ipxe.efi')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('populateTftpRoot() records what it copies, and packaged files already there, in the manifest', async () => {
  const dir = tmp();
  try {
    const src = join(dir, 'ipxe');
    mkdirSync(src);
    writeFileSync(join(src, 'undionly.kpxe'), 'bios');
    writeFileSync(join(src, 'snponly.efi'), 'efi');
    writeFileSync(join(src, 'ipxe.efi'), 'full');
    const root = join(dir, 'tftp');
    mkdirSync(root);
    writeFileSync(join(root, 'snponly.efi'), 'efi'); // the packaged file, copied by hand
    writeFileSync(join(root, 'ipxe.efi'), 'custom'); // someone else's
    const manifestFile = join(dir, 'ipxe-manifest.json');
    assert.deepEqual(await populateTftpRoot(root, silentLogger, src, manifestFile), ['undionly.kpxe']);
    const m = parseIpxeManifest(readFileSync(manifestFile, 'utf8'));
    assert.deepEqual(Object.keys(m).sort(), ['snponly.efi', 'undionly.kpxe']);
    assert.equal(m['undionly.kpxe']?.sha256, createHash('sha256').update('bios').digest('hex'));
    assert.equal(m['undionly.kpxe']?.source, join(src, 'undionly.kpxe'));
    assert.equal(statSync(manifestFile).mode & 0o777, 0o600);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resolveServerIp() prefers serverIp, then the interface, and fails clearly', () => {
  assert.equal(resolveServerIp(loadConfig({ overrides: { serverIp: '10.9.8.7', interface: 'lo' } })), '10.9.8.7');
  assert.equal(resolveServerIp(loadConfig({ overrides: { interface: 'lo' } })), '127.0.0.1');
  assert.throws(
    () => resolveServerIp(loadConfig({ overrides: { interface: 'nope-if0' } })),
    (e: unknown) => e instanceof FleetbootError && /nope-if0/.test(e.message) && /--server-ip/.test(e.message),
  );
});

test('startFleetboot() starts HTTP, TFTP and proxyDHCP on loopback and closes them', async () => {
  const dir = tmp();
  const dhcpPort = await freeUdpPortPair();
  const config = loadConfig({
    overrides: {
      dataDir: dir,
      serverIp: '127.0.0.1',
      http: { host: '127.0.0.1', port: 0 },
      https: { host: '127.0.0.1', port: 0 },
      tftp: { bindAddress: '127.0.0.1', port: 0 },
      dhcp: { mode: 'proxy', bindAddress: '127.0.0.1', port: dhcpPort, pxePort: dhcpPort + 1 },
    },
  });
  const fb = await startFleetboot(config, { logger: silentLogger });
  try {
    assert.ok(fb.httpPort > 0);
    assert.ok((fb.tftpPort ?? 0) > 0);
    assert.deepEqual(fb.dhcpPorts, { dhcp: dhcpPort, pxe: dhcpPort + 1 });
    assert.equal(fb.baseUrl, `http://127.0.0.1:${fb.httpPort}`);
    const script = await (await fetch(`${fb.url}/boot.ipxe`)).text();
    assert.ok(script.includes(`chain --replace --autofree http://127.0.0.1:${fb.httpPort}/boot/decide?`));
    const info = JSON.parse(readFileSync(join(dir, 'server.json'), 'utf8')) as { url: string; pid: number };
    assert.equal(info.url, fb.url);
    assert.equal(info.pid, process.pid);
    const status = await fetch(`${fb.url}/api/v1/status`, { headers: { authorization: `Bearer ${fb.token}` } });
    const s = (await status.json()) as { tftp: { port: number }; dhcp: { port: number } };
    assert.equal(s.tftp.port, fb.tftpPort);
    assert.equal(s.dhcp.port, dhcpPort);
  } finally {
    await fb.close();
    await fb.close();
  }
  assert.ok(!existsSync(join(dir, 'server.json')));
  await assert.rejects(fetch(`${fb.url}/boot.ipxe`));
  rmSync(dir, { recursive: true, force: true });
});

test('startFleetboot() releases everything when a later service fails to start', async () => {
  const dir = tmp();
  try {
    const config = loadConfig({
      overrides: { dataDir: dir, serverIp: '127.0.0.1', http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0 }, tftp: { enabled: false }, dhcp: { mode: 'proxy', bindAddress: '203.0.113.1', port: 30067, pxePort: 30068 } },
    });
    await assert.rejects(startFleetboot(config, { logger: silentLogger }));
    // The database was closed and the HTTP port released: a second start on the same data dir works.
    const ok = await startFleetboot({ ...config, dhcp: { ...config.dhcp, mode: 'off' } }, { logger: silentLogger });
    await ok.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('startFleetboot() refuses a TFTP root that contains the data directory', async () => {
  const dir = tmp();
  try {
    const config = loadConfig({ overrides: { dataDir: join(dir, 'data'), serverIp: '127.0.0.1', tftp: { root: dir, enabled: false }, dhcp: { mode: 'off' }, http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0 } } });
    await assert.rejects(startFleetboot(config, { logger: silentLogger }), /contains the data directory/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
