import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { program } from '../lib/programs.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { killTreeLinux, parseProcStat, readProcs, treeOf, type ProcStat } from './kill-tree.js';

test('parseProcStat() splits after the last parenthesis of the command', () => {
  const s = parseProcStat('4242 (we ird) (cmd)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615');
  assert.deepEqual(s, { pid: 4242, state: 'S', ppid: 1, pgrp: 4242, session: 4242, startTime: '987654' });
  assert.equal(parseProcStat('garbage'), null);
});

test('treeOf() follows parent links through zombies and finds group members that lost their parent', () => {
  const p = (pid: number, ppid: number, pgrp: number, state = 'S'): ProcStat => ({ pid, ppid, pgrp, session: pgrp, state, startTime: String(pid * 10) });
  const procs = [p(1, 0, 1), p(100, 1, 100, 'Z'), p(101, 100, 100), p(102, 100, 102), p(103, 102, 103), p(104, 1, 100), p(200, 1, 200)];
  assert.deepEqual(treeOf(procs, 100, 100, new Map()).map((x) => x.pid).sort(), [101, 102, 103, 104]);
});

/** Every pid of /proc that is in `session`, or has `pid`'s tree's markers. */
function alive(pids: number[]): number[] {
  const live = new Set(readProcs().filter((p) => p.state !== 'Z').map((p) => p.pid));
  return pids.filter((p) => live.has(p));
}

test('killTreeLinux() kills a tree whose children made their own session, and nothing of it remains', async () => {
  // sh starts two sleeps: one in its group, one in its own session (setsid): kill(-pgid) alone would miss it.
  const child = spawn(program('sh'), ['-c', 'sleep 100 & setsid sleep 100 & wait'], { detached: true, stdio: 'ignore' });
  const pid = child.pid as number;
  let tree: number[] = [];
  for (let i = 0; i < 50 && tree.length < 3; i++) {
    await sleep(50);
    tree = treeOf(readProcs(), pid, pid, new Map()).map((p) => p.pid);
  }
  assert.equal(tree.length, 3, `sh and two sleeps: ${tree.join(',')}`);
  const setsidOne = readProcs().find((p) => tree.includes(p.pid) && p.pgrp !== pid);
  assert.ok(setsidOne, 'one sleep left the process group');
  const exited = new Promise((r) => child.on('exit', r));
  const n = await killTreeLinux(pid, 300);
  await exited;
  assert.ok(n >= 3);
  assert.deepEqual(alive(tree), [], 'no process of the tree remains');
});

test('killTreeLinux() SIGKILLs what ignores SIGTERM after the grace', async () => {
  const child = spawn(program('sh'), ['-c', 'trap "" TERM; setsid sh -c \'trap "" TERM; sleep 100\' & sleep 100 & wait'], { detached: true, stdio: 'ignore' });
  const pid = child.pid as number;
  let tree: number[] = [];
  for (let i = 0; i < 50 && tree.length < 4; i++) {
    await sleep(50);
    tree = treeOf(readProcs(), pid, pid, new Map()).map((p) => p.pid);
  }
  assert.equal(tree.length, 4, tree.join(','));
  const t0 = Date.now();
  await killTreeLinux(pid, 400);
  assert.ok(Date.now() - t0 >= 380, 'waited for the grace');
  assert.deepEqual(alive(tree), []);
});
