import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertGolden } from '../../test/golden.js';
import { loadConfig, POOL_DEFAULTS, type FleetbootConfig } from './config.js';
import { commandLines, FIREWALL_FLAVORS, firewallRules, flavorPlatform, type FirewallFlavor } from './firewall.js';
import { concretePort, outboundPorts, requiredPorts, type PortPlatform, type PortSpec } from './ports.js';

const testdata = join(fileURLToPath(new URL('.', import.meta.url)), 'testdata');

/** The configurations the golden files show: the defaults, and one with every port moved. */
const CONFIGS: ReadonlyArray<{ name: string; config: Readonly<FleetbootConfig> }> = [
  { name: 'default configuration', config: loadConfig({ cwd: '/tmp' }) },
  {
    name: 'DHCP server, HTTP on 80, HTTPS on 443, one TFTP data port (6969), multicast sessions on 64001-65000',
    config: loadConfig({
      cwd: '/tmp',
      overrides: {
        dhcp: { mode: 'server', pools: [{ ...POOL_DEFAULTS, start: '10.0.0.100', end: '10.0.0.199' }] },
        http: { port: 80 },
        https: { port: 443 },
        tftp: { dataPorts: { from: 6969, to: 6969 } },
        multicast: { ports: '64001-65000' },
      },
    }),
  },
];

