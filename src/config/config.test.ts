import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from './config.js';
import { FleetbootError } from '../lib/errors.js';

test('loadConfig() gives the embedded defaults, frozen', () => {
  const c = loadConfig({ cwd: '/srv/x' });
  assert.equal(c.dataDir, '/srv/x/data');
  assert.equal(c.tftp.root, '/srv/x/data/tftp');
  assert.equal(c.dhcp.mode, 'proxy');
  assert.equal(c.dhcp.port, 67);
  assert.equal(c.dhcp.pxePort, 4011);
  assert.equal(c.tftp.port, 69);
  assert.equal(c.http.port, 8080);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.tftp));
});

test('loadConfig() layers the file, then overrides; the TFTP root follows the data dir unless set', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fbcfg-'));
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ dataDir: 'd1', http: { port: 9000 }, tftp: { dataPorts: { from: 64001, to: 65000 } } }));
  const c = loadConfig({ file, cwd: dir, overrides: { http: { port: 9001 } } });
  assert.equal(c.http.port, 9001);
  assert.equal(c.dataDir, join(dir, 'd1'));
  assert.equal(c.tftp.root, join(dir, 'd1', 'tftp'));
  assert.deepEqual(c.tftp.dataPorts, { from: 64001, to: 65000 });
  const c2 = loadConfig({ cwd: dir, overrides: { tftp: { root: '/srv/tftp' } } });
  assert.equal(c2.tftp.root, '/srv/tftp');
});

test('loadConfig() names the bad key and the value seen', () => {
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { http: { port: 70000 } } }), (e: unknown) => {
    return e instanceof FleetbootError && e.code === 'CONFIG' && /http\.port.*70000/.test(e.message);
  });
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { serverIp: '10.0.0.300' } }), /serverIp/);
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { tftp: { dataPorts: { from: 65000, to: 64001 } } } }), /dataPorts/);
  const dir = mkdtempSync(join(tmpdir(), 'fbcfg-'));
  writeFileSync(join(dir, 'bad.json'), '{"htp": {}}');
  assert.throws(() => loadConfig({ file: join(dir, 'bad.json'), cwd: dir }), /Unknown configuration key 'htp'/);
  writeFileSync(join(dir, 'junk.json'), '{not json');
  assert.throws(() => loadConfig({ file: join(dir, 'junk.json'), cwd: dir }), /not valid JSON/);
});

test('loadConfig() has imaging defaults and validates them', () => {
  const c = loadConfig({ cwd: '/srv/x' });
  assert.deepEqual(c.imaging, {
    bootEnvDir: '/srv/x/data/bootenv',
    maxTransfers: 10,
    agentTimeoutSeconds: 300,
    progressIntervalSeconds: 3,
    unknownPolicy: 'menu',
    kernelArgs: '',
    maxImageBytes: 2 ** 40,
    maxAttempts: 3,
  });
  assert.equal(loadConfig({ cwd: '/srv/x', overrides: { dataDir: '/d' } }).imaging.bootEnvDir, '/d/bootenv');
  assert.equal(loadConfig({ cwd: '/srv/x', overrides: { imaging: { bootEnvDir: 'be' } } }).imaging.bootEnvDir, '/srv/x/be');
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { imaging: { maxTransfers: 0 } } }), /imaging\.maxTransfers.*0/);
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { imaging: { unknownPolicy: 'boot' as 'menu' } } }), /imaging\.unknownPolicy/);
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { imaging: { kernelArgs: 'quiet ${x}' } } }), /imaging\.kernelArgs/);
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { imaging: { kernelArgs: 'a || b' } } }), /imaging\.kernelArgs/);
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { imaging: { kernelArgs: 'fleetboot.token=abc' } } }), /imaging\.kernelArgs/);
  assert.throws(() => loadConfig({ cwd: '/tmp', overrides: { imaging: { agentTimeoutSeconds: 4, progressIntervalSeconds: 3 } } }), /progressIntervalSeconds/);
  assert.equal(loadConfig({ cwd: '/tmp', overrides: { imaging: { kernelArgs: 'quiet loglevel=3 fleetboot.onexit=poweroff' } } }).imaging.kernelArgs, 'quiet loglevel=3 fleetboot.onexit=poweroff');
});
