/**
 * Imaging end to end, in a lab built and torn down here:
 *
 *   bridge namespace ── taps ── QEMU guests (one at a time)
 *        ├── fb    10.213.90.1  fleetboot serve (proxyDHCP, TFTP, HTTP, imaging)
 *        └── dhcp  10.213.90.2  dnsmasq: addresses only (the "existing" DHCP server)
 *
 * Every guest boots through Fleetboot's PXE chain (proxyDHCP -> TFTP/iPXE ->
 * HTTP -> the boot environment built by scripts/build-bootenv.sh), never
 * through QEMU's -kernel:
 *
 *   1. A (SeaBIOS + iPXE ROM) has an MBR disk with an ext4 and a FAT32
 *      partition holding known files; `task capture` makes image "ref".
 *   2. An impostor (another namespace, another MAC) asks /boot/decide with
 *      A's MAC before A boots: refused, nothing handed out, in the log. A
 *      boots and captures "ref" again: revision 2. While A runs, the impostor
 *      uses A's token (read off A's console) from its own address: 403, in
 *      the log.
 *   3. A capture whose hardware identity differs from A's inventory of
 *      record fails before any upload; "ref" keeps its revisions.
 *   4. A second capture of "ref" is cut off by powering A off mid-upload:
 *      the task fails (no agent contact), "ref" is untouched.
 *   5. `image rollback ref --to 1`; B (OVMF, edk2 PXE) has a larger blank
 *      disk; `task deploy --table gpt` writes revision 1 (its manifest's
 *      sha256 checked); Fleetboot is stopped and started again mid-deploy
 *      and the task still completes. B's disk, mounted on the host, holds
 *      every file of A with the same sha256, under a GPT table.
 *   6. Multicast: M1 (SeaBIOS + iPXE ROM) and M2 (OVMF, edk2 PXE), members
 *      of group "room" with M3, get "ref" in one multicast session (`task
 *      deploy --group room --multicast --min-receivers 2 --max-wait 0`);
 *      M3 (OVMF + iPXE) is powered on once the session sends, joins it late
 *      and gets the whole image from it (a later sweep). Every file on the
 *      three disks has A's sha256. The session starts under a low rate
 *      ceiling (multicast.maxRateMbps 1: a sweep of "ref" takes minutes), so
 *      that it still runs when M3's agent starts under TCG; once M3 has
 *      joined, `fleetboot multicast rate` lifts the ceiling. The agents
 *      receive through the native UDP addon the boot environment carries.
 *   7. An unknown machine with imaging.unknownPolicy "register" becomes a
 *      host whose inventory has its MAC, CPUs, memory, disk and SMBIOS product.
 *
 * Needs root, `scripts/install-deps.sh --with-test`, and builds the boot
 * environment on first use (cached). Fails, never skips. FBTEST_KEEP=1 keeps
 * the work directory (logs, disks).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LabSuite } from './suite.js';
import { closeLabFixture, openLabFixture, withParts, type LabWith } from './fixture.js';
import { CACHE_DIR, ensureFleetbootBootEnv, QemuGuest, withTimeout, type QemuVariant } from './qemu.js';
import { logEvents, startFleetboot } from './bootenv/services.js';
import type { Inventory } from '../../src/model/manifest.js';
import { openStore, putInventory } from '../../src/store/index.js';
import { makeSourceDisk, readDiskFiles, sh, type SourceDisk } from './disks.js';

const S = '10.213.90';
const SERVER_IP = `${S}.1`;
const A = { variant: 'bios-ipxe' as QemuVariant, mac: '52:54:00:fb:90:0a' };
const B = { variant: 'ovmf-pxe' as QemuVariant, mac: '52:54:00:fb:90:0b' };
const R = { variant: 'ovmf-ipxe' as QemuVariant, mac: '52:54:00:fb:90:0c' };
/** The multicast room: two members boot at once, the third once the session sends. */
const ROOM = [
  { variant: 'bios-ipxe' as QemuVariant, mac: '52:54:00:fb:90:1a', name: 'm1' },
  { variant: 'ovmf-pxe' as QemuVariant, mac: '52:54:00:fb:90:1b', name: 'm2' },
  { variant: 'ovmf-ipxe' as QemuVariant, mac: '52:54:00:fb:90:1c', name: 'm3' },
] as const;
/** Mbit/s until M3 has joined: "ref" (~25 MB of streams) takes over 200 s a sweep; M3 needs about 60 s to boot and join. */
const ROOM_RATE_MBPS = 1;
const GUEST_MB = 1536;
/** Guest steps under TCG: download ~40 MB of boot environment, boot Linux, run the agent. */
const TASK_TIMEOUT_S = 600;

