import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertGolden } from '../../test/golden.js';
import { loadConfig, POOL_DEFAULTS, type FleetbootConfig } from './config.js';
import { commandLines, FIREWALL_FLAVORS, firewallRules, flavorPlatform, type FirewallFlavor } from './firewall.js';
import { concretePort, requiredPorts, type PortPlatform, type PortSpec } from './ports.js';

const testdata = join(fileURLToPath(new URL('.', import.meta.url)), 'testdata');

/** The configurations the golden files show: the defaults, and one with every port moved. */
const CONFIGS: ReadonlyArray<{ name: string; config: Readonly<FleetbootConfig> }> = [
  { name: 'default configuration', config: loadConfig({ cwd: '/tmp' }) },
  {
    name: 'DHCP server, HTTP on 80, one TFTP data port (6969), multicast sessions on 64001-65000',
    config: loadConfig({
      cwd: '/tmp',
      overrides: {
        dhcp: { mode: 'server', pools: [{ ...POOL_DEFAULTS, start: '10.0.0.100', end: '10.0.0.199' }] },
        http: { port: 80 },
        tftp: { dataPorts: { from: 6969, to: 6969 } },
        multicast: { ports: '64001-65000' },
      },
    }),
  },
];

for (const flavor of FIREWALL_FLAVORS) {
  test(`firewallRules() for ${flavor} matches its golden file (defaults and a customised configuration)`, () => {
    const sections: string[] = [];
    for (const { name, config } of CONFIGS) sections.push(`==== ${name}\n${firewallRules(config, flavor).join('\n')}\n`);
    assertGolden(join(testdata, `firewall-${flavor}.txt`), sections.join('\n'), { rerun: 'node --import tsx --test src/config/firewall.test.ts' });
  });
}

test('firewallRules() prints one rule per port for each flavor', () => {
  const c = loadConfig({ cwd: '/tmp', overrides: { tftp: { dataPorts: { from: 64001, to: 65000 } } } });
  const nft = firewallRules(c, 'nft').filter((l) => !l.startsWith('#'));
  assert.deepEqual(nft, [
    'nft add rule inet filter input udp dport 67 accept',
    'nft add rule inet filter input udp dport 4011 accept',
    'nft add rule inet filter input udp dport 69 accept',
    'nft add rule inet filter input udp dport 64001-65000 accept',
    'nft add rule inet filter input udp dport 63001-63100 accept',
    'nft add rule inet filter input tcp dport 8080 accept',
  ]);
  assert.ok(firewallRules(c, 'iptables').includes('iptables -A INPUT -p udp --dport 64001:65000 -j ACCEPT'));
  assert.ok(firewallRules(c, 'ufw').includes('ufw allow 69/udp'));
  assert.equal(firewallRules(c, 'firewalld').at(-1), 'firewall-cmd --reload');
});

// ---- every flavor opens exactly the ports of ports.ts ----------------------

/** "udp/67", "udp/64001-65000": one port use, as the tests compare them. */
function key(proto: string, port: PortSpec): string {
  return `${proto.toLowerCase()}/${Array.isArray(port) ? `${port[0]}-${port[1]}` : port}`;
}

/** A port as a firewall spells it ("64001:65000", "64001-65000", "67"), as a PortSpec. */
function parsePort(text: string): PortSpec {
  const m = /^(\d+)(?:[-:](\d+))?$/.exec(text);
  assert.ok(m, `not a port or range: ${text}`);
  return m[2] === undefined ? Number(m[1]) : [Number(m[1]), Number(m[2])];
}

/** The ports each flavor's input rules open, read back from its output. */
function inputPorts(flavor: FirewallFlavor, lines: readonly string[]): string[][] {
  const read = (re: RegExp, proto: number, port: number) =>
    lines.flatMap((l) => {
      const m = re.exec(l);
      return m ? [key(m[proto] ?? '', parsePort(m[port] ?? ''))] : [];
    });
  switch (flavor) {
    case 'nft':
      return [read(/^nft add rule inet filter input (udp|tcp) dport (\S+) accept$/, 1, 2)];
    case 'iptables':
      return [read(/^iptables -A INPUT -p (udp|tcp) --dport (\S+) -j ACCEPT$/, 1, 2)];
    case 'ufw':
      return [read(/^ufw allow (\S+)\/(udp|tcp)$/, 2, 1)];
    case 'firewalld':
      return [read(/^firewall-cmd --permanent --add-port=(\S+)\/(udp|tcp)$/, 2, 1)];
    case 'windows':
      return [
        read(/^New-NetFirewallRule .* -Direction Inbound -Action Allow -Protocol (UDP|TCP) -LocalPort (\S+)$/, 1, 2),
        read(/^netsh advfirewall firewall add rule name=".*" dir=in action=allow protocol=(UDP|TCP) localport=(\S+)$/, 1, 2),
      ];
  }
}

