/**
 * The real CLI, spawned: `fleetboot serve` on 127.0.0.1 (HTTP port 0, DHCP
 * off, TFTP on a free high port bound to loopback), then entry/host commands
 * against it, with global options in various positions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { program } from '../src/lib/programs.js';
import { cli, spawnServe, waitUntil } from './cli-helpers.js';

const execFileP = promisify(execFile);

test('fleetboot serve + entry/host commands work end to end, with --json and --data-dir anywhere', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-cli-'));
  const files = mkdtempSync(join(tmpdir(), 'fleetboot-cli-src-'));
  const kernel = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) % 256));
  writeFileSync(join(files, 'vmlinuz'), kernel);
  writeFileSync(join(files, 'initrd.gz'), 'initrd-bytes');
  writeFileSync(join(files, 'fleetboot.json'), JSON.stringify({ tftp: { bindAddress: '127.0.0.1' } }));
  const { server, log } = spawnServe(dir, ['--config', join(files, 'fleetboot.json'), '--dhcp', 'off', '--tftp-port', '0']);
  try {
    await waitUntil(() => existsSync(join(dir, 'server.json')), 'server.json', 20_000, server);
    const info = JSON.parse(readFileSync(join(dir, 'server.json'), 'utf8')) as { url: string; httpPort: number; tftpPort: number };
    assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(info.tftpPort > 0);
    const token = readFileSync(join(dir, 'api-token'), 'utf8').trim();

    // entry add: local files are uploaded; a URL is kept as is. --json first, --data-dir last.
    const add = await cli(['--json', 'entry', 'add', 'deb', '--kernel', join(files, 'vmlinuz'), '--initrd', join(files, 'initrd.gz'), '--initrd', 'https://cdn.example/fw.img', '--cmdline', 'console=ttyS0 quiet', '--data-dir', dir]);
    assert.equal(add.code, 0, add.stderr);
    const entry = JSON.parse(add.stdout) as { name: string; kernel: string; initrds: string[]; cmdline: string };
    assert.deepEqual(entry, { ...entry, name: 'deb', kernel: 'vmlinuz', initrds: ['initrd.gz', 'https://cdn.example/fw.img'], cmdline: 'console=ttyS0 quiet' });

    // host add with --json in the middle and --data-dir=DIR form.
    const host = await cli(['host', '--json', 'add', '52-54-00-12-34-56', '--name', 'web1', `--data-dir=${dir}`]);
    assert.equal(host.code, 0, host.stderr);
    assert.equal((JSON.parse(host.stdout) as { mac: string }).mac, '52:54:00:12:34:56');

    const assign = await cli(['--data-dir', dir, 'host', 'assign', '52:54:00:12:34:56', 'deb']);
    assert.equal(assign.code, 0, assign.stderr);
    assert.match(assign.stdout, /52:54:00:12:34:56 \(web1\): boots entry deb/);

    // Human table, and --server/--token instead of the data dir.
    const list = await cli(['host', 'list', '--server', info.url, '--token', token]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^MAC\s+NAME\s+IP\s+ENTRY\s+UPDATED\n52:54:00:12:34:56\s+web1\s+-\s+deb\s+/);

    // The boot decision and the uploaded kernel, as iPXE would fetch them.
    const decide = await (await fetch(`${info.url}/boot/decide?mac=52-54-00-12-34-56&platform=efi`)).text();
    assert.match(decide, new RegExp(`^kernel http://127\\.0\\.0\\.1:${info.httpPort}/boot/entries/deb/vmlinuz initrd=initrd\\.gz initrd=fw\\.img console=ttyS0 quiet \\|\\| goto failed$`, 'm'));
    const got = Buffer.from(await (await fetch(`${info.url}/boot/entries/deb/vmlinuz`)).arrayBuffer());
    assert.ok(got.equals(kernel));

    // TFTP is up on its port and serves the iPXE binary copied into the root.
    const tftpFile = join(files, 'undionly.kpxe');
    await execFileP(program('curl'), ['-s', '--max-time', '10', '-o', tftpFile, `tftp://127.0.0.1:${info.tftpPort}/undionly.kpxe`]);
    assert.ok(readFileSync(tftpFile).equals(readFileSync(join(dir, 'tftp', 'undionly.kpxe'))));

    // Errors: clear message, non-zero exit.
    const [inUse, badMac, badToken] = await Promise.all([
      cli(['entry', 'rm', 'deb', '--data-dir', dir]),
      cli(['host', 'add', 'not-a-mac', '--data-dir', dir]),
      cli(['host', 'list', '--server', info.url, '--token', 'wrong']),
    ]);
    assert.equal(inUse.code, 1);
    assert.match(inUse.stderr, /^fleetboot: Boot entry 'deb' is assigned to 1 host\(s\)/);
    assert.equal(badMac.code, 1);
    assert.match(badMac.stderr, /MAC|mac/);
    assert.equal(badToken.code, 1);
    assert.match(badToken.stderr, /API token/);

    const unassign = await cli(['host', 'unassign', '52:54:00:12:34:56', '--data-dir', dir, '--json']);
    assert.equal((JSON.parse(unassign.stdout) as { entry: string | null }).entry, null);
    const rm = await cli(['entry', 'rm', 'deb', '--data-dir', dir]);
    assert.equal(rm.code, 0, rm.stderr);
    const entries = await cli(['entry', 'list', '--json', '--data-dir', dir]);
    assert.deepEqual(JSON.parse(entries.stdout), []);
    const hostRm = await cli(['--data-dir', dir, 'host', 'rm', '525400123456']);
    assert.equal(hostRm.code, 0, hostRm.stderr);
    assert.match(hostRm.stdout, /Deleted host/);

    // SIGTERM: orderly stop, server.json removed.
    const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
    server.kill('SIGTERM');
    assert.equal(await exited, 0, log());
    assert.ok(!existsSync(join(dir, 'server.json')));
    assert.match(log(), /"msg":"fleetboot stopped"/);
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    rmSync(files, { recursive: true, force: true });
  }
});

test('fleetboot without a running server explains how to find one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-cli-'));
  try {
    const [r, bad] = await Promise.all([cli(['host', 'list', '--data-dir', dir]), cli(['serve', '--dhcp', 'maybe', '--data-dir', dir])]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /No running server found: .*server\.json does not exist/);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--dhcp must be 'proxy', 'server' or 'off'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fleetboot serve as root: refused (exit 1, nothing opened) without --allow-root; FLEETBOOT_ALLOW_ROOT=1 lets it start', { skip: process.getuid?.() !== 0 ? 'needs root' : false }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-cli-root-'));
  const data = join(dir, 'data');
  try {
    const flags = ['--server-ip', '127.0.0.1', '--http-host', '127.0.0.1', '--http-port', '0', '--https-host', '127.0.0.1', '--https-port', '0', '--dhcp', 'off', '--no-tftp', '--data-dir', data];
    const refused = await cli(['serve', ...flags]);
    assert.equal(refused.code, 1, `exit ${refused.code}\n${refused.stderr}`);
    assert.match(refused.stderr, /fleetboot: refusing to run the server as root \(uid 0\): .*pass --allow-root \(or set FLEETBOOT_ALLOW_ROOT=1\)/);
    assert.equal(existsSync(data), false, 'the refused server created its data directory');
    const wrongValue = await cli(['serve', ...flags], { FLEETBOOT_ALLOW_ROOT: 'true' });
    assert.equal(wrongValue.code, 1);
    assert.match(wrongValue.stderr, /FLEETBOOT_ALLOW_ROOT is "true"; only "1" allows root/);
    // The override by the environment (--allow-root is spawnServe's, used by every other test here).
    const server = (await import('node:child_process')).spawn(program('node'), ['--import', 'tsx', join(new URL('..', import.meta.url).pathname, 'src/cli/main.ts'), 'serve', ...flags], {
      env: { ...process.env, FLEETBOOT_ALLOW_ROOT: '1' },
      stdio: 'ignore',
    });
    try {
      await waitUntil(() => existsSync(join(data, 'server.json')), 'server.json of the server allowed by FLEETBOOT_ALLOW_ROOT=1', 30_000, server);
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
