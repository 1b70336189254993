import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FREE_FAIL_BYTES, judgeActivity, judgeAddress, judgeBootEnv, judgeDataDir, judgeDhcpServers, judgeFirewall, judgeIpxe, judgeNodes, judgeReplication, judgeSecureBoot, type DhcpAnswer, type FirewallPort } from './judge.js';

const ME = '10.0.0.1';
const self: DhcpAnswer = { serverId: ME, kind: 'proxy', offered: null, bootFile: 'undionly.kpxe', nextServer: ME };
const plain: DhcpAnswer = { serverId: '10.0.0.254', kind: 'dhcp', offered: '10.0.0.100', bootFile: null, nextServer: null };
const pxe: DhcpAnswer = { serverId: '10.0.0.2', kind: 'dhcp', offered: '10.0.0.101', bootFile: 'rogue.kpxe', nextServer: null };
const proxy: DhcpAnswer = { serverId: '10.0.0.3', kind: 'proxy', offered: null, bootFile: 'proxyboot', nextServer: null };

test('judgeDhcpServers(): Fleetboot alone is ok; its own answer does not count', () => {
  assert.equal(judgeDhcpServers({ mode: 'proxy', serverIp: ME, iface: 'eth0', answers: [self] }).status, 'ok');
  assert.equal(judgeDhcpServers({ mode: 'server', serverIp: ME, iface: 'eth0', answers: [] }).status, 'ok');
});

test('judgeDhcpServers(): a proxyDHCP works beside a plain DHCP server, not beside PXE answers', () => {
  const ok = judgeDhcpServers({ mode: 'proxy', serverIp: ME, iface: 'eth0', answers: [self, plain] });
  assert.equal(ok.status, 'ok');
  assert.match(ok.detail, /10\.0\.0\.254/);
  const bad = judgeDhcpServers({ mode: 'proxy', serverIp: ME, iface: 'eth0', answers: [self, plain, pxe, proxy] });
  assert.equal(bad.status, 'fail');
  assert.match(bad.detail, /a DHCP server at 10\.0\.0\.2 \(offered 10\.0\.0\.101\) with boot file rogue\.kpxe; a proxyDHCP at 10\.0\.0\.3/);
  assert.match(bad.detail, /also a DHCP server at 10\.0\.0\.254.*fine/);
});

test('judgeDhcpServers(): beside Fleetboot\'s DHCP server any other is a conflict; with DHCP off they are listed', () => {
  const bad = judgeDhcpServers({ mode: 'server', serverIp: ME, iface: 'eth0', answers: [plain] });
  assert.equal(bad.status, 'fail');
  assert.match(bad.fix ?? '', /--dhcp proxy/);
  assert.equal(judgeDhcpServers({ mode: 'off', serverIp: ME, iface: 'eth0', answers: [plain] }).status, 'info');
});