for (const flavor of FIREWALL_FLAVORS) {
  test(`firewallRules() for ${flavor} matches its golden file (defaults and a customised configuration, with and without --output-filtering)`, () => {
    const sections: string[] = [];
    for (const { name, config } of CONFIGS) {
      for (const outputFiltering of [false, true]) {
        const lines = firewallRules(config, flavor, { outputFiltering });
        sections.push(`==== ${name}${outputFiltering ? ', --output-filtering' : ''}\n${lines.join('\n')}\n`);
      }
    }
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
    'nft add rule inet filter input tcp dport 8443 accept',
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

/** What the server sends, read back from each flavor's output-filtering rules: "sport udp/67", "dport udp/9". */
function outputPorts(flavor: FirewallFlavor, lines: readonly string[]): string[][] {
  const read = (re: RegExp, f: (m: RegExpExecArray) => string) =>
    lines.flatMap((l) => {
      const m = re.exec(l);
      return m ? [f(m)] : [];
    });
  switch (flavor) {
    case 'nft':
      return [read(/^nft add rule inet filter output (udp) (sport|dport) (\S+) accept$/, (m) => `${m[2]} ${key(m[1] ?? '', parsePort(m[3] ?? ''))}`)];
    case 'iptables':
      return [read(/^iptables -A OUTPUT -p (udp) --(sport|dport) (\S+) -j ACCEPT$/, (m) => `${m[2]} ${key(m[1] ?? '', parsePort(m[3] ?? ''))}`)];
    case 'ufw':
      return [
        [
          ...read(/^ufw allow out proto (udp) from any port (\S+) to any$/, (m) => `sport ${key(m[1] ?? '', parsePort(m[2] ?? ''))}`),
          ...read(/^ufw allow out (\S+)\/(udp)$/, (m) => `dport ${key(m[2] ?? '', parsePort(m[1] ?? ''))}`),
        ],
      ];
    case 'firewalld':
      // The policy's name is the site's: these lines are comments to complete.
      return [read(/^# {3}firewall-cmd --permanent --policy=POLICY --add-(source-port|port)=(\S+)\/(udp) {3}\(.*\)$/, (m) => `${m[1] === 'port' ? 'dport' : 'sport'} ${key(m[3] ?? '', parsePort(m[2] ?? ''))}`)];
    case 'windows':
      return [
        read(/^New-NetFirewallRule .* -Direction Outbound -Action Allow -Protocol (UDP) -(LocalPort|RemotePort) (\S+)$/, (m) => `${m[2] === 'LocalPort' ? 'sport' : 'dport'} ${key(m[1] ?? '', parsePort(m[3] ?? ''))}`),
        read(/^netsh advfirewall firewall add rule name=".*" dir=out action=allow protocol=(UDP) (localport|remoteport)=(\S+)$/, (m) => `${m[2] === 'localport' ? 'sport' : 'dport'} ${key(m[1] ?? '', parsePort(m[3] ?? ''))}`),
      ];
  }
}

function expectedInput(c: Readonly<FleetbootConfig>, platform: PortPlatform): string[] {
  return requiredPorts(c).map((p) => key(p.proto, concretePort(p.port, platform)));
}

/** outboundPorts() as port rules; the Linux flavors let ephemeral TFTP data out through the helper instead. */
function expectedOutput(c: Readonly<FleetbootConfig>, platform: PortPlatform): string[] {
  return outboundPorts(c)
    .filter((o) => platform === 'windows' || !(o.helper !== null && o.port === null))
    .map((o) => `${o.match} ${key(o.proto, concretePort(o.port, platform))}`);
}

const PORT_SET_CONFIGS: ReadonlyArray<Readonly<FleetbootConfig>> = [
  ...CONFIGS.map((x) => x.config),
  loadConfig({ cwd: '/tmp', overrides: { dhcp: { mode: 'off' }, tftp: { enabled: false }, multicast: { ports: '9000' }, wake: { port: 7 } } }),
  loadConfig({ cwd: '/tmp', overrides: { tftp: { port: 1069, dataPorts: { from: 64001, to: 65000 } }, dhcp: { port: 1067, pxePort: 14011 } } }),
];

test('every flavor opens exactly the ports requiredPorts() lists, and lets out exactly what outboundPorts() lists', () => {
  for (const c of PORT_SET_CONFIGS) {
    for (const flavor of FIREWALL_FLAVORS) {
      const platform = flavorPlatform(flavor);
      for (const outputFiltering of [false, true]) {
        const lines = firewallRules(c, flavor, { outputFiltering });
        for (const found of inputPorts(flavor, lines)) assert.deepEqual(found, expectedInput(c, platform), `${flavor} input rules`);
        for (const found of outputPorts(flavor, lines)) assert.deepEqual(found, outputFiltering ? expectedOutput(c, platform) : [], `${flavor} output rules`);
      }
    }
  }
});

test('the Linux flavors and Windows differ only in where ephemeral TFTP data ports are', () => {
  const c = CONFIGS[0]?.config ?? assert.fail('no config');
  const linux = inputPorts('nft', firewallRules(c, 'nft'))[0];
  const windows = inputPorts('windows', firewallRules(c, 'windows'))[0];
  assert.deepEqual(linux, ['udp/67', 'udp/4011', 'udp/69', 'udp/32768-60999', 'udp/63001-63100', 'tcp/8080', 'tcp/8443']);
  assert.deepEqual(windows, ['udp/67', 'udp/4011', 'udp/69', 'udp/49152-65535', 'udp/63001-63100', 'tcp/8080', 'tcp/8443']);
});

// ---- the TFTP conntrack helper ------------------------------------------

test('--output-filtering assigns the TFTP conntrack helper when the data ports are ephemeral, and says why', () => {
  const c = loadConfig({ cwd: '/tmp' });
  const nft = firewallRules(c, 'nft', { outputFiltering: true });
  assert.ok(nft.includes(`nft add ct helper inet fleetboot tftp-69 '{ type "tftp" protocol udp; }'`));
  assert.ok(nft.includes(`nft add rule inet fleetboot prerouting udp dport 69 ct helper set '"tftp-69"'`));
  assert.ok(nft.includes('nft add rule inet filter output ct state established,related accept'));
  assert.ok(nft.some((l) => l.startsWith('#') && l.includes('the TFTP conntrack helper is needed, and included')));
  const ipt = firewallRules(c, 'iptables', { outputFiltering: true });
  assert.ok(ipt.includes('iptables -t raw -A PREROUTING -p udp --dport 69 -j CT --helper tftp'));
  assert.ok(ipt.includes('iptables -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT'));
  assert.ok(firewallRules(c, 'ufw', { outputFiltering: true }).includes('#   -A PREROUTING -p udp --dport 69 -j CT --helper tftp'));
  assert.ok(firewallRules(c, 'firewalld', { outputFiltering: true }).includes('firewall-cmd --permanent --add-service=tftp'));
});

test('--output-filtering lets pinned tftp.dataPorts out by source port, without the helper', () => {
  const c = loadConfig({ cwd: '/tmp', overrides: { tftp: { dataPorts: { from: 64001, to: 65000 } }, multicast: { ports: '63001-63100' } } });
  for (const flavor of FIREWALL_FLAVORS) {
    const text = firewallRules(c, flavor, { outputFiltering: true }).join('\n');
    assert.doesNotMatch(text, /ct helper|--helper|add-service=tftp/, flavor);
  }
  const nft = firewallRules(c, 'nft', { outputFiltering: true });
  assert.ok(nft.includes('nft add rule inet filter output udp sport 64001-65000 accept'));
  assert.ok(nft.includes('# tftp.dataPorts pins these ports, so a rule by source port lets them out: the TFTP conntrack helper is not needed.'));
});

test('the helper follows tftp.port; firewalld, whose tftp service helps on 69 only, says to pin the data ports instead', () => {
  const c = loadConfig({ cwd: '/tmp', overrides: { tftp: { port: 1069 } } });
  const nft = firewallRules(c, 'nft', { outputFiltering: true });
  assert.ok(nft.includes(`nft add rule inet fleetboot prerouting udp dport 1069 ct helper set '"tftp-1069"'`));
  assert.ok(firewallRules(c, 'iptables', { outputFiltering: true }).includes('iptables -t raw -A PREROUTING -p udp --dport 1069 -j CT --helper tftp'));
  const fwd = firewallRules(c, 'firewalld', { outputFiltering: true });
  assert.ok(!fwd.includes('firewall-cmd --permanent --add-service=tftp'));
  assert.ok(fwd.some((l) => l.includes('on port 69 only, and tftp.port is 1069')));
  assert.equal(fwd.at(-1), 'firewall-cmd --reload');
});

test('without --output-filtering the rules end by saying when it is needed, and name no helper', () => {
  const c = loadConfig({ cwd: '/tmp' });
  for (const flavor of FIREWALL_FLAVORS) {
    const lines = firewallRules(c, flavor);
    assert.ok(lines.some((l) => l.startsWith('#') && l.includes('add --output-filtering')), flavor);
    assert.doesNotMatch(commandLines(lines).join('\n'), /helper|OUTPUT|output|Outbound/, flavor);
  }
  assert.equal(firewallRules(c, 'firewalld').at(-1), 'firewall-cmd --reload');
});

// ---- Windows ------------------------------------------------------------

test('the Windows rules are grouped, scoped to ports and never to a program', () => {
  const lines = firewallRules(CONFIGS[1]?.config ?? assert.fail('no config'), 'windows', { outputFiltering: true });
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
  assert.equal(windows.length, 7);
  assert.ok(windows.every((l) => l.startsWith('New-NetFirewallRule ')));
});
