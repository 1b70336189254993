import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CliError } from './client.js';
import { parseScheduledTask, queuedText, resolveAt } from './task-request.js';

test('parseScheduledTask() parses the words after -- with the task commands\' own options', async () => {
  assert.deepEqual(await parseScheduledTask(['task', 'inventory', '--group', 'lab12', '--wake']), { type: 'inventory', group: 'lab12', wake: true });
  assert.deepEqual(await parseScheduledTask(['task', 'deploy', '--group', 'lab12', '--image', 'win11', '--table', 'gpt']), { type: 'deploy', group: 'lab12', image: 'win11', table: 'gpt' });
  assert.deepEqual(await parseScheduledTask(['task', 'capture', '52-54-00-00-00-01', '--image', 'ref']), { type: 'capture', mac: '52:54:00:00:00:01', image: 'ref' });
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
  await refused(['task', 'inventory'], /Name the machine \(MAC\) or a host group \(--group NAME\)/);
});

test('resolveAt() sends UTC and says what it expected', () => {
  const now = new Date(2026, 11, 2, 10, 0);
  assert.equal(resolveAt('2026-12-24T22:00:00Z', now), '2026-12-24T22:00:00.000Z');
  assert.equal(resolveAt('11:00', now), new Date(2026, 11, 2, 11, 0).toISOString());
  assert.throws(() => resolveAt('soon', now), /^CliError: --at: Invalid time "soon": expected HH:MM/);
});

test('queuedText() says when a scheduled task starts and that it wakes its machine', () => {
  const t = { id: 4, type: 'inventory', mac: '52:54:00:00:00:01', hostName: 'pc1', image: null, state: 'scheduled', startAt: '2026-12-24T22:00:00.000Z', wake: true } as const;
  assert.match(queuedText(t as never), /^Scheduled task 4: inventory of 52:54:00:00:00:01 \(pc1\); it waits until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(local time\), then starts at the machine's next network boot, after Wake-on-LAN wakes it$/);
});
