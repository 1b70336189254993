/**
 * `fleetboot firewall --for nft`, proven: Fleetboot's namespace gets
 * `policy drop` chains plus exactly the rules the CLI printed for the
 * configuration it serves with, and machines still boot and image through
 * it; with one printed rule removed, the step that needs it fails.
 *
 *   bridge namespace ── taps ── QEMU guests
 *        ├── fb    10.213.98.1  fleetboot serve --dhcp proxy, behind the printed rules
 *        ├── dhcp  10.213.98.2  dnsmasq: addresses only (the site's DHCP server)
 *        └── obs   10.213.98.3  the clients without QEMU (tftp-hpa, curl, a DHCP
 *                               client, a Wake-on-LAN listener) and the test initrd's
 *                               callback listener (outside the firewall it tests)
 *
 * The printed text is what gets applied: its command lines (comments and
 * blank lines aside) run as they are, through `sh`, inside the server's
 * namespace. They add rules to `table inet filter`'s `input` and `output`
 * chains, which they expect to exist, so the test creates those itself
 * (base chains, `policy drop`, with loopback accepted: the CLI and the
 * readiness check talk to the server over it, as on any host), and nothing
 * else. The helper's table (`inet fleetboot`) comes from the printed text.
 * The host's own ruleset is compared before and after.
 *
 *   1. Input `policy drop`, tftp.dataPorts a range (62001-62020): a SeaBIOS
 *      (iPXE ROM) and an OVMF (edk2 PXE) machine PXE-boot their entry (the
 *      test initrd calls back), the SeaBIOS machine's disk is captured and
 *      the OVMF machine gets the image deployed; tftp-hpa, curl (HTTP and
 *      HTTPS) and a DHCP client get through. Then each input rule but the
 *      multicast one is left out in turn (UDP 67, 4011, 69, the data range,
 *      TCP 8080, 8443) and the client that needs it fails.
 *   2. Input and output `policy drop` plus the rules printed with
 *      --output-filtering, tftp.dataPorts one port (6969): the clients get
 *      through (TFTP from port 6969, the boot-server answer on 4011 with no
 *      output rule for it) and Wake-on-LAN packets leave; the machines of
 *      run 1 boot, capture and deploy again. Each output rule but the multicast one is left
 *      out in turn (established/related, UDP sport 67, sport 6969, dport 9),
 *      and the input rule for 6969, and the client that needs it fails.
 *   3. The same with ephemeral data ports: the printed rules assign the TFTP
 *      conntrack helper, the transfer passes; without the `ct helper set`
 *      rule it fails.
 *
 * Not exercised: the multicast session ports (a session needs receivers).
 * About 6 minutes under TCG (each run: two entry boots at once, a capture, a deploy).
 * Needs root and `scripts/install-deps.sh --with-test`; fails, never skips.
 * FBTEST_KEEP=1 keeps the work directory (logs, rule sets).
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadFixture } from '../../src/protocol/dhcp/testdata/fixtures.js';
import { LabSuite } from './suite.js';
import { closeLabFixture, openLabFixture, waitForGuestCallback, type LabFixture } from './fixture.js';
import { CACHE_DIR, ensureFleetbootBootEnv, QemuGuest, withTimeout, type QemuVariant } from './qemu.js';
import { logEvents, ProcessLog, startFleetboot, startLabHttp, type LabHttp } from './bootenv/services.js';
import { makeSourceDisk, readDiskFiles, sh, type SourceDisk } from './disks.js';
import { sh as hostSh } from './lab.js';

const S = '10.213.98';
const SERVER_IP = `${S}.1`;
const OBS_IP = `${S}.3`;
const CALLBACK_PORT = 9999;
const DATA_RANGE = { from: 62001, to: 62020 };
const DATA_PORT = 6969;
const GUEST_MB = 1536;
const TASK_TIMEOUT_S = 600;

/** The machines booting their entry, a SeaBIOS (iPXE ROM) and an OVMF (edk2 PXE) one per run (the callback is told apart by MAC). */
const ENTRY_GUESTS: Record<'run1' | 'run2', Array<{ variant: QemuVariant; mac: string }>> = {
  run1: [
    { variant: 'bios-ipxe', mac: '52:54:00:fb:98:0a' },
    { variant: 'ovmf-pxe', mac: '52:54:00:fb:98:0b' },
  ],
  run2: [
    { variant: 'bios-ipxe', mac: '52:54:00:fb:98:2a' },
    { variant: 'ovmf-pxe', mac: '52:54:00:fb:98:2b' },
  ],
};
/** The capture source (SeaBIOS) and the deploy target (OVMF), in both runs. */
const CAPTURE = { variant: 'bios-ipxe' as QemuVariant, mac: '52:54:00:fb:98:1a' };
const DEPLOY = { variant: 'ovmf-pxe' as QemuVariant, mac: '52:54:00:fb:98:1b' };

