/**
 * Fleetboot as the segment's DHCP server (`--dhcp server`) against real
 * clients in lab namespaces:
 *
 *   bridge namespace
 *     ├── fb      10.213.60.1   fleetboot serve --dhcp server --dhcp-range .100,.150 ...
 *     ├── udhcpc  (no address)  busybox udhcpc: get, renew (SIGUSR1), release (-R on exit)
 *     ├── dhcl    (no address)  ISC dhclient: get, init-reboot from its lease file, release (-r)
 *     ├── dcpd    (no address)  dhcpcd: get
 *     └── resv    (no address)  a reserved MAC (config file): always 10.213.60.20
 *
 * Then Fleetboot is killed with SIGKILL and started again on the same data
 * directory: the leases are still there, a new client gets a new address,
 * and the udhcpc client gets its old one back. About 30-40 s. Needs root.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Argv } from '../src/lib/programs.js';
import { Lab, labAvailable, sh } from './lab/lab.js';
import { fleetbootCli, ProcessLog, startFleetboot, type Fleetboot } from './lab/bootenv/services.js';

const S = '10.213.60';
const SERVER_IP = `${S}.1`;
const RESERVED_MAC = '52:54:00:aa:bb:01';

let lab: Lab | null = null;
let work = '';
let fb: Fleetboot | null = null;

interface LeaseRow {
  ip: string;
  mac: string;
  state: string;
  active: boolean;
}

/**
 * A hook script (for udhcpc, dhclient and dhcpcd alike) that configures the
 * address as the packaged scripts do, so renewals and releases can be sent
 * and received by unicast, and appends `=== <event>`, its environment and
 * `=== end` to `file` (lastEnv() reads only finished blocks: the hook may
 * still be writing when the test looks).
 */
function hookScript(name: string, file: string): string {
  const p = join(work, `${name}.sh`);
  writeFileSync(
    p,
    `#!/bin/sh
case "\${1:-}\${reason:-}" in
  bound|renew) ip addr replace "$ip/24" dev "$interface" ;;
  BOUND|REBOOT|RENEW|REBIND) ip addr replace "$new_ip_address/24" dev "$interface" ;;
  deconfig|RELEASE|EXPIRE|STOP) ip addr flush dev "$interface" ;;
esac
{ echo "=== \${1:-} \${reason:-}"; env | sort; echo "=== end"; } >> ${file}
exit 0
`,
  );
  chmodSync(p, 0o755);
  return p;
}

/** The environment of the last hook run whose header matches `re`. */
function lastEnv(file: string, re: RegExp): Record<string, string> | null {
  if (!existsSync(file)) return null;
  const blocks = readFileSync(file, 'utf8').split(/^=== /m);
  // A block is finished when the `=== end` line after it has been written.
  const finished = blocks.filter((b, i) => b.split('\n')[0] !== 'end' && blocks[i + 1]?.startsWith('end') === true);
  const last = finished.filter((b) => re.test(b.split('\n')[0] ?? '')).at(-1);
  if (!last) return null;
  const env: Record<string, string> = {};
  for (const line of last.split('\n').slice(1)) {
    const i = line.indexOf('=');
    if (i > 0) env[line.slice(0, i)] = line.slice(i + 1).replace(/^'|'$/g, '');
  }
  return env;
}

