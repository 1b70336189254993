/**
 * `fleetboot dhcp probe` and the probe `serve --dhcp server` runs at start,
 * against rogue servers on a lab segment:
 *
 *   bridge namespace
 *     ├── rogue  10.213.66.2   dnsmasq as a DHCP server (range .100-.150)
 *     ├── proxy  10.213.66.3   dnsmasq as a proxyDHCP (pxe-service x86PC)
 *     ├── probe  10.213.66.10  fleetboot dhcp probe --interface eth0 --json
 *     └── fb     10.213.66.1   fleetboot serve --dhcp server (warns about both at start)
 *
 * The probe only ever runs inside the lab namespaces. About 10 s. Needs root.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Argv } from '../src/lib/programs.js';
import { Lab, labAvailable } from './lab/lab.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const S = '10.213.66';
const CLI: Argv = ['node', '--import', 'tsx', join(root, 'src/cli/main.ts')];

let lab: Lab | null = null;
let work = '';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitForText(file: string, re: RegExp, ms: number): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      /* not yet */
    }
    if (re.test(text)) return text;
    if (Date.now() > end) throw new Error(`timed out waiting for ${re} in ${file}:\n${text}`);
    await sleep(100);
  }
}

interface ProbeJson {
  interface: string;
  servers: Array<{ serverId: string; kind: string; offered: string | null; bootFile: string | null }>;
}

const available = await labAvailable();

describe('fleetboot dhcp probe (lab)', { skip: available ? false : 'needs root and ip netns' }, () => {
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'fb-probe-'));
    lab = await Lab.create({ subnet: S });
    const rogue = await lab.addHost('rogue', `${S}.2`);
    const proxy = await lab.addHost('proxy', `${S}.3`);
    await lab.addHost('probe', `${S}.10`);
    await lab.addHost('fb', `${S}.1`);
    const common: Argv = ['dnsmasq', '-k', '--conf-file=/dev/null', '--port=0', '--user=root', '--pid-file', '--leasefile-ro', '--bind-interfaces', '--interface=eth0'];
    const rogueLog = join(work, 'rogue.log');
    lab.spawnIn(rogue.netns, [...common, `--dhcp-range=${S}.100,${S}.150,255.255.255.0,1h`, '--dhcp-boot=rogue.kpxe', `--log-facility=${rogueLog}`, '--log-dhcp']);
    const proxyLog = join(work, 'proxy.log');
    lab.spawnIn(proxy.netns, [...common, `--dhcp-range=${S}.0,proxy,255.255.255.0`, '--pxe-service=x86PC,Network boot,proxyboot', `--log-facility=${proxyLog}`, '--log-dhcp']);
    await waitForText(rogueLog, /DHCP, IP range/, 10000);
    await waitForText(proxyLog, /DHCP, proxy on subnet/, 10000);
  });

  after(async () => {
    await lab?.destroy();
    if (work && !process.env.FB_KEEP) rmSync(work, { recursive: true, force: true });
  });

  test('fleetboot dhcp probe reports the rogue DHCP server and the proxyDHCP', async () => {
    const l = lab as Lab;
    const out = await l.exec('probe', [...CLI, '--json', 'dhcp', 'probe', '--interface', 'eth0', '--timeout', '5']);
    const r = JSON.parse(out) as ProbeJson;
    assert.equal(r.interface, 'eth0');
    const rogue = r.servers.find((s) => s.serverId === `${S}.2`);
    assert.ok(rogue, `rogue dnsmasq not reported: ${out}`);
    assert.equal(rogue.kind, 'dhcp');
    assert.match(rogue.offered ?? '', new RegExp(`^${S.replace(/\./g, '\\.')}\\.(1[0-4]\\d|150)$`));
    assert.equal(rogue.bootFile, 'rogue.kpxe');
    const proxy = r.servers.find((s) => s.serverId === `${S}.3`);
    assert.ok(proxy, `dnsmasq proxy not reported: ${out}`);
    assert.equal(proxy.kind, 'proxy');
    assert.equal(proxy.offered, null);
    assert.equal(r.servers.length, 2, out);
  });

  test('fleetboot dhcp probe prints a table naming each server', async () => {
    const out = await (lab as Lab).exec('probe', [...CLI, 'dhcp', 'probe', '--interface', 'eth0', '--timeout', '5']);
    assert.match(out, new RegExp(`${S.replace(/\./g, '\\.')}\\.2 .*DHCP`));
    assert.match(out, new RegExp(`${S.replace(/\./g, '\\.')}\\.3 .*proxyDHCP`));
  });

  test('serve --dhcp server warns at start about the other servers on its segment', async () => {
    const l = lab as Lab;
    const logFile = join(work, 'fb.log');
    const fd = openSync(logFile, 'w');
    const child = l.spawnIn(
      l.host('fb').netns,
      [...CLI, 'serve', '--allow-root', '--data-dir', join(work, 'data'), '--interface', 'eth0', '--dhcp', 'server', '--dhcp-range', `${S}.200,${S}.220`, '--no-tftp', '--http-port', '8080'],
      { stdio: ['ignore', fd, fd], cwd: root },
    );
    closeSync(fd);
    try {
      const text = await waitForText(logFile, /fleetboot started/, 20000);
      const warns = text.split('\n').filter((line) => line.includes('another') && line.includes('server answers on eth0'));
      assert.ok(warns.some((w) => w.includes(`"server":"${S}.2"`) && w.includes('"kind":"dhcp"')), text);
      assert.ok(warns.some((w) => w.includes(`"server":"${S}.3"`) && w.includes('"kind":"proxy"')), text);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
