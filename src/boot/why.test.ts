import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BootEvent, NewBootEvent } from '../model/boot-event.js';
import { decisionBootEvent, dhcpBootEvent, httpBootEvent, taskBootEvent, tftpBootEvent } from './boot-events.js';
import { diagnoseBoot, lastAttempt } from './why.js';
import type { FirmwareInfo } from './firmware.js';

const MAC = '52:54:00:aa:bb:01';
const IP = '10.0.0.50';

const fw = (ipxe: boolean): FirmwareInfo => ({ clientClass: 'PXEClient', arch: 7, archSource: 'option-93', family: 'efi-x64', httpBoot: false, ipxe }) as FirmwareInfo;

/** Events as the services make them, numbered and a second apart. */
function timeline(...made: NewBootEvent[]): BootEvent[] {
  return made.map((e, i) => ({ ...e, id: i + 1, at: new Date(Date.UTC(2026, 11, 7, 10, 0, i)).toISOString(), mac: e.mac ?? MAC }));
}

const offerTftp = (): NewBootEvent => dhcpBootEvent({ mode: 'proxy', mac: MAC, ciaddr: '0.0.0.0', step: 'DISCOVER -> OFFER', port: 'dhcp', file: 'snponly.efi', reason: 'x64 UEFI firmware, not iPXE -> snponly.efi over TFTP', firmware: fw(false), offeredIp: null });
const offerScript = (): NewBootEvent => dhcpBootEvent({ mode: 'proxy', mac: MAC, ciaddr: '0.0.0.0', step: 'DISCOVER -> OFFER', port: 'dhcp', file: 'http://10.0.0.1:8080/boot.ipxe', reason: 'iPXE -> script', firmware: fw(true), offeredIp: null });
const tftp = (outcome: 'done' | 'refused' | 'failed'): NewBootEvent => tftpBootEvent({ ip: IP, file: 'snponly.efi', outcome, bytes: outcome === 'done' ? 200_000 : 0, reason: outcome === 'done' ? null : outcome === 'refused' ? 'File not found' : 'timed out' });
const script = (): NewBootEvent => httpBootEvent({ ip: IP, mac: null, what: 'script', path: '/boot.ipxe', status: 200, bytes: 120 });
const decide = (decision: string, extra: { entry?: string; task?: number } = {}): NewBootEvent =>
  decisionBootEvent({ ip: IP, mac: MAC, decision, entry: extra.entry ?? null, task: extra.task ?? null, reason: decision === 'entry' ? `host boots entry ${extra.entry}` : 'deploy' });
const task = (from: string, to: string, reason: string | null = null): NewBootEvent => taskBootEvent({ task: 7, mac: MAC, type: 'deploy', from, to, reason, ip: null });

test('no record: no DHCP request reached the server', () => {
  const d = diagnoseBoot(MAC, []);
  assert.equal(d.stage, 'none');
  assert.equal(d.completed, false);
  assert.match(d.verdict, /no DHCP request from it reached Fleetboot/);
});

test('offered a TFTP boot file, never fetched (the firmware asked again and again)', () => {
  const d = diagnoseBoot(MAC, timeline(offerTftp(), offerTftp(), offerTftp()), { httpPort: 8080, tftpDataPorts: '30000-30099' });
  assert.equal(d.stage, 'offered');
  assert.match(d.verdict, /^offered snponly\.efi at 2026-12-07 10:00:02Z, never fetched the boot file$/);
  assert.match(d.next ?? '', /UDP 69 and the data ports 30000-30099/);
  assert.equal(d.steps.length, 3, 'the firmware\'s repeated requests are one attempt');
});

test('the TFTP request refused or the transfer failed: named with the reason', () => {
  assert.match(diagnoseBoot(MAC, timeline(offerTftp(), tftp('refused'))).verdict, /TFTP transfer of snponly\.efi refused .*: File not found/);
  assert.match(diagnoseBoot(MAC, timeline(offerTftp(), tftp('failed'))).verdict, /failed .*: timed out/);
});

test('iPXE loaded by TFTP but never fetched its script', () => {
  const d = diagnoseBoot(MAC, timeline(offerTftp(), tftp('done')), { httpPort: 8080, tftpDataPorts: null });
  assert.equal(d.stage, 'boot-file');
  assert.match(d.verdict, /fetched snponly\.efi by TFTP .*; iPXE never fetched its script/);
  assert.match(d.next ?? '', /TCP 8080/);
  // iPXE's DHCP answer came (the script URL) but no HTTP request.
  assert.match(diagnoseBoot(MAC, timeline(offerTftp(), tftp('done'), offerScript())).verdict, /offered http:\/\/10\.0\.0\.1:8080\/boot\.ipxe .*never fetched it over HTTP/);
});

test('a whole UEFI PXE chain to an entry is a completed boot', () => {
  const d = diagnoseBoot(MAC, timeline(offerTftp(), tftp('done'), offerScript(), script(), decide('entry', { entry: 'debian' })));
  assert.equal(d.completed, true);
  assert.equal(d.next, null);
  assert.match(d.verdict, /^completed: boots entry debian/);
  assert.equal(d.steps.length, 5, 'iPXE\'s answer belongs to the attempt that loaded it');
});

test('the entry script fetched but no decision asked for', () => {
  assert.match(diagnoseBoot(MAC, timeline(offerScript(), script())).verdict, /never asked for its boot decision/);
});

