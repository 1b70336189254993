import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CliError } from './client.js';
import { parseScheduledTask, queuedText, resolveAt } from './task-request.js';

test('parseScheduledTask() parses the words after -- with the task commands\' own options', async () => {
  assert.deepEqual(await parseScheduledTask(['task', 'inventory', '--group', 'lab12', '--wake']), { type: 'inventory', group: 'lab12', wake: true });
  assert.deepEqual(await parseScheduledTask(['task', 'deploy', '--group', 'lab12', '--image', 'win11', '--table', 'gpt']), { type: 'deploy', group: 'lab12', image: 'win11', table: 'gpt' });
  assert.deepEqual(await parseScheduledTask(['task', 'capture', '52-54-00-00-00-01', '--image', 'ref']), { type: 'capture', mac: '52:54:00:00:00:01', image: 'ref' });
});

test('parseScheduledTask(): one MAC is one task, several are a list (a job), with --multicast for a deploy', async () => {
  assert.deepEqual(await parseScheduledTask(['task', 'inventory', '52:54:00:00:00:01']), { type: 'inventory', mac: '52:54:00:00:00:01' });
  assert.deepEqual(await parseScheduledTask(['task', 'inventory', '52-54-00-00-00-02', '52:54:00:00:00:01', '--wake']), { type: 'inventory', macs: ['52:54:00:00:00:02', '52:54:00:00:00:01'], wake: true });
  assert.deepEqual(await parseScheduledTask(['task', 'deploy', '52:54:00:00:00:01', '52:54:00:00:00:02', '--image', 'win11', '--multicast', '--max-wait', '600', '--min-receivers', '1']), {
    type: 'deploy',
    macs: ['52:54:00:00:00:01', '52:54:00:00:00:02'],
    image: 'win11',
    table: 'keep',
    multicast: { minReceivers: 1, maxWaitSeconds: 600 },
  });
  assert.deepEqual((await parseScheduledTask(['task', 'deploy', '--group', 'lab12', '--image', 'win11', '--multicast'])).multicast, {});
});

test('parseScheduledTask() refuses what a schedule cannot run, saying why', async () => {
  const refused = async (words: string[], re: RegExp): Promise<void> => {
    await assert.rejects(parseScheduledTask(words), (e: unknown) => e instanceof CliError && re.test(e.message), words.join(' '));
  };
  await refused(['inventory', '--group', 'g'], /After -- comes a task command, e\.g\. `-- task inventory --group lab12`/);
  await refused(['task', 'list'], /The task after --: unknown command 'list'/);
  await refused(['task', 'inventory', '--group', 'g', '--at', '22:00'], /takes no start time/);
  await refused(['task', 'capture', '--group', 'g', '--image', 'x'], /A capture takes one machine, not a group/);
  await refused(['task', 'deploy', '--group', 'g'], /required option '--image <name>' not specified/);
  await refused(['task', 'inventory', '--group', 'g', '--bogus'], /unknown option '--bogus'/);
  await refused(['task', 'inventory'], /Name the machines \(MAC MAC\.\.\.\) or a host group \(--group NAME\)/);
  await refused(['task', 'capture', '--image', 'x'], /Name the machine to capture \(MAC\)/);
  await refused(['task', 'capture', '52:54:00:00:00:01', '52:54:00:00:00:02', '--image', 'x'], /^A capture takes one machine, not several: .*: got 52:54:00:00:00:01 52:54:00:00:00:02$/);
  await refused(['task', 'inventory', '52:54:00:00:00:01', '--group', 'g'], /Name machines \(MAC\.\.\.\) or --group NAME, not both: got 52:54:00:00:00:01 and --group g/);
  await refused(['task', 'deploy', '52:54:00:00:00:01', '--image', 'x', '--multicast'], /--multicast sends one image to several machines at once; a deploy to one machine \(52:54:00:00:00:01\) goes by unicast: drop --multicast/);
  await refused(['task', 'inventory', '52:54:00:00:00:01', '52-54-00-00-00-01'], /"macs" names 52:54:00:00:00:01 more than once/);
  await refused(['task', 'inventory', '52:54:00:00:00:01', 'nope'], /Invalid MAC address "nope" in "macs"/);
});

test('resolveAt() sends UTC and says what it expected', () => {
  const now = new Date(2026, 11, 2, 10, 0);
  assert.equal(resolveAt('2026-12-24T22:00:00Z', now), '2026-12-24T22:00:00.000Z');
  assert.equal(resolveAt('11:00', now), new Date(2026, 11, 2, 11, 0).toISOString());
  assert.throws(() => resolveAt('soon', now), /^CliError: --at: Invalid time "soon": expected HH:MM/);
});

test('queuedText() names a job\'s group or its MACs', () => {
  const job = { id: 3, type: 'inventory', group: null, image: null, state: 'active', total: 2, startAt: null, request: { type: 'inventory', macs: ['52:54:00:00:00:02', '52:54:00:00:00:01'] }, tasks: [{ id: 7 }, { id: 8 }] };
  assert.equal(queuedText(job as never), "Job 3: 2 inventory tasks for 52:54:00:00:00:02 52:54:00:00:00:01, tasks 7 8; they start at each machine's next network boot. Follow it: fleetboot job show 3");
  assert.match(queuedText({ ...job, group: 'lab12', request: { type: 'inventory', group: 'lab12' } } as never), /^Job 3: 2 inventory tasks for group lab12, tasks 7 8;/);
});

test('queuedText() says when a scheduled task starts and that it wakes its machine', () => {
  const t = { id: 4, type: 'inventory', mac: '52:54:00:00:00:01', hostName: 'pc1', image: null, state: 'scheduled', startAt: '2026-12-24T22:00:00.000Z', wake: true } as const;
  assert.match(queuedText(t as never), /^Scheduled task 4: inventory of 52:54:00:00:00:01 \(pc1\); it waits until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(local time\), then starts at the machine's next network boot, after Wake-on-LAN wakes it$/);
});