test('judgeIpxe(): missing and changed binaries fail; unrecorded ones warn', () => {
  const rec = { sha256: 'a'.repeat(64), source: '/usr/lib/ipxe/x', at: '2026-12-07T10:00:00Z' };
  const md5 = { md5: '1'.repeat(32), packagedMd5: null };
  const [ok, missing, changed, unrecorded, packaged, upgraded] = judgeIpxe(
    [
      { name: 'undionly.kpxe', path: '/t/undionly.kpxe', sha256: 'a'.repeat(64), recorded: rec, ...md5 },
      { name: 'snponly.efi', path: '/t/snponly.efi', sha256: null, recorded: rec, md5: null, packagedMd5: null },
      { name: 'ipxe.efi', path: '/t/ipxe.efi', sha256: 'b'.repeat(64), recorded: rec, ...md5 },
      { name: 'other.efi', path: '/t/other.efi', sha256: 'b'.repeat(64), recorded: null, ...md5 },
      { name: 'deb.efi', path: '/t/deb.efi', sha256: 'b'.repeat(64), recorded: null, md5: '1'.repeat(32), packagedMd5: '1'.repeat(32) },
      { name: 'old.efi', path: '/t/old.efi', sha256: 'a'.repeat(64), recorded: rec, md5: '1'.repeat(32), packagedMd5: '2'.repeat(32) },
    ],
    '/usr/lib/ipxe',
  );
  assert.equal(packaged?.status, 'ok', 'not copied by Fleetboot, but the Debian package\'s file');
  assert.equal(upgraded?.status, 'warn');
  assert.match(upgraded?.detail ?? '', /not the installed Debian ipxe package's file/);
  assert.equal(ok?.status, 'ok');
  assert.equal(missing?.status, 'fail');
  assert.match(missing?.detail ?? '', /missing: \/t\/snponly\.efi does not exist/);
  assert.match(missing?.fix ?? '', /restart the server.*\/usr\/lib\/ipxe/);
  assert.equal(changed?.status, 'fail');
  assert.match(changed?.detail ?? '', /changed since it was copied/);
  assert.equal(unrecorded?.status, 'warn');
});

test('judgeBootEnv(): missing, incomplete, changed, unrecorded, intact', () => {
  const base = { dir: '/d/bootenv', buildCommand: 'fleetboot bootenv build' };
  const good = [{ name: 'vmlinuz', sha256: 'a'.repeat(64) }, { name: 'initrd.img', sha256: 'b'.repeat(64) }];
  const rec = { vmlinuz: 'a'.repeat(64), 'initrd.img': 'b'.repeat(64) };
  const missing = judgeBootEnv({ ...base, files: good.map((f) => ({ ...f, sha256: null })), recorded: null });
  assert.equal(missing.status, 'fail');
  assert.match(missing.detail, /^missing/);
  assert.equal(missing.fix, 'build it: fleetboot bootenv build');
  assert.match(judgeBootEnv({ ...base, files: [good[0] as never, { name: 'initrd.img', sha256: null }], recorded: rec }).detail, /incomplete: initrd\.img missing/);
  assert.match(judgeBootEnv({ ...base, files: good, recorded: { ...rec, vmlinuz: 'c'.repeat(64) } }).detail, /vmlinuz changed/);
  assert.equal(judgeBootEnv({ ...base, files: good, recorded: null }).status, 'warn');
  assert.equal(judgeBootEnv({ ...base, files: good, recorded: rec }).status, 'ok');
});

test('judgeAddress(): on the configured interface, elsewhere, or nowhere', () => {
  const interfaces = { lo: ['127.0.0.1'], eth0: ['10.0.0.1'], eth1: ['192.168.1.5'] };
  assert.equal(judgeAddress({ serverIp: ME, configuredInterface: 'eth0', interfaces }).status, 'ok');
  const wrong = judgeAddress({ serverIp: ME, configuredInterface: 'eth1', interfaces });
  assert.equal(wrong.status, 'fail');
  assert.match(wrong.detail, /eth1 has 192\.168\.1\.5; 10\.0\.0\.1 is on eth0/);
  assert.match(judgeAddress({ serverIp: ME, configuredInterface: 'eth9', interfaces }).detail, /no interface eth9/);
  assert.equal(judgeAddress({ serverIp: ME, configuredInterface: null, interfaces }).status, 'ok');
  assert.equal(judgeAddress({ serverIp: '10.9.9.9', configuredInterface: null, interfaces }).status, 'fail');
});

const PORTS: FirewallPort[] = [
  { proto: 'udp', port: 69, service: 'TFTP', setting: 'tftp.port', replies: false },
  { proto: 'udp', port: [32768, 60999], service: 'TFTP data', setting: 'tftp.dataPorts', replies: true },
  { proto: 'tcp', port: 8080, service: 'HTTP', setting: 'http.port', replies: false },
];
const rules = (expr: unknown[][], policy = 'drop'): unknown => ({
  nftables: [
    { table: { family: 'inet', name: 'filter', handle: 1 } },
    { chain: { family: 'inet', table: 'filter', name: 'input', handle: 1, type: 'filter', hook: 'input', prio: 0, policy } },
    ...expr.map((e, i) => ({ rule: { family: 'inet', table: 'filter', chain: 'input', handle: 2 + i, expr: e } })),
  ],
});
const dport = (protocol: string, right: unknown): unknown => ({ match: { op: '==', left: { payload: { protocol, field: 'dport' } }, right } });
const established = { match: { op: 'in', left: { ct: { key: 'state' } }, right: ['established', 'related'] } };

test('judgeFirewall(): no input chain is ok; each port is judged; a drop names the rule and the fix', () => {
  assert.deepEqual(judgeFirewall({ ruleset: { nftables: [] }, unavailable: null, ports: PORTS, iface: 'eth0' }).map((c) => c.status), ['ok']);
  const checks = judgeFirewall({ ruleset: rules([[established, { accept: null }], [dport('tcp', 8080), { accept: null }]]), unavailable: null, ports: PORTS, iface: 'eth0' });
  assert.deepEqual(checks.map((c) => [c.id, c.status]), [['firewall:udp/69', 'fail'], ['firewall:udp/32768-60999', 'ok'], ['firewall:tcp/8080', 'ok']]);
  assert.match(checks[0]?.detail ?? '', /dropped by the policy drop of chain input of table inet filter/);
  assert.match(checks[0]?.fix ?? '', /nft add rule inet filter input udp dport 69 accept/);
  assert.match(checks[1]?.detail ?? '', /as replies/);
});

test('judgeFirewall(): a range is dropped where any port of it is; unknown rules warn; nft errors warn', () => {
  const holes = judgeFirewall({ ruleset: rules([[dport('udp', { range: [32768, 40000] }), { accept: null }]]), unavailable: null, ports: [PORTS[1] as FirewallPort], iface: 'eth0' });
  assert.equal(holes[0]?.status, 'fail');
  assert.match(holes[0]?.detail ?? '', /\(port 40001\)/);
  const saddr = { match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: { prefix: { addr: '10.0.0.0', len: 8 } } } };
  const unsure = judgeFirewall({ ruleset: rules([[saddr, dport('udp', 69), { accept: null }]]), unavailable: null, ports: [PORTS[0] as FirewallPort], iface: 'eth0' });
  assert.equal(unsure[0]?.status, 'warn');
  assert.match(unsure[0]?.detail ?? '', /cannot tell/);
  assert.equal(judgeFirewall({ ruleset: null, unavailable: 'Operation not permitted', ports: PORTS, iface: 'eth0' })[0]?.status, 'warn');
  assert.equal(judgeFirewall({ ruleset: { foo: 1 }, unavailable: null, ports: PORTS, iface: 'eth0' })[0]?.status, 'warn');
});

