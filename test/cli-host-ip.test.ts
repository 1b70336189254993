/**
 * The real CLI, spawned: `fleetboot serve` on 127.0.0.1 (HTTP port 0, DHCP
 * and TFTP off), then the reserved-address commands of `fleetboot host`:
 * add --ip, reserve, unreserve, list (table and --json), and the refusals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, spawnServe, waitUntil } from './cli-helpers.js';

test('fleetboot host add --ip, host reserve, host unreserve and host list show and change reserved addresses', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-cli-ip-'));
  const { server, log } = spawnServe(dir);
  try {
    await waitUntil(() => existsSync(join(dir, 'server.json')), 'server.json', 20_000, server);
    const d = ['--data-dir', dir];

    const add = await cli(['host', 'add', '52:54:00:00:00:01', '--name', 'pc1', '--ip', '10.0.0.21', ...d]);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /^Added host 52:54:00:00:00:01 \(pc1\): .*, reserved address 10\.0\.0\.21$/m);
    const add2 = await cli(['--json', 'host', 'add', '525400000002', ...d]);
    assert.equal(add2.code, 0, add2.stderr);
    assert.equal((JSON.parse(add2.stdout) as { ip: string | null }).ip, null);

    const reserve = await cli(['host', 'reserve', '52-54-00-00-00-02', '10.0.0.22', ...d]);
    assert.equal(reserve.code, 0, reserve.stderr);
    assert.match(reserve.stdout, /^Reserved host 52:54:00:00:00:02: .*, reserved address 10\.0\.0\.22$/m);

    const table = await cli(['host', 'list', ...d]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^MAC\s+NAME\s+IP\s+ENTRY\s+UPDATED\n52:54:00:00:00:01\s+pc1\s+10\.0\.0\.21\s+-\s+\S+.*\n52:54:00:00:00:02\s+-\s+10\.0\.0\.22\s+-\s+/);

    // Refusals: taken (409), not an address, unknown host; clear message, exit 1.
    const [taken, bad, unknown, addTaken] = await Promise.all([
      cli(['host', 'reserve', '52:54:00:00:00:02', '10.0.0.21', ...d]),
      cli(['host', 'reserve', '52:54:00:00:00:02', '10.0.0.300', ...d]),
      cli(['host', 'reserve', '52:54:00:00:00:09', '10.0.0.29', ...d]),
      cli(['host', 'add', '52:54:00:00:00:03', '--ip', '10.0.0.22', ...d]),
    ]);
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /10\.0\.0\.21 is already reserved for host 52:54:00:00:00:01/);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Invalid reserved address "10\.0\.0\.300"/);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /No host with MAC 52:54:00:00:00:09/);
    assert.equal(addTaken.code, 1);
    assert.match(addTaken.stderr, /already reserved/);

    const unreserve = await cli(['host', 'unreserve', '52:54:00:00:00:01', ...d]);
    assert.equal(unreserve.code, 0, unreserve.stderr);
    assert.match(unreserve.stdout, /^Unreserved host 52:54:00:00:00:01 \(pc1\): no boot entry/m);
    assert.doesNotMatch(unreserve.stdout, /reserved address/);

    const json = await cli(['host', 'list', '--json', ...d]);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(
      (JSON.parse(json.stdout) as Array<{ mac: string; ip: string | null }>).map((h) => [h.mac, h.ip]),
      [
        ['52:54:00:00:00:01', null],
        ['52:54:00:00:00:02', '10.0.0.22'],
      ],
    );
    // Now free again, the address can be reserved by another host.
    const again = await cli(['host', 'add', '52:54:00:00:00:03', '--ip', '10.0.0.21', ...d]);
    assert.equal(again.code, 0, again.stderr);

    const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
    server.kill('SIGTERM');
    assert.equal(await exited, 0, log());
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
