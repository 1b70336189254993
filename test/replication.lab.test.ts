/**
 * Verified image replication between two Fleetboot servers on one
 * PostgreSQL, in a lab (issue 15's replication acceptance):
 *
 *   lab 10.216.0.0/24                                  lab 10.216.1.0/24 (the machines')
 *     ├── pg    .5    PostgreSQL 15, TCP for the lab       └── a QEMU machine (SeaBIOS + iPXE ROM),
 *     ├── fa    .1    fleetboot serve --dhcp server            blank disk; its address from the
 *     │               --database postgres://… (node repl-a,    shared pool .150-.199, from A or B
 *     │               node.subnets 10.216.0.0/24)
 *     ├── fb    .2    the same (node repl-b, node.subnets 10.216.1.0/24: the machines' node)
 *     ├── m1    .103  the capture source: the real imaging agent on a loop device
 *     └── relay .254  eth0 ── [ip_forward, dhcrelay -a to A and B] ── eth1 10.216.1.1
 *
 * (a) a capture on A is replicated to B and verified there; B's link is slowed
 *     (tc tbf) so that A can be killed (SIGKILL) mid-copy: B's copy is then not
 *     usable (copying, no revision directory, B refuses to serve it) until A is
 *     back, and the copy resumes with Range and verifies, byte for byte A's;
 * (b) one byte flipped in B's copy is found by re-verification
 *     (`fleetboot image verify` on B, exit status 1), the copy is marked
 *     corrupt and pulled again;
 * (c) the QEMU machine boots and deploys (task made through A): B serves its
 *     boot files and its image streams, A's log shows nothing served to it,
 *     and its disk gets every file of the captured one;
 * (d) with B stopped, the machine boots and deploys from A.
 *
 * Needs root, `scripts/install-deps.sh --with-test` (postgresql-15, isc-dhcp-relay, partclone, QEMU).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { Lab } from './lab/lab.js';
import { fleetbootCli, logEvents, REPO, startFleetboot, type Fleetboot, type ProcessLog } from './lab/bootenv/services.js';
import { makeSourceDisk, readDiskFiles, sh, type SourceDisk } from './lab/disks.js';
import { startLabPostgres, type LabPostgres } from './lab/postgres.js';
import { addRouter, routeVia, startDhcrelay } from './lab/relay.js';
import { program } from '../src/lib/programs.js';
import { CACHE_DIR, chooseAccel, ensureFleetbootBootEnv, QemuGuest, withTimeout } from './lab/qemu.js';

const NET = '10.216.0';
/** The machines' subnet, behind the relay. */
const NET2 = '10.216.1';
const RELAY_A = `${NET}.254`;
const RELAY_B = `${NET2}.1`;
const A_IP = `${NET}.1`;
const B_IP = `${NET}.2`;
const PG_IP = `${NET}.5`;
const SRC_MAC = '52:54:00:16:00:01';
const DST_MAC = '52:54:00:16:00:02';
const IMAGE = 'golden';
const GUEST_MB = 1536;
const TASK_TIMEOUT_S = 600;
/** B's link while A is killed mid-copy: slow enough that the copy takes several seconds. */
const SLOW_MBIT = 12;

let lab: Lab | null = null;
let lab2: Lab | null = null;
let work = '';
let postgres: LabPostgres | null = null;
let url = '';
let a: Fleetboot | null = null;
let b: Fleetboot | null = null;
let source: SourceDisk | null = null;
let srcDev = '';
let dstDev = '';
let dstFile = '';
let bootEnvDir = '';
let relayLog: ProcessLog | null = null;
const loops: string[] = [];

function need<T>(v: T | null, what: string): T {
  if (v === null) throw new Error(`${what} was not set up (see the before() hook's error)`);
  return v;
}

function sql<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
  return need(postgres, 'PostgreSQL').sql<T>(text, values);
}

function configFile(name: string, extra: Record<string, unknown>): string {
  const file = join(work, `${name}.json`);
  writeFileSync(file, JSON.stringify({
      replication: { pullIntervalSeconds: 1 },
      boot: { menuTimeoutSeconds: 2 },
      dhcp: { probeAtStart: false, pools: [{ start: `${NET2}.150`, end: `${NET2}.199`, leaseSeconds: 600, router: RELAY_B }] }, imaging: { bootEnvDir, agentTimeoutSeconds: 90 }, ...extra }, null, 2));
  return file;
}

/** Both serve DHCP (one shared pool on the machines' subnet, reached through the relay). */
const SERVE = ['--dhcp', 'server', '--log-format', 'json'];

function startA(): Promise<Fleetboot> {
  return startFleetboot(need(lab, 'the lab'), 'fa', { dataDir: join(work, 'a'), serverIp: A_IP, configFile: configFile('a', { node: { name: 'repl-a', subnets: [`${NET}.0/24`] } }), extra: [...SERVE, '--database', url], readyTimeoutMs: 90_000 });
}

