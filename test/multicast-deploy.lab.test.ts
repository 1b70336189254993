/**
 * Multicast deploys through the server, with real agents writing real disks
 * (loop devices), on a lab bridge:
 *
 *   lab 10.213.92.0/24: fb .1 (fleetboot serve, bundled), ref .9 (the
 *   reference machine, captured once), m0..m2 .10-.12 (members of group lab)
 *
 * The image is captured from a source disk (ext4 + FAT32 with random files)
 * by a capture task, as a machine would. Then, for each scenario, a deploy
 * job to the group with --multicast; each member's agent asks its boot
 * decision for a token and runs `agent run` on its own loop device.
 * (a) a member slowed to a fifth (tbf on its bridge port) is dropped from
 *     the session and finishes by unicast (its task says why), the others by
 *     multicast; every disk holds the source's files;
 * (b) the session starts with two members after --max-wait; the third
 *     member's agent starts once it sends and joins late: it gets the whole
 *     image from the same session (what it missed as repairs, or in a
 *     second sweep when it joined further on); every disk holds the
 *     source's files. An operator's rate ceiling (`multicast rate`) applies
 *     while it sends and is refused once it has ended.
 * One agent takes the JavaScript path (FLEETBOOT_UDP=dgram), as the boot
 * environment's agent does without the native addon.
 * Needs root (namespaces, loop devices, mounts, tc); fails, never skips.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, labAvailable, sh } from './lab/lab.js';
import { ProcessLog } from './lab/bootenv/services.js';
import { bundledCli, bundledImager } from './lab/cli-bundle.js';
import { makeSourceDisk, readDiskFiles, type SourceDisk } from './lab/disks.js';
import { waitFor } from './wait.js';
import { resolveArgv, type Argv } from '../src/lib/programs.js';

const SUBNET = '10.213.92';
const FB_IP = `${SUBNET}.1`;
const PORT = 8092;
const BASE = `http://${FB_IP}:${PORT}`;
const REF = { name: 'ref', ip: `${SUBNET}.9`, mac: '52:54:00:92:00:09' };
const MEMBERS = [0, 1, 2].map((i) => ({ name: `m${i}`, ip: `${SUBNET}.${10 + i}`, mac: `52:54:00:92:00:1${i}` }));

let lab: Lab;
let work = '';
let cli: Argv = ['node'];
let agent: Argv = ['node'];
let dataDir = '';
let server: ProcessLog | null = null;
let source: SourceDisk;
const loops: string[] = [];

async function fb(args: string[]): Promise<string> {
  return lab.exec('fb', ['env', ...resolveArgv(cli), ...args, '--data-dir', dataDir]);
}

async function attach(file: string): Promise<string> {
  const dev = (await sh('losetup', ['-fP', '--show', file])).trim();
  loops.push(dev);
  return dev;
}

/** The boot decision for `mac`, asked from its own namespace: the task and its token. */
async function token(host: string, mac: string): Promise<{ task: string; token: string }> {
  const script = await lab.exec(host, ['curl', '-s', '--max-time', '10', `${BASE}/boot/decide?mac=${mac.replace(/:/g, '-')}&platform=pcbios`]);
  const task = /fleetboot\.task=(\d+)/.exec(script)?.[1];
  const tok = /fleetboot\.token=([0-9a-f]+)/.exec(script)?.[1];
  if (!task || !tok) throw new Error(`no task in the boot decision for ${mac}:\n${script}`);
  return { task, token: tok };
}

function runAgent(host: string, tk: { task: string; token: string }, disk: string, env: Record<string, string> = {}): ProcessLog {
  return new ProcessLog(
    `agent ${host}`,
    lab.spawnIn(lab.host(host).netns, ['env', ...resolveArgv(agent), 'run', '--url', BASE, '--task', tk.task, '--token', tk.token, '--disk', disk], { env: { ...process.env, ...env } }),
  );
}

async function exited(p: ProcessLog, ms: number): Promise<number | null> {
  const child = p.child;
  if (child.exitCode !== null) return child.exitCode;
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(null), ms);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

async function taskJson(id: string): Promise<{ state: string; error: string | null; message: string | null }> {
  return JSON.parse(await fb(['task', 'show', id, '--json'])) as { state: string; error: string | null; message: string | null };
}