type Env = LabWith<'fb'> & { bootEnvDir: string; a: SourceDisk };
const suite = new LabSuite<Env>();
const { guarded, need } = suite;

async function cli(args: string[]): Promise<string> {
  return need().fleetbootCommand(args);
}

async function cliJson<T>(args: string[]): Promise<T> {
  return JSON.parse(await cli([...args, '--json'])) as T;
}

interface TaskView {
  id: number;
  state: string;
  error: string | null;
  bytesDone: number;
  bytesTotal: number | null;
  phase: string | null;
  revision: number | null;
}

interface RoomSession {
  state: string;
  stats: { sweeps: number; receivers: Array<{ state: string; reason: string | null }> } | null;
  live: { maxRateBps: number } | null;
  members: Array<{ mac: string; receiverState: string | null }>;
}

interface HostView {
  mac: string;
  inventory: { cpu: { threads: number }; memoryBytes: number; disks: Array<{ sizeBytes: number }>; nics: Array<{ mac: string }>; smbios: { product: string | null } } | null;
}

async function taskState(id: number): Promise<TaskView> {
  return cliJson<TaskView>(['task', 'show', String(id)]);
}

function explain(e: Env, guest: QemuGuest | null): string {
  return [guest ? guest.diagnostics(60) : '', `--- Fleetboot log (last 60 lines)\n${e.fb.log.tail(60)}`, `(work dir: ${e.work})`].join('\n');
}