test('judgeDataDir(): space, modes and owners', () => {
  const dir = { path: '/d', mode: 0o40700, uid: 100 };
  const token = { path: '/d/api-token', mode: 0o100600, uid: 100 };
  const good = judgeDataDir({ dir, secrets: [token], serverUid: 100, freeBytes: 50 * 1024 ** 3, totalBytes: 100 * 1024 ** 3 });
  assert.deepEqual(good.map((c) => c.status), ['ok', 'ok']);
  const full = judgeDataDir({ dir, secrets: [token], serverUid: 100, freeBytes: FREE_FAIL_BYTES - 1, totalBytes: 100 * 1024 ** 3 });
  assert.equal(full[0]?.status, 'fail');
  const open = judgeDataDir({ dir: { ...dir, mode: 0o40755 }, secrets: [{ ...token, mode: 0o100644 }], serverUid: 100, freeBytes: 50 * 1024 ** 3, totalBytes: 100 * 1024 ** 3 });
  assert.equal(open[1]?.status, 'fail');
  assert.match(open[1]?.detail ?? '', /0755: other users can list it; \/d\/api-token is 0644: readable by every user/);
  const group = judgeDataDir({ dir: { ...dir, mode: 0o40750 }, secrets: [token], serverUid: 100, freeBytes: 50 * 1024 ** 3, totalBytes: 100 * 1024 ** 3 });
  assert.equal(group[1]?.status, 'warn');
  const owner = judgeDataDir({ dir, secrets: [{ ...token, uid: 0 }], serverUid: 100, freeBytes: 50 * 1024 ** 3, totalBytes: 100 * 1024 ** 3 });
  assert.match(owner[1]?.detail ?? '', /api-token \(uid 0\) not owned by the server's user \(uid 100\)/);
});

test('judgeActivity(): never, N s ago, off; always information', () => {
  const now = Date.parse('2026-12-07T12:00:00Z');
  const checks = judgeActivity({ dhcp: '2026-12-07T11:59:30Z', tftp: null, http: null }, { dhcp: true, tftp: false }, '2026-12-07T11:00:00Z', now);
  assert.deepEqual(checks.map((c) => [c.id, c.status, c.detail]), [
    ['activity:dhcp', 'info', '30 s ago'],
    ['activity:tftp', 'info', 'off'],
    ['activity:http', 'info', 'never (since the server started 60 min ago)'],
  ]);
});

test('Secure Boot: off is information; on with missing files fails; stale copies fail; an unsigned boot environment kernel fails; proxy mode warns about next-server', () => {
  const base = { dhcpMode: 'server' as const, serverIp: '10.0.0.1', signedDir: '/s', rootConfig: true, bootEnvKernel: { signed: true as const, signer: 'Debian Secure Boot Signer 2022 - linux' } };
  const files = [{ source: 'shimx64.efi.signed', tftp: 'shimx64.efi', sourceSha256: 'a', tftpSha256: 'a' }, { source: 'grubnetx64.efi.signed', tftp: 'grubx64.efi', sourceSha256: 'b', tftpSha256: 'b' }];
  assert.equal(judgeSecureBoot({ ...base, mode: 'off', files: [] })[0]?.status, 'info');
  const ok = judgeSecureBoot({ ...base, mode: 'on', files });
  assert.deepEqual(ok.map((c) => [c.id, c.status]), [['secure-boot', 'ok'], ['secure-boot:bootenv', 'ok']]);
  const missing = judgeSecureBoot({ ...base, mode: 'on', files: [{ ...files[0]!, sourceSha256: null }, files[1]!] });
  assert.equal(missing[0]?.status, 'fail');
  assert.match(missing[0]?.fix ?? '', /install-deps/);
  assert.equal(judgeSecureBoot({ ...base, mode: 'auto', files: [{ ...files[0]!, sourceSha256: null }] })[0]?.status, 'warn');
  const stale = judgeSecureBoot({ ...base, mode: 'on', files: [{ ...files[0]!, tftpSha256: 'old' }, files[1]!], rootConfig: false });
  assert.match(stale[0]?.detail ?? '', /no current shimx64\.efi and has no grub\/grub\.cfg/);
  const unsigned = judgeSecureBoot({ ...base, mode: 'on', files, bootEnvKernel: { signed: false, reason: 'it has no signature (no certificate table)' } });
  assert.equal(unsigned.find((c) => c.id === 'secure-boot:bootenv')?.status, 'fail');
  const proxy = judgeSecureBoot({ ...base, mode: 'on', files, dhcpMode: 'proxy' });
  assert.match(proxy.find((c) => c.id === 'secure-boot:next-server')?.fix ?? '', /next-server 10\.0\.0\.1/);
});

test('judgeNodes: a node down without a clean stop is a warning naming it; a stopped one is not', () => {
  assert.equal(judgeNodes([], null).status, 'info');
  const up = { name: 'pxe-a', state: 'up' as const, heartbeatAgeSeconds: 3, stoppedAt: null };
  assert.equal(judgeNodes([up, { name: 'pxe-b', state: 'down', heartbeatAgeSeconds: 0, stoppedAt: '2026-12-07T10:00:00Z' }], 'pxe-a').status, 'ok');
  const lost = judgeNodes([up, { name: 'pxe-b', state: 'down', heartbeatAgeSeconds: 94, stoppedAt: null }], 'pxe-a');
  assert.equal(lost.status, 'warn');
  assert.match(lost.detail, /pxe-a \(this one\) up, pxe-b down \(no heartbeat for 94 s\)/);
  assert.match(lost.fix ?? '', /fleetboot node rm/);
});

test('judgeReplication: nothing lacking is ok; lacking copies are info until replication.lagWarnMinutes, then a warning; no holder warns at once', () => {
  const now = Date.parse('2026-12-07T12:00:00Z');
  assert.equal(judgeReplication([], 3600, now).status, 'ok');
  const fresh = { node: 'pxe-b', image: 'win11', number: 3, state: 'copying' as const, since: '2026-12-07T11:50:00Z', holders: 1, error: null };
  const info = judgeReplication([fresh], 3600, now);
  assert.equal(info.status, 'info');
  assert.match(info.detail, /pxe-b: 1 revision not verified \(1 copying\), the oldest for 10 min/);
  const old = { ...fresh, state: 'corrupt' as const, since: '2026-12-07T09:00:00Z', error: 'stream p1.pcl.zst has 3 bytes' };
  const late = judgeReplication([fresh, old], 3600, now);
  assert.equal(late.status, 'warn');
  assert.match(late.detail, /2 revisions not verified \(1 copying, 1 corrupt\), the oldest for 3\.0 h; late: win11 revision 3 \(corrupt: stream p1\.pcl\.zst has 3 bytes\)/);
  assert.match(late.fix ?? '', /fleetboot image show NAME/);
  const orphan = judgeReplication([{ ...fresh, state: 'missing', holders: 0 }], 3600, now);
  assert.equal(orphan.status, 'warn');
  assert.match(orphan.detail, /no other node holds it verified/);
});
