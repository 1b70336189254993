import { openTestStore } from './store/temp-store.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { freeUdpPortPair } from '../test/dhcp-helpers.js';
import { loadConfig } from './config/config.js';
import { createLogger, silentLogger } from './lib/log.js';
import { createHost, openStore } from './store/index.js';
import { dhcpReservations, startFleetboot } from './server.js';

test('dhcpReservations() puts the config first, then hosts with an address; a clashing host is skipped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-res-'));
  const store = await openTestStore(dir);
  try {
    const config = loadConfig({ overrides: { dataDir: dir, dhcp: { reservations: [{ mac: '52:54:00:00:00:01', ip: '10.0.0.11', hostname: 'cfg' }] } } });
    await createHost(store.db, { mac: '52:54:00:00:00:02', name: 'web2', ip: '10.0.0.12' });
    await createHost(store.db, { mac: '52:54:00:00:00:01', name: 'dup-mac', ip: '10.0.0.13' });
    await createHost(store.db, { mac: '52:54:00:00:00:03' });
    assert.deepEqual(await dhcpReservations(config, store, silentLogger), [
      { mac: '52:54:00:00:00:01', ip: '10.0.0.11', hostname: 'cfg' },
      { mac: '52:54:00:00:00:02', ip: '10.0.0.12', hostname: 'web2' },
    ]);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('startFleetboot() in DHCP server mode loads the hosts\' reservations and reloads them after an API host change', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-res-srv-'));
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  // dhcp.port cannot be 0: a pair of ports free a moment ago; no DHCP packet is sent by this test.
  const base = await freeUdpPortPair();
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      serverIp: '127.0.0.1',
      http: { host: '127.0.0.1', port: 0 },
      https: { host: '127.0.0.1', port: 0 },
      tftp: { enabled: false },
      dhcp: {
        mode: 'server',
        bindAddress: '127.0.0.1',
        port: base,
        pxePort: base + 1,
        probeAtStart: false,
        pools: [{ start: '127.0.0.100', end: '127.0.0.199', netmask: '255.255.255.0' }],
        reservations: [{ mac: '52:54:00:00:00:01', ip: '127.0.0.11', hostname: 'cfg' }],
      },
    }),
  );
  const config = loadConfig({ cwd: dir, file: join(dir, 'config.json'), overrides: { dataDir: join(dir, 'data') } });
  const fb = await startFleetboot(config, { logger: createLogger('info', sink), ipxeDir: join(dir, 'no-ipxe') });
  try {
    const started = lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('DHCP server listening'));
    assert.ok(started, 'DHCP server started');
    assert.equal(started.reservations, 1, 'the config reservation; no hosts yet');
    const headers = { authorization: `Bearer ${fb.token}` };
    const reloads = () => lines.filter((l) => l.msg === 'DHCP reservations reloaded after a host change').map((l) => l.reservations);
    const add = await fb.app.inject({ method: 'POST', url: '/api/v1/hosts', headers, payload: { mac: '52:54:00:00:00:03', ip: '10.0.0.13' } });
    assert.equal(add.statusCode, 201, add.body);
    await fb.app.inject({ method: 'POST', url: '/api/v1/hosts', headers, payload: { mac: '52:54:00:00:00:04' } });
    await fb.app.inject({ method: 'PATCH', url: '/api/v1/hosts/52:54:00:00:00:04', headers, payload: { ip: '10.0.0.14' } });
    await fb.app.inject({ method: 'DELETE', url: '/api/v1/hosts/52:54:00:00:00:03', headers });
    assert.deepEqual(reloads(), [2, 2, 3, 2]);
  } finally {
    await fb.close();
  }
  // Restart on the same data directory: the hosts' reservations are loaded at start.
  lines.length = 0;
  const fb2 = await startFleetboot(config, { logger: createLogger('info', sink), ipxeDir: join(dir, 'no-ipxe') });
  try {
    const started = lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('DHCP server listening'));
    assert.equal(started?.reservations, 2);
  } finally {
    await fb2.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
