import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, POOL_DEFAULTS } from '../config/config.js';
import { cliCommand, formatStartSummary } from './summary.js';

const SHA = 'ab'.repeat(32);

test('formatStartSummary() on a first start in proxy mode: addresses and ports, token file, missing boot environment, the first admin, next steps', () => {
  const config = loadConfig({ cwd: '/srv/fleetboot', overrides: { serverIp: '10.0.0.5' } });
  const text = formatStartSummary({
    version: '0.1.0',
    config,
    running: { serverIp: '10.0.0.5', baseUrl: 'http://10.0.0.5:8080', httpPort: 8080, httpsPort: 8443, tftpPort: 69, dhcpPorts: { dhcp: 67, pxe: 4011 }, firstStart: true, users: 0 },
    tls: { caFile: '/srv/fleetboot/data/tls/ca.crt', caSha256: SHA, certFile: '/srv/fleetboot/data/tls/server.crt' },
    bootEnvReady: false,
    consoleBuilt: true,
    cli: 'npx fleetboot',
    cwd: '/srv/fleetboot',
  });
  assert.equal(
    text,
    [
      'Fleetboot 0.1.0 is running (data directory /srv/fleetboot/data)',
      '  HTTP       http://10.0.0.5:8080/boot.ipxe (iPXE script) and http://10.0.0.5:8080/api/v1 (REST API); TCP 8080 on all addresses',
      '  HTTPS      https://10.0.0.5:8443/api/v1 (REST API), the console and the endpoint agents; TCP 8443 on all addresses',
      '  CA         /srv/fleetboot/data/tls/ca.crt (browsers import it; `npx fleetboot ca show` prints it)',
      `             SHA-256 ${SHA} (what \`fleetboot-agent enroll --ca-sha256\` takes)`,
      '  Console    https://10.0.0.5:8443/ui/ (the web console: log in as a user)',
      '  TFTP       UDP 69 on all addresses, root /srv/fleetboot/data/tftp',
      '  DHCP       proxyDHCP on UDP 67 and 4011, beside your DHCP server (it hands out no addresses)',
      '  API token  /srv/fleetboot/data/api-token (mode 0600, this user only; other users: --token-file FILE or FLEETBOOT_TOKEN)',
      '  Imaging    no boot environment in /srv/fleetboot/data/bootenv: machines still boot, imaging tasks fail until it is built',
      '             build it with: npx fleetboot bootenv build',
      '  Users      none yet (there is no default password): add the first admin, it prints a one-time password:',
      '             npx fleetboot user add admin --role admin',
      'Next steps (another terminal):',
      '  npx fleetboot status',
      '  npx fleetboot entry add NAME --kernel FILE --initrd FILE --cmdline TEXT',
      '  npx fleetboot host add MAC --name NAME --entry NAME',
      '  npx fleetboot host list',
      '  npx fleetboot firewall --for nft|iptables|ufw|firewalld|windows (the rules that open these ports)',
      '',
    ].join('\n'),
  );
});

test('formatStartSummary() on a later start in server mode: pools, ready boot environment, no next steps', () => {
  const config = loadConfig({
    cwd: '/srv',
    overrides: { dataDir: '/var/lib/fleetboot', serverIp: '10.0.0.5', dhcp: { mode: 'server', pools: [{ ...POOL_DEFAULTS, start: '10.0.0.100', end: '10.0.0.199', netmask: '255.255.255.0' }] } },
  });
  const text = formatStartSummary({
    version: '0.1.0',
    config,
    running: { serverIp: '10.0.0.5', baseUrl: 'http://10.0.0.5:8080', httpPort: 8080, httpsPort: null, tftpPort: null, dhcpPorts: { dhcp: 67, pxe: 4011 }, firstStart: false, users: 2 },
    tls: null,
    bootEnvReady: true,
    consoleBuilt: false,
    cli: 'fleetboot',
    cwd: '/srv',
  });
  assert.match(text, /^  TFTP       off$/m);
  assert.match(text, /^  Console    not built: run `npm run build` in Fleetboot's directory, then open http:\/\/10\.0\.0\.5:8080\/ui\/$/m);
  assert.match(text, /^  DHCP       DHCP server on UDP 67 and 4011, pools 10\.0\.0\.100-10\.0\.0\.199$/m);
  assert.match(text, /^  Imaging    boot environment ready in \/var\/lib\/fleetboot\/bootenv$/m);
  assert.match(text, /^  Commands   fleetboot --help \(with --data-dir \/var\/lib\/fleetboot\)\n$/m);
  assert.doesNotMatch(text, /Next steps/);
  assert.doesNotMatch(text, /HTTPS|CA /, 'HTTPS off: no HTTPS or CA line');
});

test("formatStartSummary() with the admin's certificate and no CA file says clients must trust it themselves", () => {
  const config = loadConfig({ cwd: '/srv', overrides: { serverIp: '10.0.0.5', https: { host: '10.0.0.5', port: 443, certFile: '/etc/ssl/pxe.crt', keyFile: '/etc/ssl/pxe.key' } } });
  const text = formatStartSummary({
    version: '0.1.0',
    config,
    running: { serverIp: '10.0.0.5', baseUrl: 'http://10.0.0.5:8080', httpPort: 8080, httpsPort: 443, tftpPort: 69, dhcpPorts: null, firstStart: false, users: 1 },
    tls: { caFile: null, caSha256: null, certFile: '/etc/ssl/pxe.crt' },
    bootEnvReady: true,
    consoleBuilt: true,
    cli: 'fleetboot',
    cwd: '/srv',
  });
  assert.match(text, /^  HTTPS      https:\/\/10\.0\.0\.5:443\/api\/v1 \(REST API\), the console and the endpoint agents; TCP 443 on 10\.0\.0\.5$/m);
  assert.match(text, /^  CA         none configured \(https\.caFile\): clients must trust \/etc\/ssl\/pxe\.crt through their own certificate stores$/m);
});

test('cliCommand() is fleetboot when it is on PATH, else npx fleetboot', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-path-'));
  try {
    assert.equal(cliCommand(`/nonexistent:${dir}`), 'npx fleetboot');
    writeFileSync(join(dir, 'fleetboot'), '#!/bin/sh\n');
    chmodSync(join(dir, 'fleetboot'), 0o755);
    assert.equal(cliCommand(`/nonexistent:${dir}`), 'fleetboot');
    assert.equal(cliCommand(undefined), 'npx fleetboot');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
