import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { BootDecision, DecisionHost, DecisionTask } from './decide.js';
import { grubEntryProblem, grubSource, grubWordProblem, parseGrubRequest, q, renderGrubDecision, rootConfig, type GrubRenderContext } from './grub.js';
import type { ScriptEntry } from './ipxe.js';

const MAC = '52:54:00:12:34:56';
const host: DecisionHost = { mac: MAC, name: 'lab-1', entry: 'debian', status: 'approved' };
const entry: ScriptEntry = { name: 'debian', kernel: 'vmlinuz', initrds: ['initrd.gz'], cmdline: 'console=ttyS0 quiet' };
const ctx = (over: Partial<GrubRenderContext> = {}): GrubRenderContext => ({ baseUrl: 'http://10.0.0.1:8080', menuTimeoutSeconds: 10, menuEntries: [entry], secureBoot: true, refused: new Map(), menuTools: true, ...over });
const task: DecisionTask = { id: 7, type: 'inventory', state: 'queued', attempts: 0, lastSeenMs: null, tokenIp: null };

test('the root grub.cfg asks for the per-machine file, naming the lockdown state', () => {
  const cfg = rootConfig();
  assert.match(cfg, /if \[ "\$\{lockdown\}" = "y" \]; then set fb_sb=on; fi/);
  assert.match(cfg, /configfile "\/fleetboot\/grub\/\$\{net_default_mac\}\/sb-\$\{fb_sb\}\.cfg"/);
  assert.match(cfg, /\nexit\n$/);
});

test('per-machine names: decide and menu tools; anything else is not one', () => {
  assert.deepEqual(parseGrubRequest(`/fleetboot/grub/${MAC.toUpperCase()}/sb-on.cfg`), { kind: 'decide', mac: MAC, secureBoot: true });
  assert.deepEqual(parseGrubRequest(`fleetboot/grub/${MAC}/sb-off.cfg`), { kind: 'decide', mac: MAC, secureBoot: false });
  assert.deepEqual(parseGrubRequest(`fleetboot/grub/${MAC}/inventory.cfg`), { kind: 'tool', mac: MAC, tool: 'inventory' });
  for (const bad of [`fleetboot/grub/${MAC}/sb-maybe.cfg`, 'fleetboot/grub/../../etc/passwd', `fleetboot/grub/${MAC}x/sb-on.cfg`, 'fleetboot/grub/52:54:00:12:34/sb-on.cfg', 'grub/grub.cfg']) {
    assert.equal(parseGrubRequest(bad), null, bad);
  }
});

test('words: single-quoted; a quote or a control character is refused, never escaped', () => {
  assert.equal(q('console=ttyS0,115200'), "'console=ttyS0,115200'");
  assert.equal(q('$root;reboot'), "'$root;reboot'");
  assert.match(grubWordProblem("a'b") ?? '', /single quote/);
  assert.match(grubWordProblem('a\nb') ?? '', /U\+000A/);
  assert.throws(() => q("it's"), /single quote/);
});

