/**
 * DHCP and PXE across a relay: two lab subnets joined by a router namespace
 * that runs ISC dhcrelay (isc-dhcp-relay), forwarding subnet B's broadcasts to
 * both DHCP servers on subnet A and adding option 82 (-a):
 *
 *   lab A 10.213.80.0/24                           lab B 10.213.81.0/24
 *     ├── fb     .1   fleetboot serve + callbacks    ├── cl    udhcpc client (no address)
 *     ├── dhcp   .2   dnsmasq (proxy-mode test only) └── tap*  QEMU guests
 *     └── relay  .254 eth0 ── [ip_forward, dhcrelay -a] ── eth1 10.213.81.1 (veth on B's bridge)
 *
 * fb and dhcp route 10.213.81.0/24 via the relay; B's clients get the relay
 * (10.213.81.1) as their router from the pool. Tests, in order:
 * (a) server mode with two pools: a udhcpc client on B gets an address from
 *     B's pool (and one on A from A's), option 82 comes back to the relay,
 *     and a unicast renewal from B is ACKed;
 * (b) QEMU guests on B (SeaBIOS + iPXE ROM, and OVMF's own PXE, which fetches
 *     iPXE over TFTP across the router) PXE-boot through the relay into their
 *     assigned entry with Fleetboot as the DHCP server;
 * (c) the same with Fleetboot in proxy mode beside dnsmasq (addresses for B),
 *     both reached through the same relay.
 * Needs root and `scripts/install-deps.sh --with-test` (isc-dhcp-relay, QEMU);
 * fails, never skips, without them. About 2.5 minutes under TCG.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, labAvailable, sh } from './lab/lab.js';
import { addRouter, routeVia, startDhcrelay } from './lab/relay.js';
import { QemuGuest, chooseAccel, ensureBootEnv, missingQemuPrerequisites, withTimeout, INITRD_OK_MARKER, type Accel, type QemuVariant } from './lab/qemu.js';
import { logEvents as events, macHex as hex, ProcessLog, fleetbootCli, startFleetboot, startLabHttp, type Callback, type Fleetboot, type LabHttp } from './lab/bootenv/services.js';

const A = '10.213.80';
const B = '10.213.81';
const FB_IP = `${A}.1`;
const DNSMASQ_IP = `${A}.2`;
const RELAY_A = `${A}.254`;
const RELAY_B = `${B}.1`;
const CALLBACK_PORT = 9999;
/** One guest per mode and firmware: SeaBIOS + iPXE ROM, and OVMF's own PXE (edk2, virtio-net, no ROM). */
const GUESTS: Record<'server' | 'proxy', Array<{ variant: QemuVariant; mac: string; what: string }>> = {
  server: [
    { variant: 'bios-ipxe', mac: '52:54:00:fb:81:0a', what: 'SeaBIOS + iPXE ROM' },
    { variant: 'ovmf-pxe', mac: '52:54:00:fb:81:0c', what: "OVMF's own PXE" },
  ],
  proxy: [
    { variant: 'bios-ipxe', mac: '52:54:00:fb:81:0b', what: 'SeaBIOS + iPXE ROM' },
    { variant: 'ovmf-pxe', mac: '52:54:00:fb:81:0d', what: "OVMF's own PXE" },
  ],
};

interface Env {
  labA: Lab;
  labB: Lab;
  work: string;
  accel: Accel;
  relay: ProcessLog;
  capture: ProcessLog;
  cb: LabHttp;
  dataDir: string;
  configFile: string;
  fb: Fleetboot | null;
  dnsmasq: ProcessLog | null;
}
let env: Env | null = null;
let labs: Lab[] = [];
let workDir = '';
let failed = false;

async function guarded(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    failed = true;
    throw err;
  }
}

function need(): Env {
  if (!env) throw new Error('the lab was not set up (see the error of the before() hook above)');
  return env;
}

const esc = (s: string): string => s.replace(/\./g, '\\.');
const lastOctet = (ip: string): number => Number(ip.split('.')[3]);

function explain(e: Env, guest: QemuGuest | null): string {
  return [
    guest ? guest.diagnostics(40) : '',
    `--- Fleetboot log (last 40 lines)\n${e.fb?.log.tail(40) ?? '(not running)'}`,
    `--- dhcrelay (last 30 lines)\n${e.relay.tail(30)}`,
    e.dnsmasq ? `--- dnsmasq (last 20 lines)\n${e.dnsmasq.tail(20)}` : '',
    `--- callback listener\n${e.cb.log.tail(10)}`,
    `(work dir: ${e.work})`,
  ].join('\n');
}

