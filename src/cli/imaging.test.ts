import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Task } from '../http/schemas/index.js';
import { copyState, formatBytes, formatDuration, formatPercent, formatProgress, formatRate, inventorySummary, parseNodesOption, taskLine } from './imaging.js';

test('formatBytes() uses binary units, one decimal below 100', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(1024), '1.0 KiB');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(300_000), '293 KiB');
  assert.equal(formatBytes(20 * 1024 ** 3), '20.0 GiB');
  assert.equal(formatBytes(512 * 1024 ** 3), '512 GiB');
  assert.equal(formatBytes(3 * 1024 ** 4), '3.0 TiB');
  assert.equal(formatBytes(null), null);
  assert.equal(formatBytes(Number.NaN), null);
});

test('formatRate(), formatPercent() and formatDuration() say nothing when they know nothing', () => {
  assert.equal(formatRate(50 * 1024 ** 2), '50.0 MiB/s');
  assert.equal(formatRate(null), null);
  assert.equal(formatPercent(1, 4), '25.0%');
  assert.equal(formatPercent(5, 4), '100.0%');
  assert.equal(formatPercent(1, null), null);
  assert.equal(formatPercent(1, 0), null);
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(59.4), '59s');
  assert.equal(formatDuration(65), '1m 05s');
  assert.equal(formatDuration(3600 * 2 + 7 * 60 + 30), '2h 07m');
  assert.equal(formatDuration(-1), null);
  assert.equal(formatDuration(null), null);
});

const task: Task = {
  id: 7,
  type: 'deploy',
  mac: '52:54:00:00:00:07',
  hostName: null,
  image: 'golden',
  state: 'running',
  phase: 'transfer',
  bytesDone: 1024 ** 3,
  bytesTotal: 4 * 1024 ** 3,
  rateBps: 100 * 1024 ** 2,
  etaSeconds: 30.7,
  partition: 2,
  message: null,
  error: null,
  attempts: 1,
  options: { disk: null, table: 'keep' },
  retryOf: null,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  startedAt: null,
  finishedAt: null,
  lastSeenAt: null,
  revision: 2,
  requestedRevision: null,
  tokenIp: null,
  jobId: null,
  startAt: null,
  wake: false,
  wakeRounds: 0,
  wokenAt: null,
  reboot: false,
  enrol: false,
  multicastId: null,
};

test('formatProgress() shows bytes done of the total with the percentage, or bytes done alone', () => {
  assert.equal(formatProgress(task), '1.0 GiB / 4.0 GiB (25.0%)');
  assert.equal(formatProgress({ bytesDone: 2048, bytesTotal: null }), '2.0 KiB');
  assert.equal(formatProgress({ bytesDone: 0, bytesTotal: null }), null);
});

test('taskLine() shows phase, partition, rate and ETA while running, the error once finished', () => {
  assert.equal(taskLine(task), 'task 7 running, phase transfer, partition 2, 1.0 GiB / 4.0 GiB (25.0%), 100 MiB/s, ETA 31s');
  assert.equal(taskLine({ ...task, state: 'failed', error: 'partition 2: sha256 mismatch' }), 'task 7 failed, 1.0 GiB / 4.0 GiB (25.0%), error: partition 2: sha256 mismatch');
  assert.equal(taskLine({ ...task, state: 'queued', phase: null, bytesDone: 0, bytesTotal: null, rateBps: null, etaSeconds: null, partition: null }), 'task 7 queued');
});

test('inventorySummary() names the CPU, its counts, the memory and the number of disks', () => {
  const inv = {
    collectedAt: '2026-01-01T00:00:00.000Z',
    cpu: { model: null, sockets: null, cores: null, threads: 1 },
    memoryBytes: 512 * 1024 ** 2,
    disks: [{ name: 'vda', sizeBytes: 1, model: null, serial: null, rotational: null }],
    nics: [],
    smbios: { manufacturer: null, product: null, serial: null, uuid: null, biosVendor: null, biosVersion: null },
    firmware: null,
  };
  assert.equal(inventorySummary(inv), 'unknown CPU (1 thread), 512 MiB memory, 1 disk');
});

test('copyState() shows missing, copying n %, verified, corrupt', () => {
  assert.equal(copyState({ state: 'missing', bytesDone: 0, bytesTotal: 10 }), 'missing');
  assert.equal(copyState({ state: 'copying', bytesDone: 333, bytesTotal: 1000 }), 'copying 33 %');
  assert.equal(copyState({ state: 'copying', bytesDone: 0, bytesTotal: 0 }), 'copying 0 %');
  assert.equal(copyState({ state: 'verified', bytesDone: 10, bytesTotal: 10 }), 'verified');
  assert.equal(copyState({ state: 'corrupt', bytesDone: 0, bytesTotal: 10 }), 'corrupt');
});

test("parseNodesOption(): 'all', or node names and group:NAME separated by commas; bad entries and an entry twice are refused", () => {
  assert.equal(parseNodesOption('all'), 'all');
  assert.deepEqual(parseNodesOption('pxe-a, pxe-b'), ['pxe-a', 'pxe-b']);
  assert.deepEqual(parseNodesOption('group:building-a,pxe-c'), ['group:building-a', 'pxe-c']);
  assert.throws(() => parseNodesOption(''), /^CliError: Invalid --nodes "": expected 'all' or entries separated by commas, each a node name or group:NAME \(each name 1-64 letters, .*\); got ""$/);
  assert.throws(() => parseNodesOption('pxe-a,bad name'), /got "bad name"$/);
  assert.throws(() => parseNodesOption('group:,pxe-a'), /got "group:"$/);
  assert.throws(() => parseNodesOption('group:a b'), /got "group:a b"$/);
  assert.throws(() => parseNodesOption('pxe-a,pxe-a'), /'pxe-a' is named twice/);
  assert.throws(() => parseNodesOption('group:lab, group:lab'), /'group:lab' is named twice/);
});