function startB(): Promise<Fleetboot> {
  return startFleetboot(need(lab, 'the lab'), 'fb', { dataDir: join(work, 'b'), serverIp: B_IP, configFile: configFile('b', { node: { name: 'repl-b', subnets: [`${NET2}.0/24`] } }), extra: [...SERVE, '--database', url], readyTimeoutMs: 90_000 });
}

interface CopyRow {
  state: string;
  bytes_done: number;
  bytes_total: number;
}

async function copyOnB(): Promise<CopyRow | null> {
  const rows = await sql<CopyRow>("select state, bytes_done::int as bytes_done, bytes_total::int as bytes_total from revision_copies where image = $1 and number = 1 and node = 'repl-b'", [IMAGE]);
  return rows[0] ?? null;
}

async function waitCopy(what: string, ok: (c: CopyRow | null) => boolean, timeoutMs: number): Promise<CopyRow | null> {
  const deadline = Date.now() + timeoutMs;
  let c = await copyOnB();
  while (!ok(c)) {
    if (Date.now() > deadline) assert.fail(`B's copy: ${what} not reached within ${timeoutMs / 1000} s (last: ${JSON.stringify(c)})\n--- B\n${b?.log.tail(30) ?? ''}`);
    await new Promise((r) => setTimeout(r, 200));
    c = await copyOnB();
  }
  return c;
}

/** The revision's directory name (the same on every node). */
async function revisionDir(): Promise<string> {
  const rows = await sql<{ dir: string }>('select dir from image_revisions where image = $1 and number = 1', [IMAGE]);
  return rows[0]?.dir ?? assert.fail('no revision 1');
}

function sums(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of readdirSync(dir).sort()) out.set(f, createHash('sha256').update(readFileSync(join(dir, f))).digest('hex'));
  return out;
}

/** The boot decision for `mac` from `host` at `server`; the task id and token in its script. */
async function decide(host: string, server: string, mac: string): Promise<{ task: string; token: string; script: string }> {
  const script = await need(lab, 'the lab').exec(host, ['curl', '-s', '--max-time', '10', `http://${server}:8080/boot/decide?mac=${mac.replace(/:/g, '-')}&platform=pcbios`]);
  const task = /fleetboot\.task=(\d+)/.exec(script)?.[1];
  const token = /fleetboot\.token=([0-9a-f]+)/.exec(script)?.[1];
  if (!task || !token) assert.fail(`no task in the boot script from ${server}:\n${script}`);
  return { task, token, script };
}

/** The imaging agent (`run --url`) in `host`'s namespace. */
async function agent(host: string, serverUrl: string, task: string, token: string): Promise<string> {
  return need(lab, 'the lab').exec(host, ['env', '-C', REPO, 'node', '--import', 'tsx', join(REPO, 'src/agent/main.ts'), 'run', '--url', serverUrl, '--task', task, '--token', token]);
}

async function taskState(server: Fleetboot, host: string, id: string): Promise<{ state: string; error: string | null }> {
  return JSON.parse(await fleetbootCli(need(lab, 'the lab'), host, server.dataDir, ['--json', 'task', 'show', id])) as { state: string; error: string | null };
}

/** `fleetboot ARGS` in `host`'s namespace, with its exit status. */
function cliStatus(host: string, dataDir: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const argv = ['netns', 'exec', need(lab, 'the lab').host(host).netns, 'env', '-C', REPO, process.execPath, '--import', 'tsx', join(REPO, 'src/cli/main.ts'), ...args, '--data-dir', dataDir];
  return new Promise((resolve) => {
    execFile(program('ip'), argv, (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });
}

async function attach(file: string): Promise<string> {
  const dev = (await sh('losetup', ['-fP', '--show', file])).trim();
  loops.push(dev);
  await sh('partx', ['-a', dev]).catch(() => '');
  return dev;
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'fleetboot-replication-'));
  // Fleetboot's boot environment (built once, cached outside the repository).
  bootEnvDir = await ensureFleetbootBootEnv(join(CACHE_DIR, 'fleetboot-bootenv'));
  lab = await Lab.create({ subnet: NET });
  await lab.addHost('pg', PG_IP);
  await lab.addHost('fa', A_IP);
  await lab.addHost('fb', B_IP);
  await lab.addHost('m1', `${NET}.103`, { mac: SRC_MAC });
  // The machines' subnet: a router namespace on both bridges relays DHCP to A and B (ISC dhcrelay).
  lab2 = await Lab.create({ subnet: NET2 });
  const relay = await addRouter(lab, 'relay', RELAY_A, [{ lab: lab2, ip: RELAY_B }]);
  await routeVia(lab, ['fa', 'fb'], `${NET2}.0/24`, RELAY_A);
  relayLog = await startDhcrelay(lab, relay, { upstream: ['eth0'], downstream: ['eth1'], servers: [A_IP, B_IP], pidFile: join(work, 'dhcrelay.pid') });
  postgres = await startLabPostgres(lab, 'pg');
  url = postgres.url;
  // About 24 MiB of random files: a few seconds over the slowed link.
  source = await makeSourceDisk(join(work, 'source.img'), { sizeMiB: 128, fileMiB: 24 });
  srcDev = await attach(source.file);
  dstFile = join(work, 'target.img');
  await sh('truncate', ['-s', '160M', dstFile]);
  dstDev = await attach(dstFile);
  [a, b] = await Promise.all([startA(), startB()]);
});

