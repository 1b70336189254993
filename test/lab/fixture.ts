/**
 * The one lab fixture of the QEMU end-to-end files: what every one of them
 * built by hand before (prerequisite checks, a work directory, the
 * accelerator, the lab's bridge with Fleetboot's host at .1 and the site's
 * DHCP server at .2, the test initrd's callback listener, Fleetboot itself),
 * and the teardown (logs saved into the work directory, every process of
 * the lab's namespaces killed, the namespaces removed, the work directory
 * removed unless the file failed or FBTEST_KEEP=1).
 *
 *   const suite = new LabSuite<LabFixture>();
 *   before(() => suite.guarded(async () => {
 *     suite.env = await openLabFixture({ name: 'boot.e2e', subnet: '10.213.50', variants: ['bios-ipxe'], callbackPort: 9999 });
 *   }));
 *   after(() => closeLabFixture(suite.env, suite.failed));
 *
 * Needs root, `ip netns` and the QEMU packages; it throws (the file fails,
 * never skips) naming what is missing.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, labAvailable } from './lab.js';
import { chooseAccel, ensureBootEnv, missingQemuPrerequisites, type Accel, type QemuGuest, type QemuVariant } from './qemu.js';
import { fleetbootCli, startExistingDhcp, startFleetboot, startLabHttp, type Callback, type DhcpServer, type Fleetboot, type FleetbootOptions, type LabHttp } from './bootenv/services.js';

export interface LabFixtureOptions {
  /** The file's name, for messages and the work directory ('boot.e2e'). */
  name: string;
  /** The lab's /24 ('10.213.50'): Fleetboot's host is .1, the site's DHCP server .2. */
  subnet: string;
  /** The QEMU guests the file boots (their firmware is checked up front). */
  variants: readonly QemuVariant[];
  /** dnsmasq at .2 as the site's DHCP server, addresses only (default true). */
  existingDhcp?: boolean;
  /** Start the test initrd's callback listener on Fleetboot's host at this port. */
  callbackPort?: number;
  /** Start `fleetboot serve` on .1 (default): its config (written to fleetboot.json), extra flags, HTTP port. null: the file starts its own. */
  fleetboot?: { config?: Record<string, unknown>; extra?: string[]; httpPort?: number } | null;
  /** Make sure the test kernel+initrd (test/lab/bootenv/build.sh) are built (default true). */
  testBootEnv?: boolean;
}

export interface LabFixture {
  readonly name: string;
  readonly lab: Lab;
  readonly work: string;
  readonly accel: Accel;
  readonly subnet: string;
  /** Fleetboot's host address (.1). */
  readonly serverIp: string;
  readonly dataDir: string;
  /** The running Fleetboot (a test that restarts it assigns the new one). */
  fb: Fleetboot | null;
  readonly fbOpts: FleetbootOptions;
  readonly dhcp: DhcpServer | null;
  readonly cb: LabHttp | null;
  /** The test kernel and initrd (null when testBootEnv was false). */
  readonly testBootEnv: { kernel: string; initrd: string } | null;
  /** `fleetboot ARGS --data-dir DATA` inside Fleetboot's namespace; stdout. */
  fleetbootCommand(args: string[]): Promise<string>;
  /** A boot entry "test" (the test kernel+initrd, calling back to the listener), and these MACs as hosts booting it. */
  addTestEntryHosts(hosts: ReadonlyArray<{ mac: string; name: string }>): Promise<void>;
  /** Fleetboot, or a failure saying it was not started. */
  needFb(): Fleetboot;
}

