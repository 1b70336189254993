/**
 * Multicast across a router (test/lab/mrouter.ts): smcrouted in a router
 * namespace forwards the session's groups from subnet A to subnet B, and
 * udpcast moves a file across it:
 *
 *   A 10.213.86.0/24: snd .1 ── router (.254 | .254, smcrouted) ── B 10.213.87.0/24: rcv .2
 *
 * Groups: 239.255.86.2 carries the data (A → B); 239.255.86.1 is udpcast's
 * rendezvous, routed both ways (the receiver's connection request goes to it
 * from B; the sender's HELLO from A). Unicast feedback goes through the
 * router too (each host routes the other subnet via .254).
 * (a) with `--ttl 2` a 4 MiB file arrives on B byte for byte;
 * (b) with the sender at `--ttl 1` (everything else the same) not a byte
 *     arrives: the router does not forward a packet whose TTL would reach 0.
 * Needs root and `scripts/install-deps.sh --with-test` (udpcast, smcroute);
 * fails, never skips, without them. About 10 s. The one thing no install
 * can bring is the kernel's multicast routing (CONFIG_IP_MROUTE: without it
 * there is no /proc/net/ip_mr_vif and smcrouted says "Kernel does not even
 * support IGMP"): on such a kernel (seen 2026-12-07: 6.18.44-fc-v1272) the
 * file is skipped, saying so, since no multicast router can run there.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { labAvailable, sh } from './lab/lab.js';
import { MulticastRoutedLab } from './lab/mrouter.js';
import { ProcessLog } from './lab/bootenv/services.js';
import { waitFor } from './wait.js';
import { bundledCli } from './lab/cli-bundle.js';
import { resolveArgv, type Argv } from '../src/lib/programs.js';

const A = '10.213.86';
const B = '10.213.87';
const SENDER_IP = `${A}.1`;
const RECEIVER_IP = `${B}.2`;
const RDV = '239.255.86.1';
const DATA = '239.255.86.2';

let net: MulticastRoutedLab | null = null;
let work = '';
let source = Buffer.alloc(0);

function need(): MulticastRoutedLab {
  if (!net) throw new Error('the routed lab was not set up (see the error of the before() hook above)');
  return net;
}

/**
 * udp-receiver on B, then (once it has bound its port) udp-sender on A at
 * `ttl`, on their own portbase; the receiver writes `name` in the work directory.
 */
async function session(n: MulticastRoutedLab, ttl: number, portbase: number, name: string): Promise<{ rx: ProcessLog; tx: ProcessLog; out: string }> {
  const out = join(work, name);
  const common = ['--interface', 'eth0', '--portbase', String(portbase), '--nokbd', '--mcast-rdv-address', RDV];
  const rxArgv: Argv = ['udp-receiver', '--file', out, ...common, '--ttl', '2'];
  const rx = new ProcessLog('udp-receiver', n.b.spawnIn(n.b.host('rcv').netns, rxArgv));
  await waitFor('udp-receiver bound to its port', () => n.b.udpBound('rcv', portbase), 10_000, { intervalMs: 50, detail: () => rx.tail(10) });
  const txArgv: Argv = ['udp-sender', '--file', join(work, 'src.bin'), ...common, '--ttl', String(ttl), '--min-receivers', '1', '--nopointopoint', '--mcast-data-address', DATA];
  return { rx, tx: new ProcessLog('udp-sender', n.a.spawnIn(n.a.host('snd').netns, txArgv)), out };
}

async function explain(n: MulticastRoutedLab, logs: ProcessLog[]): Promise<string> {
  return [...logs.map((l) => `--- ${l.label}\n${l.tail(15)}`), `--- smcrouted\n${n.smcroute.tail(20)}`, await n.routes()].join('\n');
}

/** The kernel forwards multicast (CONFIG_IP_MROUTE), or why not. */
const NO_MROUTE = existsSync('/proc/net/ip_mr_vif') ? false : `this kernel (${release()}) has no multicast routing (CONFIG_IP_MROUTE is not set: no /proc/net/ip_mr_vif), so no multicast router can run on this machine`;

