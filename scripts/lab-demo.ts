/**
 * The lab demo (run by scripts/lab-demo.sh, as root): a virtual LAN with
 * Fleetboot, an existing DHCP server (dnsmasq, addresses only) and one QEMU
 * machine that PXE-boots from Fleetboot; prints each step of the boot as it
 * happens, then how far it got, and tears the lab down.
 *
 *   node --import tsx scripts/lab-demo.ts [--variant bios-ipxe|ovmf-pxe|ovmf-ipxe] [--unknown] [--timeout SECONDS]
 *
 * --unknown boots a machine Fleetboot does not know: it gets the menu, which
 * falls through to the machine's local disk.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Lab } from '../test/lab/lab.js';
import {
  INITRD_FAIL_MARKER,
  INITRD_OK_MARKER,
  LOCAL_DISK_MARKER,
  QEMU_VARIANTS,
  QemuGuest,
  chooseAccel,
  ensureBootEnv,
  missingQemuPrerequisites,
  writeLocalBootDisk,
  type QemuVariant,
} from '../test/lab/qemu.js';
import { REPO, fleetbootCli, startExistingDhcp, startFleetboot, startLabHttp } from '../test/lab/bootenv/services.js';

const { values } = parseArgs({
  options: {
    variant: { type: 'string', default: 'bios-ipxe' },
    unknown: { type: 'boolean', default: false },
    timeout: { type: 'string', default: '240' },
    'run-dir': { type: 'string' },
  },
});
const variant = values.variant as QemuVariant;
// ovmf-sb (Secure Boot) needs Fleetboot as the DHCP server with uefi.secureBoot on: test/lab/secureboot.e2e.test.ts does that.
const DEMO_VARIANTS: readonly QemuVariant[] = QEMU_VARIANTS.filter((v) => v !== 'ovmf-sb');
if (!DEMO_VARIANTS.includes(variant)) {
  const sb = variant === 'ovmf-sb' ? ' (ovmf-sb needs Fleetboot as the DHCP server with --secure-boot on, which this demo does not set up: see test/lab/secureboot.e2e.test.ts)' : '';
  console.error(`--variant must be one of ${DEMO_VARIANTS.join(', ')}: current value is ${values.variant}${sb}`);
  process.exit(2);
}
const timeoutS = Number(values.timeout);
if (!Number.isFinite(timeoutS) || timeoutS <= 0) {
  console.error(`--timeout must be a positive number of seconds: current value is ${values.timeout}`);
  process.exit(2);
}
const unknown = values.unknown;

const SUBNET = '10.213.60';
const SERVER_IP = `${SUBNET}.1`;
const MAC = unknown ? '52:54:00:de:60:ee' : '52:54:00:de:60:01';
const VARIANT_TEXT: Record<QemuVariant, string> = {
  'bios-ipxe': 'legacy BIOS (SeaBIOS) with the iPXE boot ROM QEMU ships (pxe-e1000.rom)',
  'ovmf-pxe': "UEFI (OVMF) with the firmware's own PXE stack, virtio-net, no option ROM",
  'ovmf-ipxe': "UEFI (OVMF) with iPXE's EFI boot ROM (efi-e1000.rom)",
  'ovmf-sb': "UEFI (OVMF) with Secure Boot on and Microsoft's keys, the firmware's own PXE (not offered by this demo)",
};

const t0 = Date.now();
const stamp = (): string => `[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s]`;
const say = (s: string): void => console.log(`${stamp()} ${s}`);
const hex = (mac: unknown): string => String(mac ?? '').toLowerCase().replace(/[^0-9a-f]/g, '');

/** The stages of a network boot, in order; the demo reports the furthest one reached. */
type Stage =
  | 'address from the existing DHCP server'
  | 'boot file from Fleetboot proxyDHCP'
  | 'iPXE binary over TFTP'
  | 'iPXE script over HTTP'
  | 'boot decision by MAC'
  | 'kernel and initrd over HTTP'
  | 'kernel running'
  | 'initrd running'
  | 'initrd called back over HTTP'
  | 'local disk booted';