/** Build the lab (see the module header). On a failure half-way, what was built is torn down before the error goes up. */
export async function openLabFixture(o: LabFixtureOptions): Promise<LabFixture> {
  if (process.getuid?.() !== 0) throw new Error(`${o.name} needs root (network namespaces, tap devices): run the tests as root`);
  if (!(await labAvailable())) throw new Error(`${o.name} needs \`ip netns\` (iproute2) to build the lab`);
  const missing = missingQemuPrerequisites(o.variants);
  if (missing.length) throw new Error(`${o.name} needs QEMU and firmware; missing: ${missing.join(', ')}. Run: bash scripts/install-deps.sh --with-test`);

  const work = mkdtempSync(join(tmpdir(), `fb-${o.name.replace(/[^a-z0-9-]/gi, '-')}-`));
  const serverIp = `${o.subnet}.1`;
  const dataDir = join(work, 'data');
  let lab: Lab | null = null;
  try {
    const testBootEnv = o.testBootEnv === false ? null : await ensureBootEnv();
    const accel = await chooseAccel();
    lab = await Lab.create({ subnet: o.subnet });
    const l = lab;
    await l.addHost('fb', serverIp);
    let dhcp: DhcpServer | null = null;
    if (o.existingDhcp !== false) {
      await l.addHost('dhcp', `${o.subnet}.2`);
      dhcp = await startExistingDhcp(l, 'dhcp', work);
    }
    const cb = o.callbackPort !== undefined ? await startLabHttp(l, 'fb', o.callbackPort) : null;
    const fbOpts: FleetbootOptions = { dataDir, serverIp, httpPort: o.fleetboot?.httpPort ?? 8080, ...(o.fleetboot?.extra ? { extra: o.fleetboot.extra } : {}) };
    if (o.fleetboot?.config) {
      fbOpts.configFile = join(work, 'fleetboot.json');
      writeFileSync(fbOpts.configFile, JSON.stringify(o.fleetboot.config));
    }
    const fb = o.fleetboot === null ? null : await startFleetboot(l, 'fb', fbOpts);
    const fixture: LabFixture = {
      name: o.name,
      lab: l,
      work,
      accel,
      subnet: o.subnet,
      serverIp,
      dataDir,
      fb,
      fbOpts,
      dhcp,
      cb,
      testBootEnv,
      fleetbootCommand: (args) => fleetbootCli(l, 'fb', dataDir, args),
      needFb: () => {
        if (!fixture.fb) throw new Error(`${o.name}: Fleetboot is not running`);
        return fixture.fb;
      },
      async addTestEntryHosts(hosts) {
        if (!testBootEnv || o.callbackPort === undefined) throw new Error(`${o.name}: the test entry needs testBootEnv and callbackPort`);
        const cmdline = `console=ttyS0 fbcallback=http://${serverIp}:${o.callbackPort}/ran`;
        await fixture.fleetbootCommand(['entry', 'add', 'test', '--kernel', testBootEnv.kernel, '--initrd', testBootEnv.initrd, '--cmdline', cmdline]);
        for (const h of hosts) await fixture.fleetbootCommand(['host', 'add', h.mac, '--name', h.name, '--entry', 'test']);
      },
    };
    return fixture;
  } catch (err) {
    await lab?.destroy();
    console.log(`${o.name}: the lab could not be built; work directory kept: ${work}`);
    throw err;
  }
}

/**
 * The after() hook: save the logs into the work directory, kill every
 * process of the lab's namespaces and remove them, then remove the work
 * directory unless the file failed or FBTEST_KEEP=1 (its path is printed).
 */
export async function closeLabFixture(e: LabFixture | null, failed: boolean, opts: { beforeDestroy?: () => Promise<void> } = {}): Promise<void> {
  if (!e) return;
  const keep = process.env.FBTEST_KEEP === '1' || failed;
  try {
    await opts.beforeDestroy?.();
    if (e.fb) writeFileSync(join(e.work, 'fleetboot.log'), e.fb.log.all());
    if (e.dhcp) writeFileSync(join(e.work, 'dnsmasq.log'), e.dhcp.log.all());
    if (e.cb) writeFileSync(join(e.work, 'callbacks.log'), e.cb.log.all());
  } finally {
    await e.lab.destroy();
    if (!keep) rmSync(e.work, { recursive: true, force: true });
    else console.log(`${e.name}: logs kept in ${e.work} (fleetboot.log, dnsmasq.log, *.serial.log)`);
  }
}

/** A fixture whose optional parts `K` are known to be there (what the file asked for). */
export type LabWith<K extends 'fb' | 'dhcp' | 'cb'> = LabFixture & { [P in K]: NonNullable<LabFixture[P]> };

/** Narrow a fixture to the parts the file started; throws naming a missing one. */
export function withParts<K extends 'fb' | 'dhcp' | 'cb'>(f: LabFixture, parts: readonly K[]): LabWith<K> {
  for (const p of parts) if (f[p] === null) throw new Error(`${f.name}: the lab has no ${p}`);
  return f as LabWith<K>;
}

/**
 * The test initrd's callback from `guest`'s MAC. Fails early, with
 * `explain()` (the logs), when the firmware gives up on the network boot or
 * QEMU exits.
 */
export async function waitForGuestCallback(cb: LabHttp, guest: QemuGuest, timeoutMs: number, explain: () => string): Promise<Callback> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const got = await cb.waitForCallback(guest.mac, 1000);
    if (got) return got;
    const why = guest.networkBootFailed() ?? (guest.running ? null : 'QEMU exited');
    if (why) {
      await new Promise((r) => setTimeout(r, 1000)); // diagnostics only (the test fails next): let the last log lines arrive
      throw new Error(`no callback from ${guest.mac}: ${why}\n${explain()}`);
    }
  }
  throw new Error(`no callback from ${guest.mac} within ${timeoutMs / 1000} s\n${explain()}`);
}