describe('multicast through a router namespace (smcrouted static routes)', { timeout: 120_000, skip: NO_MROUTE }, () => {
  before(async () => {
    if (process.getuid?.() !== 0) throw new Error('mrouter.lab needs root (network namespaces): run the tests as root');
    if (!(await labAvailable())) throw new Error('mrouter.lab needs `ip netns` (iproute2)');
    for (const [tool, pkg] of [['udp-sender', 'udpcast'], ['smcrouted', 'smcroute']] as const) {
      await sh('sh', ['-c', `command -v ${tool}`]).catch(() => {
        throw new Error(`mrouter.lab needs ${tool} (Debian package ${pkg}). Run: bash scripts/install-deps.sh --with-test`);
      });
    }
    work = mkdtempSync(join(tmpdir(), 'fb-mrouter-test-'));
    source = randomBytes(4 << 20);
    writeFileSync(join(work, 'src.bin'), source);
    net = await MulticastRoutedLab.create({ a: A, b: B, groups: ['239.255.86.0/24'], returnGroups: [RDV] });
    await net.addHost('a', 'snd', SENDER_IP);
    await net.addHost('b', 'rcv', RECEIVER_IP);
  });

  after(async () => {
    await net?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('udp-sender --ttl 2 on subnet A reaches udp-receiver on subnet B, byte for byte', async () => {
    const n = need();
    const { rx, tx: sender, out } = await session(n, 2, 9200, 'ttl2.bin');
    const done = await rx.waitFor(/Transfer complete\./, 30_000);
    if (!done) assert.fail(`the receiver on B did not complete\n${await explain(n, [sender, rx])}`);
    // Both say "Transfer complete." and exit by themselves; stop() is only a guard.
    await sender.waitFor(/Transfer complete\./, 10_000);
    await Promise.all([sender.stop('SIGTERM', 5_000), rx.stop('SIGTERM', 5_000)]);
    assert.ok(readFileSync(out).equals(source), `the file on B differs from the source (${statSync(out).size} bytes)\n${await explain(n, [sender, rx])}`);
    assert.match(await n.routes(), new RegExp(`\\(${SENDER_IP.replace(/\./g, '\\.')},\\s*${DATA.replace(/\./g, '\\.')}\\)`), 'the router has no forwarding entry for the data group from the sender');
  });

  test('Fleetboot: `multicast send --ttl 2` on A reaches `multicast receive` on B byte for byte; at --ttl 1 nothing is announced there', async () => {
    const n = need();
    const cli = await bundledCli();
    const group = '239.255.86.20';
    const receive = (out: string, timeout: string): ProcessLog =>
      new ProcessLog('fleetboot receive', n.b.spawnIn(n.b.host('rcv').netns, ['env', ...resolveArgv(cli), 'multicast', 'receive', '--address', group, '--port', '9210', '--out', out, '--timeout', timeout]));
    const send = (ttl: string): ProcessLog =>
      new ProcessLog('fleetboot send', n.a.spawnIn(n.a.host('snd').netns, ['env', ...resolveArgv(cli), 'multicast', 'send', join(work, 'src.bin'), '--address', group, '--port', '9210', '--receivers', '1', '--ttl', ttl]));
    const out2 = join(work, 'fb-ttl2.bin');
    const rx = receive(out2, '30');
    await waitFor('the receiver bound to its port', () => n.b.udpBound('rcv', 9210), 10_000, { intervalMs: 50, detail: () => rx.tail(10) });
    const tx = send('2');
    const done = await rx.waitFor(/done: \d+ bytes, sha256/, 30_000);
    if (!done) assert.fail(`Fleetboot's receiver on B did not complete\n${await explain(n, [tx, rx])}`);
    await tx.waitFor(/done: \d+ bytes in/, 10_000);
    assert.ok(readFileSync(out2).equals(source), `the file on B differs from the source\n${await explain(n, [tx, rx])}`);
    await Promise.all([tx.stop('SIGTERM', 5_000), rx.stop('SIGTERM', 5_000)]);

    const out1 = join(work, 'fb-ttl1.bin');
    const rx1 = receive(out1, '4');
    await waitFor('the receiver bound to its port', () => n.b.udpBound('rcv', 9210), 10_000, { intervalMs: 50, detail: () => rx1.tail(10) });
    const tx1 = send('1');
    const gaveUp = await rx1.waitFor(/no session announced on the group within 4 s/, 15_000);
    await tx1.stop('SIGKILL', 1000);
    await rx1.stop('SIGKILL', 1000);
    assert.ok(gaveUp, `the receiver on B heard the session although the sender's TTL was 1\n${await explain(n, [tx1, rx1])}`);
    assert.ok(!existsSync(out1), 'no file at TTL 1');
  });

  test('with the sender at --ttl 1 nothing crosses the router', async () => {
    const n = need();
    const { rx, tx: sender, out } = await session(n, 1, 9202, 'ttl1.bin');
    // Short on purpose: at TTL 2 the whole file arrived in about a second; here nothing may arrive at all.
    const done = await rx.waitFor(/Transfer complete\./, 5_000);
    await sender.stop('SIGKILL', 1000);
    await rx.stop('SIGKILL', 1000);
    assert.equal(done, null, `the receiver completed although the sender's TTL was 1\n${await explain(n, [sender, rx])}`);
    const size = existsSync(out) ? statSync(out).size : 0;
    assert.equal(size, 0, `${size} bytes reached subnet B at TTL 1\n${await explain(n, [sender, rx])}`);
  });
});
