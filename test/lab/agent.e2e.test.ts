/**
 * The endpoint agent end to end (issue 13's acceptance), in a lab built and
 * torn down here:
 *
 *   bridge namespace ── tap ── QEMU guest "deb" (SeaBIOS + iPXE ROM, 1.5 GiB IDE disk)
 *        ├── fb      10.213.95.1  fleetboot serve --dhcp server (HTTP 8080, HTTPS 8443)
 *        └── imager  10.213.95.5  the imaging agent on the host, as the "golden" machine
 *
 *   1. A Debian 12 image (scripts/build-debian-image.sh: debootstrap minbase,
 *      systemd, the kernel, networkd DHCP, extlinux; cached between runs)
 *      with the agent's package (scripts/build-agent-deb.sh) installed; its
 *      disk file on a loop device is captured into Fleetboot as image
 *      "deb12" by the imaging agent running in the "imager" namespace with
 *      the golden host's MAC (`run --url`: Fleetboot's own capture path).
 *   2. Host "deb" (the guest's MAC) is in group "fleet"; package "hello"
 *      (`/bin/sh hello.sh`: prints a line, exits 7) is deployed to the group
 *      before the machine exists as an agent.
 *   3. `task deploy MAC --image deb12 --enrol`; the guest PXE-boots the
 *      boot environment (its address from Fleetboot's DHCP server), writes
 *      the image and the enrolment file into its root filesystem, reboots.
 *   4. The guest network-boots again: the task is done, so "boot from local
 *      disk" (sanboot), MBR -> extlinux -> Debian; systemd-networkd gets an
 *      address from Fleetboot, systemd starts fleetboot-agent, which enrols
 *      with the file the deploy wrote, as host "deb", with no admin step
 *      (`agent list` shows it active), polls, and runs "hello": `package
 *      runs --host MAC --json` shows exit code 7 and the printed line.
 *
 * Each guest boot is used once (deploy, then disk). No KVM here: TCG, so
 * the waits are long and every step prints its time. Skips, saying why, only
 * without root or QEMU; every other missing piece (debootstrap, extlinux, a
 * Debian mirror on a cold cache) fails. Run it under the lab lock:
 * `flock /work/wt/lab.lock node --import tsx --test test/lab/agent.e2e.test.ts`.
 * FBTEST_KEEP=1 keeps the work directory (logs, serial consoles, disks).
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { program, type ProgramName } from '../../src/lib/programs.js';
import { LabSuite } from './suite.js';
import { closeLabFixture, openLabFixture, withParts, type LabWith } from './fixture.js';
import { CACHE_DIR, QemuGuest, missingQemuPrerequisites, withTimeout } from './qemu.js';
import { REPO } from './bootenv/services.js';

const S = '10.213.95';
const SERVER_IP = `${S}.1`;
const GUEST = { variant: 'bios-ipxe' as const, mac: '52:54:00:fb:95:0d', name: 'deb' };
const GOLDEN = { mac: '52:54:00:fb:95:01', ip: `${S}.5` };
const DISK_MIB = 1536;
const GUEST_MB = 1024;

const why = process.getuid?.() !== 0 ? 'needs root (network namespaces, loop devices, debootstrap)' : missingQemuPrerequisites([GUEST.variant]).length ? `needs QEMU: missing ${missingQemuPrerequisites([GUEST.variant]).join(', ')} (bash scripts/install-deps.sh --with-test)` : null;

type Env = LabWith<'fb'> & { image: string; loop: string };
const suite = new LabSuite<Env>();
const { guarded, need } = suite;
const t0 = Date.now();
const timings: Array<[string, number]> = [];
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
function timed(what: string, since: number): number {
  const ms = Date.now() - since;
  timings.push([what, ms]);
  console.log(`agent.e2e: ${what}: ${secs(ms)}`);
  return ms;
}

function run(cmd: ProgramName, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(program(cmd), args, { cwd: opts.cwd ?? REPO, maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs ?? 0 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr.slice(-4000)}`));
      else resolve({ stdout, stderr });
    });
  });
}

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
  message: string | null;
  phase: string | null;
  bytesDone: number;
  bytesTotal: number | null;
}
interface AgentView {
  id: string;
  state: string;
  host: { mac: string; name: string | null } | null;
  lastIp: string | null;
}
interface WorkView {
  id: number;
  state: string;
  exitCode: number | null;
  stdout: string | null;
  package: { name: string; revision: number } | null;
  message: string | null;
}

function explain(e: Env, guest: QemuGuest | null): string {
  return [guest ? guest.diagnostics(80) : '', `--- Fleetboot log (last 80 lines)\n${e.fb.log.tail(80)}`, `(work dir: ${e.work})`].join('\n');
}

/** Poll `check` every `everyMs` until it returns a value; fail with `what` and the logs after `timeoutMs` or when the guest stops. */
async function waitFor<T>(what: string, check: () => Promise<T | null>, timeoutMs: number, guest: QemuGuest | null, everyMs = 2000): Promise<T> {
  const e = need();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await check();
    if (v !== null) return v;
    if (guest && !guest.running) assert.fail(`${what}: the guest exited first\n${explain(e, guest)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return assert.fail(`${what}: not within ${timeoutMs / 1000} s\n${explain(e, guest)}`);
}

describe('the endpoint agent: a Debian image deployed with --enrol enrols by itself and runs its group\'s package', { skip: why ?? false, timeout: 60 * 60_000 }, () => {
  before(() =>
    guarded(async () => {
      const cache = join(CACHE_DIR, 'agent-e2e');
      mkdirSync(cache, { recursive: true });
      // The agent's package from this tree (xz level 1: a fifth of the time, a few MB more).
      let t = Date.now();
      const debDir = join(cache, 'deb');
      const deb = (await run('bash', [join(REPO, 'scripts/build-agent-deb.sh'), '--out', debDir, '--xz-level', '1'])).stdout.trim().split('\n').pop() ?? '';
      assert.ok(deb.endsWith('.deb') && existsSync(deb), `build-agent-deb printed no package: ${deb}`);
      timed('agent package (build-agent-deb.sh)', t);
      t = Date.now();
      const image = join(cache, 'debian12.img');
      const built = await run('bash', [join(REPO, 'scripts/build-debian-image.sh'), '--out', image, '--agent-deb', deb, '--size', String(DISK_MIB), '--cache', join(CACHE_DIR, 'debian-image')]);
      const imageMs = timed(`Debian image (build-debian-image.sh; ${/cached image/.test(built.stderr) ? 'cached' : /cached tree/.test(built.stderr) ? 'cached tree' : 'cold: debootstrap'})`, t);
      console.log(`agent.e2e: ${built.stderr.trim().split('\n').slice(-2).join(' | ')} (${secs(imageMs)})`);
      t = Date.now();
      const bootEnvDir = join(CACHE_DIR, 'fleetboot-bootenv');
      await run('bash', [join(REPO, 'scripts/build-bootenv.sh'), '--out', bootEnvDir]);
      timed('boot environment (build-bootenv.sh)', t);

      const f = await openLabFixture({
        name: 'agent.e2e',
        subnet: S,
        variants: [GUEST.variant],
        existingDhcp: false,
        testBootEnv: false,
        fleetboot: {
          config: { boot: { menuTimeoutSeconds: 2 }, imaging: { bootEnvDir, agentTimeoutSeconds: 180 }, agents: { pollSeconds: 5 } },
          extra: ['--dhcp', 'server', '--dhcp-range', `${S}.100,${S}.150,255.255.255.0,600`, '--dhcp-option', `3,${SERVER_IP}`],
        },
      });
      const e = withParts(f, ['fb']);
      // The image's disk file, attached for the capture (partition nodes: losetup -P, then partx as no udev runs here).
      const loop = (await run('losetup', ['-f', '-P', '--show', image])).stdout.trim();
      await run('partx', ['-a', loop]).catch(() => undefined);
      suite.env = Object.assign(e, { image, loop });
      if (!(await e.fb.log.waitFor(/DHCP server listening/, 20_000))) throw new Error(`Fleetboot's DHCP server did not start:\n${e.fb.log.tail(30)}`);
      if (!(await e.fb.log.waitFor(/HTTPS listening/, 20_000))) throw new Error(`Fleetboot's HTTPS did not start:\n${e.fb.log.tail(30)}`);
    }),
  );

  after(() =>
    closeLabFixture(suite.env, suite.failed, {
      beforeDestroy: async () => {
        const loop = suite.env?.loop;
        if (loop) await run('losetup', ['-d', loop]).catch(() => undefined);
        console.log(`agent.e2e: timings: ${timings.map(([w, ms]) => `${w} ${secs(ms)}`).join('; ')}; total ${secs(Date.now() - t0)}`);
      },
    }),
  );

  test('the Debian image becomes image "deb12" through Fleetboot\'s capture (the imaging agent on its loop device)', (t: TestContext) =>
    guarded(async () => {
      const e = need();
      await cli(['host', 'add', GOLDEN.mac, '--name', 'golden']);
      const task = await cliJson<TaskView>(['task', 'capture', GOLDEN.mac, '--image', 'deb12', '--disk', e.loop]);
      // The golden machine: a namespace with its MAC, asking for its task and running the agent from there.
      const imager = await e.lab.addHost('imager', GOLDEN.ip, { mac: GOLDEN.mac });
      const script = await e.lab.nsExec(imager.netns, ['curl', '-s', `http://${SERVER_IP}:8080/boot/decide?mac=${GOLDEN.mac.replace(/:/g, '-')}&platform=pcbios`]);
      const id = /fleetboot\.task=(\d+)/.exec(script)?.[1];
      const token = /fleetboot\.token=([0-9a-f]+)/.exec(script)?.[1];
      assert.ok(id && token, `no task token for the golden machine:\n${script}`);
      const start = Date.now();
      await e.lab.nsExec(imager.netns, ['env', '-C', REPO, 'node', '--import', 'tsx', join(REPO, 'src/agent/main.ts'), 'run', '--url', `http://${SERVER_IP}:8080`, '--task', id, '--token', token, '--disk', e.loop]);
      timed('capture of the image into Fleetboot', start);
      const done = await cliJson<TaskView>(['task', 'show', String(task.id)]);
      assert.equal(done.state, 'done', `capture failed: ${done.error}\n${explain(e, null)}`);
      const shown = await cliJson<{ manifest: { table: { type: string; bootCode?: string }; partitions: Array<{ filesystem: string | null; streamBytes: number; usedBytes: number | null }> } }>(['image', 'show', 'deb12']);
      assert.equal(shown.manifest.table.type, 'dos');
      assert.ok(shown.manifest.table.bootCode, 'the image carries no MBR boot code: the deployed disk could not boot');
      assert.deepEqual(shown.manifest.partitions.map((p) => p.filesystem), ['ext4']);
      const p = shown.manifest.partitions[0];
      t.diagnostic(`image deb12: ${DISK_MIB} MiB disk, ext4 root ${((p?.usedBytes ?? 0) / 1e6).toFixed(0)} MB used, stream ${((p?.streamBytes ?? 0) / 1e6).toFixed(0)} MB (zstd)`);
      console.log(`agent.e2e: image size: ${DISK_MIB} MiB disk, ${(statSync(e.image).blocks * 512 / 2 ** 20).toFixed(0)} MiB allocated, ext4 ${((p?.usedBytes ?? 0) / 1e6).toFixed(0)} MB used, stream ${((p?.streamBytes ?? 0) / 1e6).toFixed(0)} MB`);
    }),
  );

  test('deploy --enrol, then the machine boots its own disk, enrols as its host with no admin step and runs its group\'s package (exit 7, its output)', (t: TestContext) =>
    guarded(async () => {
      const e = need();
      await cli(['host', 'add', GUEST.mac, '--name', GUEST.name]);
      await cli(['group', 'add', 'fleet']);
      await cli(['group', 'add-host', 'fleet', GUEST.mac]);
      const pkgDir = join(e.work, 'pkg');
      mkdirSync(pkgDir, { recursive: true });
      writeFileSync(join(pkgDir, 'hello.sh'), '#!/bin/sh\necho "hello from $(hostname) $(id -un)"\nexit 7\n');
      chmodSync(join(pkgDir, 'hello.sh'), 0o755);
      // --data-dir before the command's `--` (fleetbootCommand appends it last, where it would become an argument of the command).
      await e.lab.nsExec(e.lab.host('fb').netns, ['env', '-C', REPO, 'node', '--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'package', 'add', 'hello', '--data-dir', e.dataDir, '--file', join(pkgDir, 'hello.sh'), '--success-codes', '0,7', '--', '/bin/sh', 'hello.sh']);
      // Queued for the group before the machine has an agent: it runs once the agent enrols.
      await cli(['package', 'deploy', 'hello', '--group', 'fleet']);
      // No agent and no token exist for the host yet: what enrols it is the deploy's own token.
      assert.deepEqual(await cliJson<AgentView[]>(['agent', 'list']), []);

      const task = await cliJson<TaskView>(['task', 'deploy', GUEST.mac, '--image', 'deb12', '--enrol']);
      assert.equal(task.state, 'queued');
      const disk = join(e.work, 'deb.disk');
      writeFileSync(disk, '');
      await run('truncate', ['-s', `${DISK_MIB}M`, disk]);

      // Boot 1: PXE -> the boot environment -> deploy with enrol -> reboot (QEMU exits: -no-reboot).
      let start = Date.now();
      const g1 = await QemuGuest.start(e.lab, { variant: GUEST.variant, mac: GUEST.mac, name: 'deb-deploy', workDir: e.work, disk, memoryMb: GUEST_MB, accel: e.accel });
      let running = 0;
      try {
        const done = await waitFor(
          'the deploy task',
          async () => {
            const v = await cliJson<TaskView>(['task', 'show', String(task.id)]);
            if (v.state === 'running' && running === 0) running = Date.now();
            return ['done', 'failed', 'cancelled'].includes(v.state) ? v : null;
          },
          20 * 60_000,
          null,
          3000,
        );
        assert.equal(done.state, 'done', `deploy failed: ${done.error}\n${explain(e, g1)}`);
        assert.match(done.message ?? '', /^enrolment token written to \/dev\/sda1 \(ext4, \/var\/lib\/fleetboot-agent\/enrol\.json\)$/);
        timed(`deploy boot: power-on to task done (the agent ran ${running ? secs(Date.now() - running) : '?'})`, start);
        if (running) timings.push(['deploy (agent start to done)', Date.now() - running]);
        assert.ok(await withTimeout(g1.exited, 90_000), `the machine did not reboot after the deploy\n${explain(e, g1)}`);
      } finally {
        await g1.stop();
      }
      const tokens = await cliJson<Array<{ host: string | null; taskId: number | null; macBound: boolean; usesLeft: number }>>(['agent', 'token', 'list']);
      assert.deepEqual(tokens.map((x) => [x.host, x.taskId, x.macBound, x.usesLeft]), [[GUEST.mac, task.id, true, 1]]);

      // Boot 2: the network boot says "local disk" (the task is done) -> MBR -> extlinux -> Debian -> systemd -> fleetboot-agent.
      start = Date.now();
      const g2 = await QemuGuest.start(e.lab, { variant: GUEST.variant, mac: GUEST.mac, name: 'deb-disk', workDir: e.work, disk, memoryMb: GUEST_MB, accel: e.accel });
      try {
        const kernel = await g2.waitForSerial(/Linux version [^\r\n]*/, 5 * 60_000);
        assert.ok(kernel, `the deployed disk did not boot Linux\n${explain(e, g2)}`);
        timed('disk boot: power-on to the kernel (PXE "local disk", MBR, extlinux)', start);
        const kernelAt = Date.now();
        const agent = await waitFor(
          'the agent enrolled and active',
          async () => (await cliJson<AgentView[]>(['agent', 'list'])).find((a) => a.state === 'active' && a.host?.mac === GUEST.mac) ?? null,
          15 * 60_000,
          g2,
          3000,
        );
        timed('disk boot: kernel to agent enrolled', kernelAt);
        timed('disk boot: power-on to agent enrolled', start);
        assert.equal(agent.host?.name, GUEST.name);
        assert.ok(agent.lastIp?.startsWith(`${S}.`), `the agent came from ${agent.lastIp ?? '?'}`);
        // Enrolled by the deploy's token (spent), with no admin step: nothing is pending.
        const left = await cliJson<Array<{ taskId: number | null; usesLeft: number }>>(['agent', 'token', 'list']);
        assert.deepEqual(left.map((x) => [x.taskId, x.usesLeft]), [[task.id, 0]]);
        assert.deepEqual((await cliJson<AgentView[]>(['agent', 'list'])).filter((a) => a.state !== 'active'), []);
        const enrolledAt = Date.now();
        const runs = await waitFor(
          'the package run reported',
          async () => {
            const w = await cliJson<WorkView[]>(['package', 'runs', '--host', GUEST.mac]);
            const r = w.find((x) => x.package?.name === 'hello' && x.exitCode !== null);
            return r ?? null;
          },
          10 * 60_000,
          g2,
          3000,
        );
        timed('agent enrolled to package run reported', enrolledAt);
        assert.equal(runs.exitCode, 7, JSON.stringify(runs));
        assert.equal(runs.state, 'succeeded', JSON.stringify(runs));
        assert.match(runs.stdout ?? '', /^hello from \S+ root\n$/);
        t.diagnostic(`package run: exit ${runs.exitCode}, stdout ${JSON.stringify(runs.stdout)}`);
      } finally {
        await g2.stop();
      }
      // On the machine's disk (powered off hard: mounted read-write, so the journal is replayed): the agent
      // enrolled with enrol.json and deleted it; its key and enrolment are there.
      const loop = (await run('losetup', ['-f', '--show', '-o', String(2048 * 512), disk])).stdout.trim();
      const mnt = join(e.work, 'deb-root');
      mkdirSync(mnt, { recursive: true });
      try {
        await run('mount', [loop, mnt]);
        try {
          const state = join(mnt, 'var/lib/fleetboot-agent');
          assert.equal(existsSync(join(state, 'enrol.json')), false, 'the agent left enrol.json (with its spent token) on the disk');
          assert.ok(existsSync(join(state, 'agent.json')) && existsSync(join(state, 'key.pem')), 'no agent.json and key.pem in the agent\'s state directory');
          assert.equal(statSync(state).mode & 0o777, 0o700);
        } finally {
          await run('umount', [mnt]);
        }
      } finally {
        await run('losetup', ['-d', loop]);
      }
    }),
  );
});
