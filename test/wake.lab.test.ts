/**
 * Wake-on-LAN across a relay, in network namespaces:
 *
 *   lab A 10.213.90.0/24                          lab B 10.213.91.0/24
 *     ├── fb    .1   fleetboot serve (proxy)        ├── far  .20  listens on 10.213.91.255:9
 *     ├── near  .20  listens on UDP 9               └── cl   busybox udhcpc (a DHCP client)
 *     └── relay .254 eth0 ── [ip_forward, bc_forwarding, dhcrelay] ── eth1 10.213.91.1
 *
 * The client's DISCOVER reaches Fleetboot through dhcrelay (giaddr
 * 10.213.91.1): Fleetboot records the relay. Then `fleetboot wake --group`
 * and `fleetboot task inventory --group --wake`: the listener on subnet B,
 * bound to B's directed broadcast address (so it receives nothing else),
 * gets a correct magic packet for each member, `wake.repeats` times, from
 * Fleetboot's address, through a router that forwards directed broadcasts
 * (Linux bc_forwarding, Cisco's `ip directed-broadcast`); the listener on
 * A, Fleetboot's own segment, gets the limited broadcast.
 * Needs root, iproute2, isc-dhcp-relay, busybox. About 15 s.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeMagicPacket } from '../src/protocol/wol.js';
import { Lab, labAvailable } from './lab/lab.js';
import { fleetbootCli, ProcessLog, startFleetboot, type Fleetboot } from './lab/bootenv/services.js';
import { addRouter, routeVia, startDhcrelay } from './lab/relay.js';
import { waitFor } from './wait.js';

const A = '10.213.90';
const B = '10.213.91';
const FB_IP = `${A}.1`;
const MEMBERS = ['52:54:00:fb:91:01', '52:54:00:fb:91:02'];
const REPEATS = 3;

/** A UDP listener: one JSON line per datagram. */
const LISTENER = `
const dgram = require('node:dgram');
const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
s.on('message', (m, r) => console.log(JSON.stringify({ from: r.address, hex: m.toString('hex'), t: Date.now() })));
s.bind(9, process.argv[1], () => console.log(JSON.stringify({ listening: process.argv[1] })));
`;

interface Datagram {
  from: string;
  hex: string;
  t: number;
}

function datagrams(log: ProcessLog, from = 0): Datagram[] {
  return log
    .all()
    .slice(from)
    .split('\n')
    .filter((l) => l.startsWith('{"from"'))
    .map((l) => JSON.parse(l) as Datagram);
}

let labs: Lab[] = [];
let work = '';
let fb: Fleetboot | null = null;
let far: ProcessLog | null = null;
let near: ProcessLog | null = null;
let dataDir = '';

const available = await labAvailable();

