import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';

const cli = ['--import', 'tsx', 'src/cli/main.ts'];

test('fleetboot firewall --for nft prints a rule for every port of the configuration given by the serve flags', () => {
  const out = execFileSync(process.execPath, [...cli, 'firewall', '--for', 'nft', '--http-port', '9000', '--tftp-port', '1069', '--json'], { encoding: 'utf8' });
  const rules = JSON.parse(out) as string[];
  assert.deepEqual(rules, [
    'nft add rule inet filter input udp dport 67 accept',
    'nft add rule inet filter input udp dport 4011 accept',
    'nft add rule inet filter input udp dport 1069 accept',
    'nft add rule inet filter input udp dport 32768-60999 accept',
    'nft add rule inet filter input udp dport 63001-63100 accept',
    'nft add rule inet filter input tcp dport 9000 accept',
    'nft add rule inet filter input tcp dport 8443 accept',
  ]);
});

test('fleetboot ports lists the ports as a table, and refuses an unknown firewall flavor', () => {
  const out = execFileSync(process.execPath, [...cli, 'ports', '--dhcp', 'off', '--no-tftp', '--https-port', '9443'], { encoding: 'utf8' });
  assert.match(out, /^PROTO\s+PORT\s+SERVICE/m);
  assert.match(out, /tcp\s+8080\s+HTTP\s/);
  assert.match(out, /tcp\s+9443\s+HTTPS\s+https\.port\s+the REST API, the web console and the endpoint agents, over TLS/);
  const plain = execFileSync(process.execPath, [...cli, 'ports', '--no-https'], { encoding: 'utf8' });
  assert.doesNotMatch(plain, /HTTPS/);
  assert.doesNotMatch(out, /proxyDHCP|TFTP/);
  const bad = spawnSync(process.execPath, [...cli, 'firewall', '--for', 'pf'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--for must be one of nft, iptables, ufw, firewalld, windows/);
});

test('fleetboot firewall --for windows --json prints the New-NetFirewallRule commands alone (the netsh block is a comment)', () => {
  const out = execFileSync(process.execPath, [...cli, 'firewall', '--for', 'windows', '--http-port', '9000', '--no-https', '--json'], { encoding: 'utf8' });
  const rules = JSON.parse(out) as string[];
  assert.equal(rules.length, 6);
  assert.equal(
    rules.at(-1),
    'New-NetFirewallRule -Name "Fleetboot-HTTP" -DisplayName "Fleetboot HTTP (TCP 9000)" -Group "Fleetboot" -Direction Inbound -Action Allow -Protocol TCP -LocalPort 9000',
  );
  const text = execFileSync(process.execPath, [...cli, 'firewall', '--for', 'windows', '--http-port', '9000'], { encoding: 'utf8' });
  assert.match(text, /^netsh advfirewall firewall add rule name="Fleetboot HTTP \(TCP 9000\)" dir=in action=allow protocol=TCP localport=9000$/m);
});

test('fleetboot firewall --output-filtering adds the output rules and the TFTP conntrack helper', () => {
  const out = execFileSync(process.execPath, [...cli, 'firewall', '--for', 'iptables', '--output-filtering', '--json'], { encoding: 'utf8' });
  const rules = JSON.parse(out) as string[];
  assert.ok(rules.includes('iptables -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT'));
  assert.ok(rules.includes('iptables -t raw -A PREROUTING -p udp --dport 69 -j CT --helper tftp'));
  assert.ok(rules.includes('iptables -A OUTPUT -p udp --dport 9 -j ACCEPT'));
});
