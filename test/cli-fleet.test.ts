/**
 * The real CLI against `fleetboot serve` on 127.0.0.1 (DHCP and TFTP off):
 * group, task --group/MAC MAC.../--wake/--at, job, wake and schedule
 * commands, with and without --json, and their exit statuses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, fails, ok, spawnServe, waitUntil, type CliRun as Run } from './cli-helpers.js';


const A = '52:54:00:ee:00:01';
const B = '52:54:00:ee:00:02';

test('fleetboot group, task --group, job, wake and schedule commands', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-cli-fleet-'));
  const { server, log } = spawnServe(dir);
  try {
    await waitUntil(() => existsSync(join(dir, 'server.json')), 'server.json', 20_000, server);
    const d = ['--data-dir', dir];
    const run = (...args: string[]): Promise<Run> => cli([...d, ...args]);
    await Promise.all([run('host', 'add', A, '--name', 'pc1'), run('host', 'add', B), run('group', 'add', 'lab12')]).then((rs) => rs.forEach((r) => ok(r, 'setup')));

    const [unknown, added, capture, neither] = await Promise.all([
      run('group', 'add-host', 'lab12', '52:54:00:ee:00:99'),
      run('group', 'add-host', 'lab12', A, B),
      run('task', 'capture', '--group', 'lab12', '--image', 'x'),
      run('task', 'inventory'),
    ]);
    fails(unknown, 'add-host of an unknown MAC', /No host with MAC 52:54:00:ee:00:99: a group member must be a known host; add it first \(fleetboot host add 52:54:00:ee:00:99 \[--name NAME\]\) \(HTTP 404\)/);
    assert.match(ok(added, 'add-host').stdout, /^Group lab12: added 52:54:00:ee:00:01 52:54:00:ee:00:02; 2 members\n$/);
    fails(capture, 'capture --group', /A capture takes one machine, not a group: an image is captured from one disk/);
    fails(neither, 'inventory without a target', /Name the machines \(MAC MAC\.\.\.\) or a host group \(--group NAME\)/);

    const [list, show] = await Promise.all([run('group', 'list'), run('group', 'show', 'lab12')]);
    assert.match(ok(list, 'group list').stdout, /^NAME\s+MEMBERS\s+CREATED\nlab12\s+2\s+/);
    assert.match(ok(show, 'group show').stdout, /^group lab12, 2 members, created .*\nMAC\s+HOST\s+ADDED\n52:54:00:ee:00:01\s+pc1\s+.*\n52:54:00:ee:00:02\s+-\s+/);

    // A job for the group, scheduled an hour ahead, woken when queued.
    const at = new Date(Date.now() + 3600_000);
    const hhmm = `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
    const job = ok(await run('task', 'inventory', '--group', 'lab12', '--wake', '--at', hhmm), 'task inventory --group --at');
    assert.match(job.stdout, /^Job (\d+): 2 inventory tasks for group lab12, tasks \d+ \d+; they wait until \d{4}-\d\d-\d\d \d\d:\d\d:00 \(local time\), then start at each machine's next network boot, after Wake-on-LAN wakes it\. Follow it: fleetboot job show \d+\n$/);
    const jobId = /^Job (\d+)/.exec(job.stdout)?.[1] ?? '';
    const [busy, jobs, jobShow, jobJson, tasks, past] = await Promise.all([
      run('task', 'inventory', A),
      run('job', 'list'),
      run('job', 'show', jobId),
      run('job', 'show', jobId, '--json'),
      run('task', 'list'),
      run('task', 'inventory', '--group', 'lab12', '--at', '2020-01-01T00:00'),
    ]);
    fails(busy, 'a second task for a member', /already has an active task \(#\d+, inventory, scheduled\): cancel it first \(HTTP 409\)/);
    assert.match(ok(jobs, 'job list').stdout, new RegExp(`^ID\\s+TYPE\\s+GROUP\\s+IMAGE\\s+STATE\\s+DONE\\s+PROGRESS\\s+MEMBERS\\s+CREATED\\n${jobId}\\s+inventory\\s+lab12\\s+-\\s+scheduled\\s+0/2\\s+0\\.0%\\s+2 scheduled\\s+`));
    const js = ok(jobShow, 'job show').stdout;
    assert.match(js, /^state\s+scheduled$/m);
    assert.match(js, /^members\s+2: 2 scheduled$/m);
    assert.match(js, /^wake\s+yes$/m);
    assert.match(js, /^MAC\s+HOST\s+TASK\s+STATE\s+PHASE\s+PERCENT\s+ERROR\n52:54:00:ee:00:01\s+pc1\s+\d+\s+scheduled\s+-\s+-\s+-\n52:54:00:ee:00:02\s+-\s+\d+\s+scheduled/m);
    const jj = JSON.parse(jobJson.stdout) as { tasks: Array<{ state: string; wake: boolean; startAt: string }> };
    assert.ok(jj.tasks.every((t) => t.state === 'scheduled' && t.wake && Math.abs(Date.parse(t.startAt) - at.getTime()) < 60_000));
    assert.match(ok(tasks, 'task list').stdout, new RegExp(`^ID\\s+JOB\\s+TYPE.*\\n\\d+\\s+${jobId}\\s+inventory\\s+52:54:00:ee:00:02`));
    fails(past, '--at in the past', /is in the past .*expected a time from now on \(HTTP 400\)/);
    assert.match(ok(await run('job', 'cancel', jobId), 'job cancel').stdout, /^Job \d+: 2 cancelled\n$/);

    // Several MACs: one task each, a job without a group; a capture and a multicast deploy to one machine are refused.
    const listed = ok(await run('task', 'inventory', B, '52-54-00-EE-00-01'), 'task inventory MAC MAC');
    assert.match(listed.stdout, /^Job \d+: 2 inventory tasks for 52:54:00:ee:00:02 52:54:00:ee:00:01, tasks \d+ \d+; they start at each machine's next network boot\. Follow it: fleetboot job show \d+\n$/);
    const listedId = /^Job (\d+)/.exec(listed.stdout)?.[1] ?? '';
    const [ljobs, lshow, capTwo, mcOne, again] = await Promise.all([
      run('job', 'list'),
      run('job', 'show', listedId),
      run('task', 'capture', A, B, '--image', 'x'),
      run('task', 'deploy', A, '--image', 'x', '--multicast'),
      run('task', 'inventory', A, B),
    ]);
    assert.match(ok(ljobs, 'job list').stdout, new RegExp(`^ID\\s+TYPE\\s+GROUP.*\\n${listedId}\\s+inventory\\s+2 hosts\\s+-\\s+active\\s+0/2\\s+0\\.0%\\s+2 queued\\s+`));
    const ls = ok(lshow, 'job show').stdout;
    assert.match(ls, /^hosts\s+52:54:00:ee:00:02 52:54:00:ee:00:01$/m);
    assert.doesNotMatch(ls, /^group/m);
    fails(capTwo, 'capture of two MACs', /A capture takes one machine, not several: an image is captured from one disk .*: got 52:54:00:ee:00:01 52:54:00:ee:00:02/);
    fails(mcOne, 'multicast to one MAC', /--multicast sends one image to several machines at once; a deploy to one machine \(52:54:00:ee:00:01\) goes by unicast: drop --multicast/);
    fails(again, 'a list with busy machines', /No task was created: 2 of the 2 machines named already have an active task: .*; cancel them or leave them out \(HTTP 409\)/);
    assert.match(ok(await run('job', 'cancel', listedId), 'job cancel').stdout, /^Job \d+: 2 cancelled\n$/);

    // Wake on loopback: no target (the server never broadcasts from 127.0.0.1), said so.
    const wake = ok(await run('wake', '--group', 'lab12'), 'wake --group');
    assert.match(wake.stdout, /^Waking 2 machines \(52:54:00:ee:00:01 52:54:00:ee:00:02\): 3 sends 15 s apart to 0 targets; the first sent 0 packets\nNo targets/);
    fails(await run('wake'), 'wake without machines', /Name the machines to wake: MAC\.\.\. or --group NAME/);

    // A schedule: the task after -- is parsed with the task commands' options and stored as a request.
    const [sched, badCron, withAt] = await Promise.all([
      run('schedule', 'add', '--cron', '0 22 * * 1-5', '--name', 'nightly', '--', 'task', 'inventory', '--group', 'lab12', '--wake'),
      run('schedule', 'add', '--cron', 'nightly', '--', 'task', 'inventory', '--group', 'lab12'),
      run('schedule', 'add', '--cron', '0 22 * * *', '--', 'task', 'inventory', '--group', 'lab12', '--at', '22:00'),
    ]);
    assert.match(ok(sched, 'schedule add').stdout, /^Added schedule \d+ \(nightly\): inventory of group lab12, wake, at 0 22 \* \* 1-5; next \d{4}-\d\d-\d\d \d\d:00:00Z\n$/);
    fails(badCron, 'a bad cron expression', /Invalid cron expression "nightly" .*expected a cron expression of 5 fields/);
    fails(withAt, '--at inside a schedule', /takes no start time/);
    const [slist, sshow, sjson, rmGroup] = await Promise.all([run('schedule', 'list'), run('schedule', 'show', 'nightly'), run('schedule', 'show', 'nightly', '--json'), run('group', 'rm', 'lab12')]);
    assert.match(ok(slist, 'schedule list').stdout, /^ID\s+NAME\s+CRON\s+REQUEST\s+NEXT\s+LAST RESULT\n\d+\s+nightly\s+0 22 \* \* 1-5\s+inventory of group lab12, wake\s+/);
    assert.match(ok(sshow, 'schedule show').stdout, /^then\s+\S+ \S+, \S+ \S+$/m);
    assert.deepEqual((JSON.parse(sjson.stdout) as { request: unknown }).request, { type: 'inventory', group: 'lab12', wake: true });
    fails(rmGroup, 'group rm while a schedule uses it', /Group 'lab12' is used by schedule #\d+ \(nightly\)/);
    assert.match(ok(await run('schedule', 'rm', 'nightly'), 'schedule rm').stdout, /^Removed schedule \d+ \(nightly\)\n$/);
    const pair = ok(await run('schedule', 'add', '--cron', '0 23 * * *', '--name', 'pair', '--', 'task', 'inventory', A, B, '--wake'), 'schedule add of two MACs');
    assert.match(pair.stdout, /^Added schedule \d+ \(pair\): inventory of 52:54:00:ee:00:01 52:54:00:ee:00:02, wake, at 0 23 \* \* \*; next /);
    assert.match(ok(await run('schedule', 'rm', 'pair'), 'schedule rm').stdout, /^Removed schedule \d+ \(pair\)\n$/);
    assert.match(ok(await run('group', 'rm', 'lab12'), 'group rm').stdout, /^Deleted group lab12\n$/);
  } catch (err) {
    console.error(log());
    throw err;
  } finally {
    if (server.exitCode === null && server.signalCode === null) {
      const gone = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
