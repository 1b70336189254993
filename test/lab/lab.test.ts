import { test } from 'node:test';
import assert from 'node:assert/strict';
import { program } from '../../src/lib/programs.js';
import { Lab } from './lab.js';

test('Lab builds two hosts on a bridge that can reach each other, and removes everything', async () => {
  const lab = await Lab.create({ subnet: '10.213.250' });
  try {
    await lab.addHost('a', '10.213.250.1');
    await lab.addHost('b', '10.213.250.2');
    const out = await lab.exec('a', ['ping', '-c', '1', '-W', '2', '10.213.250.2']);
    assert.match(out, /1 received/);
  } finally {
    await lab.destroy();
  }
  const left = await import('node:child_process').then((cp) => cp.execFileSync(program('ip'), ['netns', 'list']).toString());
  assert.ok(!left.includes(`fb${lab.id}`), `namespaces left: ${left}`);
});
