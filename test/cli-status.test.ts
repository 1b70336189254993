/**
 * `fleetboot status` shows the DHCP mode as the server runs it: the real CLI,
 * spawned, against `fleetboot serve` on 127.0.0.1 in DHCP server mode (ports
 * from a pair found free; no DHCP packet is sent), and off. Also the status
 * route itself (app.inject) and the CLI's formatting of every mode.
 */
import { openTestStore, testStoreOverrides } from '../src/store/temp-store.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, spawnServe, waitUntil } from './cli-helpers.js';
import { freeUdpPortPair } from './dhcp-helpers.js';
import { dhcpStatusText } from '../src/cli/commands.js';
import { loadConfig } from '../src/config/config.js';
import { silentLogger } from '../src/lib/log.js';
import { buildApp } from '../src/http/app.js';
import { ensureApiToken, openStore } from '../src/store/index.js';

test('dhcpStatusText() shows proxy, server and off with their ports', () => {
  assert.equal(dhcpStatusText({ dhcp: { mode: 'proxy', port: 67, pxePort: 4011 } }), 'proxy, ports 67/4011');
  assert.equal(dhcpStatusText({ dhcp: { mode: 'server', port: 67, pxePort: 4011 } }), 'server, ports 67/4011');
  assert.equal(dhcpStatusText({ dhcp: { mode: 'off', port: null, pxePort: null } }), 'off');
  assert.equal(dhcpStatusText({}), '-');
  assert.equal(dhcpStatusText(null), '-');
});

test('GET /api/v1/status gives the DHCP mode that runs: off when no DHCP service runs, whatever the config says', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-status-api-'));
  const config = loadConfig({ overrides: { ...(await testStoreOverrides(dir)), dataDir: dir, serverIp: '127.0.0.1', dhcp: { mode: 'proxy' } } });
  const store = await openTestStore(config.dataDir);
  const token = ensureApiToken(config.dataDir);
  let dhcpRunning = false;
  const app = buildApp({
    store,
    config,
    serverIp: '127.0.0.1',
    logger: silentLogger,
    token,
    runtime: () => ({ httpPort: 8080, httpsPort: null, tftpPort: null, dhcpPort: dhcpRunning ? 6767 : null, pxePort: dhcpRunning ? 6768 : null }),
  });
  try {
    const get = async (): Promise<unknown> => (await app.inject({ method: 'GET', url: '/api/v1/status', headers: { authorization: `Bearer ${token}` } })).json();
    assert.deepEqual(((await get()) as { dhcp: unknown }).dhcp, { mode: 'off', port: null, pxePort: null });
    dhcpRunning = true;
    assert.deepEqual(((await get()) as { dhcp: unknown }).dhcp, { mode: 'proxy', port: 6767, pxePort: 6768 });
  } finally {
    await app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fleetboot status shows "dhcp server, ports N/N+1" for a server in DHCP server mode, and "off" without DHCP', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-cli-status-'));
  const base = await freeUdpPortPair();
  const configFile = join(dir, 'fleetboot.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      tftp: { enabled: false },
      dhcp: { mode: 'server', bindAddress: '127.0.0.1', port: base, pxePort: base + 1, probeAtStart: false, pools: [{ start: '127.0.0.100', end: '127.0.0.199', netmask: '255.255.255.0' }] },
    }),
  );
  const data = join(dir, 'data');
  const { server, log } = spawnServe(data, ['--config', configFile]);
  try {
    await waitUntil(() => existsSync(join(data, 'server.json')), 'server.json', 30_000, server);
    const [table, json] = await Promise.all([cli(['status', '--data-dir', data]), cli(['status', '--json', '--data-dir', data])]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`^dhcp\\s+server, ports ${base}/${base + 1}$`, 'm'), table.stdout + log());
    assert.match(table.stdout, /^tftp\s+off$/m);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual((JSON.parse(json.stdout) as { dhcp: unknown }).dhcp, { mode: 'server', port: base, pxePort: base + 1 });
    const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
    server.kill('SIGTERM');
    assert.equal(await exited, 0, log());
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
  }

  const off = spawnServe(data);
  try {
    await waitUntil(() => existsSync(join(data, 'server.json')), 'server.json', 30_000, off.server);
    const table = await cli(['status', '--data-dir', data]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^dhcp\s+off$/m);
    const exited = new Promise<number | null>((r) => off.server.once('exit', (code) => r(code)));
    off.server.kill('SIGTERM');
    assert.equal(await exited, 0, off.log());
  } finally {
    if (off.server.exitCode === null) off.server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