after(async () => {
  await lab2?.destroy();
  await lab?.destroy();
  await postgres?.server.stop();
  for (const l of loops.reverse()) await sh('losetup', ['-d', l]).catch(() => '');
  if (work) rmSync(work, { recursive: true, force: true });
});

test('(a) a capture on A is replicated to B; A killed mid-copy leaves B without a usable copy until the copy resumes and verifies', async () => {
  const l = need(lab, 'the lab');
  const sa = need(a, 'server A');
  const sb = need(b, 'server B');
  await fleetbootCli(l, 'fa', sa.dataDir, ['host', 'add', SRC_MAC, '--name', 'repl-src']);
  await fleetbootCli(l, 'fa', sa.dataDir, ['host', 'add', DST_MAC, '--name', 'repl-dst']);
  await l.limitRate('fb', SLOW_MBIT);
  const cap = JSON.parse(await fleetbootCli(l, 'fa', sa.dataDir, ['--json', 'task', 'capture', SRC_MAC, '--image', IMAGE, '--disk', srcDev])) as { id: number };
  const d = await decide('m1', A_IP, SRC_MAC);
  assert.equal(Number(d.task), cap.id);
  await agent('m1', sa.baseUrl, d.task, d.token);
  assert.equal((await taskState(sa, 'fa', d.task)).state, 'done');
  const dir = await revisionDir();
  const aDir = join(sa.dataDir, 'images', dir);
  const want = sums(aDir);

  // B pulls over its slowed link; A dies mid-copy.
  const part = await waitCopy('copying with bytes done', (c) => c?.state === 'copying' && c.bytes_done > 0, 60_000);
  sa.log.child.kill('SIGKILL');
  await new Promise<void>((r) => (sa.log.running ? sa.log.child.once('exit', () => r()) : r()));
  await new Promise((r) => setTimeout(r, 2000));
  const cut = await copyOnB();
  assert.notEqual(cut?.state, 'verified', `B's copy after A died: ${JSON.stringify(cut)}`);
  assert.ok((cut?.bytes_done ?? 0) < (cut?.bytes_total ?? 0), `B's copy is not complete: ${JSON.stringify(cut)} (first seen ${JSON.stringify(part)})`);
  assert.equal(existsSync(join(sb.dataDir, 'images', dir)), false, 'B has no revision directory for a copy that is not verified');
  assert.ok(existsSync(join(sb.dataDir, 'images', '.replicating', dir)), 'B keeps the partial copy to resume it');
  // B does not serve it: another node asking B gets 404 (B's own credential stands in for a node's).
  const secret = readFileSync(join(sb.dataDir, 'node-repl-b.secret'), 'utf8').trim();
  const served = await l.exec('fa', ['curl', '-s', '-k', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', '-H', `authorization: Node repl-b:${secret}`, `http://${B_IP}:8080/node/v1/images/${IMAGE}/1/manifest`]);
  assert.equal(served.trim(), '404', 'B refuses to serve a copy it has not verified');

  // A comes back: B resumes where it stopped (Range) and verifies.
  await l.nsExec(l.bridgeNs, ['tc', 'qdisc', 'del', 'dev', l.host('fb').bridgePort, 'root']);
  const mark = sb.log.mark();
  a = await startA();
  await waitCopy('verified', (c) => c?.state === 'verified', 90_000);
  const resumed = await sb.log.waitFor(/resuming at byte (\d+)/, 1000, mark);
  assert.ok(resumed && Number(resumed[1]) > 0, `B resumed the copy with Range:\n${sb.log.tail(30)}`);
  assert.deepEqual(sums(join(sb.dataDir, 'images', dir)), want, "B's copy is A's, byte for byte");
});

test("(b) one byte flipped in B's copy is found by re-verification, and the copy is pulled again", async () => {
  const l = need(lab, 'the lab');
  const sb = need(b, 'server B');
  const dir = await revisionDir();
  const bDir = join(sb.dataDir, 'images', dir);
  const want = sums(bDir);
  const stream = [...want.keys()].find((f) => f.endsWith('.zst')) ?? assert.fail(`no stream in ${[...want.keys()].join(', ')}`);
  const bytes = readFileSync(join(bDir, stream));
  const at = Math.floor(bytes.length / 2);
  bytes[at] = (bytes[at] as number) ^ 0x10;
  writeFileSync(join(bDir, stream), bytes);
  const out = await cliStatus('fb', sb.dataDir, ['image', 'verify', IMAGE]);
  assert.equal(out.code, 1, `image verify exits 1 for a corrupt copy:\n${out.stdout}${out.stderr}`);
  assert.match(out.stdout, /revision 1 on node repl-b: corrupt \(stream \S+ has \d+ bytes and sha256/, out.stdout);
  await waitCopy('verified again', (c) => c?.state === 'verified', 60_000);
  assert.deepEqual(sums(bDir), want, 'the copy pulled again is the original');
  const again = await fleetbootCli(l, 'fb', sb.dataDir, ['image', 'verify', IMAGE]);
  assert.match(again, /revision 1 on node repl-b: verified/, again);
});

/** A QEMU machine (SeaBIOS + iPXE ROM) with the blank target disk boots from the network and runs its deploy task. */
async function deployInQemu(server: Fleetboot, host: string, name: string): Promise<void> {
  const l = need(lab, 'the lab');
  const dep = JSON.parse(await fleetbootCli(l, host, server.dataDir, ['--json', 'task', 'deploy', DST_MAC, '--image', IMAGE])) as { id: number };
  const guest = await QemuGuest.start(need(lab2, 'the machines\' subnet'), { variant: 'bios-ipxe', mac: DST_MAC, name, workDir: work, memoryMb: GUEST_MB, accel: await chooseAccel(), disk: dstFile });
  const why = (): string => [guest.diagnostics(40), `--- dhcrelay (last 10 lines)\n${relayLog?.tail(10) ?? ''}`, `--- A (last 30 lines)\n${a?.log.tail(30) ?? ''}`, `--- B (last 30 lines)\n${b?.log.tail(30) ?? ''}`].join('\n');
  try {
    const deadline = Date.now() + TASK_TIMEOUT_S * 1000;
    for (;;) {
      const t = await taskState(server, host, String(dep.id));
      if (t.state === 'done') break;
      if (t.state === 'failed' || t.state === 'cancelled') assert.fail(`deploy task ${dep.id} ${t.state}: ${t.error}\n${why()}`);
      if (Date.now() > deadline) assert.fail(`deploy task ${dep.id} not done within ${TASK_TIMEOUT_S} s (${t.state})\n${why()}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    await withTimeout(guest.exited, 60_000);
  } finally {
    await guest.stop();
  }
  const got = await readDiskFiles(dstFile);
  for (const [n, sum] of need(source, 'the source disk').sums) assert.deepEqual(got.sums.get(n), sum, `partition ${n} differs from the captured disk`);
}

/** What a server's log says it served to the guest: boot files over TFTP and HTTP, and image streams. */
function servedTo(s: Fleetboot, from: number): { files: number; streams: number } {
  const events = logEvents(s).slice(from);
  return { files: events.filter((e) => e['msg'] === 'file served' || e['msg'] === 'tftp transfer done').length, streams: events.filter((e) => e['msg'] === 'stream served' || /^task #\d+: sending \S+$/.test(String(e['msg']))).length };
}

test("(c) a QEMU machine on B's subnet boots and deploys from B only, wherever its DHCP answer came from", async () => {
  const sa = need(a, 'server A');
  const sb = need(b, 'server B');
  const fromA = logEvents(sa).length;
  const fromB = logEvents(sb).length;
  await deployInQemu(sa, 'fa', 'nearest-b');
  const onA = servedTo(sa, fromA);
  const onB = servedTo(sb, fromB);
  assert.ok(onB.streams > 0 && onB.files > 0, `B served the boot files and the streams: ${JSON.stringify(onB)}\n${sb.log.tail(30)}`);
  assert.deepEqual(onA, { files: 0, streams: 0 }, `A served nothing to the machine on B's subnet\n${sa.log.tail(30)}`);
});

test("(d) with B stopped, the machine on B's subnet boots and deploys from A", async () => {
  const sa = need(a, 'server A');
  const sb = need(b, 'server B');
  await sb.log.stop('SIGTERM');
  await sh('wipefs', ['-a', dstDev]);
  const fromA = logEvents(sa).length;
  await deployInQemu(sa, 'fa', 'fallback-a');
  const onA = servedTo(sa, fromA);
  assert.ok(onA.streams > 0 && onA.files > 0, `A served the boot files and the streams: ${JSON.stringify(onA)}\n${sa.log.tail(30)}`);
});
