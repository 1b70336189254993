import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideBoot, decisionLogFields, parseDecideQuery, renderDecision } from './decide.js';

const entry = { name: 'debian', kernel: 'vmlinuz', initrds: ['initrd.gz'], cmdline: 'console=ttyS0' };
const ctx = { baseUrl: 'http://10.0.0.1:8080', platform: null, menuTimeoutSeconds: 7, menuEntries: [entry] };

test('parseDecideQuery() normalises the hexhyp MAC and keeps only known platforms', () => {
  const q = parseDecideQuery({ mac: '52-54-00-AB-CD-EF', platform: 'efi', buildarch: 'x86_64', uuid: 'ABCDEF01-2345-6789-ABCD-EF0123456789' });
  assert.equal(q.mac, '52:54:00:ab:cd:ef');
  assert.equal(q.platform, 'efi');
  assert.equal(q.buildarch, 'x86_64');
  assert.equal(q.uuid, 'abcdef01-2345-6789-abcd-ef0123456789');
  const bad = parseDecideQuery({ mac: 'zz', platform: 'evil\nshell', buildarch: '${x}', uuid: ['a'] });
  assert.equal(bad.mac, null);
  assert.equal(bad.platform, null);
  assert.equal(bad.buildarch, null);
  assert.equal(bad.uuid, null);
});

test('decideBoot() boots the assigned entry of a known host', () => {
  const d = decideBoot(parseDecideQuery({ mac: '52-54-00-12-34-56' }), { mac: '52:54:00:12:34:56', name: 'web1', entry: 'debian' }, entry);
  assert.equal(d.kind, 'entry');
  const s = renderDecision(d, ctx);
  assert.match(s, /^kernel http:\/\/10\.0\.0\.1:8080\/boot\/entries\/debian\/vmlinuz initrd=initrd\.gz console=ttyS0 \|\| goto failed$/m);
  assert.deepEqual(decisionLogFields(d), { mac: '52:54:00:12:34:56', decision: 'entry', entry: 'debian' });
});

test('decideBoot() gives unknown and unassigned machines the menu', () => {
  const req = parseDecideQuery({ mac: '525400123456' });
  const unknown = decideBoot(req, null, null);
  assert.deepEqual(unknown, { kind: 'menu', mac: '52:54:00:12:34:56', reason: 'unknown-host', host: null });
  assert.match(renderDecision(unknown, ctx), /choose --timeout 7000 --default local/);
  const unassigned = decideBoot(req, { mac: '52:54:00:12:34:56', name: null, entry: null }, null);
  assert.equal(unassigned.kind === 'menu' && unassigned.reason, 'unassigned');
  assert.match(renderDecision(unassigned, ctx), /no boot entry assigned/);
});

test('decideBoot() falls back to the menu when the assigned entry is unsafe', () => {
  const evil = { ...entry, cmdline: 'quiet\nshell' };
  const d = decideBoot(parseDecideQuery({ mac: '52:54:00:12:34:56' }), { mac: '52:54:00:12:34:56', name: null, entry: 'debian' }, evil);
  assert.equal(d.kind, 'menu');
  assert.equal(d.kind === 'menu' && d.reason, 'entry-invalid');
  const s = renderDecision(d, { ...ctx, menuEntries: [evil] });
  assert.ok(!s.includes('quiet\nshell'));
  assert.ok(!/^kernel /m.test(s));
});

test('renderDecision() answers an invalid MAC with a script that says so and exits', () => {
  const d = decideBoot(parseDecideQuery({ mac: 'not-a-mac\n shell' }), null, null);
  assert.equal(d.kind, 'invalid-mac');
  const s = renderDecision(d, ctx);
  assert.ok(s.startsWith('#!ipxe\n'));
  assert.match(s, /invalid MAC address/);
  assert.match(s, /^exit 1$/m);
  assert.ok(!/^ ?shell/m.test(s));
});

test('decideBoot() sends a machine with an active task to the boot environment, before its entry', () => {
  const req = parseDecideQuery({ mac: '52-54-00-12-34-56' });
  const host = { mac: '52:54:00:12:34:56', name: 'web1', entry: 'debian' };
  const d = decideBoot(req, host, entry, { task: { id: 7, type: 'deploy' }, unknownPolicy: 'menu' });
  assert.equal(d.kind, 'task');
  const token = 'ab'.repeat(32);
  const s = renderDecision(d, { ...ctx, imaging: { bootEnv: { token, kernelArgs: 'quiet' }, menuTools: true } });
  assert.match(s, new RegExp(`^kernel http://10\\.0\\.0\\.1:8080/boot/env/vmlinuz initrd=initrd\\.img fleetboot\\.url=http://10\\.0\\.0\\.1:8080 fleetboot\\.task=7 fleetboot\\.token=${token} BOOTIF=01-\\$\\{net0/mac:hexhyp\\} console=tty0 console=ttyS0,115200 quiet \\|\\| goto failed$`, 'm'));
  assert.match(s, /^initrd http:\/\/10\.0\.0\.1:8080\/boot\/env\/initrd\.img \|\| goto failed$/m);
  assert.deepEqual(decisionLogFields(d), { mac: '52:54:00:12:34:56', decision: 'task', entry: 'debian', task: 7, reason: 'deploy' });
  // Without the boot environment: a message that says how to build it.
  const missing = renderDecision(d, { ...ctx, imaging: { bootEnv: null, menuTools: true } });
  assert.match(missing, /fleetboot bootenv build/);
  assert.ok(!/^kernel /m.test(missing));
  // No task: the entry as before.
  assert.equal(decideBoot(req, host, entry, { task: null, unknownPolicy: 'register' }).kind, 'entry');
});

test('decideBoot() registers unknown machines under policy register and offers the imaging items in the menu otherwise', () => {
  const req = parseDecideQuery({ mac: '52-54-00-12-34-56' });
  const reg = decideBoot(req, null, null, { task: null, unknownPolicy: 'register' });
  assert.deepEqual(reg, { kind: 'register', mac: '52:54:00:12:34:56' });
  assert.match(renderDecision(reg, { ...ctx, imaging: { bootEnv: null, menuTools: true } }), /fleetboot bootenv build/);
  const menu = decideBoot(req, null, null, { task: null, unknownPolicy: 'menu' });
  const s = renderDecision(menu, { ...ctx, imaging: { bootEnv: null, menuTools: true } });
  assert.match(s, /^item fb-register Register this machine$/m);
  assert.match(s, /^:fb-register\nchain --replace --autofree http:\/\/10\.0\.0\.1:8080\/boot\/task\?mac=52:54:00:12:34:56&type=register \|\| goto failed$/m);
  assert.match(s, /^item fb-inventory Hardware inventory$/m);
  const known = renderDecision(decideBoot(req, { mac: '52:54:00:12:34:56', name: null, entry: null }, null, { task: null, unknownPolicy: 'menu' }), { ...ctx, imaging: { bootEnv: null, menuTools: true } });
  assert.ok(!known.includes('fb-register'), 'a known host is not registered again');
  assert.match(known, /^item fb-inventory /m);
});