test('sources: files of the entry over TFTP; URLs refused (Debian\'s signed GRUB has no HTTP)', () => {
  assert.deepEqual(grubSource('debian', 'vmlinuz'), { path: '/fleetboot/entries/debian/vmlinuz' });
  assert.match((grubSource('debian', 'http://mirror.lan/linux') as { problem: string }).problem, /is a URL: Debian's signed GRUB fetches only over TFTP/);
  assert.match((grubSource('debian', 'https://mirror.lan/linux') as { problem: string }).problem, /is a URL/);
  assert.match((grubSource('debian', '../x') as { problem: string }).problem, /not a valid file name/);
  assert.match(grubEntryProblem({ ...entry, cmdline: "root=/dev/sda1 x='y'" }) ?? '', /single quote/);
  assert.equal(grubEntryProblem(entry), null);
});

test('a warning is shown before the entry loads (a signature the machine may still trust by hash)', () => {
  const d: BootDecision = { kind: 'entry', mac: MAC, host, entry };
  const cfg = renderGrubDecision(d, ctx({ warnings: new Map([['debian', 'the kernel vmlinuz of entry debian: its contents do not match its signature']]) }));
  assert.match(cfg, /echo 'Fleetboot: warning: the kernel vmlinuz of entry debian: its contents do not match its signature'\nsleep 3\necho 'Fleetboot: booting entry debian'\nif linux /);
});

test('entry: linux with quoted arguments and initrds, then back to the firmware when a step fails', () => {
  const d: BootDecision = { kind: 'entry', mac: MAC, host, entry };
  const cfg = renderGrubDecision(d, ctx());
  assert.match(cfg, /^# Fleetboot boot decision: 52:54:00:12:34:56 \(lab-1\) boots entry debian \(Secure Boot on\)/);
  assert.match(cfg, /if linux '\/fleetboot\/entries\/debian\/vmlinuz' 'console=ttyS0' 'quiet'; then\n  if initrd '\/fleetboot\/entries\/debian\/initrd\.gz'; then\n    boot\n  fi\nfi\n/);
  assert.match(cfg, /booting entry debian failed, trying the local disk in 5 seconds'\nsleep 5\nexit\n/);
});

test('an entry Secure Boot would refuse: the reason on the screen, then the local disk; nothing is loaded', () => {
  const d: BootDecision = { kind: 'entry', mac: MAC, host, entry };
  const cfg = renderGrubDecision(d, ctx({ refused: new Map([['debian', 'the kernel vmlinuz of entry debian is not signed for Secure Boot: it has no signature (no certificate table)']]) }));
  assert.match(cfg, /is not signed for Secure Boot: it has no signature \(no certificate table\)/);
  assert.doesNotMatch(cfg, /linux '/);
  assert.match(cfg, /sleep 10\nexit\n/);
});

test('task: the boot environment with the token bound to the address, BOOTIF from the MAC', () => {
  const d: BootDecision = { kind: 'task', mac: MAC, host, task };
  const cfg = renderGrubDecision(d, ctx({ bootEnv: { token: 'ab'.repeat(16), kernelArgs: 'quiet', clientIp: '10.0.0.50' } }));
  assert.match(cfg, /if linux '\/fleetboot\/env\/vmlinuz' 'fleetboot\.url=http:\/\/10\.0\.0\.1:8080' 'fleetboot\.task=7' 'fleetboot\.token=(ab){16}' 'fleetboot\.ip=10\.0\.0\.50' 'BOOTIF=01-52-54-00-12-34-56' 'console=tty0' 'console=ttyS0,115200' 'quiet'; then/);
  assert.match(cfg, /initrd '\/fleetboot\/env\/initrd\.img'/);
  assert.match(renderGrubDecision(d, ctx({ bootEnv: null })), /boot environment is not built/);
});

test('menu: local disk by default after the timeout, the entries, the imaging tools; timeout 0 is the local disk at once', () => {
  const d: BootDecision = { kind: 'menu', mac: MAC, reason: 'unknown-host', host: null };
  const cfg = renderGrubDecision(d, ctx({ menuEntries: [entry, { ...entry, name: 'remote', kernel: 'https://x.lan/vmlinuz' }] }));
  assert.match(cfg, /set timeout=10\nset default='local'/);
  assert.match(cfg, /menuentry 'Boot from local disk' --id local \{\n  exit\n\}/);
  assert.match(cfg, /menuentry 'Entry debian' --id 'entry0' \{/);
  assert.match(cfg, /menuentry 'Entry remote \(cannot boot here\)' --id 'entry1' \{\n  echo 'Fleetboot: entry remote cannot boot here: source "https:\/\/x\.lan\/vmlinuz" is a URL/);
  assert.match(cfg, /configfile '\/fleetboot\/grub\/52:54:00:12:34:56\/register\.cfg'/);
  assert.match(cfg, /configfile '\/fleetboot\/grub\/52:54:00:12:34:56\/inventory\.cfg'/);
  assert.doesNotMatch(renderGrubDecision(d, ctx({ menuTimeoutSeconds: 0 })), /menuentry/);
});

test('wait: the reason, then the same per-machine file again; refuse: a message and back to the firmware', () => {
  const w: BootDecision = { kind: 'wait', mac: MAC, task, reason: 'task #7 is running', retrySeconds: 30, suspicious: false };
  assert.match(renderGrubDecision(w, ctx({ secureBoot: false })), /sleep 30\nconfigfile '\/fleetboot\/grub\/52:54:00:12:34:56\/sb-off\.cfg'\n$/);
  const r: BootDecision = { kind: 'refuse', mac: MAC, task, reason: "impostor 'quoted' $(x)" };
  const cfg = renderGrubDecision(r, ctx());
  assert.match(cfg, /^echo 'Fleetboot: impostor _quoted_ \$\(x\)'\nsleep 10\nexit\n$/);
});