const STAGES: readonly Stage[] = [
  'address from the existing DHCP server',
  'boot file from Fleetboot proxyDHCP',
  'iPXE binary over TFTP',
  'iPXE script over HTTP',
  'boot decision by MAC',
  ...(unknown
    ? (['local disk booted'] as const)
    : (['kernel and initrd over HTTP', 'kernel running', 'initrd running', 'initrd called back over HTTP'] as const)),
];

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) throw new Error('the lab demo needs root (network namespaces, tap devices)');
  const missing = missingQemuPrerequisites([variant]);
  if (missing.length) throw new Error(`missing: ${missing.join(', ')}; run: bash scripts/install-deps.sh --with-test`);
  const runDir = values['run-dir'] ?? join(REPO, 'lab-run', `demo-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(runDir, { recursive: true });

  say('Building the test kernel + initrd (cached after the first run) ...');
  const { kernel, initrd } = await ensureBootEnv();
  const accel = await chooseAccel();
  say(`QEMU acceleration: ${accel}${accel === 'tcg' ? ' (software emulation: a boot takes about a minute)' : ''}`);

  const lab = await Lab.create({ subnet: SUBNET });
  writeFileSync(join(runDir, 'lab-id'), `${lab.id}\n`);
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await lab.addHost('fb', SERVER_IP);
    await lab.addHost('dhcp', `${SUBNET}.2`);
    say(`Lab: bridge ${lab.bridgeNs}/${lab.bridge} on ${SUBNET}.0/24; Fleetboot at ${SERVER_IP}, existing DHCP server at ${SUBNET}.2`);
    const dhcp = await startExistingDhcp(lab, 'dhcp', runDir);
    say(`Existing DHCP server (dnsmasq, addresses ${dhcp.range[0]}-${dhcp.range[1]}, no PXE options) is up`);
    const cb = await startLabHttp(lab, 'fb', 9999);

    const configFile = join(runDir, 'fleetboot.json');
    writeFileSync(configFile, JSON.stringify({ boot: { menuTimeoutSeconds: 3 } }, null, 2));
    const dataDir = join(runDir, 'data');
    say(`$ fleetboot serve --data-dir ${dataDir} --interface eth0 --server-ip ${SERVER_IP} --http-port 8080 --dhcp proxy --config ${configFile}`);
    const fb = await startFleetboot(lab, 'fb', { dataDir, serverIp: SERVER_IP, httpPort: 8080, configFile });
    say('Fleetboot is up (proxyDHCP on 67/4011, TFTP on 69, HTTP on 8080)');

    const cmdline = `console=ttyS0 fbcallback=http://${SERVER_IP}:9999/ran`;
    const entryArgs = ['entry', 'add', 'demo', '--kernel', kernel, '--initrd', initrd, '--cmdline', cmdline];
    say(`$ fleetboot ${entryArgs.map((a) => (a.includes(' ') ? `"${a}"` : a)).join(' ')}`);
    await fleetbootCli(lab, 'fb', dataDir, entryArgs);
    if (unknown) {
      say(`(no host added: ${MAC} is unknown to Fleetboot, so it gets the menu and then its local disk)`);
    } else {
      say(`$ fleetboot host add ${MAC} --name demo-pc --entry demo`);
      await fleetbootCli(lab, 'fb', dataDir, ['host', 'add', MAC, '--name', 'demo-pc', '--entry', 'demo']);
    }

    let disk: string | undefined;
    if (unknown) {
      disk = join(runDir, 'local-disk.img');
      writeLocalBootDisk(disk);
    }
    say(`Powering on a QEMU machine: ${VARIANT_TEXT[variant]}, MAC ${MAC}`);

    // Follow the logs and print each step once.
    const reached = new Set<Stage>();
    const reach = (s: Stage, text: string): void => {
      reached.add(s);
      say(text);
    };
    let fbSeen = Math.max(0, fb.log.all().split('\n').length - 1); // start-up lines are not part of the boot
    const guest = await QemuGuest.start(lab, { variant, mac: MAC, workDir: runDir, name: 'demo', ...(disk ? { disk } : {}) });
    let dhcpSeen = 0;
    const serialSeen = new Set<string>();
    const deadline = Date.now() + timeoutS * 1000;
    let outcome: 'ok' | 'failed' | 'timeout' | 'exited' | 'gave-up' | 'interrupted' = 'timeout';
    while (Date.now() < deadline) {
      if (interrupted) {
        outcome = 'interrupted';
        break;
      }
      // The existing DHCP server's view.
      const dl = dhcp.log.all().split('\n');
      for (const line of dl.slice(dhcpSeen, -1)) {
        const m = /(DHCPOFFER|DHCPACK)\(\w+\) (\S+) (\S+)/.exec(line);
        if (m && hex(m[3]) === hex(MAC)) {
          if (m[1] === 'DHCPOFFER') say(`DHCP     existing server offers ${m[2]} (DHCPOFFER)`);
          else reach('address from the existing DHCP server', `DHCP     existing server acknowledges ${m[2]} (the machine now has an address)`);
        }
      }
      dhcpSeen = Math.max(dhcpSeen, dl.length - 1);
      // Fleetboot's log: one JSON line per protocol step.
      const fl = fb.log.all().split('\n');
      for (const line of fl.slice(fbSeen, -1)) {
        let o: Record<string, unknown>;
        try {
          const v: unknown = JSON.parse(line);
          if (typeof v !== 'object' || v === null) continue;
          o = v as Record<string, unknown>;
        } catch {
          continue;
        }
        const msg = String(o.msg ?? '');
        const from = String(o.client ?? o.ip ?? '').replace(/:\d+$/, '');
        if (from === SERVER_IP || from.startsWith('127.')) continue; // the CLI's own API calls
        if (msg.startsWith('dhcp ') && hex(o.mac) === hex(MAC)) {
          const file = o.file ? `, boot file ${String(o.file)}` : '';
          const why = o.reason ? ` (${String(o.reason)})` : '';
          const text = `proxyDHCP Fleetboot: ${msg.slice(5)} on port ${String(o.port ?? '?')}${file}${why}`;
          if (o.file) reach('boot file from Fleetboot proxyDHCP', text);
          else say(text);
        } else if (msg.startsWith('tftp ')) {
          const size = o.bytes ?? o.size;
          const rate = o.rateMBps !== undefined ? `, ${String(o.rateMBps)} MB/s` : '';
          const text = `TFTP     ${msg.slice(5)}: ${String(o.file ?? '')}${size !== undefined ? ` (${String(size)} bytes${rate})` : ''}${o.reason ? ` - ${String(o.reason)}` : ''}`;
          if (msg === 'tftp transfer done') reach('iPXE binary over TFTP', text);
          else say(text);
        } else if (msg === 'entry script served') {
          reach('iPXE script over HTTP', `HTTP     iPXE fetched the entry script ${String(o.path ?? '/boot.ipxe')}`);
        } else if (msg.startsWith('boot decision')) {
          reach('boot decision by MAC', `HTTP     ${msg}`);
        } else if (msg === 'file served') {
          const text = `HTTP     served ${String(o.path)} (${String(o.status)}, ${String(o.bytes)} bytes, ${String(o.ms)} ms)`;
          if (String(o.path).startsWith('/boot/entries/')) reach('kernel and initrd over HTTP', text);
          else say(text);
        } else if (o.level !== undefined && Number(o.level) >= 40) {
          const err = o.err === undefined ? '' : ` (${typeof o.err === 'object' && o.err !== null ? String((o.err as { message?: unknown }).message) : String(o.err)})`;
          say(`Fleetboot ${Number(o.level) >= 50 ? 'ERROR' : 'warning'}: ${msg}${err}`);
          // The offer logged just before never left the server.
          if (msg.startsWith('sending the DHCP reply failed') && hex(o.mac) === hex(MAC)) reached.delete('boot file from Fleetboot proxyDHCP');
        }
      }
      fbSeen = Math.max(fbSeen, fl.length - 1);
      // The machine's serial console.
      const serial = guest.serial();
      const marks: Array<[RegExp, Stage | null, string]> = [
        [/Linux version \S+/, 'kernel running', 'MACHINE  the Linux kernel is running'],
        [/fbtest: initrd \/init started/, 'initrd running', 'MACHINE  the initrd is running'],
        [/fbtest: udhcpc bound \S+ ip=\S+/, null, 'MACHINE  the initrd got its address'],
        [new RegExp(INITRD_FAIL_MARKER + '.*'), null, 'MACHINE  the initrd reports a failure'],
        [new RegExp(LOCAL_DISK_MARKER), 'local disk booted', 'MACHINE  the local disk booted (its boot sector printed LOCAL-DISK-BOOTED)'],
      ];
      for (const [re, stage, text] of marks) {
        const m = re.exec(serial);
        if (m && !serialSeen.has(text)) {
          serialSeen.add(text);
          if (stage) reach(stage, `${text}: ${m[0].trim()}`);
          else say(`${text}: ${m[0].trim()}`);
        }
      }
      const c = cb.callbacks.find((x) => hex(x.mac) === hex(MAC)) ?? (await cb.waitForCallback(MAC, 1));
      if (c && !unknown) {
        reach('initrd called back over HTTP', `CALLBACK the initrd called back from ${c.ip} with MAC ${c.mac}: it booted what Fleetboot assigned`);
        outcome = 'ok';
        break;
      }
      if (unknown && reached.has('local disk booted')) {
        outcome = 'ok';
        break;
      }
      if (serialSeen.has('MACHINE  the initrd reports a failure')) {
        outcome = 'failed';
        break;
      }
      if (!guest.running) {
        outcome = 'exited';
        break;
      }
      // The firmware gave up on the network and moved on (an unknown machine's menu may do that on purpose).
      const gaveUp = unknown ? null : guest.networkBootFailed();
      if (gaveUp) {
        say(`MACHINE  network boot failed: ${gaveUp}`);
        outcome = 'gave-up';
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    await guest.stop();

    console.log('');
    let furthest = -1;
    STAGES.forEach((s, i) => {
      if (reached.has(s)) furthest = i;
    });
    console.log('How far it got:');
    STAGES.forEach((s, i) => {
      const mark = reached.has(s) ? '[x]' : i < furthest ? '[-]' : '[ ]';
      let note = '';
      if (!reached.has(s) && i < furthest && s === 'iPXE binary over TFTP') note = '  (not needed: the machine already ran iPXE)';
      else if (!reached.has(s) && i < furthest) note = '  (not seen in the logs)';
      console.log(`  ${mark} ${s}${note}`);
    });
    const result =
      outcome === 'ok'
        ? `SUCCESS in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${unknown ? 'the unknown machine reached the menu and booted its local disk' : 'the machine booted the kernel+initrd Fleetboot assigned to its MAC'}`
        : `NOT FINISHED (${outcome === 'timeout' ? `no result within ${timeoutS} s` : outcome === 'exited' ? 'the machine powered off or reset' : outcome === 'gave-up' ? 'the firmware gave up on the network boot' : outcome}): got as far as "${furthest >= 0 ? STAGES[furthest] : 'nothing'}"`;
    console.log(`\n${result}`);
    console.log(`Logs: ${runDir} (Fleetboot: fleetboot.log, DHCP: dnsmasq.log, console: demo.serial.log)`);
    writeFileSync(join(runDir, 'fleetboot.log'), fb.log.all());
    writeFileSync(join(runDir, 'dnsmasq.log'), dhcp.log.all());
    if (outcome !== 'ok') {
      console.log(`\n--- last lines of Fleetboot's log\n${fb.log.tail(25)}`);
      console.log(guest.diagnostics(25));
    }
    return outcome === 'ok' ? 0 : 1;
  } finally {
    await lab.destroy();
    say('Lab torn down.');
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`lab-demo: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