describe('Wake-on-LAN to a relayed subnet (lab)', { skip: available ? false : 'needs root and ip netns', timeout: 120_000 }, () => {
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'fb-wake-lab-'));
    const labA = await Lab.create({ subnet: A });
    labs.push(labA);
    const labB = await Lab.create({ subnet: B });
    labs.push(labB);
    await labA.addHost('fb', FB_IP);
    await labA.addHost('near', `${A}.20`);
    // A router forwards a directed broadcast onto its subnet only when told to (directedBroadcast: bc_forwarding).
    const relay = await addRouter(labA, 'relay', `${A}.254`, [{ lab: labB, ip: `${B}.1` }], { directedBroadcast: true });
    await routeVia(labA, ['fb'], `${B}.0/24`, `${A}.254`);
    await labB.addHost('far', `${B}.20`);
    await labB.addHost('cl', null);
    await routeVia(labB, ['far'], `${A}.0/24`, `${B}.1`);

    far = new ProcessLog('listener(far)', labB.spawnIn(labB.host('far').netns, ['node', '-e', LISTENER, `${B}.255`]));
    near = new ProcessLog('listener(near)', labA.spawnIn(labA.host('near').netns, ['node', '-e', LISTENER, '0.0.0.0']));
    for (const l of [far, near]) if (!(await l.waitFor(/"listening"/, 10_000))) throw new Error(`the UDP listener did not start:\n${l.tail()}`);

    const relayLog = await startDhcrelay(labA, relay, { upstream: ['eth0'], downstream: ['eth1'], servers: [FB_IP], agentInformation: false, pidFile: join(work, 'dhcrelay.pid') });

    dataDir = join(work, 'data');
    const configFile = join(work, 'fleetboot.json');
    writeFileSync(configFile, JSON.stringify({ wake: { repeats: REPEATS, spacingSeconds: 1 } }));
    fb = await startFleetboot(labA, 'fb', { dataDir, serverIp: FB_IP, configFile, extra: ['--no-tftp'] });
    // A DHCP client on B: its DISCOVER reaches Fleetboot through the relay, which Fleetboot records.
    await labB.exec('cl', ['busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-t', '2', '-T', '1', '-s', '/bin/true']).catch(() => undefined);
    const f = fb;
    await waitFor('Fleetboot to record the relay', () => /DHCP relay 10\.213\.91\.1 heard/.test(f.log.all()), 10_000, { intervalMs: 100, detail: () => `${f.log.tail(20)}\n${relayLog.tail(10)}` });
    for (const mac of MEMBERS) await fleetbootCli(labA, 'fb', dataDir, ['host', 'add', mac]);
    await fleetbootCli(labA, 'fb', dataDir, ['group', 'add', 'lab12']);
    await fleetbootCli(labA, 'fb', dataDir, ['group', 'add-host', 'lab12', ...MEMBERS]);
  });

  after(async () => {
    try {
      if (fb) writeFileSync(join(work, 'fleetboot.log'), fb.log.all());
    } finally {
      for (const l of labs.reverse()) await l.destroy();
      labs = [];
      if (work && process.env.FBTEST_KEEP !== '1') rmSync(work, { recursive: true, force: true });
    }
  });

  test('the targets: the limited broadcast of the server segment and the directed broadcast of the relay\'s subnet', async () => {
    const labA = labs[0] as Lab;
    const out = JSON.parse(await fleetbootCli(labA, 'fb', dataDir, ['wake', '--targets', '--json'])) as { targets: Array<{ address: string; port: number }> };
    assert.deepEqual(out.targets.map((t) => `${t.address}:${t.port}`), ['255.255.255.255:9', `${B}.255:9`]);
  });

  /** Wait for `REPEATS` packets per member on the listener; check each is a correct magic packet from Fleetboot. */
  async function expectRounds(log: ProcessLog, mark: number, what: string): Promise<Datagram[]> {
    const got = await waitFor(`${REPEATS} magic packets per member on ${what}`, () => {
      const d = datagrams(log, mark);
      return d.length >= REPEATS * MEMBERS.length ? d : null;
    }, 10_000, { intervalMs: 50, detail: () => `${log.tail(20)}\n${fb?.log.tail(20) ?? ''}` });
    for (const d of got) assert.equal(d.from, FB_IP, `a packet on ${what} came from ${d.from}`);
    const macs = got.map((d) => decodeMagicPacket(Buffer.from(d.hex, 'hex')).mac).sort();
    assert.deepEqual(macs, MEMBERS.flatMap((m) => Array<string>(REPEATS).fill(m)).sort(), `the magic packets on ${what}`);
    return got;
  }

  test('fleetboot wake --group: each member\'s magic packet reaches subnet B on its directed broadcast, 3 times about 1 s apart, and the server segment by limited broadcast', async () => {
    const labA = labs[0] as Lab;
    assert.ok(far && near);
    const [mFar, mNear] = [far.mark(), near.mark()];
    const out = await fleetbootCli(labA, 'fb', dataDir, ['wake', '--group', 'lab12']);
    assert.match(out, /^Waking 2 machines \(52:54:00:fb:91:01 52:54:00:fb:91:02\): 3 sends 1 s apart to 2 targets; the first sent 4 packets/);
    const got = await expectRounds(far, mFar, `B's directed broadcast ${B}.255`);
    const spread = Math.max(...got.map((d) => d.t)) - Math.min(...got.map((d) => d.t));
    assert.ok(spread >= 1800 && spread < 4000, `the three sends spread over ${spread} ms`);
    await expectRounds(near, mNear, "the server's segment (limited broadcast)");
  });

  test('task inventory --group --wake: the queued tasks wake their machines', async () => {
    const labA = labs[0] as Lab;
    assert.ok(far && fb);
    const mFar = far.mark();
    const out = await fleetbootCli(labA, 'fb', dataDir, ['task', 'inventory', '--group', 'lab12', '--wake']);
    assert.match(out, /^Job \d+: 2 inventory tasks for group lab12, tasks \d+ \d+; they start at each machine's next network boot, after Wake-on-LAN wakes it/);
    await expectRounds(far, mFar, `B's directed broadcast ${B}.255`);
    assert.match(fb.log.all(), /wake 52:54:00:fb:91:01 52:54:00:fb:91:02: send 1\/3 to 255\.255\.255\.255:9 10\.213\.91\.255:9 \(tasks #\d+, #\d+\)/);
  });
});
