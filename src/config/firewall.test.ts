import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from './config.js';
import { firewallRules } from './firewall.js';

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