/** Wait until the task is finished (or `until` says stop); fail early when the guest dies first. */
async function waitTask(id: number, guest: QemuGuest | null, opts: { until?: (t: TaskView) => boolean; timeoutS?: number; guestMayExit?: boolean } = {}): Promise<TaskView> {
  const e = need();
  const deadline = Date.now() + (opts.timeoutS ?? TASK_TIMEOUT_S) * 1000;
  let last: TaskView | null = null;
  let exitedAt: number | null = null;
  while (Date.now() < deadline) {
    last = await taskState(id);
    if (opts.until ? opts.until(last) : ['done', 'failed', 'cancelled'].includes(last.state)) return last;
    if (guest && !guest.running && !opts.guestMayExit) {
      exitedAt ??= Date.now();
      // The guest reboots (-no-reboot: QEMU exits) right after it reports; give the report a moment.
      if (Date.now() - exitedAt > 5000) assert.fail(`guest ${guest.name} exited while task ${id} is ${last.state}\n${explain(e, guest)}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  return assert.fail(`task ${id} not finished within ${opts.timeoutS ?? TASK_TIMEOUT_S} s (last: ${JSON.stringify(last)})\n${explain(e, guest)}`);
}

async function startGuest(e: Env, g: { variant: QemuVariant; mac: string }, name: string, disk: string, extra: Partial<{ cpus: number; extraArgs: string[] }> = {}): Promise<QemuGuest> {
  return QemuGuest.start(e.lab, { variant: g.variant, mac: g.mac, name, workDir: e.work, disk, memoryMb: GUEST_MB, accel: e.accel, ...extra });
}

async function sha256File(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

async function imageDirSums(dataDir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const root = join(dataDir, 'images');
  for (const d of await readdir(root, { withFileTypes: true })) {
    if (!d.isDirectory() || d.name.startsWith('.')) continue;
    for (const f of await readdir(join(root, d.name))) out.set(`${d.name}/${f}`, await sha256File(join(root, d.name, f)));
  }
  return out;
}

describe('imaging: capture a BIOS machine over the network, deploy to a UEFI machine, register an unknown one', { timeout: 45 * 60_000 }, () => {
  before(() =>
    guarded(async () => {
      const bootEnvDir = join(CACHE_DIR, 'fleetboot-bootenv');
      await ensureFleetbootBootEnv(bootEnvDir);
      // The agent's first contact comes after iPXE has fetched the boot environment
      // and Linux has started (~15 s under TCG, up to 3x that when the host steals
      // time); the same timeout is the agent's retry window over the deploy test's
      // server restart. 90 s leaves room for both; the fault test waits for it.
      const f = await openLabFixture({
        name: 'imaging.e2e',
        subnet: S,
        variants: [A.variant, B.variant, R.variant],
        testBootEnv: false,
        fleetboot: { config: { boot: { menuTimeoutSeconds: 2 }, imaging: { bootEnvDir, agentTimeoutSeconds: 90, unknownPolicy: 'register' }, multicast: { maxRateMbps: ROOM_RATE_MBPS } } },
      });
      let a: SourceDisk;
      try {
        a = await makeSourceDisk(join(f.work, 'a.img'), { sizeMiB: 128, fileMiB: 24 });
      } catch (err) {
        await closeLabFixture(f, true);
        throw err;
      }
      suite.env = Object.assign(withParts(f, ['fb']), { bootEnvDir, a });
      await cli(['host', 'add', A.mac, '--name', 'machine-a']);
      await cli(['host', 'add', B.mac, '--name', 'machine-b']);
    }),
  );

  after(() => closeLabFixture(suite.env, suite.failed));

  test('capture: machine A (BIOS, MBR ext4 + FAT32) becomes image "ref" with a manifest and checksums', () =>
    guarded(async () => {
      const e = need();
      const task = await cliJson<TaskView>(['task', 'capture', A.mac, '--image', 'ref']);
      assert.equal(task.state, 'queued');
      const guest = await startGuest(e, A, 'a-capture', e.a.file);
      try {
        const done = await waitTask(task.id, guest);
        assert.equal(done.state, 'done', `capture failed: ${done.error}\n${explain(e, guest)}`);
        // After the task the machine reboots; -no-reboot makes QEMU exit.
        assert.ok(await withTimeout(guest.exited, 60_000), `A did not reboot after the capture\n${explain(e, guest)}`);
      } finally {
        await guest.stop();
      }
      const shown = await cliJson<{ info: { name: string; partitions: number }; manifest: { table: { type: string }; partitions: Array<{ number: number; filesystem: string | null; tool: string; sha256: string; file: string }> } }>(['image', 'show', 'ref']);
      assert.equal(shown.manifest.table.type, 'dos');
      assert.deepEqual(shown.manifest.partitions.map((p) => [p.number, p.filesystem, p.tool.startsWith('partclone.')]), [[1, 'ext4', true], [2, 'vfat', true]]);
      for (const p of shown.manifest.partitions) assert.match(p.sha256, /^[0-9a-f]{64}$/);
      // The next boot of A is its local disk: no re-imaging loop.
      const decision = await e.lab.nsExec(e.lab.host('fb').netns, ['curl', '-s', `http://${SERVER_IP}:8080/boot/decide?mac=${A.mac.replace(/:/g, '-')}`]);
      assert.doesNotMatch(decision, /fleetboot\.token=/, 'A would boot the imaging environment again');
    }),
  );

  test('impostor: another machine asking for A\'s capture gets nothing; A\'s token from another address is refused (403); A captures revision 2', () =>
    guarded(async () => {
      const e = need();
      const task = await cliJson<TaskView>(['task', 'capture', A.mac, '--image', 'ref']);
      const imp = await e.lab.addHost('imp', `${S}.66`);
      const url = `http://${SERVER_IP}:8080`;
      // Before A boots, the impostor asks for A's task.
      const script = await e.lab.nsExec(imp.netns, ['curl', '-s', `${url}/boot/decide?mac=${A.mac.replace(/:/g, '-')}&platform=pcbios`]);
      assert.doesNotMatch(script, /fleetboot\.token=/, 'the impostor got a token');
      assert.match(script, new RegExp(`came from ${S}\\.66, which is [0-9a-f:]{17} on this network`));
      let t = await taskState(task.id);
      assert.equal(t.state, 'queued', 'the impostor used up nothing');
      assert.ok(logEvents(e.fb).some((l) => /impostor refused/.test(String(l['msg']))), 'the impostor is in the log');

      const guest = await startGuest(e, A, 'a-capture-2', e.a.file);
      try {
        await waitTask(task.id, guest, { until: (x) => x.state === 'running' });
        // The token as A's console shows it (the kernel prints its command line).
        const token = /fleetboot\.token=([0-9a-f]{64})/.exec(guest.serial())?.[1];
        assert.ok(token, `no token on A's console\n${explain(e, guest)}`);
        const put = await e.lab.nsExec(imp.netns, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', '-H', `authorization: Bearer ${token}`, '-H', 'content-type: application/octet-stream', '--data-binary', 'not an image', `${url}/agent/v1/task/streams/p1.pcl.zst`]);
        assert.equal(put, '403');
        const get = await e.lab.nsExec(imp.netns, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `authorization: Bearer ${token}`, `${url}/agent/v1/task`]);
        assert.equal(get, '403');
        assert.ok(logEvents(e.fb).some((l) => new RegExp(`token was used from ${S}\\.66, but it was handed to`).test(String(l['msg']))), 'the refused upload is in the log');
        t = await waitTask(task.id, guest);
        assert.equal(t.state, 'done', `capture failed: ${t.error}\n${explain(e, guest)}`);
        await withTimeout(guest.exited, 60_000);
      } finally {
        await guest.stop();
      }
      const shown = await cliJson<{ revision: number; revisions: Array<{ number: number; current: boolean; sourceMac: string }> }>(['image', 'show', 'ref']);
      assert.equal(shown.revision, 2);
      assert.deepEqual(shown.revisions.map((r) => [r.number, r.current, r.sourceMac]), [[1, false, A.mac], [2, true, A.mac]]);
    }),
  );

  test('identity: a capture from a machine that is not the one recorded fails before any upload; "ref" keeps its revisions', () =>
    guarded(async () => {
      const e = need();
      // A's inventory of record says another machine (as after a motherboard swap, or a MAC on another box).
      const store = await openStore(e.fbOpts.dataDir);
      try {
        const inv: Inventory = {
          collectedAt: new Date().toISOString(),
          cpu: { model: null, sockets: 1, cores: 1, threads: 1 },
          memoryBytes: GUEST_MB * 1024 * 1024,
          disks: [{ name: 'sda', sizeBytes: 128 * 1024 * 1024, model: 'QEMU HARDDISK', serial: null, rotational: true }],
          nics: [{ name: 'eth0', mac: A.mac, driver: 'e1000', speedMbps: 1000 }],
          smbios: { manufacturer: 'Other', product: 'Other box', serial: 'SN-NOT-MACHINE-A', uuid: null, biosVendor: null, biosVersion: null },
          firmware: 'bios',
        };
        await putInventory(store.db, A.mac, inv);
      } finally {
        await store.close();
      }
      const before = await imageDirSums(e.fbOpts.dataDir);
      const task = await cliJson<TaskView>(['task', 'capture', A.mac, '--image', 'ref']);
      const guest = await startGuest(e, A, 'a-identity', e.a.file);
      try {
        const t = await waitTask(task.id, guest, { guestMayExit: true });
        assert.equal(t.state, 'failed', `the capture was not refused\n${explain(e, guest)}`);
        assert.match(t.error ?? '', /hardware identity check: this machine is not the one recorded for the host \(SMBIOS serial differ\).*serial SN-NOT-MACHINE-A/);
        assert.equal(t.bytesDone, 0, 'nothing was uploaded');
      } finally {
        await guest.stop();
      }
      assert.deepEqual(await imageDirSums(e.fbOpts.dataDir), before, 'the stored image changed');
      assert.equal((await cliJson<{ revision: number }>(['image', 'show', 'ref'])).revision, 2);
      await cli(['host', 'forget-inventory', A.mac]);
    }),
  );

  test('fault: A powered off mid-capture -> the task fails and image "ref" stays intact', () =>
    guarded(async () => {
      const e = need();
      const before = await imageDirSums(e.fbOpts.dataDir);
      const task = await cliJson<TaskView>(['task', 'capture', A.mac, '--image', 'ref']);
      const guest = await startGuest(e, A, 'a-cut', e.a.file);
      try {
        await waitTask(task.id, guest, { until: (t) => t.state === 'running' && t.bytesDone > 0 });
      } finally {
        await guest.stop(); // power off
      }
      const t = await waitTask(task.id, null, { timeoutS: 300 }); // the reaper fails it after 90 s of silence
      assert.equal(t.state, 'failed');
      assert.match(t.error ?? '', /contact|agent|stopped|upload/i);
      assert.deepEqual(await imageDirSums(e.fbOpts.dataDir), before, 'the stored image changed');
    }),
  );

  test('deploy: machine B (UEFI, larger blank disk) gets "ref" as GPT, survives a server restart, and holds every file of A', () =>
    guarded(async () => {
      const e = need();
      const diskB = join(e.work, 'b.img');
      await sh('truncate', ['-s', '192M', diskB]);
      // Revision 1 is what B gets: rolled back to, and pinned by the task when B's agent starts.
      const rolled = await cliJson<{ number: number; manifestSha256: string }>(['image', 'rollback', 'ref', '--to', '1']);
      assert.equal(rolled.number, 1);
      const rev1 = await cliJson<{ revisions: Array<{ number: number; manifestSha256: string }> }>(['image', 'show', 'ref']);
      assert.equal(rev1.revisions.find((r) => r.number === 1)?.manifestSha256, rolled.manifestSha256);
      const task = await cliJson<TaskView>(['task', 'deploy', B.mac, '--image', 'ref', '--table', 'gpt']);
      const guest = await startGuest(e, B, 'b-deploy', diskB);
      try {
        // Once its agent runs, slow the machine's link (a token bucket on its tap): under TCG the
        // 25 MB deploy takes about 6 s and a poll through the CLI 1-2 s, so the restart below
        // could come after the end. At 16 Mbit/s it takes 10 s or more.
        await waitTask(task.id, guest, { until: (t) => t.state === 'running' || t.state === 'done' });
        await e.lab.nsExec(e.lab.bridgeNs, ['tc', 'qdisc', 'add', 'dev', guest.tap, 'root', 'tbf', 'rate', '16mbit', 'burst', '64kb', 'latency', '50ms']);
        await waitTask(task.id, guest, { until: (t) => t.state === 'running' && t.bytesDone > 0 });
        // Stop the server mid-deploy and start it again on the same data directory.
        await e.fb.log.stop('SIGTERM');
        e.fb = await startFleetboot(e.lab, 'fb', e.fbOpts);
        const done = await waitTask(task.id, guest);
        assert.equal(done.state, 'done', `deploy failed: ${done.error}\n${explain(e, guest)}`);
        assert.equal(done.revision, 1, 'the deploy wrote revision 1');
        await withTimeout(guest.exited, 60_000);
      } finally {
        await guest.stop();
      }
      const b = await readDiskFiles(diskB);
      assert.equal(b.table.label, 'gpt');
      for (const [n, sums] of e.a.sums) assert.deepEqual(b.sums.get(n), sums, `partition ${n} differs`);
    }),
  );

  test('multicast: a SeaBIOS and an OVMF member of one group get "ref" in one session; a third member powered on after it started joins late; every disk holds A\'s files', () =>
    guarded(async () => {
      const e = need();
      for (const m of ROOM) await cli(['host', 'add', m.mac, '--name', m.name]);
      await cli(['group', 'add', 'room']);
      await cli(['group', 'add-host', 'room', ...ROOM.map((m) => m.mac)]);
      const disks = new Map<string, string>();
      for (const m of ROOM) {
        const d = join(e.work, `${m.name}.img`);
        await sh('truncate', ['-s', '192M', d]);
        disks.set(m.mac, d);
      }
      const job = await cliJson<{ multicastSessionId: number | null; tasks: Array<{ id: number; mac: string }> }>(['task', 'deploy', '--group', 'room', '--image', 'ref', '--multicast', '--min-receivers', '2', '--max-wait', '0']);
      const sessionId = job.multicastSessionId;
      assert.ok(sessionId, `the job has no multicast session: ${JSON.stringify(job)}`);
      const taskOf = (mac: string): number => {
        const t = job.tasks.find((x) => x.mac === mac);
        assert.ok(t, `no task for ${mac} in ${JSON.stringify(job.tasks)}`);
        return t.id;
      };
      const session = (): Promise<RoomSession> => cliJson<RoomSession>(['multicast', 'show', String(sessionId)]);
      const guests: QemuGuest[] = [];
      const explainAll = (): string => [...guests.map((g) => g.diagnostics(30)), explain(e, null)].join('\n');
      try {
        for (const m of ROOM.slice(0, 2)) guests.push(await startGuest(e, m, `${m.name}-multicast`, disks.get(m.mac) as string));
        // M1 and M2 boot through PXE, their agents join; the session sends once both have.
        const deadline = Date.now() + TASK_TIMEOUT_S * 1000;
        let state = (await session()).state;
        while (state === 'waiting' && Date.now() < deadline) {
          for (const g of guests) if (!g.running) assert.fail(`guest ${g.name} exited before the session started\n${explainAll()}`);
          await new Promise((r) => setTimeout(r, 1000));
          state = (await session()).state;
        }
        assert.equal(state, 'sending', `the session did not start sending (state ${state})\n${explainAll()}`);
        const m3 = ROOM[2];
        guests.push(await startGuest(e, m3, `${m3.name}-multicast`, disks.get(m3.mac) as string));
        // Once M3's agent has joined the running session (it waits for the next sweep, or catches up within its window), lift the ceiling.
        let m3State: string | null = null;
        while (Date.now() < deadline) {
          const s = await session();
          assert.equal(s.state, 'sending', `the session ended before M3 joined\n${explainAll()}`);
          m3State = s.members.find((x) => x.mac === m3.mac)?.receiverState ?? null;
          if (m3State !== null && m3State !== 'not joined') break;
          if (!guests[2]?.running) assert.fail(`M3 exited before it joined the session\n${explainAll()}`);
          await new Promise((r) => setTimeout(r, 1000));
        }
        assert.ok(m3State === 'waiting' || m3State === 'active', `M3's receiver: ${m3State}\n${explainAll()}`);
        const lifted = await cliJson<RoomSession>(['multicast', 'rate', String(sessionId), '100']);
        assert.equal(lifted.live?.maxRateBps, 100e6 / 8);
        for (const [i, m] of ROOM.entries()) {
          const t = await waitTask(taskOf(m.mac), guests[i] ?? null);
          assert.equal(t.state, 'done', `${m.name} (${m.variant}): ${t.error}\n${explainAll()}`);
        }
        for (const g of guests) await withTimeout(g.exited, 60_000);
        // The boot environment carries the native UDP addon: the agents received through it, not node:dgram.
        for (const g of guests) assert.match(g.serial(), /multicast: joining session [0-9a-f]{16} on \S+ \(native sockets\)/, `${g.name} did not receive through the native addon\n${g.diagnostics(20)}`);
      } finally {
        for (const g of guests) await g.stop();
      }
      const s = await session();
      assert.equal(s.state, 'finished', JSON.stringify(s));
      // All three ended in the session (a member that fell back to unicast would show as dropped or failed).
      assert.deepEqual((s.stats?.receivers ?? []).map((r) => r.state), ['done', 'done', 'done'], JSON.stringify(s.stats));
      // M3 joined past the first sweep's start: what it missed came in a second sweep (or, within its window, as repairs).
      assert.ok((s.stats?.sweeps ?? 0) >= 1, JSON.stringify(s.stats));
      for (const m of ROOM) {
        const got = await readDiskFiles(disks.get(m.mac) as string);
        for (const [n, sums] of e.a.sums) assert.deepEqual(got.sums.get(n), sums, `${m.name} (${m.variant}): partition ${n} differs from A`);
      }
      console.log(`multicast.e2e: session #${sessionId}: ${JSON.stringify(s.stats?.receivers)}, sweeps ${s.stats?.sweeps}`);
    }),
  );

  test('registration: an unknown machine (policy register) becomes a host with its inventory', () =>
    guarded(async () => {
      const e = need();
      const disk = join(e.work, 'r.img');
      await sh('truncate', ['-s', '300M', disk]);
      const guest = await startGuest(e, R, 'r-register', disk, { cpus: 2, extraArgs: ['-smbios', 'type=1,manufacturer=FleetbootLab,product=LabBox-9000,serial=SN-4242'] });
      let host: HostView | null = null;
      try {
        const deadline = Date.now() + TASK_TIMEOUT_S * 1000;
        while (Date.now() < deadline) {
          host = await cliJson<HostView>(['host', 'show', R.mac]).catch(() => null);
          if (host?.inventory) break;
          if (!guest.running) break;
          await new Promise((r) => setTimeout(r, 2000));
        }
      } finally {
        await guest.stop();
      }
      assert.ok(host?.inventory, `no registered host with inventory for ${R.mac}\n${explain(e, guest)}`);
      const inv = host.inventory;
      assert.equal(inv.cpu.threads, 2);
      // QEMU -m 1536: the kernel reports a little less than the whole.
      assert.ok(inv.memoryBytes > 1400 * 1024 * 1024 && inv.memoryBytes <= GUEST_MB * 1024 * 1024, `memory ${inv.memoryBytes}`);
      assert.ok(inv.disks.some((d) => d.sizeBytes === 300 * 1024 * 1024), JSON.stringify(inv.disks));
      assert.ok(inv.nics.some((n) => n.mac === R.mac), JSON.stringify(inv.nics));
      assert.equal(inv.smbios.product, 'LabBox-9000');
    }),
  );
});