/**
 * A udhcpc hook that configures the address and default route and appends
 * `=== <event>`, its environment and `=== end` to `file` (lastEnv() reads
 * only finished blocks: the hook may still be writing when the test looks).
 */
function hookScript(name: string, file: string): string {
  const p = join(workDir, `${name}.sh`);
  writeFileSync(
    p,
    `#!/bin/sh
case "$1" in
  bound|renew)
    ip addr replace "$ip/24" dev "$interface"
    [ -n "$router" ] && ip route replace default via "\${router%% *}" dev "$interface" ;;
  deconfig) ip addr flush dev "$interface" ;;
esac
{ echo "=== $1"; env | sort; echo "=== end"; } >> ${file}
exit 0
`,
  );
  chmodSync(p, 0o755);
  return p;
}

function lastEnv(file: string, re: RegExp): Record<string, string> | null {
  if (!existsSync(file)) return null;
  const text = readFileSync(file, 'utf8');
  const blocks = text.split(/^=== /m).filter((b) => re.test(b.split('\n')[0] ?? ''));
  const last = blocks.at(-1);
  // A block is finished when the `=== end` line after it has been written.
  if (last !== undefined && !text.slice(text.lastIndexOf(last) + last.length).startsWith('=== end')) return null;
  if (!last) return null;
  const out: Record<string, string> = {};
  for (const line of last.split('\n').slice(1)) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

async function waitUntil<T>(what: string, fn: () => T | null, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${env ? explain(env, null) : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** tcpdump -vv output split into one text block per packet. */
function packets(capture: ProcessLog): string[] {
  return capture.all().split(/\n(?=\d\d:\d\d:\d\d\.)/);
}

async function startServer(e: Env, mode: 'server' | 'proxy'): Promise<Fleetboot> {
  const fb = await startFleetboot(e.labA, 'fb', {
    dataDir: e.dataDir,
    serverIp: FB_IP,
    httpPort: 8080,
    configFile: e.configFile,
    extra: ['--dhcp', mode],
  });
  await waitForDhcpReady(fb);
  return fb;
}

async function stopServer(e: Env): Promise<void> {
  const fb = e.fb;
  if (!fb) return;
  e.fb = null;
  writeFileSync(join(e.work, `fleetboot-${Date.now()}.log`), fb.log.all());
  fb.log.child.kill('SIGTERM');
  if (!(await fb.log.waitFor(/\[fleetboot\(fb\) exited/, 10_000, 0))) fb.log.child.kill('SIGKILL');
  await withTimeout(new Promise((r) => fb.log.child.once('exit', r)), 3000);
}

/**
 * startFleetboot() returns once HTTP answers; the DHCP side (and server.json,
 * which the CLI needs) may come later, e.g. after a DHCP probe at start.
 */
async function waitForDhcpReady(fb: Fleetboot): Promise<void> {
  if (!(await fb.log.waitFor(/(DHCP server|proxyDHCP) listening/, 20_000))) throw new Error(`Fleetboot's DHCP side did not start:\n${fb.log.tail(30)}`);
  await waitUntil('server.json', () => (existsSync(join(fb.dataDir, 'server.json')) ? true : null), 10_000);
}

async function waitForBoot(e: Env, guest: QemuGuest, timeoutMs: number): Promise<Callback> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const cb = await e.cb.waitForCallback(guest.mac, 1000);
    if (cb) return cb;
    const why = guest.networkBootFailed() ?? (guest.running ? null : 'QEMU exited');
    if (why) {
      await new Promise((r) => setTimeout(r, 1000)); // diagnostics only (the test fails next): let the last log lines arrive
      assert.fail(`no callback from ${guest.mac}: ${why}\n${explain(e, guest)}`);
    }
  }
  return assert.fail(`no callback from ${guest.mac} within ${timeoutMs / 1000} s\n${explain(e, guest)}`);
}

/** Boot a guest on subnet B; returns the initrd's callback. */
async function bootGuestOnB(e: Env, t: TestContext, variant: QemuVariant, mac: string, name: string): Promise<Callback> {
  const timeoutMs = e.accel === 'kvm' ? 60_000 : 150_000;
  const t0 = Date.now();
  const guest = await QemuGuest.start(e.labB, { variant, name, mac, workDir: e.work });
  try {
    const cb = await waitForBoot(e, guest, timeoutMs);
    t.diagnostic(`${name}: initrd called back after ${((Date.now() - t0) / 1000).toFixed(1)} s (${e.accel}), address ${cb.ip}`);
    assert.equal(cb.marker, 'fbtest-initrd-ran');
    assert.ok(await guest.waitForSerial(INITRD_OK_MARKER, 10_000), `no ${INITRD_OK_MARKER} on the console\n${explain(e, guest)}`);
    return cb;
  } finally {
    await guest.stop();
  }
}

/**
 * A finished TFTP transfer to a client on B (edk2 fetches iPXE over TFTP,
 * through the router). By subnet, not by the initrd's address: the server
 * that leased the firmware its address may not be the one the initrd asks.
 */
function tftpToB(fb: Fleetboot): boolean {
  return events(fb).some((o) => o.msg === 'tftp transfer done' && String(o.client ?? '').startsWith(`${B}.`));
}

describe('DHCP and PXE through a relay (ISC dhcrelay) from a second lab subnet', { timeout: 15 * 60_000 }, () => {
  before(() => guarded(async () => {
    if (process.getuid?.() !== 0) throw new Error('dhcp-relay.lab needs root (network namespaces, tap devices): run the tests as root');
    if (!(await labAvailable())) throw new Error('dhcp-relay.lab needs `ip netns` (iproute2)');
    const missing = missingQemuPrerequisites(['bios-ipxe', 'ovmf-pxe']);
    if (missing.length) throw new Error(`dhcp-relay.lab needs QEMU; missing: ${missing.join(', ')}. Run: bash scripts/install-deps.sh --with-test`);
    await sh('dhcrelay', ['--version']).catch(() => {
      throw new Error('dhcp-relay.lab needs dhcrelay (Debian package isc-dhcp-relay). Run: bash scripts/install-deps.sh --with-test');
    });
    const work = mkdtempSync(join(tmpdir(), 'fb-relay-lab-'));
    workDir = work;
    const { kernel, initrd } = await ensureBootEnv();
    const accel = await chooseAccel();

    const labA = await Lab.create({ subnet: A });
    labs.push(labA);
    const labB = await Lab.create({ subnet: B });
    labs.push(labB);
    await labA.addHost('fb', FB_IP);
    await labA.addHost('dhcp', DNSMASQ_IP);
    // The relay: eth0 on A, eth1 (a veth made inside the relay namespace, its peer on B's bridge) on B.
    const relay = await addRouter(labA, 'relay', RELAY_A, [{ lab: labB, ip: RELAY_B }]);
    await routeVia(labA, ['fb', 'dhcp'], `${B}.0/24`, RELAY_A);
    await labA.addHost('clA', null);
    await labB.addHost('cl', null);

    const capture = new ProcessLog('tcpdump(relay eth0)', labA.spawnIn(relay.netns, ['tcpdump', '-i', 'eth0', '-n', '-l', '-vv', '-s', '0', 'udp port 67 or udp port 68']));
    await capture.waitFor(/listening on/, 5000);
    // Option 82 added (circuit id = the interface), to both servers.
    const relayLog = await startDhcrelay(labA, relay, { upstream: ['eth0'], downstream: ['eth1'], servers: [FB_IP, DNSMASQ_IP], pidFile: join(work, 'dhcrelay.pid') });

    const cb = await startLabHttp(labA, 'fb', CALLBACK_PORT);
    const configFile = join(work, 'fleetboot.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        boot: { menuTimeoutSeconds: 2 },
        dhcp: {
          pools: [
            { start: `${A}.100`, end: `${A}.150`, leaseSeconds: 600 },
            { start: `${B}.100`, end: `${B}.150`, leaseSeconds: 600, router: RELAY_B },
          ],
        },
      }),
    );
    const dataDir = join(work, 'data');
    env = { labA, labB, work, accel, relay: relayLog, capture, cb, dataDir, configFile, fb: null, dnsmasq: null };
    env.fb = await startServer(env, 'server');
    const cmdline = `console=ttyS0 fbcallback=http://${FB_IP}:${CALLBACK_PORT}/ran`;
    await fleetbootCli(labA, 'fb', dataDir, ['entry', 'add', 'test', '--kernel', kernel, '--initrd', initrd, '--cmdline', cmdline]);
    for (const g of [...GUESTS.server, ...GUESTS.proxy]) await fleetbootCli(labA, 'fb', dataDir, ['host', 'add', g.mac, '--entry', 'test']);
  }));

  after(async () => {
    const keep = process.env.FBTEST_KEEP === '1' || failed;
    try {
      if (env) {
        if (env.fb) writeFileSync(join(env.work, 'fleetboot.log'), env.fb.log.all());
        writeFileSync(join(env.work, 'dhcrelay.log'), env.relay.all());
        writeFileSync(join(env.work, 'tcpdump.log'), env.capture.all());
        if (env.dnsmasq) writeFileSync(join(env.work, 'dnsmasq.log'), env.dnsmasq.all());
      }
    } finally {
      for (const l of labs.reverse()) await l.destroy();
      labs = [];
      if (workDir && !keep) rmSync(workDir, { recursive: true, force: true });
      else if (workDir) console.log(`dhcp-relay.lab: logs kept in ${workDir}`);
    }
  });

  test('server mode: a client on the relayed subnet gets an address from its own pool, option 82 is echoed, and renewals work', () => guarded(async () => {
    const e = need();
    assert.ok(e.fb);
    const out = join(workDir, 'cl.env');
    const client = new ProcessLog('udhcpc(B)', e.labB.spawnIn(e.labB.host('cl').netns, ['busybox', 'udhcpc', '-i', 'eth0', '-f', '-t', '10', '-T', '1', '-s', hookScript('cl', out)]));
    const bound = await waitUntil('udhcpc on B bound', () => lastEnv(out, /^bound/), 25_000);
    const ip = bound.ip ?? '';
    assert.ok(ip.startsWith(`${B}.`) && lastOctet(ip) >= 100 && lastOctet(ip) <= 150, `address ${ip} is not from B's pool`);
    assert.equal(bound.router, RELAY_B);
    assert.equal(bound.serverid, FB_IP);
    assert.equal(bound.subnet, '255.255.255.0');
    assert.equal(bound.lease, '600');
    const offer = events(e.fb).find((o) => hex(o.mac) === hex(e.labB.host('cl').mac) && o.step === 'DISCOVER -> OFFER');
    assert.equal(offer?.giaddr, RELAY_B, `Fleetboot's OFFER log line does not show the relay's giaddr:\n${e.fb.log.tail(20)}`);

    // Option 82: dhcrelay added it to what it forwarded, and Fleetboot's replies carried it back.
    const pk = packets(e.capture);
    const toServer = pk.filter((p) => new RegExp(`${esc(RELAY_A)}\\.67 > ${esc(FB_IP)}\\.67`).test(p));
    const fromServer = pk.filter((p) => new RegExp(`${esc(FB_IP)}\\.67 > ${esc(RELAY_B)}\\.67`).test(p));
    assert.ok(toServer.length >= 2 && fromServer.length >= 2, `the capture on the relay's upstream side misses the relayed exchange:\n${e.capture.tail(60)}`);
    assert.ok(toServer.every((p) => /Agent-Information/.test(p) && /Circuit-ID/.test(p)), `dhcrelay -a did not add option 82:\n${toServer.join('\n')}`);
    for (const p of fromServer) {
      assert.match(p, /Agent-Information/, `a reply from Fleetboot to the relay lacks option 82:\n${p}`);
      assert.match(p, /Circuit-ID[^\n]*\n?[^\n]*eth1/, `option 82 came back changed:\n${p}`);
    }
    assert.doesNotMatch(e.relay.all(), /missing|bad agent|dropped/i, `dhcrelay complained:\n${e.relay.tail(30)}`);

    // Renewal from B: unicast to the server (no relay), answered through the routers.
    const mark = e.fb.log.mark();
    client.child.kill('SIGUSR1');
    const renewed = await waitUntil('udhcpc renew', () => lastEnv(out, /^renew/), 15_000);
    assert.equal(renewed.ip, ip);
    assert.ok(await e.fb.log.waitFor(new RegExp(`"step":"REQUEST -> ACK","ip":"${esc(ip)}","giaddr":"0\\.0\\.0\\.0"`), 5000, mark), `no renewal ACK in Fleetboot's log:\n${e.fb.log.tail(10)}`);
    client.child.kill('SIGTERM');

    // And a client on A, the server's own segment, gets A's pool.
    const outA = join(workDir, 'clA.env');
    await e.labA.exec('clA', ['busybox', 'udhcpc', '-i', 'eth0', '-f', '-q', '-n', '-t', '10', '-T', '1', '-s', hookScript('clA', outA)]);
    const ipA = lastEnv(outA, /^bound/)?.ip ?? '';
    assert.ok(ipA.startsWith(`${A}.`) && lastOctet(ipA) >= 100 && lastOctet(ipA) <= 150, `address ${ipA} is not from A's pool`);
  }));

  for (const g of GUESTS.server) {
    test(`server mode: a QEMU guest (${g.what}) on the relayed subnet PXE-boots into its assigned entry`, (t: TestContext) => guarded(async () => {
      const e = need();
      assert.ok(e.fb);
      const cb = await bootGuestOnB(e, t, g.variant, g.mac, `relay-server-${g.variant}`);
      assert.ok(cb.ip.startsWith(`${B}.`) && lastOctet(cb.ip) >= 100 && lastOctet(cb.ip) <= 150, `the initrd's address ${cb.ip} is not from B's pool`);
      const mine = events(e.fb).filter((o) => hex(o.mac) === hex(g.mac));
      assert.ok(mine.some((o) => o.step === 'DISCOVER -> OFFER' && o.giaddr === RELAY_B && /; .* -> /.test(String(o.reason))), `no relayed OFFER with boot information for the guest\n${explain(e, null)}`);
      assert.ok(mine.some((o) => /boots entry/.test(String(o.msg))), `no "boots entry" decision for the guest\n${explain(e, null)}`);
      if (g.variant === 'ovmf-pxe') assert.ok(tftpToB(e.fb), `no finished TFTP transfer to the guest across the router\n${explain(e, null)}`);
    }));
  }

  for (const g of GUESTS.proxy) {
    test(`proxy mode: a QEMU guest (${g.what}) on the relayed subnet PXE-boots, dnsmasq handing out the addresses, both through the relay`, (t: TestContext) => guarded(async () => {
      const e = need();
      if (!e.dnsmasq) {
        await stopServer(e);
        const dnsmasq = new ProcessLog(
          'dnsmasq',
          e.labA.spawnIn(e.labA.host('dhcp').netns, [
            'dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root', '--pid-file=',
            `--dhcp-leasefile=${join(e.work, 'dnsmasq.leases')}`, '--interface=eth0', '--bind-interfaces',
            `--dhcp-range=${B}.160,${B}.199,255.255.255.0,1h`, `--dhcp-option=3,${RELAY_B}`,
            '--dhcp-authoritative', '--log-dhcp', '--log-facility=-',
          ]),
        );
        e.dnsmasq = dnsmasq;
        if (!(await dnsmasq.waitFor(/DHCP, IP range|started, version/, 5000))) throw new Error(`dnsmasq did not start:\n${dnsmasq.tail()}`);
        e.fb = await startServer(e, 'proxy');
      }
      assert.ok(e.fb && e.dnsmasq);
      const cb = await bootGuestOnB(e, t, g.variant, g.mac, `relay-proxy-${g.variant}`);
      assert.ok(cb.ip.startsWith(`${B}.`) && lastOctet(cb.ip) >= 160 && lastOctet(cb.ip) <= 199, `the initrd's address ${cb.ip} is not from dnsmasq's range for B`);
      const mine = events(e.fb).filter((o) => hex(o.mac) === hex(g.mac));
      assert.ok(mine.some((o) => /^dhcp /.test(String(o.msg)) && String(o.to ?? '').startsWith(`${RELAY_B}:67`) && typeof o.file === 'string'), `no proxyDHCP answer to the relay for the guest\n${explain(e, null)}`);
      assert.ok(mine.some((o) => /boots entry/.test(String(o.msg))), `no "boots entry" decision for the guest\n${explain(e, null)}`);
      if (g.variant === 'ovmf-pxe') assert.ok(tftpToB(e.fb), `no finished TFTP transfer to the guest across the router\n${explain(e, null)}`);
      assert.match(e.dnsmasq.all(), new RegExp(`DHCPACK\\(eth0\\) ${esc(B)}\\.`), `dnsmasq acked no address on B:\n${e.dnsmasq.tail(30)}`);
    }));
  }
});
