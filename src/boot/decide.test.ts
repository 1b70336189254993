import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideBoot, decisionLogFields, parseDecideQuery, renderDecision, type BootDecision, type DecideInput, type DecisionHost, type DecisionTask } from './decide.js';

const entry = { name: 'debian', kernel: 'vmlinuz', initrds: ['initrd.gz'], cmdline: 'console=ttyS0' };
const ctx = { baseUrl: 'http://10.0.0.1:8080', platform: null, menuTimeoutSeconds: 7, menuEntries: [entry] };
const MAC = '52:54:00:12:34:56';
const NOW = Date.parse('2026-12-02T12:00:00Z');
const policy = { unknownPolicy: 'menu', maxAttempts: 3, attemptTimeoutMs: 300_000, runningQuietMs: 30_000 } as const;

/** A decision input: a known host with its entry assigned, no task, asked from 10.0.0.50; `over` changes any of it. */
function input(over: Partial<DecideInput> = {}): DecideInput {
  return {
    req: parseDecideQuery({ mac: MAC }),
    clientIp: '10.0.0.50',
    host: { mac: MAC, name: 'web1', entry: 'debian', status: 'approved' },
    entry,
    task: null,
    addressMac: null,
    bootEnvReady: true,
    registerFailedRecently: false,
    nowMs: NOW,
    policy,
    ...over,
  };
}
const task = (over: Partial<DecisionTask> = {}): DecisionTask => ({ id: 7, type: 'capture', state: 'queued', attempts: 0, lastSeenMs: null, tokenIp: null, ...over });
const unknown = { host: null, entry: null };
const noEntry: { host: DecisionHost; entry: null } = { host: { mac: MAC, name: null, entry: null }, entry: null };


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

/** The table: what each situation decides (kind, and the reason or the then-kind where there is one). */
const cases: { name: string; in: Partial<DecideInput>; kind: BootDecision['kind']; detail?: RegExp; then?: BootDecision['kind'] }[] = [
  { name: 'known host with an entry boots it', in: {}, kind: 'entry' },
  { name: 'known host without an entry gets the menu', in: noEntry, kind: 'menu', detail: /unassigned/ },
  { name: 'known host whose entry vanished gets the menu', in: { entry: null }, kind: 'menu', detail: /entry-missing/ },
  { name: 'known host whose entry is unsafe gets the menu', in: { entry: { ...entry, cmdline: 'quiet\nshell' } }, kind: 'menu', detail: /entry-invalid/ },
  { name: 'unknown host, policy menu: the menu', in: unknown, kind: 'menu', detail: /unknown-host/ },
  { name: 'unknown host, policy register: a register task', in: { ...unknown, policy: { ...policy, unknownPolicy: 'register' } }, kind: 'register' },
  { name: 'unknown host, policy register, last register failed: the menu', in: { ...unknown, registerFailedRecently: true, policy: { ...policy, unknownPolicy: 'register' } }, kind: 'menu' },
  { name: 'unknown host, policy register, address of another MAC: the menu', in: { ...unknown, addressMac: '52:54:00:99:99:99', policy: { ...policy, unknownPolicy: 'register' } }, kind: 'menu' },
  { name: 'unknown host, policy register, no boot environment: the menu', in: { ...unknown, bootEnvReady: false, policy: { ...policy, unknownPolicy: 'register' } }, kind: 'menu' },
  { name: 'pending host boots its local disk', in: { host: { mac: MAC, name: null, entry: null, status: 'pending' }, entry: null }, kind: 'local', detail: /approval/ },
  { name: 'queued task boots the environment, before the entry', in: { task: task() }, kind: 'task' },
  { name: 'queued task, address is another MAC: refused', in: { task: task(), addressMac: '52:54:00:99:99:99' }, kind: 'refuse', detail: /10\.0\.0\.50, which is 52:54:00:99:99:99/ },
  { name: 'queued task, address is this MAC: boots', in: { task: task(), addressMac: MAC }, kind: 'task' },
  { name: 'queued task, no boot environment: the task fails naming the build command', in: { task: task(), bootEnvReady: false }, kind: 'fail-task', detail: /fleetboot bootenv build/, then: 'entry' },
  { name: 'token out to another address, attempt not timed out: wait', in: { task: task({ state: 'booting', attempts: 1, tokenIp: '10.0.0.66', lastSeenMs: NOW - 10_000 }) }, kind: 'wait', detail: /handed to 10\.0\.0\.66/ },
  { name: 'token out to another address, attempt timed out: a new token', in: { task: task({ state: 'booting', attempts: 1, tokenIp: '10.0.0.66', lastSeenMs: NOW - 301_000 }) }, kind: 'task' },
  { name: 'token out to this address (the machine rebooted): a new token', in: { task: task({ state: 'booting', attempts: 1, tokenIp: '10.0.0.50', lastSeenMs: NOW - 10_000 }) }, kind: 'task' },
  { name: 'running task heard from recently: wait', in: { task: task({ state: 'running', attempts: 1, tokenIp: '10.0.0.50', lastSeenMs: NOW - 5_000 }) }, kind: 'wait', detail: /running on this machine, last contact 5 s ago/ },
  { name: 'running task silent for long: a new token', in: { task: task({ state: 'running', attempts: 1, tokenIp: '10.0.0.50', lastSeenMs: NOW - 60_000 }) }, kind: 'task' },
  { name: 'task out of attempts fails, the machine boots its entry', in: { task: task({ state: 'booting', attempts: 3, tokenIp: '10.0.0.50', lastSeenMs: NOW - 60_000 }) }, kind: 'fail-task', detail: /PXE-booted 3 times/, then: 'entry' },
  { name: 'task out of attempts on an unknown machine: fails, then the menu', in: { ...unknown, task: task({ type: 'inventory', attempts: 3 }) }, kind: 'fail-task', then: 'menu' },  { name: 'scheduled task: as if there were no task, the host boots its entry', in: { task: task({ state: 'scheduled' }) }, kind: 'entry' },
  { name: 'scheduled task, no boot environment: not failed, the host boots its entry', in: { task: task({ state: 'scheduled' }), bootEnvReady: false }, kind: 'entry' },
  { name: 'scheduled task of a host without an entry: the menu, as without it', in: { ...noEntry, task: task({ state: 'scheduled', type: 'inventory' }) }, kind: 'menu', detail: /unassigned/ },
];

