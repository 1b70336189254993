/**
 * The unit's SystemCallFilter= (packaging/fleetboot.service) against what
 * the server really calls: `fleetboot serve` (the CLI bundled like the
 * compiled program, test/lab/cli-bundle.ts) runs under `strace -f` on
 * loopback while it starts, answers the API, /api/v1/metrics, the iPXE
 * script and a TFTP transfer (native UDP backend), and stops on SIGTERM.
 * Every system call of every thread must be in the filter's sets as this
 * machine's systemd expands them (`systemd-analyze syscall-filter`; @default
 * is always allowed): a call outside them would fail with EPERM
 * (SystemCallErrorNumber=EPERM) in the service.
 *
 * The other sandboxing settings are not exercised here (no running systemd
 * on the test machine): see README "Run as a service".
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { program, resolveArgv } from '../src/lib/programs.js';
import { bundledCli } from './lab/cli-bundle.js';
import { unitSettings, UNIT_FILE } from './service-unit.js';
import { waitUntil } from './cli-helpers.js';

const work = mkdtempSync(join(tmpdir(), 'fleetboot-syscalls-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** `systemd-analyze syscall-filter`: every set's names (system calls and nested @sets). */
function filterSets(): Map<string, string[]> {
  const r = spawnSync(program('systemd-analyze'), ['syscall-filter'], { encoding: 'utf8' });
  if (r.error) throw new Error(`systemd-analyze is missing (bash scripts/install-deps.sh --with-test): ${r.error.message}`);
  const sets = new Map<string, string[]>();
  let current: string[] | null = null;
  for (const line of r.stdout.split('\n')) {
    if (/^@[\w-]+$/.test(line)) sets.set(line, (current = []));
    else if (current && /^\s+[@\w-]+$/.test(line)) current.push(line.trim());
    else if (!/^\s+#/.test(line)) current = line.trim() === '' ? current : null;
  }
  return sets;
}

function expand(names: readonly string[], sets: Map<string, string[]>, out = new Set<string>(), seen = new Set<string>()): Set<string> {
  for (const n of names) {
    if (!n.startsWith('@')) out.add(n);
    else if (!seen.has(n)) {
      seen.add(n);
      const inner = sets.get(n);
      if (!inner) throw new Error(`systemd-analyze does not know the set ${n}`);
      expand(inner, sets, out, seen);
    }
  }
  return out;
}

test('every system call the server makes is in the unit\'s SystemCallFilter (strace -f, start to stop)', { timeout: 5 * 60_000 }, async (t) => {
  const line = unitSettings(readFileSync(UNIT_FILE, 'utf8')).find((l) => l.startsWith('SystemCallFilter='));
  assert.ok(line, 'the unit has no SystemCallFilter=');
  assert.ok(unitSettings(readFileSync(UNIT_FILE, 'utf8')).includes('SystemCallErrorNumber=EPERM'));
  const sets = filterSets();
  const allowed = expand(['@default', ...line.slice('SystemCallFilter='.length).trim().split(/\s+/)], sets);
  assert.ok(allowed.has('sendmmsg') && allowed.has('epoll_wait'), `the sets were not read: ${allowed.size} names`);

  const dataDir = join(work, 'data');
  const config = join(work, 'fleetboot.json');
  writeFileSync(config, JSON.stringify({ tftp: { bindAddress: '127.0.0.1' } }));
  const trace = join(work, 'strace.log');
  const cli = resolveArgv(await bundledCli());
  const argv = ['-f', '-qq', '-o', trace, '--', ...cli, 'serve', '--allow-root', '--config', config, '--server-ip', '127.0.0.1', '--http-host', '127.0.0.1', '--http-port', '0', '--https-host', '127.0.0.1', '--https-port', '0', '--dhcp', 'off', '--tftp-port', '0', '--data-dir', dataDir, '--log-format', 'json'];
  const server = spawn(program('strace'), argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  server.stdout.on('data', (b: Buffer) => (log += b.toString()));
  server.stderr.on('data', (b: Buffer) => (log += b.toString()));
  try {
    await waitUntil(() => existsSync(join(dataDir, 'server.json')), 'server.json', 60_000, server);
    const info = JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8')) as { url: string; tftpPort: number; httpsUrl: string };
    const token = readFileSync(join(dataDir, 'api-token'), 'utf8').trim();
    const curl = (args: string[]): string => {
      const r = spawnSync(program('curl'), ['-sS', '--fail', '--max-time', '20', ...args], { encoding: 'buffer' });
      assert.equal(r.status, 0, `curl ${args.join(' ')}: ${r.stderr.toString()}`);
      return r.stdout.toString('latin1');
    };
    assert.match(curl(['-H', `Authorization: Bearer ${token}`, `${info.url}/api/v1/status`]), /"name":"fleetboot"/);
    assert.match(curl(['-H', `Authorization: Bearer ${token}`, `${info.url}/api/v1/metrics`]), /^# TYPE fleetboot_tftp_transfers_total counter$/m);
    curl(['-k', '-H', `Authorization: Bearer ${token}`, `${info.httpsUrl}/api/v1/status`]);
    curl([`${info.url}/boot.ipxe`]);
    const kpxe = curl([`tftp://127.0.0.1:${info.tftpPort}/undionly.kpxe`]);
    assert.ok(kpxe.length > 10_000, 'the TFTP transfer');
  } finally {
    // SIGTERM to the server itself (server.json has its pid; strace would only detach on its own SIGTERM), then strace ends with it.
    let pid: number | null = null;
    try {
      pid = (JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8')) as { pid: number }).pid;
    } catch {
      pid = null;
    }
    if (pid !== null) process.kill(pid, 'SIGTERM');
    else server.kill('SIGKILL');
    const exited = new Promise((r) => (server.exitCode !== null || server.signalCode !== null ? r(null) : server.once('exit', r)));
    const late = setTimeout(() => server.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(late);
  }
  assert.match(log, /"msg":"fleetboot stopped"/, `the server did not stop cleanly:\n${log.slice(-2000)}`);
  const called = new Set<string>();
  for (const l of readFileSync(trace, 'utf8').split('\n')) {
    const m = /^\d+\s+([a-z_0-9]+)\(/.exec(l);
    if (m?.[1]) called.add(m[1]);
  }
  // The exec of node by strace itself is the only call before the server runs.
  assert.ok(called.has('execve') && called.size > 30, `${called.size} system calls traced`);
  const outside = [...called].filter((c) => !allowed.has(c)).sort();
  t.diagnostic(`${called.size} distinct system calls, all in SystemCallFilter=${line.slice('SystemCallFilter='.length)}: ${outside.length === 0}`);
  assert.deepEqual(outside, [], `system calls outside the unit's filter (they would fail with EPERM under systemd)`);
});