async function expectSourceFiles(file: string, what: string): Promise<void> {
  const got = await readDiskFiles(file);
  for (const [n, sums] of source.sums) assert.deepEqual(got.sums.get(n), sums, `${what}: partition ${n} differs from the source`);
}

interface SessionJson {
  id: number;
  state: string;
  stats: { sweeps: number; maxRateBps: number; receivers: Array<{ state: string; reason: string | null }> } | null;
  members: Array<{ taskId: number; mac: string }>;
}

describe('multicast deploys through the server (real agents, loop devices)', { timeout: 900_000 }, () => {
  const disks: Record<string, string> = {};
  const files: Record<string, string> = {};

  before(async () => {
    assert.ok(await labAvailable(), 'multicast-deploy.lab needs root and ip netns');
    cli = await bundledCli();
    agent = await bundledImager();
    work = mkdtempSync('/var/tmp/fbmc-deploy-');
    lab = await Lab.create({ subnet: SUBNET });
    await lab.addHost('fb', FB_IP);
    await lab.addHost(REF.name, REF.ip, { mac: REF.mac });
    for (const m of MEMBERS) await lab.addHost(m.name, m.ip, { mac: m.mac });
    source = await makeSourceDisk(join(work, 'source.img'), { sizeMiB: 96, fileMiB: 16 });
    disks['ref'] = await attach(source.file);
    for (const m of MEMBERS) {
      files[m.name] = join(work, `${m.name}.img`);
      writeFileSync(files[m.name] as string, '');
      await sh('truncate', ['-s', '128M', files[m.name] as string]);
      disks[m.name] = await attach(files[m.name] as string);
    }
    dataDir = join(work, 'data');
    // A stand-in boot environment: the boot decision hands out tokens; the agents run here, not in QEMU.
    mkdirSync(join(dataDir, 'bootenv'), { recursive: true });
    writeFileSync(join(dataDir, 'bootenv', 'vmlinuz'), 'kernel');
    writeFileSync(join(dataDir, 'bootenv', 'initrd.img'), 'initrd');
    const cfg = join(work, 'fleetboot.json');
    // 40 Mbit/s: a session lasts a few seconds, long enough for a late member to arrive while it runs.
    writeFileSync(cfg, JSON.stringify({ multicast: { slowReceiverSeconds: 3, receiverTimeoutSeconds: 6, maxRateMbps: 40 }, imaging: { agentTimeoutSeconds: 60 } }));
    server = new ProcessLog('fleetboot', lab.spawnIn(lab.host('fb').netns, ['env', ...resolveArgv(cli), 'serve', '--allow-root', '--config', cfg, '--data-dir', dataDir, '--interface', 'eth0', '--server-ip', FB_IP, '--http-port', String(PORT), '--dhcp', 'off', '--no-tftp']));
    await waitFor('fleetboot serve answers', async () => (await lab.exec('ref', ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', `${BASE}/`]).catch(() => '000')).trim() !== '000', 30_000, {
      intervalMs: 200,
      detail: () => server?.tail(20) ?? '',
    });
    // The image, captured from the reference machine as a capture task does it.
    await fb(['host', 'add', REF.mac, '--name', 'ref']);
    await fb(['task', 'capture', REF.mac, '--image', 'golden']);
    const tk = await token('ref', REF.mac);
    const cap = runAgent('ref', tk, disks['ref'] as string);
    assert.equal(await exited(cap, 180_000), 0, `the capture failed:\n${cap.tail(30)}\n${server.tail(30)}`);
    for (const m of MEMBERS) await fb(['host', 'add', m.mac, '--name', m.name]);
    await fb(['group', 'add', 'lab']);
    await fb(['group', 'add-host', 'lab', ...MEMBERS.map((m) => m.mac)]);
  });

  after(async () => {
    await lab?.destroy();
    for (const l of loops.reverse()) await sh('losetup', ['-d', l]).catch(() => '');
    if (work) rmSync(work, { recursive: true, force: true });
  });

  async function deployJob(extra: string[]): Promise<{ session: number; tasks: Map<string, string> }> {
    const out = JSON.parse(await fb(['task', 'deploy', '--group', 'lab', '--image', 'golden', '--multicast', ...extra, '--json'])) as { id: number; multicastSessionId: number | null; tasks: Array<{ id: number; mac: string }> };
    assert.ok(out.multicastSessionId, `the job has no multicast session: ${JSON.stringify(out)}`);
    return { session: out.multicastSessionId, tasks: new Map(out.tasks.map((t) => [t.mac, String(t.id)])) };
  }

  async function session(id: number): Promise<SessionJson> {
    return JSON.parse(await fb(['multicast', 'show', String(id), '--json'])) as SessionJson;
  }

  test('a member slowed to a fifth of the session rate is dropped and finishes by unicast; the others by multicast; every disk has the source files', async () => {
    const job = await deployJob([]);
    await lab.limitRate('m2', 8);
    try {
      const real = [];
      for (const [i, m] of MEMBERS.entries()) real.push(runAgent(m.name, await token(m.name, m.mac), disks[m.name] as string, i === 1 ? { FLEETBOOT_UDP: 'dgram' } : {}));
      for (const [i, r] of real.entries()) assert.equal(await exited(r, 300_000), 0, `member ${i}'s agent failed:\n${r.tail(40)}`);
      for (const m of MEMBERS) {
        const t = await taskJson(job.tasks.get(m.mac) as string);
        assert.equal(t.state, 'done', `${m.name}: ${JSON.stringify(t)}`);
      }
      const s = await session(job.session);
      assert.equal(s.state, 'finished');
      const states = (s.stats?.receivers ?? []).map((r) => r.state).sort();
      assert.deepEqual(states, ['done', 'done', 'dropped'], JSON.stringify(s.stats));
      assert.match(real[2]?.all() ?? '', /too slow.*going on by unicast/);
    } finally {
      await lab.nsExec(lab.bridgeNs, ['tc', 'qdisc', 'del', 'dev', lab.host('m2').bridgePort, 'root']).catch(() => undefined);
    }
    for (const m of MEMBERS) await expectSourceFiles(files[m.name] as string, m.name);
  });

  test('the session starts without a late member after --max-wait; the late member joins it and gets the whole image from it', async () => {
    const job = await deployJob(['--max-wait', '2', '--min-receivers', '2']);
    // An operator's ceiling for this session, set while it waits: a quarter of the configuration's, so that it
    // sends for over 10 s and the late member (started once it sends) surely finds it running.
    const throttled = JSON.parse(await fb(['multicast', 'rate', String(job.session), '10', '--json'])) as { state: string; live: { maxRateBps: number } | null };
    assert.equal(throttled.state, 'waiting');
    assert.equal(throttled.live?.maxRateBps, 10e6 / 8);
    const early = [];
    for (const m of MEMBERS.slice(0, 2)) early.push(runAgent(m.name, await token(m.name, m.mac), disks[m.name] as string));
    const started = await waitFor('the session starts', async () => {
      const st = (await session(job.session)).state;
      return st === 'waiting' ? null : st;
    }, 60_000, { intervalMs: 100 });
    assert.equal(started, 'sending', 'the session was over before the late member could join (too small an image for the rate?)');
    const lateMember = MEMBERS[2] as (typeof MEMBERS)[number];
    const late = runAgent(lateMember.name, await token(lateMember.name, lateMember.mac), disks[lateMember.name] as string);
    for (const r of [...early, late]) assert.equal(await exited(r, 300_000), 0, r.tail(40));
    const s = await session(job.session);
    assert.equal(s.state, 'finished', JSON.stringify(s));
    assert.deepEqual((s.stats?.receivers ?? []).map((r) => r.state), ['done', 'done', 'done'], JSON.stringify(s.stats));
    // Joined within its window of the head: repairs of what it missed; further on: a second sweep (src/multicast/engine.test.ts).
    assert.doesNotMatch(late.all(), /going on by unicast/, 'the late member got the image from the session, not by unicast');
    assert.equal(s.stats?.maxRateBps, 10e6 / 8, 'the session kept the operator\'s ceiling');
    await assert.rejects(fb(['multicast', 'rate', String(job.session), '10']), /is not running now \(finished\)/);
    await assert.rejects(fb(['multicast', 'rate', String(job.session), '0']), /above 0/);
    for (const m of MEMBERS) await expectSourceFiles(files[m.name] as string, m.name);
  });
});
