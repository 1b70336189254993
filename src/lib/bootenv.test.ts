import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BOOTENV_BUILD_COMMAND, bootEnvBuildCommand, parseBootEnvInfo, shellWord } from './bootenv.js';

test('bootEnvBuildCommand() adds --data-dir and --dir only when they differ from the defaults', () => {
  assert.equal(BOOTENV_BUILD_COMMAND, 'fleetboot bootenv build');
  assert.equal(bootEnvBuildCommand('/srv/x/data/bootenv', '/srv/x/data', '/srv/x'), 'fleetboot bootenv build');
  assert.equal(bootEnvBuildCommand('/var/lib/fb/bootenv', '/var/lib/fb', '/srv/x'), 'fleetboot bootenv build --data-dir /var/lib/fb');
  assert.equal(bootEnvBuildCommand('/opt/be', '/srv/x/data', '/srv/x'), 'fleetboot bootenv build --dir /opt/be');
  assert.equal(bootEnvBuildCommand("/tmp/it's here/bootenv", "/tmp/it's here", '/'), `fleetboot bootenv build --data-dir '/tmp/it'\\''s here'`);
  assert.equal(shellWord('/a/b-c_d.e'), '/a/b-c_d.e');
});

test('parseBootEnvInfo() keeps what is worth showing and tolerates anything else', () => {
  const info = parseBootEnvInfo(JSON.stringify({ builtAt: '2026-12-01T10:00:00Z', kernel: { package: 'linux-image-6.1.0-28-amd64', packageVersion: '6.1.119-1', version: '6.1.0-28-amd64' }, initrd: { compression: 'zstd' }, modules: ['a', 'b', 'c'], firmware: { missing: ['x.bin'] } }));
  assert.deepEqual(info, { builtAt: '2026-12-01T10:00:00Z', kernelVersion: '6.1.0-28-amd64', kernelPackage: '6.1.119-1', initrdCompression: 'zstd', modules: 3, firmwareMissing: 1 });
  assert.deepEqual(parseBootEnvInfo('{}'), { builtAt: null, kernelVersion: null, kernelPackage: null, initrdCompression: null, modules: null, firmwareMissing: null });
  assert.equal(parseBootEnvInfo('[1]'), null);
  assert.equal(parseBootEnvInfo('not json'), null);
});
