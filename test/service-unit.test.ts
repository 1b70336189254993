/**
 * Fleetboot's systemd unit (packaging/fleetboot.service), as
 * scripts/install-service.sh installs it (--dest-root TREE --no-program):
 *
 * - the settings asked for: its own user, CAP_NET_BIND_SERVICE and nothing
 *   else (ambient and bounding), NoNewPrivileges, ProtectSystem=strict,
 *   StateDirectory=fleetboot 0700, Restart=on-failure, JSON logs to the
 *   journal, no MemoryDenyWriteExecute (V8's JIT);
 * - `systemd-analyze verify --root=TREE` passes on it (TREE: this machine's
 *   unit files, the installed unit, a stand-in for ExecStart's node) and
 *   fails on a unit with a misspelt key or a missing ExecStart program;
 * - `systemd-analyze security --offline=yes` rates its exposure "OK" (below 2.5);
 * - the install script writes the node it found into ExecStart, an empty
 *   config, the CLI link, and refuses unknown arguments.
 *
 * The capabilities this test reads from the unit are the ones
 * test/lab/service.e2e.test.ts gives the server it boots a machine from.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { program } from '../src/lib/programs.js';
import { unitCapabilities, unitSettings } from './service-unit.js';

const ROOT = new URL('..', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'fleetboot-service-unit-'));
const tree = join(work, 'root');
const UNIT = 'etc/systemd/system/fleetboot.service';

after(() => rmSync(work, { recursive: true, force: true }));

function install(args: string[]): { status: number; out: string } {
  const r = spawnSync(program('bash'), [join(ROOT, 'scripts/install-service.sh'), ...args], { encoding: 'utf8' });
  return { status: r.status ?? -1, out: r.stdout + r.stderr };
}

function analyze(args: string[]): { status: number; out: string } {
  const r = spawnSync(program('systemd-analyze'), args, { encoding: 'utf8', cwd: work });
  if (r.error) throw new Error(`systemd-analyze is missing (bash scripts/install-deps.sh --with-test installs systemd): ${r.error.message}`);
  return { status: r.status ?? -1, out: (r.stdout + r.stderr).trim() };
}

/** verify passes only with status 0 and nothing said (systemd warns about an unknown key and goes on with status 0). */
function verify(unitText: string): { ok: boolean; output: string } {
  writeFileSync(join(tree, UNIT), unitText);
  const r = analyze(['verify', `--root=${tree}`, 'fleetboot.service']);
  return { ok: r.status === 0 && r.out === '', output: `status ${r.status}: ${r.out}` };
}

test('install-service.sh --dest-root installs the unit with the node it found, an empty config and the CLI link', () => {
  mkdirSync(tree, { recursive: true });
  const r = install(['--dest-root', tree, '--no-program']);
  assert.equal(r.status, 0, r.out);
  const unit = readFileSync(join(tree, UNIT), 'utf8');
  const node = realpathSync(process.execPath);
  assert.ok(unitSettings(unit).includes(`ExecStart=${node} /opt/fleetboot/bin/fleetboot.js serve --config /etc/fleetboot/config.json --data-dir /var/lib/fleetboot --log-format json`), unit);
  assert.equal(readFileSync(join(tree, 'etc/fleetboot/config.json'), 'utf8'), '{}\n');
  assert.equal(readlinkSync(join(tree, 'usr/local/bin/fleetboot')), '/opt/fleetboot/bin/fleetboot.js');
  // A second run keeps the admin's configuration.
  writeFileSync(join(tree, 'etc/fleetboot/config.json'), '{"interface":"eth1"}\n');
  assert.equal(install(['--dest-root', tree, '--no-program']).status, 0);
  assert.equal(readFileSync(join(tree, 'etc/fleetboot/config.json'), 'utf8'), '{"interface":"eth1"}\n');
  const bad = install(['--dest-root', tree, '--frobnicate']);
  assert.equal(bad.status, 1);
  assert.match(bad.out, /unknown argument '--frobnicate': expected --no-start, --dest-root DIR or --no-program/);
});

test('the unit: its own user, only CAP_NET_BIND_SERVICE, the sandbox, state in /var/lib/fleetboot 0700, restart on failure', () => {
  const unit = readFileSync(join(ROOT, 'packaging/fleetboot.service'), 'utf8');
  const settings = unitSettings(unit);
  for (const s of [
    'User=fleetboot',
    'Group=fleetboot',
    'AmbientCapabilities=CAP_NET_BIND_SERVICE',
    'CapabilityBoundingSet=CAP_NET_BIND_SERVICE',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'StateDirectory=fleetboot',
    'StateDirectoryMode=0700',
    'UMask=0077',
    'Restart=on-failure',
    'Wants=network-online.target',
    'After=network-online.target',
    'WantedBy=multi-user.target',
  ]) {
    assert.ok(settings.includes(s), `the unit lacks ${s}`);
  }
  assert.ok(!settings.some((s) => s.startsWith('MemoryDenyWriteExecute=')), "MemoryDenyWriteExecute breaks V8's JIT");
  assert.ok(!settings.some((s) => s.startsWith('StandardOutput=') || s.startsWith('DynamicUser=')), 'logs go to the journal (the default); the user is a real one');
  assert.deepEqual(unitCapabilities(unit), ['net_bind_service']);
});

test('systemd-analyze verify passes on the installed unit and fails on a broken one; security rates it OK', () => {
  assert.ok(existsSync(join(tree, UNIT)), 'the install test did not run first');
  mkdirSync(join(tree, 'lib/systemd/system'), { recursive: true });
  cpSync('/lib/systemd/system', join(tree, 'lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  const unit = readFileSync(join(tree, UNIT), 'utf8');
  // ExecStart's program must exist in the tree: a stand-in at the node's path.
  const node = realpathSync(process.execPath);
  mkdirSync(join(tree, node, '..'), { recursive: true });
  writeFileSync(join(tree, node), '#!/bin/sh\n');
  chmodSync(join(tree, node), 0o755);

  const good = verify(unit);
  assert.ok(good.ok, good.output);
  const typo = verify(unit.replace('\nRestart=on-failure', '\nRestrat=on-failure'));
  assert.ok(!typo.ok && /Restrat/.test(typo.output), `a misspelt key passed: ${typo.output}`);
  const missing = verify(unit.replace(`ExecStart=${node} `, 'ExecStart=/usr/bin/no-such-node '));
  assert.ok(!missing.ok && /no-such-node/.test(missing.output), `a missing ExecStart program passed: ${missing.output}`);
  verify(unit);

  const sec = analyze(['security', '--offline=yes', `--root=${tree}`, 'fleetboot.service']);
  const level = /Overall exposure level for fleetboot\.service: ([\d.]+) (\w+)/.exec(sec.out);
  assert.ok(level, sec.out.slice(-500));
  assert.ok(Number(level[1]) < 2.5 && level[2] === 'OK', `exposure ${level[1]} ${level[2]}`);
});