function expectedInput(c: Readonly<FleetbootConfig>, platform: PortPlatform): string[] {
  return requiredPorts(c).map((p) => key(p.proto, concretePort(p.port, platform)));
}

const PORT_SET_CONFIGS: ReadonlyArray<Readonly<FleetbootConfig>> = [
  ...CONFIGS.map((x) => x.config),
  loadConfig({ cwd: '/tmp', overrides: { dhcp: { mode: 'off' }, tftp: { enabled: false }, multicast: { ports: '9000' }, wake: { port: 7 } } }),
  loadConfig({ cwd: '/tmp', overrides: { tftp: { port: 1069, dataPorts: { from: 64001, to: 65000 } }, dhcp: { port: 1067, pxePort: 14011 } } }),
];

test('every flavor opens exactly the ports requiredPorts() lists', () => {
  for (const c of PORT_SET_CONFIGS) {
    for (const flavor of FIREWALL_FLAVORS) {
      for (const found of inputPorts(flavor, firewallRules(c, flavor))) assert.deepEqual(found, expectedInput(c, flavorPlatform(flavor)), `${flavor} input rules`);
    }
  }
});

test('the Linux flavors and Windows differ only in where ephemeral TFTP data ports are', () => {
  const c = CONFIGS[0]?.config ?? assert.fail('no config');
  const linux = inputPorts('nft', firewallRules(c, 'nft'))[0];
  const windows = inputPorts('windows', firewallRules(c, 'windows'))[0];
  assert.deepEqual(linux, ['udp/67', 'udp/4011', 'udp/69', 'udp/32768-60999', 'udp/63001-63100', 'tcp/8080']);
  assert.deepEqual(windows, ['udp/67', 'udp/4011', 'udp/69', 'udp/49152-65535', 'udp/63001-63100', 'tcp/8080']);
});

// ---- Windows ------------------------------------------------------------

test('the Windows rules are grouped, scoped to ports and never to a program', () => {
  const lines = firewallRules(CONFIGS[1]?.config ?? assert.fail('no config'), 'windows');
  const commands = commandLines(lines);
  assert.ok(commands.length > 0);
  for (const l of commands) {
    assert.match(l, /^New-NetFirewallRule -Name "Fleetboot-[A-Za-z-]+" -DisplayName "Fleetboot [^"]+" -Group "Fleetboot" /);
    assert.match(l, / -(LocalPort|RemotePort) \d+(-\d+)?$/);
  }
  assert.doesNotMatch(lines.join('\n'), /-Program|program=|node\.exe"/);
  assert.ok(lines.includes('# Remove them all with:  Remove-NetFirewallRule -Group "Fleetboot"'));
  // netsh: one delete line per add line, by the same name
  const added = lines.filter((l) => l.startsWith('netsh advfirewall firewall add rule ')).map((l) => /name="([^"]+)"/.exec(l)?.[1]);
  const deleted = lines.filter((l) => l.startsWith('  netsh advfirewall firewall delete rule ')).map((l) => /name="([^"]+)"/.exec(l)?.[1]);
  assert.equal(added.length, commands.length);
  assert.deepEqual(deleted, added);
});

test('commandLines() keeps the commands: no comments, blank lines or PowerShell block comments', () => {
  assert.deepEqual(commandLines(['# a', 'cmd 1', '', '<#', 'netsh x', '  # y', '#>', 'cmd 2', '<# one line #>', 'cmd 3']), ['cmd 1', 'cmd 2', 'cmd 3']);
  const windows = commandLines(firewallRules(loadConfig({ cwd: '/tmp' }), 'windows'));
  assert.equal(windows.length, 6);
  assert.ok(windows.every((l) => l.startsWith('New-NetFirewallRule ')));
});
