import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetbootError } from '../lib/errors.js';
import { withTempStore } from './temp-store.js';
import { bootTaskRow, cancelTask, createHost, createTask, finishTask, getTask, listTasks, addRevision, retryTask, type Store } from './index.js';
import { sampleManifest } from './test-fixtures.js';

const withStore = (fn: (s: Store) => Promise<void>): Promise<void> => withTempStore('tasks', fn);

const MAC = '52:54:00:00:00:01';

function code(c: string) {
  return (e: unknown) => e instanceof FleetbootError && e.code === c;
}

test('createTask() validates its input and queues the task', async () => {
  await withStore(async (s) => {
    await assert.rejects(createTask(s.db, { type: 'capture', mac: MAC, image: 'img' }), code('NOT_FOUND'), 'capture needs a host');
    await createHost(s.db, { mac: MAC, name: 'pc1' });
    await assert.rejects(createTask(s.db, { type: 'capture', mac: 'nope', image: 'img' }), code('INVALID_INPUT'));
    await assert.rejects(createTask(s.db, { type: 'capture', mac: MAC }), code('INVALID_INPUT'), 'capture needs an image name');
    await assert.rejects(createTask(s.db, { type: 'capture', mac: MAC, image: '../x' }), code('INVALID_INPUT'));
    await assert.rejects(createTask(s.db, { type: 'capture', mac: MAC, image: 'img', options: { disk: '/etc/passwd' } }), code('INVALID_INPUT'));
    await assert.rejects(createTask(s.db, { type: 'bogus' as 'capture', mac: MAC, image: 'img' }), code('INVALID_INPUT'));
    await assert.rejects(createTask(s.db, { type: 'deploy', mac: MAC, image: 'none' }), code('NOT_FOUND'), 'deploy needs an existing image');
    const t = await createTask(s.db, { type: 'capture', mac: '52-54-00-00-00-01', image: 'img', options: { disk: '/dev/vda' } });
    assert.equal(t.state, 'queued');
    assert.equal(t.mac, MAC);
    assert.equal(t.hostName, 'pc1');
    assert.deepEqual(t.options, { disk: '/dev/vda', table: 'keep' });
    assert.equal(t.attempts, 0);
    await assert.rejects(createTask(s.db, { type: 'inventory', mac: MAC }), code('CONFLICT'), 'one active task per MAC');
    assert.deepEqual(await getTask(s.db, t.id), t);
  });
});

test('register tasks need no host; deploy accepts an existing image; a capture and a deploy of one image exclude each other', async () => {
  await withStore(async (s) => {
    const r = await createTask(s.db, { type: 'register', mac: '52:54:00:00:00:09' });
    assert.equal(r.hostName, null);
    await createHost(s.db, { mac: MAC });
    await addRevision(s.db, { dir: '00000000-0000-4000-8000-000000000000', manifest: sampleManifest('base'), manifestSha256: 'a'.repeat(64), state: 'ready' });
    const d = await createTask(s.db, { type: 'deploy', mac: MAC, image: 'base', options: { table: 'gpt' } });
    assert.equal(d.options.table, 'gpt');
    // A capture would replace the files this deploy reads: refused while it is active, and the other way round.
    await createHost(s.db, { mac: '52:54:00:00:00:02' });
    await assert.rejects(createTask(s.db, { type: 'capture', mac: '52:54:00:00:00:02', image: 'base' }), /being deployed by task #\d+/);
    await finishTask(s.db, d.id, 'done');
    const c = await createTask(s.db, { type: 'capture', mac: '52:54:00:00:00:02', image: 'base' });
    await assert.rejects(createTask(s.db, { type: 'deploy', mac: MAC, image: 'base' }), /being captured by task #\d+/);
    await finishTask(s.db, c.id, 'failed', 'x');
    assert.equal((await createTask(s.db, { type: 'deploy', mac: MAC, image: 'base' })).state, 'queued');
  });
});

test('cancelTask() and retryTask() follow the lifecycle', async () => {
  await withStore(async (s) => {
    await createHost(s.db, { mac: MAC });
    const t = await createTask(s.db, { type: 'inventory', mac: MAC });
    await assert.rejects(retryTask(s.db, t.id), code('CONFLICT'), 'an active task cannot be retried');
    const c = await cancelTask(s.db, t.id);
    assert.equal(c.state, 'cancelled');
    assert.ok(c.finishedAt);
    await assert.rejects(cancelTask(s.db, t.id), code('CONFLICT'));
    await assert.rejects(cancelTask(s.db, 999), code('NOT_FOUND'));
    const r = await retryTask(s.db, t.id);
    assert.equal(r.retryOf, t.id);
    assert.equal(r.state, 'queued');
    await assert.rejects(retryTask(s.db, t.id), code('CONFLICT'), 'the MAC has an active task again');
    assert.ok(await finishTask(s.db, r.id, 'done'));
    assert.equal(await finishTask(s.db, r.id, 'failed', 'x'), null, 'a finished task stays finished');
    await assert.rejects(retryTask(s.db, r.id), code('CONFLICT'), 'a done task is not retried');
    const all = await listTasks(s.db);
    assert.deepEqual(all.map((x) => x.id), [r.id, t.id]);
    assert.equal((await listTasks(s.db, { active: true })).length, 0);
    assert.equal((await listTasks(s.db, { mac: MAC, limit: 1 })).length, 1);
  });
});

test('bootTaskRow() hands a task out only as it was read: attempts, token address and last contact unchanged', async () => {
  await withStore(async (s) => {
    await createHost(s.db, { mac: MAC });
    const t = await createTask(s.db, { type: 'inventory', mac: MAC });
    assert.equal(await bootTaskRow(s.db, t.id, 'a'.repeat(64), '10.0.0.5', t), true);
    const after = await getTask(s.db, t.id);
    assert.ok(after);
    assert.deepEqual([after.attempts, after.tokenIp, after.state], [1, '10.0.0.5', 'booting']);
    // A second asker that read the task before the first hand-out loses.
    assert.equal(await bootTaskRow(s.db, t.id, 'b'.repeat(64), '10.0.0.6', t), false);
    // The agent was heard from after the decision was made: its token stays.
    await s.db.updateTable('tasks').set({ last_seen_at: new Date(Date.now() + 1000).toISOString() }).where('id', '=', t.id).execute();
    assert.equal(await bootTaskRow(s.db, t.id, 'c'.repeat(64), '10.0.0.5', after), false);
    assert.equal((await getTask(s.db, t.id))?.tokenIp, '10.0.0.5');
  });
});
