import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootParams, parseArgs, parseKernelCmdline, UsageError } from './cmdline.js';

test('parseKernelCmdline() splits words and keeps quoted spaces', () => {
  const m = parseKernelCmdline('BOOT_IMAGE=/vmlinuz initrd=initrd.img  console=tty0 console=ttyS0,115200 quiet fleetboot.url=http://10.0.0.1:8080 "fleetboot.token=ab cd" x="a b"\n');
  assert.equal(m.get('BOOT_IMAGE'), '/vmlinuz');
  assert.equal(m.get('console'), 'ttyS0,115200'); // the last one wins
  assert.equal(m.get('quiet'), '');
  assert.equal(m.get('fleetboot.url'), 'http://10.0.0.1:8080');
  assert.equal(m.get('fleetboot.token'), 'ab cd');
  assert.equal(m.get('x'), 'a b');
});

test('parseKernelCmdline() handles an empty quoted value and tabs', () => {
  const m = parseKernelCmdline('a=""\tb=1');
  assert.equal(m.get('a'), '');
  assert.equal(m.get('b'), '1');
});

test('bootParams() reads url/task/token/disk and names what is missing', () => {
  const p = bootParams(parseKernelCmdline('fleetboot.url=http://h:1/ fleetboot.task=42 fleetboot.token=t0k fleetboot.disk=/dev/vdb'));
  assert.deepEqual(p, { url: 'http://h:1/', task: 42, token: 't0k', disk: '/dev/vdb' });
  assert.equal(bootParams(parseKernelCmdline('fleetboot.url=u fleetboot.task=1 fleetboot.token=t')).disk, null);
  assert.throws(() => bootParams(parseKernelCmdline('fleetboot.url=u quiet')), /lacks fleetboot.task, fleetboot.token/);
  assert.throws(() => bootParams(parseKernelCmdline('fleetboot.url=u fleetboot.task=x fleetboot.token=t')), /not a task number/);
});

test('parseArgs() takes --k v and --k=v, refuses unknown options and missing values', () => {
  const allowed = { run: ['url', 'task'], inventory: [] };
  const a = parseArgs(['run', '--url', 'http://x', '--task=3'], allowed);
  assert.equal(a.command, 'run');
  assert.equal(a.flags.get('url'), 'http://x');
  assert.equal(a.flags.get('task'), '3');
  assert.throws(() => parseArgs(['run', '--nope', '1'], allowed), UsageError);
  assert.throws(() => parseArgs(['run', '--url'], allowed), /needs a value/);
  assert.throws(() => parseArgs(['frob'], allowed), /unknown command/);
  assert.throws(() => parseArgs([], allowed), /no command/);
  assert.throws(() => parseArgs(['run', 'stray'], allowed), /unexpected argument/);
});