test('decideBoot(): a scheduled task decides exactly as no task does', () => {
  for (const over of [{}, noEntry, unknown, { addressMac: '52:54:00:99:99:99' }] as Partial<DecideInput>[]) {
    assert.deepEqual(decideBoot(input({ ...over, task: task({ state: 'scheduled' }) })), decideBoot(input({ ...over, task: null })));
  }
});

for (const c of cases) {
  test(`decideBoot(): ${c.name}`, () => {
    const d = decideBoot(input(c.in));
    assert.equal(d.kind, c.kind);
    if (c.detail) assert.match(JSON.stringify(d), c.detail);
    if (c.then) assert.equal(d.kind === 'fail-task' && d.then.kind, c.then);
    // Every decision renders to a script that starts as iPXE wants.
    assert.ok(renderDecision(d, { ...ctx, bootEnv: d.kind === 'task' ? { token: 'ab'.repeat(32), kernelArgs: '', clientIp: '10.0.0.50' } : null, menuTools: true }).startsWith('#!ipxe\n'));
  });
}

test('decideBoot() boots the assigned entry of a known host', () => {
  const d = decideBoot(input({ req: parseDecideQuery({ mac: '52-54-00-12-34-56' }) }));
  assert.equal(d.kind, 'entry');
  const s = renderDecision(d, ctx);
  assert.match(s, /^kernel http:\/\/10\.0\.0\.1:8080\/boot\/entries\/debian\/vmlinuz initrd=initrd\.gz console=ttyS0 \|\| goto failed$/m);
  assert.deepEqual(decisionLogFields(d), { mac: MAC, decision: 'entry', entry: 'debian' });
});

test('decideBoot() gives unknown and unassigned machines the menu', () => {
  const u = decideBoot(input({ ...unknown, req: parseDecideQuery({ mac: '525400123456' }) }));
  assert.deepEqual(u, { kind: 'menu', mac: MAC, reason: 'unknown-host', host: null });
  assert.match(renderDecision(u, ctx), /choose --timeout 7000 --default local/);
  assert.match(renderDecision(decideBoot(input(noEntry)), ctx), /no boot entry assigned/);
});