interface Env {
  f: LabFixture;
  obs: LabHttp;
  bootEnvDir: string;
  disk: SourceDisk;
  /** `nft list ruleset` of the host (the test's own namespace) before anything ran. */
  hostRules: string;
  /** The printed rule text of the run in force, for diagnostics. */
  rules: string;
}

const suite = new LabSuite<Env>();
const { guarded, need } = suite;

function fbNs(e: Env): string {
  return e.f.lab.host('fb').netns;
}

function cli(args: string[]): Promise<string> {
  return need().f.fleetbootCommand(args);
}

async function explain(e: Env, guest: QemuGuest | null = null): Promise<string> {
  const ruleset = await e.f.lab.nsExec(fbNs(e), ['nft', 'list', 'ruleset']).catch((err: Error) => err.message);
  return [
    guest ? guest.diagnostics(40) : '',
    `--- Fleetboot log (last 40 lines)\n${e.f.fb?.log.tail(40) ?? '(not running)'}`,
    `--- the server namespace's ruleset\n${ruleset}`,
    `(work dir: ${e.f.work})`,
  ].join('\n');
}

// ---- the rules -------------------------------------------------------------

interface Run {
  /** Written to the config file `serve` and `firewall` both read. */
  config: Record<string, unknown>;
  outputFiltering: boolean;
}

