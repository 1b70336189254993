/**
 * The first start as a sysadmin sees it, through the real CLI: `fleetboot
 * serve` on a data directory that does not exist yet (private modes, the
 * human-readable log, the start summary on stderr with the next steps, no
 * boot environment needed), the CLI's token sources against it, `bootenv
 * status`, and a second start (summary without the next steps).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, spawnServe, waitUntil } from './cli-helpers.js';

const mode = (p: string): string => `0${(statSync(p).mode & 0o777).toString(8)}`;

async function stop(server: ReturnType<typeof spawnServe>['server']): Promise<number | null> {
  const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
  server.kill('SIGTERM');
  return exited;
}

test('fleetboot serve on a new data directory: 0700/0600, pretty log, start summary; token sources; bootenv status', async () => {
  const root = mkdtempSync(join(tmpdir(), 'fleetboot-first-'));
  const dir = join(root, 'data');
  let s = spawnServe(dir, ['--dhcp', 'off', '--no-tftp', '--log-format', 'pretty']);
  try {
    await waitUntil(() => /Next steps/.test(s.stderr()), 'the start summary', 30_000, s.server);
    // Private from the first moment: acceptance line of the issue.
    assert.equal(mode(dir), '0700');
    assert.equal(mode(join(dir, 'fleetboot.db')), '0600');
    assert.equal(mode(join(dir, 'api-token')), '0600');
    const token = readFileSync(join(dir, 'api-token'), 'utf8').trim();
    const info = JSON.parse(readFileSync(join(dir, 'server.json'), 'utf8')) as { url: string; httpPort: number };

    // The summary: where it serves, the token file, the missing boot environment and how to build it, the next commands.
    const summary = s.stderr();
    assert.match(summary, /^Fleetboot \d+\.\d+\.\d+\S* is running \(data directory .*\/data\)$/m);
    assert.match(summary, new RegExp(`^  HTTP +http://127\\.0\\.0\\.1:${info.httpPort}/boot\\.ipxe \\(iPXE script\\) and .*/api/v1 \\(REST API\\); TCP ${info.httpPort} on 127\\.0\\.0\\.1$`, 'm'));
    assert.match(summary, /^  TFTP +off$/m);
    assert.match(summary, /^  DHCP +off: your DHCP server must send the boot file/m);
    assert.match(summary, new RegExp(`^  API token +${join(dir, 'api-token')} \\(mode 0600`, 'm'));
    assert.match(summary, new RegExp(`^  Imaging +no boot environment in ${join(dir, 'bootenv')}: machines still boot`, 'm'));
    assert.match(summary, new RegExp(`build it with: (npx )?fleetboot bootenv build --data-dir ${dir}$`, 'm'));
    assert.match(summary, new RegExp(`^  (npx )?fleetboot host add MAC --name NAME --entry NAME --data-dir ${dir}$`, 'm'));
    assert.ok(!summary.includes(token), 'the summary names the token file, never the token');
    // The log on stdout: one readable line per event, no JSON.
    const lines = s.stdout().split('\n').filter((l) => l !== '');
    assert.ok(lines.some((l) => /^\d\d:\d\d:\d\d\.\d{3} INFO  http +HTTP listening; iPXE script at http:\/\/127\.0\.0\.1:\d+\/boot\.ipxe address=127\.0\.0\.1 port=\d+/.test(l)), s.stdout());
    assert.ok(lines.every((l) => !l.startsWith('{')), s.stdout());

    // Token sources: --token-file, FLEETBOOT_TOKEN, and their order.
    const tokenFile = join(root, 'token-copy');
    writeFileSync(tokenFile, `${token}\n`);
    const wrongFile = join(root, 'token-wrong');
    writeFileSync(wrongFile, 'f'.repeat(64));
    const [byFile, byEnv, envBeatsDataDir, fileBeatsEnv, tokenBeatsFile, missing] = await Promise.all([
      cli(['host', 'list', '--json', '--server', info.url, '--token-file', tokenFile]),
      cli(['host', 'list', '--json', '--server', info.url], { FLEETBOOT_TOKEN: token }),
      cli(['host', 'list', '--data-dir', dir], { FLEETBOOT_TOKEN: 'e'.repeat(64) }),
      cli(['host', 'list', '--data-dir', dir, '--token-file', tokenFile], { FLEETBOOT_TOKEN: 'e'.repeat(64) }),
      cli(['host', 'list', '--data-dir', dir, '--token-file', wrongFile, '--token', token]),
      cli(['host', 'list', '--data-dir', dir, '--token-file', join(root, 'absent')]),
    ]);
    assert.equal(byFile.code, 0, byFile.stderr);
    assert.deepEqual(JSON.parse(byFile.stdout), []);
    assert.equal(byEnv.code, 0, byEnv.stderr);
    assert.equal(envBeatsDataDir.code, 1);
    assert.match(envBeatsDataDir.stderr, /API token/);
    assert.equal(fileBeatsEnv.code, 0, fileBeatsEnv.stderr);
    assert.equal(tokenBeatsFile.code, 0, tokenBeatsFile.stderr);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, `fleetboot: Cannot read the API token file ${join(root, 'absent')} (--token-file): it does not exist\n`);

    // bootenv status: missing (exit 1) and how to build it; then a built one (exit 0).
    const st = await cli(['bootenv', 'status', '--data-dir', dir]);
    assert.equal(st.code, 1);
    assert.match(st.stdout, new RegExp(`^Boot environment in ${join(dir, 'bootenv')}: missing\\n  vmlinuz +missing\\n  initrd\\.img +missing\\n`));
    assert.match(st.stdout, new RegExp(`Imaging tasks cannot run until it is built: fleetboot bootenv build --data-dir ${dir}\\n$`));
    const be = join(root, 'be');
    mkdirSync(be);
    writeFileSync(join(be, 'vmlinuz'), Buffer.alloc(3000));
    writeFileSync(join(be, 'initrd.img'), Buffer.alloc(5000));
    writeFileSync(join(be, 'bootenv.json'), JSON.stringify({ builtAt: '2026-12-01T10:00:00Z', kernel: { version: '6.1.0-28-amd64' }, initrd: { compression: 'zstd' }, modules: ['ahci', 'nvme'], firmware: { missing: [] } }));
    const ok = await cli(['bootenv', 'status', '--dir', be, '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    const j = JSON.parse(ok.stdout) as { ready: boolean; files: Array<{ name: string; bytes: number }>; info: { kernelVersion: string; modules: number } };
    assert.equal(j.ready, true);
    assert.deepEqual(j.files, [{ name: 'vmlinuz', bytes: 3000 }, { name: 'initrd.img', bytes: 5000 }]);
    assert.equal(j.info.kernelVersion, '6.1.0-28-amd64');
    assert.equal(j.info.modules, 2);
    const human = await cli(['bootenv', 'status', '--dir', be]);
    assert.match(human.stdout, /: ready\n  vmlinuz +2\.9 KiB\n  initrd\.img +4\.9 KiB\n  built 2026-12-01T10:00:00Z, kernel 6\.1\.0-28-amd64, 2 modules, initramfs zstd\n$/);

    assert.equal(await stop(s.server), 0, s.log());

    // A second start: the summary again, without the next steps; JSON log when asked.
    s = spawnServe(dir, ['--dhcp', 'off', '--no-tftp', '--log-format', 'json']);
    await waitUntil(() => /Commands /.test(s.stderr()), 'the second start summary', 30_000, s.server);
    assert.doesNotMatch(s.stderr(), /Next steps/);
    assert.match(s.stderr(), /^  Commands +(npx )?fleetboot --help \(with --data-dir /m);
    assert.ok(s.stdout().split('\n').filter((l) => l !== '').every((l) => l.startsWith('{')), s.stdout());
    assert.equal(await stop(s.server), 0, s.log());

    const bad = await cli(['serve', '--log-format', 'fancy', '--data-dir', dir]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--log-format must be one of auto, pretty, json: current value is "fancy"/);
  } finally {
    if (s.server.exitCode === null) s.server.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }
});