test('an imaging task: sent to the boot environment, then the agent silent, running, done or failed', () => {
  const sent = [offerScript(), script(), decide('task', { task: 7 }), task('queued', 'booting')];
  assert.match(diagnoseBoot(MAC, timeline(...sent)).verdict, /for task #7 .*its agent never reported \(it fetched no boot environment file over HTTP\)/);
  const fetched = httpBootEvent({ ip: IP, mac: MAC, what: 'file', path: '/boot/env/vmlinuz', status: 200, bytes: 1 });
  assert.match(diagnoseBoot(MAC, timeline(...sent, fetched)).verdict, /it fetched \/boot\/env\/vmlinuz/);
  assert.match(diagnoseBoot(MAC, timeline(...sent, task('booting', 'running'))).verdict, /task #7 is running/);
  const done = diagnoseBoot(MAC, timeline(...sent, task('booting', 'running'), task('running', 'done')));
  assert.equal(done.completed, true);
  assert.match(done.verdict, /^completed: task #7 done/);
  assert.match(diagnoseBoot(MAC, timeline(...sent, task('booting', 'failed', 'no agent contact'))).verdict, /task #7 failed .*: no agent contact/);
});

test('a task failed at the boot (no boot environment): the machine still booted as without it', () => {
  const d = diagnoseBoot(MAC, timeline(offerScript(), script(), decisionBootEvent({ ip: IP, mac: MAC, decision: 'fail-task+entry', entry: 'debian', task: 9, reason: 'no boot environment' })));
  assert.equal(d.completed, true);
  assert.match(d.verdict, /^completed: boots entry debian at .*, as without its task #9, which failed \(no boot environment\)$/);
});

test('the last attempt: a firmware request after a finished boot starts another; a decision then iPXE again starts another', () => {
  const first = [offerTftp(), tftp('done'), offerScript(), script(), decide('entry', { entry: 'debian' })];
  const ev = timeline(...first, offerTftp(), offerTftp());
  assert.deepEqual(lastAttempt(ev).map((e) => e.id), [6, 7]);
  assert.match(diagnoseBoot(MAC, ev).verdict, /never fetched the boot file/);
  const ipxeRom = timeline(offerScript(), script(), decide('entry', { entry: 'debian' }), offerScript());
  assert.deepEqual(lastAttempt(ipxeRom).map((e) => e.id), [4]);
});

test('boot events: summaries say the file and why; DHCP in server mode names the offered address', () => {
  const e = dhcpBootEvent({ mode: 'server', mac: MAC, ciaddr: '0.0.0.0', step: 'DISCOVER -> OFFER', port: 'dhcp', file: 'undionly.kpxe', reason: 'BIOS PXE', firmware: fw(false), offeredIp: '10.0.0.77' });
  assert.equal(e.ip, '10.0.0.77');
  assert.equal(e.summary, 'DHCP DISCOVER -> OFFER: 10.0.0.77 boot file undionly.kpxe (BIOS PXE)');
  assert.equal(e.detail['via'], 'tftp');
  assert.equal(tftpBootEvent({ ip: IP, file: null, outcome: 'refused', bytes: 0, reason: 'Illegal TFTP operation' }).summary, 'TFTP refused (unreadable request): Illegal TFTP operation');
});

test('the Secure Boot path: shim and GRUB fetched, no configuration asked for (GRUB went to another server)', () => {
  const offer = dhcpBootEvent({ mode: 'proxy', mac: MAC, ciaddr: '0.0.0.0', step: 'DISCOVER -> OFFER', port: 'dhcp', file: 'shimx64.efi', reason: 'x64 UEFI firmware, not iPXE -> shimx64.efi over TFTP', firmware: fw(false), offeredIp: null });
  const got = (file: string): NewBootEvent => tftpBootEvent({ ip: IP, file, outcome: 'done', bytes: 1000, reason: null });
  const d = diagnoseBoot(MAC, timeline(offer, got('shimx64.efi'), got('grubx64.efi')));
  assert.equal(d.stage, 'boot-file');
  assert.match(d.verdict, /fetched shimx64\.efi by TFTP .*, then grubx64\.efi; GRUB never asked for this machine's configuration$/);
  assert.match(d.next ?? '', /next-server/);
  // Through the configuration to the decision: completed.
  const done = diagnoseBoot(MAC, timeline(offer, got('shimx64.efi'), got('grubx64.efi'), got('/grub/grub.cfg'), decide('entry', { entry: 'debian' }), got('/fleetboot/entries/debian/vmlinuz')));
  assert.equal(done.completed, true);
});

test('nearest node: an answer that sent the machine to another node says so (served by node B)', () => {
  const toB = dhcpBootEvent({ mode: 'server', mac: MAC, ciaddr: '0.0.0.0', step: 'DISCOVER -> OFFER', port: 'dhcp', file: 'snponly.efi', reason: 'x64 UEFI firmware, not iPXE -> snponly.efi over TFTP (served by node node-b, 10.0.9.2)', firmware: fw(false), offeredIp: IP, node: 'node-b' });
  assert.equal(toB.detail['node'], 'node-b');
  const d = diagnoseBoot(MAC, timeline(toB));
  assert.match(d.verdict, /^offered snponly\.efi at .* \(served by node node-b\), never fetched the boot file$/);
  assert.match(d.next ?? '', /to node node-b/);
  const url = dhcpBootEvent({ mode: 'proxy', mac: MAC, ciaddr: '0.0.0.0', step: 'DISCOVER -> OFFER', port: 'dhcp', file: 'http://10.0.9.2:8080/boot.ipxe', reason: 'iPXE -> script', firmware: fw(true), offeredIp: null, node: 'node-b' });
  assert.match(url.summary, /boot URL http:\/\/10\.0\.9\.2:8080\/boot\.ipxe from node node-b/);
  assert.match(diagnoseBoot(MAC, timeline(url)).verdict, /\(served by node node-b\), never fetched it over HTTP/);
  assert.equal(offerTftp().detail['node'], null, 'this server: no node');
});