function configFile(e: Env, name: string, run: Run): string {
  const file = join(e.f.work, `fleetboot-${name}.json`);
  const config = { boot: { menuTimeoutSeconds: 2 }, imaging: { bootEnvDir: e.bootEnvDir, agentTimeoutSeconds: 90 }, ...run.config };
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** The serve flags startFleetboot() passes, which `fleetboot firewall` takes too. */
function serveFlags(file: string): string[] {
  return ['--interface', 'eth0', '--server-ip', SERVER_IP, '--http-port', '8080', '--dhcp', 'proxy', '--config', file];
}

/** What `fleetboot firewall --for nft` prints for this configuration: the whole text, and its command lines. */
async function printedRules(e: Env, file: string, run: Run): Promise<{ text: string; commands: string[] }> {
  const text = await cli(['firewall', '--for', 'nft', ...(run.outputFiltering ? ['--output-filtering'] : []), ...serveFlags(file)]);
  const commands = text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
  for (const c of commands) assert.match(c, /^nft add /, `a printed line that is neither a comment nor an nft command: ${c}`);
  return { text, commands };
}

/**
 * The server namespace's ruleset: emptied, then the test's base chains
 * (policy drop; loopback accepted), then the printed commands but `skip`,
 * run as printed (sh, inside the namespace).
 */
async function applyRules(e: Env, commands: readonly string[], outputFiltering: boolean, skip: string | null = null): Promise<void> {
  const kept = commands.filter((c) => c !== skip);
  assert.equal(kept.length, commands.length - (skip === null ? 0 : 1), `the rule to leave out is not among the printed ones: ${skip}`);
  const base = [
    'nft flush ruleset',
    'nft add table inet filter',
    "nft add chain inet filter input '{ type filter hook input priority 0; policy drop; }'",
    'nft add rule inet filter input iif lo accept',
    ...(outputFiltering ? ["nft add chain inet filter output '{ type filter hook output priority 0; policy drop; }'", 'nft add rule inet filter output oif lo accept'] : []),
  ];
  await e.f.lab.nsExec(fbNs(e), ['sh', '-ec', [...base, ...kept].join('\n')]);
  // Exactly the printed rules (and the base's loopback ones) are in force.
  const listed = JSON.parse(await e.f.lab.nsExec(fbNs(e), ['nft', '-j', 'list', 'ruleset'])) as { nftables: Array<Record<string, unknown>> };
  const rules = listed.nftables.filter((o) => 'rule' in o).length;
  const printed = kept.filter((c) => c.startsWith('nft add rule ')).length;
  assert.equal(rules, printed + (outputFiltering ? 2 : 1), `rules in force: ${rules}, printed ${printed}`);
}

// ---- the clients (in obs) --------------------------------------------------

/** tftp-hpa fetches `file` from the server: its sha256, or null when the transfer failed (1 s per resend, 3 s in all). */
async function tftpGet(e: Env, file: string): Promise<string | null> {
  const out = join(e.f.work, `tftp-${Date.now()}.bin`);
  await e.f.lab.exec('obs', ['sh', '-c', `printf 'binary\\nrexmt 1\\ntimeout 3\\nget ${file} ${out}\\nquit\\n' | timeout 20 tftp ${SERVER_IP}`]);
  let data: Buffer;
  try {
    data = readFileSync(out);
  } catch {
    return null;
  }
  return data.length > 0 ? createHash('sha256').update(data).digest('hex') : null;
}

/** The data port of the last TFTP transfer of `file` that the server started. */
function lastDataPort(e: Env, file: string): number | null {
  const starts = logEvents(e.f.fb ?? assert.fail('no server')).filter((o) => o.msg === 'tftp transfer start' && o.file === file && String(o.client).startsWith(`${OBS_IP}:`));
  const last = starts.at(-1);
  return last ? Number(last.dataPort) : null;
}

/** curl's status code ('000': no answer within 3 s). */
async function httpStatus(e: Env, url: string): Promise<string> {
  return (await e.f.lab.exec('obs', ['curl', '-k', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', url]).catch(() => '000')).trim();
}

/**
 * Runs in obs: sends a hex payload from `bindPort` to `to:toPort` and prints
 * the first datagram from `from` (ip:port) as hex; prints nothing after `ms`.
 */
const DHCP_CLIENT = `
const dgram = require('node:dgram');
const [bindPort, to, toPort, from, hex, ms] = process.argv.slice(1);
const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
s.on('message', (m, r) => {
  if (r.address + ':' + r.port !== from) return;
  console.log(m.toString('hex'));
  process.exit(0);
});
s.bind(Number(bindPort), '0.0.0.0', () => {
  s.setBroadcast(true);
  s.send(Buffer.from(hex, 'hex'), Number(toPort), to);
});
setTimeout(() => process.exit(0), Number(ms));
`;

/** A PXE client's broadcast DISCOVER (captured from OVMF): whether the proxyDHCP answered it. */
async function proxyDhcpAnswers(e: Env): Promise<boolean> {
  const out = await e.f.lab.exec('obs', ['node', '-e', DHCP_CLIENT, '68', '255.255.255.255', '67', `${SERVER_IP}:67`, loadFixture('ovmf-edk2-01-client-discover-67').toString('hex'), '3000']);
  return out.trim() !== '';
}

/** A PXE client's boot-server REQUEST to port 4011 (captured from OVMF, sent from 4011 as edk2 does): whether it was answered. */
async function bootServerAnswers(e: Env): Promise<boolean> {
  const out = await e.f.lab.exec('obs', ['node', '-e', DHCP_CLIENT, '4011', SERVER_IP, '4011', `${SERVER_IP}:4011`, loadFixture('ovmf-edk2-06-client-request-4011').toString('hex'), '3000']);
  return out.trim() !== '';
}

/** Runs in obs: one line per datagram received on UDP 9. */
const WOL_LISTENER = `
const dgram = require('node:dgram');
const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
s.on('message', (m, r) => console.log(JSON.stringify({ from: r.address, hex: m.toString('hex') })));
s.bind(9, '0.0.0.0', () => console.log('listening'));
`;

/** `fleetboot wake MAC`: whether a magic packet for MAC reached the listener within 3 s. */
async function wakeArrives(e: Env, wol: ProcessLog, mac: string): Promise<boolean> {
  const from = wol.mark();
  await cli(['wake', mac]).catch(() => ''); // a dropped send may fail the command: what counts is what arrives
  const pattern = `${'ff'.repeat(6)}${mac.replace(/:/g, '').repeat(16)}`;
  return (await wol.waitFor(new RegExp(pattern), 3000, from)) !== null;
}

// ---- guests ----------------------------------------------------------------

async function startGuest(e: Env, g: { variant: QemuVariant; mac: string }, name: string, disk?: string): Promise<QemuGuest> {
  return QemuGuest.start(e.f.lab, { variant: g.variant, mac: g.mac, name, workDir: e.f.work, memoryMb: GUEST_MB, accel: e.f.accel, ...(disk ? { disk } : {}) });
}

/** The guest boots its entry: the test initrd calls back from its MAC. */
async function bootsEntry(e: Env, g: { variant: QemuVariant; mac: string }, name: string): Promise<number> {
  const t0 = Date.now();
  const guest = await startGuest(e, g, name);
  try {
    const ruleset = await e.f.lab.nsExec(fbNs(e), ['nft', 'list', 'ruleset']);
    const why = (): string => [guest.diagnostics(40), `--- Fleetboot log (last 40 lines)\n${e.f.fb?.log.tail(40) ?? ''}`, `--- the server namespace's ruleset\n${ruleset}`, `(work dir: ${e.f.work})`].join('\n');
    const cb = await waitForGuestCallback(e.obs, guest, e.f.accel === 'kvm' ? 90_000 : 240_000, why);
    assert.equal(cb.marker, 'fbtest-initrd-ran');
  } finally {
    await guest.stop();
  }
  return (Date.now() - t0) / 1000;
}

interface TaskView {
  id: number;
  state: string;
  error: string | null;
}

async function waitTask(e: Env, id: number, guest: QemuGuest): Promise<TaskView> {
  const deadline = Date.now() + TASK_TIMEOUT_S * 1000;
  let last: TaskView | null = null;
  let exitedAt: number | null = null;
  while (Date.now() < deadline) {
    last = JSON.parse(await cli(['task', 'show', String(id), '--json'])) as TaskView;
    if (['done', 'failed', 'cancelled'].includes(last.state)) return last;
    if (!guest.running) {
      exitedAt ??= Date.now();
      if (Date.now() - exitedAt > 5000) assert.fail(`guest ${guest.name} exited while task ${id} is ${last.state}\n${await explain(e, guest)}`);
    }
    await new Promise((r) => setTimeout(r, 1000)); // poll interval; the deadline bounds the wait
  }
  return assert.fail(`task ${id} not finished within ${TASK_TIMEOUT_S} s (last: ${JSON.stringify(last)})\n${await explain(e, guest)}`);
}

/**
 * The machines of a run: the SeaBIOS and the OVMF one boot their entry (at
 * once); with `imaging`, the SeaBIOS capture source's disk then becomes image
 * "fw" and the OVMF target gets it deployed onto a blank disk: every file's
 * sha256 equal. Only run 2 images: its input rules are run 1's (with one
 * data port instead of a range) and it filters output too, so it is the
 * stricter case; imaging in both cost the suite 100 s for nothing more.
 */
async function machines(e: Env, t: TestContext, run: 'run1' | 'run2', opts: { imaging: boolean }): Promise<void> {
  const guests = ENTRY_GUESTS[run];
  const secs = await Promise.all(guests.map((g) => bootsEntry(e, g, `${run}-${g.variant}-entry`)));
  t.diagnostic(`entries booted: ${guests.map((g, i) => `${g.variant} ${secs[i]?.toFixed(0)} s`).join(', ')}`);
  if (!opts.imaging) return;
  let t0 = Date.now();
  const cap = JSON.parse(await cli(['task', 'capture', CAPTURE.mac, '--image', 'fw', '--json'])) as TaskView;
  let guest = await startGuest(e, CAPTURE, `${run}-capture`, e.disk.file);
  try {
    const done = await waitTask(e, cap.id, guest);
    assert.equal(done.state, 'done', `capture failed: ${done.error}\n${await explain(e, guest)}`);
    await withTimeout(guest.exited, 60_000);
  } finally {
    await guest.stop();
  }
  t.diagnostic(`capture (SeaBIOS) done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  t0 = Date.now();
  const target = join(e.f.work, `${run}-deploy.img`);
  await sh('truncate', ['-s', '160M', target]);
  const dep = JSON.parse(await cli(['task', 'deploy', DEPLOY.mac, '--image', 'fw', '--json'])) as TaskView;
  guest = await startGuest(e, DEPLOY, `${run}-deploy`, target);
  try {
    const done = await waitTask(e, dep.id, guest);
    assert.equal(done.state, 'done', `deploy failed: ${done.error}\n${await explain(e, guest)}`);
    await withTimeout(guest.exited, 60_000);
  } finally {
    await guest.stop();
  }
  t.diagnostic(`deploy (OVMF) done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  const got = await readDiskFiles(target);
  for (const [n, sums] of e.disk.sums) assert.deepEqual(got.sums.get(n), sums, `partition ${n} differs from the captured disk`);
}

async function restartServer(e: Env, file: string): Promise<void> {
  await e.f.fb?.log.stop('SIGTERM');
  e.f.fb = await startFleetboot(e.f.lab, 'fb', { ...e.f.fbOpts, configFile: file });
}

/** The command among `commands` matching `re` (exactly one must). */
function theRule(commands: readonly string[], re: RegExp): string {
  const found = commands.filter((c) => re.test(c));
  assert.equal(found.length, 1, `expected one printed rule matching ${re}, found: ${found.join(' | ') || 'none'}`);
  return found[0] as string;
}

/**
 * Leave `rule` out, check that `step` now fails, put everything back and
 * check that it passes again.
 */
async function needed(e: Env, t: TestContext, commands: readonly string[], outputFiltering: boolean, rule: string, what: string, step: () => Promise<boolean>): Promise<void> {
  await applyRules(e, commands, outputFiltering, rule);
  const without = await step();
  await applyRules(e, commands, outputFiltering);
  assert.equal(without, false, `${what} still worked without the printed rule \`${rule}\`\n${await explain(e)}`);
  assert.equal(await step(), true, `${what} failed again with every printed rule back\n${await explain(e)}`);
  t.diagnostic(`without \`${rule}\`: ${what} fails`);
}

describe('fleetboot firewall --for nft: a server behind exactly the printed rules boots and images machines, and each rule is needed', { timeout: 30 * 60_000 }, () => {
  before(() =>
    guarded(async () => {
      const hostRules = await hostSh('nft', ['list', 'ruleset']);
      const bootEnvDir = join(CACHE_DIR, 'fleetboot-bootenv');
      await ensureFleetbootBootEnv(bootEnvDir);
      const f = await openLabFixture({ name: 'firewall.e2e', subnet: S, variants: ['bios-ipxe', 'ovmf-pxe'], fleetboot: null });
      try {
        await f.lab.addHost('obs', OBS_IP, { broadcast: true });
        // The DHCP client's broadcast needs a route; the server gets none.
        await f.lab.exec('obs', ['ip', 'route', 'add', 'default', 'dev', 'eth0']);
        const obs = await startLabHttp(f.lab, 'obs', CALLBACK_PORT);
        const disk = await makeSourceDisk(join(f.work, 'capture.img'), { sizeMiB: 128, fileMiB: 8 });
        suite.env = { f, obs, bootEnvDir, disk, hostRules, rules: '' };
      } catch (err) {
        await closeLabFixture(f, true);
        throw err;
      }
    }),
  );

  after(() =>
    closeLabFixture(suite.env?.f ?? null, suite.failed, {
      beforeDestroy: async () => {
        const e = suite.env;
        if (!e) return;
        writeFileSync(join(e.f.work, 'rules.txt'), e.rules);
        writeFileSync(join(e.f.work, 'obs.log'), e.obs.log.all());
      },
    }),
  );

  test('1. input policy drop + the printed input rules, TFTP data range: SeaBIOS and OVMF boot their entries; each input rule is needed', (t) =>
    guarded(async () => {
      const e = need();
      const run: Run = { config: { tftp: { dataPorts: DATA_RANGE } }, outputFiltering: false };
      const file = configFile(e, 'run1', run);
      const { text, commands } = await printedRules(e, file, run);
      e.rules = text;
      // Rules for an existing table's input chain, nothing else (no output part without the flag).
      for (const c of commands) assert.match(c, /^nft add rule inet filter input /, c);
      assert.match(text, new RegExp(`udp dport ${DATA_RANGE.from}-${DATA_RANGE.to} accept`));
      await applyRules(e, commands, false);
      // The server starts behind the rules.
      e.f.fb = await startFleetboot(e.f.lab, 'fb', { ...e.f.fbOpts, configFile: file });
      await cli(['entry', 'add', 'test', '--kernel', e.f.testBootEnv?.kernel ?? '', '--initrd', e.f.testBootEnv?.initrd ?? '', '--cmdline', `console=ttyS0 fbcallback=${e.obs.url}/ran`]);
      for (const g of [...ENTRY_GUESTS.run1, ...ENTRY_GUESTS.run2]) await cli(['host', 'add', g.mac, '--name', `fw-${g.mac.slice(-2)}`, '--entry', 'test']);
      await cli(['host', 'add', CAPTURE.mac, '--name', 'fw-capture']);
      await cli(['host', 'add', DEPLOY.mac, '--name', 'fw-deploy']);

      // The clients without QEMU get through.
      const ipxe = 'snponly.efi';
      const want = createHash('sha256').update(readFileSync(join(e.f.dataDir, 'tftp', ipxe))).digest('hex');
      const tftpOk = async (): Promise<boolean> => (await tftpGet(e, ipxe)) === want;
      const httpOk = async (): Promise<boolean> => (await httpStatus(e, `http://${SERVER_IP}:8080/boot.ipxe`)) === '200';
      const httpsOk = async (): Promise<boolean> => (await httpStatus(e, `https://${SERVER_IP}:8443/`)) !== '000';
      assert.ok(await tftpOk(), `tftp-hpa did not get ${ipxe}\n${await explain(e)}`);
      const port = lastDataPort(e, ipxe);
      assert.ok(port !== null && port >= DATA_RANGE.from && port <= DATA_RANGE.to, `data port ${port} outside ${DATA_RANGE.from}-${DATA_RANGE.to}`);
      assert.ok(await httpOk(), `curl got no /boot.ipxe\n${await explain(e)}`);
      assert.ok(await httpsOk(), `curl got no answer over HTTPS\n${await explain(e)}`);
      assert.ok(await proxyDhcpAnswers(e), `no proxyDHCP answer\n${await explain(e)}`);
      assert.ok(await bootServerAnswers(e), `no answer on 4011\n${await explain(e)}`);

      // Each printed input rule is needed (multicast aside: no session runs).
      await needed(e, t, commands, false, theRule(commands, / udp dport 67 accept$/), 'the proxyDHCP answer to a DISCOVER', () => proxyDhcpAnswers(e));
      await needed(e, t, commands, false, theRule(commands, / udp dport 4011 accept$/), 'the boot-server answer on 4011', () => bootServerAnswers(e));
      await needed(e, t, commands, false, theRule(commands, / udp dport 69 accept$/), 'a tftp-hpa transfer', tftpOk);
      await needed(e, t, commands, false, theRule(commands, new RegExp(` udp dport ${DATA_RANGE.from}-${DATA_RANGE.to} accept$`)), 'a tftp-hpa transfer', tftpOk);
      await needed(e, t, commands, false, theRule(commands, / tcp dport 8080 accept$/), 'curl of /boot.ipxe', httpOk);
      await needed(e, t, commands, false, theRule(commands, / tcp dport 8443 accept$/), 'curl over HTTPS', httpsOk);

      // Machines: both firmware families boot their entry (run 2 also images).
      await machines(e, t, 'run1', { imaging: false });
    }),
  );

  test('2. input and output policy drop + the rules printed with --output-filtering, one TFTP data port: SeaBIOS and OVMF boot their entries, a capture and a deploy complete; each output rule is needed', (t) =>
    guarded(async () => {
      const e = need();
      const run: Run = { config: { tftp: { dataPorts: { from: DATA_PORT, to: DATA_PORT } } }, outputFiltering: true };
      const file = configFile(e, 'run2', run);
      const { text, commands } = await printedRules(e, file, run);
      e.rules = text;
      for (const c of commands) assert.match(c, /^nft add rule inet filter (input|output) /, c);
      assert.doesNotMatch(text, /ct helper/, 'a pinned data port needs no helper');
      await applyRules(e, commands, true);
      await restartServer(e, file);

      const ipxe = 'snponly.efi';
      const want = createHash('sha256').update(readFileSync(join(e.f.dataDir, 'tftp', ipxe))).digest('hex');
      const tftpOk = async (): Promise<boolean> => (await tftpGet(e, ipxe)) === want;
      const httpOk = async (): Promise<boolean> => (await httpStatus(e, `http://${SERVER_IP}:8080/boot.ipxe`)) === '200';
      const wol = new ProcessLog('wol', e.f.lab.spawnIn(e.f.lab.host('obs').netns, ['node', '-e', WOL_LISTENER]));
      assert.ok(await wol.waitFor(/^listening$/m, 10_000), 'the Wake-on-LAN listener did not start');
      const wakeMac = '52:54:00:fb:98:99';
      const wakeOk = (): Promise<boolean> => wakeArrives(e, wol, wakeMac);
      try {
        assert.ok(await tftpOk(), `tftp-hpa did not get ${ipxe}\n${await explain(e)}`);
        assert.equal(lastDataPort(e, ipxe), DATA_PORT);
        assert.ok(await httpOk(), `curl got no /boot.ipxe\n${await explain(e)}`);
        assert.ok(await proxyDhcpAnswers(e), `no proxyDHCP answer\n${await explain(e)}`);
        assert.ok(await bootServerAnswers(e), `no answer on 4011\n${await explain(e)}`);
        assert.ok(await wakeOk(), `no magic packet arrived\n${await explain(e)}`);

        await needed(e, t, commands, true, theRule(commands, / output ct state established,related accept$/), 'curl of /boot.ipxe', httpOk);
        await needed(e, t, commands, true, theRule(commands, / output udp sport 67 accept$/), 'the proxyDHCP answer to a DISCOVER', () => proxyDhcpAnswers(e));
        // No output rule for 4011: its answers go back where the request came from (src/config/ports.ts), and arrived above.
        assert.ok(!commands.some((c) => / output .*4011/.test(c)), 'a printed output rule for 4011, which is not needed');
        await needed(e, t, commands, true, theRule(commands, new RegExp(` output udp sport ${DATA_PORT} accept$`)), 'a tftp-hpa transfer from the fixed data port', tftpOk);
        await needed(e, t, commands, true, theRule(commands, new RegExp(` input udp dport ${DATA_PORT} accept$`)), 'a tftp-hpa transfer from the fixed data port', tftpOk);
        await needed(e, t, commands, true, theRule(commands, / output udp dport 9 accept$/), 'a Wake-on-LAN packet', wakeOk);
      } finally {
        await wol.stop('SIGKILL');
      }
      await machines(e, t, 'run2', { imaging: true });
      const fetched = logEvents(e.f.fb ?? assert.fail('no server')).filter((o) => o.msg === 'tftp transfer done' && o.dataPort === DATA_PORT && !String(o.client).startsWith(`${OBS_IP}:`));
      assert.ok(fetched.length > 0, `the guest's TFTP transfer did not use port ${DATA_PORT}\n${await explain(e)}`);
    }),
  );

  test('3. output filtering with ephemeral TFTP data ports: the printed rules assign the TFTP conntrack helper, which the transfer needs', (t) =>
    guarded(async () => {
      const e = need();
      const run: Run = { config: {}, outputFiltering: true };
      const file = configFile(e, 'run3', run);
      const { text, commands } = await printedRules(e, file, run);
      e.rules = text;
      assert.match(text, /^nft add ct helper inet fleetboot tftp-69 /m);
      await applyRules(e, commands, true);
      await restartServer(e, file);
      const ipxe = 'snponly.efi';
      const want = createHash('sha256').update(readFileSync(join(e.f.dataDir, 'tftp', ipxe))).digest('hex');
      const tftpOk = async (): Promise<boolean> => (await tftpGet(e, ipxe)) === want;
      assert.ok(await tftpOk(), `tftp-hpa did not get ${ipxe}\n${await explain(e)}`);
      const port = lastDataPort(e, ipxe);
      assert.ok(port !== null && port >= 32768 && port <= 60999, `data port ${port} is not ephemeral`);
      await needed(e, t, commands, true, theRule(commands, / ct helper set /), 'a tftp-hpa transfer from an ephemeral port', tftpOk);
    }),
  );

  test("the host's own ruleset is unchanged", () =>
    guarded(async () => {
      const e = need();
      assert.equal(await hostSh('nft', ['list', 'ruleset']), e.hostRules);
    }),
  );
});