test('decideBoot() falls back to the menu when the assigned entry is unsafe', () => {
  const evil = { ...entry, cmdline: 'quiet\nshell' };
  const d = decideBoot(input({ entry: evil }));
  const s = renderDecision(d, { ...ctx, menuEntries: [evil] });
  assert.ok(!s.includes('quiet\nshell'));
  assert.ok(!/^kernel /m.test(s));
});

test('renderDecision() answers an invalid MAC with a script that says so and exits', () => {
  const d = decideBoot(input({ req: parseDecideQuery({ mac: 'not-a-mac\n shell' }) }));
  assert.equal(d.kind, 'invalid-mac');
  const s = renderDecision(d, ctx);
  assert.ok(s.startsWith('#!ipxe\n'));
  assert.match(s, /invalid MAC address/);
  assert.match(s, /^exit 1$/m);
  assert.ok(!/^ ?shell/m.test(s));
});

test('renderDecision() of a task: the boot environment with the token, the task and the bound address', () => {
  const d = decideBoot(input({ task: task({ type: 'deploy' }) }));
  assert.equal(d.kind, 'task');
  const token = 'ab'.repeat(32);
  const s = renderDecision(d, { ...ctx, bootEnv: { token, kernelArgs: 'quiet', clientIp: '10.0.0.50' } });
  assert.match(s, new RegExp(`^kernel http://10\\.0\\.0\\.1:8080/boot/env/vmlinuz initrd=initrd\\.img fleetboot\\.url=http://10\\.0\\.0\\.1:8080 fleetboot\\.task=7 fleetboot\\.token=${token} fleetboot\\.ip=10\\.0\\.0\\.50 BOOTIF=01-\\$\\{net0/mac:hexhyp\\} console=tty0 console=ttyS0,115200 quiet \\|\\| goto failed$`, 'm'));
  assert.match(s, /^initrd http:\/\/10\.0\.0\.1:8080\/boot\/env\/initrd\.img \|\| goto failed$/m);
  assert.deepEqual(decisionLogFields(d), { mac: MAC, decision: 'task', entry: 'debian', task: 7, reason: 'deploy' });
  // No token handed out: a message, never a kernel line.
  const missing = renderDecision(d, { ...ctx, bootEnv: null });
  assert.match(missing, /fleetboot bootenv build/);
  assert.ok(!/^kernel /m.test(missing));
});

test('renderDecision() of a wait asks again; of a refusal exits; of a failed task boots as without it', () => {
  const w = decideBoot(input({ task: task({ state: 'booting', attempts: 1, tokenIp: '10.0.0.66', lastSeenMs: NOW - 10_000 }) }));
  assert.match(renderDecision(w, ctx), /^chain --replace --autofree http:\/\/10\.0\.0\.1:8080\/boot\.ipxe$/m);
  const r = decideBoot(input({ task: task(), addressMac: '52:54:00:99:99:99' }));
  assert.match(renderDecision(r, ctx), /^exit 1$/m);
  assert.ok(!/fleetboot\.token/.test(renderDecision(r, ctx)));
  const f = decideBoot(input({ task: task({ attempts: 3 }) }));
  assert.match(renderDecision(f, ctx), /^kernel http:\/\/10\.0\.0\.1:8080\/boot\/entries\/debian\/vmlinuz /m);
});

test('the menu offers the imaging items; register only to unknown machines', () => {
  const s = renderDecision(decideBoot(input(unknown)), { ...ctx, menuTools: true });
  assert.match(s, /^item fb-register Register this machine$/m);
  assert.match(s, /^:fb-register\nchain --replace --autofree http:\/\/10\.0\.0\.1:8080\/boot\/task\?mac=52:54:00:12:34:56&type=register \|\| goto failed$/m);
  assert.match(s, /^item fb-inventory Hardware inventory$/m);
  const known = renderDecision(decideBoot(input(noEntry)), { ...ctx, menuTools: true });
  assert.ok(!known.includes('fb-register'), 'a known host is not registered again');
  assert.match(known, /^item fb-inventory /m);
});