async function waitUntil<T>(what: string, fn: () => T | null | Promise<T | null>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== null && v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${fb?.log.tail(30) ?? ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function leases(): Promise<LeaseRow[]> {
  assert.ok(lab && fb);
  return JSON.parse(await fleetbootCli(lab, 'fb', fb.dataDir, ['dhcp', 'leases', '--json'])) as LeaseRow[];
}

async function start(): Promise<Fleetboot> {
  assert.ok(lab);
  return startFleetboot(lab, 'fb', {
    dataDir: join(work, 'data'),
    serverIp: SERVER_IP,
    configFile: join(work, 'config.json'),
    extra: [
      '--dhcp', 'server', '--no-tftp',
      '--dhcp-range', `${S}.100,${S}.150,255.255.255.0,600`,
      '--dhcp-option', `3,${SERVER_IP}`,
      '--dhcp-option', `6,${S}.53,${S}.54`,
      '--dhcp-option', '15,lab.test',
      '--dhcp-option', `42,${SERVER_IP}`,
      '--dhcp-option', '26,1400',
    ],
  });
}

function udhcpc(host: string, script: string, extra: string[] = []): ProcessLog {
  assert.ok(lab);
  return new ProcessLog(`udhcpc(${host})`, lab.spawnIn(lab.host(host).netns, ['busybox', 'udhcpc', '-i', 'eth0', '-f', '-s', script, '-t', '10', '-T', '1', '-O', 'ntpsrv', '-O', 'mtu', ...extra]));
}

describe('Fleetboot as the DHCP server for real clients in a lab segment', { timeout: 180_000 }, () => {
  before(async () => {
    if (process.getuid?.() !== 0) throw new Error('dhcp-server.lab needs root (network namespaces): run the tests as root');
    if (!(await labAvailable())) throw new Error('dhcp-server.lab needs `ip netns` (iproute2)');
    work = mkdtempSync(join(tmpdir(), 'fb-dhcp-lab-'));
    writeFileSync(join(work, 'config.json'), JSON.stringify({ dhcp: { reservations: [{ mac: RESERVED_MAC, ip: `${S}.20`, hostname: 'reserved' }] } }));
    lab = await Lab.create({ subnet: S });
    await lab.addHost('fb', SERVER_IP);
    for (const h of ['udhcpc', 'dhcl', 'dcpd', 'late']) await lab.addHost(h, null);
    await lab.addHost('resv', null, { mac: RESERVED_MAC });
    fb = await start();
  });

  after(async () => {
    await lab?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('busybox udhcpc gets a lease with the configured options, renews it and releases it', async () => {
    assert.ok(lab && fb);
    const out = join(work, 'udhcpc.env');
    const client = udhcpc('udhcpc', hookScript('udhcpc', out), ['-R']);
    const bound = await waitUntil('udhcpc bound', () => lastEnv(out, /^bound/), 20_000);
    assert.match(bound.ip ?? '', new RegExp(`^${S.replace(/\./g, '\\.')}\\.(1[0-4]\\d|150)$`));
    assert.equal(bound.subnet, '255.255.255.0');
    assert.equal(bound.router, SERVER_IP);
    assert.equal(bound.dns?.trim(), `${S}.53 ${S}.54`);
    assert.equal(bound.domain, 'lab.test');
    assert.equal(bound.ntpsrv, SERVER_IP);
    assert.equal(bound.mtu, '1400');
    assert.equal(bound.lease, '600');
    assert.equal(bound.serverid, SERVER_IP);
    const ip = bound.ip as string;
    const mac = lab.host('udhcpc').mac;
    assert.ok((await leases()).some((l) => l.ip === ip && l.mac === mac && l.state === 'bound'));

    // Renew (udhcpc: SIGUSR1), unicast to the server.
    const mark = fb.log.mark();
    client.child.kill('SIGUSR1');
    await waitUntil('udhcpc renew', () => lastEnv(out, /^renew/), 15_000);
    assert.ok(await fb.log.waitFor(new RegExp(`"step":"REQUEST -> ACK","ip":"${ip.replace(/\./g, '\\.')}"`), 5000, mark), 'the server logged the renewal');

    // Release on exit (-R).
    client.child.kill('SIGTERM');
    await waitUntil('the release', async () => ((await leases()).find((l) => l.ip === ip)?.state === 'released' ? true : null), 10_000);
  });

  test('ISC dhclient gets a lease, comes back with the same address from its lease file, and releases it', async () => {
    assert.ok(lab && fb);
    const out = join(work, 'dhclient.env');
    const script = hookScript('dhclient', out);
    const lf = join(work, 'dhclient.leases');
    const pf = join(work, 'dhclient.pid');
    const args: Argv = ['dhclient', '-4', '-1', '-sf', script, '-lf', lf, '-pf', pf, '-cf', '/dev/null', 'eth0'];
    await lab.exec('dhcl', args);
    const bound = await waitUntil('dhclient bound', () => lastEnv(out, /BOUND/), 20_000);
    const ip = bound.new_ip_address as string;
    assert.match(ip, new RegExp(`^${S.replace(/\./g, '\\.')}\\.`));
    assert.equal(bound.new_routers, SERVER_IP);
    assert.equal(bound.new_domain_name_servers, `${S}.53 ${S}.54`);
    assert.equal(bound.new_domain_name, 'lab.test');
    assert.equal(bound.new_subnet_mask, '255.255.255.0');
    assert.equal(bound.new_dhcp_server_identifier, SERVER_IP);
    // Stop it without a release, then start again: it asks for its old address (init-reboot).
    await lab.exec('dhcl', ['dhclient', '-x', '-sf', script, '-lf', lf, '-pf', pf, 'eth0']);
    await lab.exec('dhcl', ['ip', 'addr', 'flush', 'dev', 'eth0']);
    const mark = fb.log.mark();
    await lab.exec('dhcl', args);
    const again = await waitUntil('dhclient rebooted', () => lastEnv(out, /REBOOT|BOUND/), 20_000);
    assert.equal(again.new_ip_address, ip);
    assert.ok(await fb.log.waitFor(/"step":"REQUEST -> ACK"/, 5000, mark));
    await lab.exec('dhcl', ['dhclient', '-r', '-sf', script, '-lf', lf, '-pf', pf, 'eth0']);
    await waitUntil('the release', async () => ((await leases()).find((l) => l.ip === ip)?.state === 'released' ? true : null), 10_000);
  });

  test('dhcpcd gets a lease with the configured options, renews it and releases it', async () => {
    assert.ok(lab && fb);
    const out = join(work, 'dhcpcd.env');
    const script = hookScript('dhcpcd', out);
    // A running daemon (-B: in the foreground), so it can be told to renew (-N) and release (-k).
    const client = new ProcessLog(
      'dhcpcd',
      lab.spawnIn(lab.host('dcpd').netns, ['dhcpcd', '-4', '-B', '-L', '-t', '20', '-f', '/dev/null', '-c', script, '-o', 'domain_name_servers', '-o', 'domain_name', 'eth0']),
    );
    try {
      const bound = await waitUntil('dhcpcd bound', () => lastEnv(out, /BOUND/), 20_000).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}\n${client.tail(20)}\n${existsSync(out) ? readFileSync(out, 'utf8').slice(-2000) : ''}`);
      });
      const ip = bound.new_ip_address ?? '';
      assert.match(ip, new RegExp(`^${S.replace(/\./g, '\\.')}\\.`));
      assert.equal(bound.new_routers, SERVER_IP);
      assert.equal(bound.new_domain_name_servers, `${S}.53 ${S}.54`);
      assert.equal(bound.new_domain_name, 'lab.test');
      assert.equal(bound.new_dhcp_lease_time, '600');
      const mark = fb.log.mark();
      await lab.exec('dcpd', ['dhcpcd', '-4', '-N', 'eth0']);
      const renewed = await waitUntil('dhcpcd renewed', () => lastEnv(out, /RENEW/), 20_000);
      assert.equal(renewed.new_ip_address, ip);
      assert.ok(await fb.log.waitFor(/"step":"REQUEST -> ACK"/, 5000, mark));
      await lab.exec('dcpd', ['dhcpcd', '-4', '-k', 'eth0']);
      await waitUntil('the release', async () => ((await leases()).find((l) => l.ip === ip)?.state === 'released' ? true : null), 10_000);
    } finally {
      client.child.kill('SIGTERM');
    }
  });

  test('a reserved MAC always gets its address', async () => {
    assert.ok(lab && fb);
    for (const round of [1, 2]) {
      const out = join(work, `resv${round}.env`);
      await lab.exec('resv', ['busybox', 'udhcpc', '-i', 'eth0', '-f', '-q', '-n', '-t', '10', '-T', '1', '-s', hookScript(`resv${round}`, out)]);
      assert.equal(lastEnv(out, /^bound/)?.ip, `${S}.20`, `round ${round}`);
    }
  });

  test('after kill -9 and a restart the leases are kept: no address is given twice', async () => {
    assert.ok(lab && fb);
    const before = (await leases()).filter((l) => l.active || l.state === 'released');
    assert.ok(before.length >= 3, `leases before the kill: ${JSON.stringify(before)}`);
    fb.log.child.kill('SIGKILL');
    await waitUntil('fleetboot to die', () => (fb?.log.running ? null : true), 5000);
    await sh('sleep', ['0.2']);
    fb = await start();
    const key = (l: LeaseRow): string => `${l.ip} ${l.mac} ${l.state}`;
    const afterRestart = (await leases()).filter((l) => l.active || l.state === 'released');
    assert.deepEqual(afterRestart.map(key).sort(), before.map(key).sort(), 'the same leases after the restart');
    const held = new Set((await leases()).filter((l) => l.active).map((l) => l.ip));
    const out = join(work, 'late.env');
    await lab.exec('late', ['busybox', 'udhcpc', '-i', 'eth0', '-f', '-q', '-n', '-t', '10', '-T', '1', '-s', hookScript('late', out)]);
    const got = lastEnv(out, /^bound/)?.ip;
    assert.ok(got, 'the new client got an address');
    assert.ok(!held.has(got), `${got} was already leased to another client`);
    // The reserved client, restarted, is ACKed for its address again (it asks for it by option 50).
    const out2 = join(work, 'resv3.env');
    await lab.exec('resv', ['busybox', 'udhcpc', '-i', 'eth0', '-f', '-q', '-n', '-t', '10', '-T', '1', '-r', `${S}.20`, '-s', hookScript('resv3', out2)]);
    assert.equal(lastEnv(out2, /^bound/)?.ip, `${S}.20`);
    const all = await leases();
    assert.equal(new Set(all.map((l) => l.ip)).size, all.length, 'one row per address');
  });
});
