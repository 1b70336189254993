/**
 * The real CLI, spawned against `fleetboot serve` on 127.0.0.1 (HTTP port 0,
 * DHCP and TFTP off): `image list|show|rm`, `task capture|deploy|inventory|
 * list|show|cancel|retry|wait` and `host show`, each with and without --json,
 * with their exit statuses. The test opens the same data directory to do
 * what agents would (commit an image, report progress, send an inventory).
 */
import { openTestStore, testDatabaseUrl } from '../src/store/temp-store.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { program } from '../src/lib/programs.js';
import { CLI, ROOT as root, cli, fails, ok, spawnServe, waitUntil as waitFor, type CliRun as Run } from './cli-helpers.js';
import { openStore, finishTask, putInventory, type Store } from '../src/store/index.js';
import { makeImage, sampleInventory } from './imaging-helpers.js';

/** Start a CLI command and return its completion (for `task wait` running while the test acts). */
function cliBackground(args: string[]): { done: Promise<Run>; child: ChildProcess } {
  const child = spawn(program(CLI[0]), [...CLI.slice(1), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<Run>((resolve) => child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
  return { done, child };
}

const json = <T>(r: Run): T => JSON.parse(r.stdout) as T;

interface TaskJson {
  id: number;
  type: string;
  mac: string;
  image: string | null;
  state: string;
  retryOf: number | null;
  options: { disk: string | null; table: string };
}

const A = '52:54:00:bb:00:01';
const B = '52:54:00:bb:00:02';
const C = '52:54:00:bb:00:03';

test('fleetboot image, task and host show commands, with and without --json, and their exit statuses', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-cli-imaging-'));
  // The server and the test's own store share the database (PostgreSQL in the test command's second pass).
  const url = await testDatabaseUrl(dir);
  const { server, log } = spawnServe(dir, ['--dhcp', 'off', '--no-tftp', ...(url ? ['--database', url] : [])]);
  let store: Store | null = null;
  let waiter: ChildProcess | null = null;
  try {
    await waitFor(() => existsSync(join(dir, 'server.json')), 'server.json', 20_000, server);
    store = await openTestStore(dir);
    const d = ['--data-dir', dir];
    const run = (...args: string[]): Promise<Run> => cli([...args, ...d]);

    await Promise.all([run('host', 'add', A, '--name', 'ref-pc'), run('host', 'add', B), run('host', 'add', C, '--name', 'lab-2')]).then((rs) => rs.forEach((r) => ok(r, 'host add')));

    // ---- images: none yet
    const [emptyList, emptyJson, missing] = await Promise.all([run('image', 'list'), run('image', 'list', '--json'), run('image', 'show', 'nope')]);
    assert.equal(ok(emptyList, 'image list').stdout, 'No images.\n');
    assert.deepEqual(json(ok(emptyJson, 'image list --json')), []);
    fails(missing, 'image show nope', /^fleetboot: No image named 'nope' \(HTTP 404\)\n$/);

    const { info, streams } = await makeImage(store, 'golden', A);
    const [list, listJson, show, showJson] = await Promise.all([run('image', 'list'), run('--json', 'image', 'list'), run('image', 'show', 'golden'), run('image', 'show', 'golden', '--json')]);
    assert.match(ok(list, 'image list').stdout, /^NAME\s+REV\s+REVS\s+CREATED\s+TABLE\s+PARTS\s+DISK\s+STORED\s+SOURCE\ngolden\s+1\s+1\s+\S+ \S+\s+mbr\s+2\s+2\.0 GiB\s+293 KiB\s+52:54:00:bb:00:01\n$/);
    assert.deepEqual(json<unknown[]>(ok(listJson, 'image list --json')), [info]);
    const s = ok(show, 'image show').stdout;
    assert.match(s, /^image\s+golden$/m);
    assert.match(s, /^disk\s+2\.0 GiB \(QEMU HARDDISK\)$/m);
    assert.match(s, /^table\s+MBR \(dos\), 512-byte sectors, id 0x1234abcd$/m);
    assert.match(s, /^#\s+FS\s+TOOL\s+SIZE\s+USED\s+STREAM\s+SHA256$/m);
    const sha1 = (await import('node:crypto')).createHash('sha256').update(streams[0] as Buffer).digest('hex').slice(0, 12);
    assert.match(s, new RegExp(`^1\\s+ext4\\s+partclone\\.ext4\\s+1\\.0 GiB\\s+118 MiB\\s+293 KiB\\s+${sha1}$`, 'm'));
    assert.match(s, /^2\s+-\s+raw\s+100 MiB\s+-\s+28 B\s+[0-9a-f]{12}$/m);
    const detail = json<{ name: string; manifest: { partitions: Array<{ sha256: string }> } }>(ok(showJson, 'image show --json'));
    assert.equal(detail.name, 'golden');
    assert.equal(detail.manifest.partitions.length, 2);
    assert.match(detail.manifest.partitions[0]?.sha256 ?? '', /^[0-9a-f]{64}$/);

    // ---- tasks: queue one of each type
    const capture = ok(await run('task', 'capture', A, '--image', 'golden-2', '--disk', '/dev/sda'), 'task capture');
    assert.match(capture.stdout, /^Queued task (\d+): capture of 52:54:00:bb:00:01 \(ref-pc\) into image golden-2; it starts at the machine's next network boot\n$/);
    const captureId = Number(/task (\d+)/.exec(capture.stdout)?.[1]);
    const inv = json<TaskJson>(ok(await run('task', 'inventory', B, '--json'), 'task inventory --json'));
    assert.equal(inv.type, 'inventory');
    assert.equal(inv.mac, B);
    assert.equal(inv.state, 'queued');
    const deploy = ok(await run('task', 'deploy', '525400bb0003', '--image', 'golden', '--table', 'gpt'), 'task deploy');
    assert.match(deploy.stdout, /^Queued task \d+: deploy of image golden to 52:54:00:bb:00:03 \(lab-2\);/);
    const deployId = Number(/task (\d+)/.exec(deploy.stdout)?.[1]);

    const [dupe, badTable, noImage, badMac, noHost, captureJson, deployJson, noImageOpt] = await Promise.all([
      run('task', 'inventory', A),
      run('task', 'deploy', C, '--image', 'golden', '--table', 'zfs'),
      run('task', 'capture', C, '--image', 'bad name'),
      run('task', 'inventory', 'nope'),
      run('task', 'inventory', '52:54:00:bb:00:99'),
      run('task', 'capture', '52:54:00:bb:00:98', '--image', 'x', '--json'),
      run('task', 'deploy', C, '--image', 'golden', '--json'),
      run('task', 'capture', C),
    ]);
    fails(dupe, 'second active task', /already has an active task \(#\d+, capture, queued\): cancel it first \(HTTP 409\)/);
    fails(badTable, 'deploy --table zfs', /Invalid --table "zfs": expected keep, gpt or mbr/);
    fails(noImage, 'capture --image "bad name"', /body\/image must match pattern .* \(HTTP 400\)/);
    fails(badMac, 'inventory nope', /body\/mac must NOT have fewer than 12 characters \(HTTP 400\)|Invalid MAC/);
    fails(noHost, 'inventory of an unknown host', /No host with MAC 52:54:00:bb:00:99 .*\(HTTP 404\)/);
    fails(captureJson, 'capture --json of an unknown host', /No host with MAC 52:54:00:bb:00:98/);
    assert.equal(captureJson.stdout, '');
    fails(deployJson, 'deploy --json while one is active', /HTTP 409/);
    assert.notEqual(noImageOpt.code, 0);
    assert.match(noImageOpt.stderr, /required option '--image <name>' not specified/);

    const [tl, tlJson, tlMac, tlActive] = await Promise.all([run('task', 'list'), run('task', 'list', '--json'), run('task', 'list', '--mac', A, '--json'), run('task', 'list', '--active', '--limit', '2')]);
    const rows = ok(tl, 'task list').stdout.trimEnd().split('\n');
    assert.match(rows[0] ?? '', /^ID\s+JOB\s+TYPE\s+MAC\s+HOST\s+IMAGE\s+STATE\s+PHASE\s+PROGRESS\s+UPDATED$/);
    // Newest first (JOB: none, these are single tasks); the capture task that made the image is there too (done).
    assert.match(rows[1] ?? '', new RegExp(`^${deployId}\\s+-\\s+deploy\\s+52:54:00:bb:00:03\\s+lab-2\\s+golden\\s+queued\\s+-\\s+-\\s+`));
    assert.match(rows[3] ?? '', new RegExp(`^${captureId}\\s+-\\s+capture\\s+52:54:00:bb:00:01\\s+ref-pc\\s+golden-2\\s+queued\\s+`));
    assert.match(rows[4] ?? '', /^\d+\s+-\s+capture\s+52:54:00:bb:00:01\s+ref-pc\s+golden\s+done\s+/);
    assert.equal(rows.length, 5);
    assert.deepEqual(
      json<TaskJson[]>(ok(tlJson, 'task list --json')).map((t) => [t.type, t.state]),
      [
        ['deploy', 'queued'],
        ['inventory', 'queued'],
        ['capture', 'queued'],
        ['capture', 'done'],
      ],
    );
    assert.deepEqual(
      json<TaskJson[]>(ok(tlMac, 'task list --mac')).map((t) => t.image),
      ['golden-2', 'golden'],
    );
    assert.equal(ok(tlActive, 'task list --active --limit 2').stdout.trimEnd().split('\n').length, 3);

    // ---- progress, as an agent would report it
    await store.db
      .updateTable('tasks')
      .set({ state: 'running', phase: 'transfer', bytes_done: 512 * 1024 ** 2, bytes_total: 2 * 1024 ** 3, rate_bps: 50 * 1024 ** 2, eta_seconds: 31, partition: 1, started_at: new Date().toISOString(), last_seen_at: new Date().toISOString() })
      .where('id', '=', captureId)
      .execute();
    const [ts, tsJson, tsBad, tsMissing] = await Promise.all([run('task', 'show', String(captureId)), run('task', 'show', String(captureId), '--json'), run('task', 'show', 'abc'), run('task', 'show', '999999')]);
    const st = ok(ts, 'task show').stdout;
    assert.match(st, new RegExp(`^task\\s+${captureId}$`, 'm'));
    assert.match(st, /^host\s+52:54:00:bb:00:01 \(ref-pc\)$/m);
    assert.match(st, /^state\s+running$/m);
    assert.match(st, /^phase\s+transfer$/m);
    assert.match(st, /^progress\s+512 MiB \/ 2\.0 GiB \(25\.0%\)$/m);
    assert.match(st, /^rate\s+50\.0 MiB\/s$/m);
    assert.match(st, /^eta\s+31s$/m);
    assert.match(st, /^disk\s+\/dev\/sda$/m);
    assert.match(st, /^error\s+-$/m);
    const tj = json<TaskJson & { bytesDone: number; etaSeconds: number }>(ok(tsJson, 'task show --json'));
    assert.equal(tj.bytesDone, 512 * 1024 ** 2);
    assert.equal(tj.etaSeconds, 31);
    fails(tsBad, 'task show abc', /Invalid task id "abc": expected a positive integer/);
    fails(tsMissing, 'task show 999999', /No task #?999999 \(HTTP 404\)/);

    // host show: active task, then the inventory
    const hs0 = ok(await run('host', 'show', A), 'host show').stdout;
    assert.match(hs0, /^mac\s+52:54:00:bb:00:01$/m);
    assert.match(hs0, /^name\s+ref-pc$/m);
    assert.match(hs0, new RegExp(`^active task\\s+${captureId}: capture golden-2, running, 512 MiB / 2\\.0 GiB \\(25\\.0%\\)$`, 'm'));
    assert.match(hs0, /^inventory\s+none/m);

    // ---- task wait: progress lines, then exit 1 when the task gets cancelled
    const w = cliBackground(['task', 'wait', String(captureId), '--interval', '0.2', ...d]);
    waiter = w.child;
    let waitOut = '';
    w.child.stdout?.on('data', (b: Buffer) => (waitOut += b.toString()));
    await waitFor(() => waitOut.includes('\n'), 'a progress line from task wait', 20_000, w.child);
    const cancel = ok(await run('task', 'cancel', String(captureId)), 'task cancel');
    assert.match(cancel.stdout, new RegExp(`^Cancelled task ${captureId}: capture of 52:54:00:bb:00:01 \\(ref-pc\\) into image golden-2\\n$`));
    const waited = await w.done;
    waiter = null;
    assert.equal(waited.code, 1, `task wait: ${waited.stdout} ${waited.stderr}`);
    assert.match(waited.stdout, new RegExp(`^task ${captureId} running, phase transfer, partition 1, 512 MiB / 2\\.0 GiB \\(25\\.0%\\), 50\\.0 MiB/s, ETA 31s\\n`));
    assert.match(waited.stdout, new RegExp(`\\ntask ${captureId} cancelled, 512 MiB / 2\\.0 GiB \\(25\\.0%\\), error: cancelled by the administrator\\n$`));
    assert.match(waited.stderr, new RegExp(`^fleetboot: Task ${captureId} was cancelled\\n$`));
    fails(await run('task', 'cancel', String(captureId)), 'cancel twice', /already cancelled \(HTTP 409\)/);

    // retry (table and JSON), cancel --json
    const retry = ok(await run('task', 'retry', String(captureId)), 'task retry');
    assert.match(retry.stdout, new RegExp(`^Queued task (\\d+) \\(retry of ${captureId}\\): capture of 52:54:00:bb:00:01 \\(ref-pc\\) into image golden-2\\n$`));
    const retryId = Number(/task (\d+)/.exec(retry.stdout)?.[1]);
    const cj = json<TaskJson>(ok(await run('task', 'cancel', String(retryId), '--json'), 'task cancel --json'));
    assert.equal(cj.state, 'cancelled');
    const rj = json<TaskJson>(ok(await run('task', 'retry', String(retryId), '--json'), 'task retry --json'));
    assert.equal(rj.retryOf, retryId);
    assert.deepEqual(rj.options, { disk: '/dev/sda', table: 'keep' });
    fails(await run('task', 'retry', String(rj.id)), 'retry of a queued task', /only a failed or cancelled task can be retried \(HTTP 409\)/);

    // task wait: timeout, done (0), --json, failed (1)
    const [timedOut] = await Promise.all([run('task', 'wait', String(rj.id), '--timeout', '0.5', '--interval', '0.2')]);
    fails(timedOut, 'task wait --timeout', new RegExp(`Timed out after 0\\.5s waiting for task ${rj.id} \\(state queued\\)`));
    assert.match(timedOut.stdout, new RegExp(`^task ${rj.id} queued\\n`));
    await finishTask(store.db, deployId, 'done');
    await finishTask(store.db, inv.id, 'failed', 'no disk found');
    const [wDone, wDoneJson, wFailed, wFailedJson] = await Promise.all([
      run('task', 'wait', String(deployId)),
      run('task', 'wait', String(deployId), '--json'),
      run('task', 'wait', String(inv.id)),
      run('--json', 'task', 'wait', String(inv.id)),
    ]);
    assert.equal(ok(wDone, 'task wait (done)').stdout, `task ${deployId} done\n`);
    assert.equal(json<TaskJson>(ok(wDoneJson, 'task wait --json (done)')).state, 'done');
    fails(wFailed, 'task wait (failed)', new RegExp(`^fleetboot: Task ${inv.id} failed: no disk found\\n$`));
    assert.equal(wFailed.stdout, `task ${inv.id} failed, error: no disk found\n`);
    fails(wFailedJson, 'task wait --json (failed)', /failed: no disk found/);
    assert.equal(json<TaskJson>(wFailedJson).state, 'failed');

    // ---- host show with an inventory
    await putInventory(store.db, B, sampleInventory(B));
    const [hs, hsJson, hsMissing] = await Promise.all([run('host', 'show', '52-54-00-bb-00-02'), run('host', 'show', B, '--json'), run('host', 'show', '52:54:00:bb:00:97')]);
    const h = ok(hs, 'host show (inventory)').stdout;
    assert.match(h, /^active task\s+-$/m);
    assert.match(h, /^inventory\s+QEMU Virtual CPU version 2\.5\+ \(1 socket, 2 cores, 2 threads\), 2\.0 GiB memory, 2 disks; collected 2026-01-02 03:04:05Z$/m);
    assert.match(h, /^cpu\s+QEMU Virtual CPU version 2\.5\+$/m);
    assert.match(h, /^cores\s+2$/m);
    assert.match(h, /^threads\s+2$/m);
    assert.match(h, /^memory\s+2\.0 GiB$/m);
    assert.match(h, /^manufacturer\s+QEMU$/m);
    assert.match(h, /^product\s+Standard PC \(i440FX \+ PIIX, 1996\)$/m);
    assert.match(h, /^serial\s+SN-123$/m);
    assert.match(h, /^DISK\s+SIZE\s+MODEL\s+SERIAL\s+TYPE\nsda\s+8\.0 GiB\s+QEMU HARDDISK\s+QM00001\s+hdd\nnvme0n1\s+512 GiB\s+NVMe disk\s+-\s+ssd$/m);
    assert.match(h, /^NIC\s+MAC\s+DRIVER\s+SPEED\neth0\s+52:54:00:bb:00:02\s+e1000\s+1000 Mb\/s$/m);
    const hj = json<{ mac: string; inventory: { smbios: { product: string }; memoryBytes: number }; activeTask: null }>(ok(hsJson, 'host show --json'));
    assert.equal(hj.mac, B);
    assert.equal(hj.inventory.smbios.product, 'Standard PC (i440FX + PIIX, 1996)');
    assert.equal(hj.inventory.memoryBytes, 2 * 1024 ** 3);
    assert.equal(hj.activeTask, null);
    fails(hsMissing, 'host show of an unknown MAC', /No host with MAC 52:54:00:bb:00:97 \(HTTP 404\)/);

    // ---- image rm: refused while a deploy uses it, then deleted; --json
    ok(await run('task', 'deploy', C, '--image', 'golden'), 'second deploy');
    fails(await run('image', 'rm', 'golden'), 'image rm while in use', /Image 'golden' is in use by task #\d+ \(deploy, queued\) \(HTTP 409\)/);
    const active = json<TaskJson[]>(ok(await run('task', 'list', '--mac', C, '--active', '--json'), 'task list --active --json'));
    assert.equal(active.length, 1);
    ok(await run('task', 'cancel', String(active[0]?.id)), 'cancel the deploy');
    assert.equal(ok(await run('image', 'rm', 'golden'), 'image rm').stdout, 'Deleted image golden\n');
    await makeImage(store, 'golden-3', B);
    assert.deepEqual(json(ok(await run('image', 'rm', 'golden-3', '--json'), 'image rm --json')), { deleted: 'golden-3' });
    fails(await run('image', 'rm', 'golden', '--json'), 'image rm of a missing image', /No image named 'golden' \(HTTP 404\)/);

    const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
    server.kill('SIGTERM');
    assert.equal(await exited, 0, log());
  } finally {
    if (waiter && waiter.exitCode === null) waiter.kill('SIGKILL');
    if (server.exitCode === null) server.kill('SIGKILL');
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
