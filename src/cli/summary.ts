/**
 * What `fleetboot serve` prints once it is up, for the person who started
 * it: what it serves where (HTTP, and HTTPS with the CA's SHA-256 that
 * endpoint agents pin), where the API token is, whether imaging can
 * run, how to add the first admin while there is no user, and, on the
 * first start (the API token was just created), the next commands to run. It goes to stderr on every start, whatever the log format:
 * stdout carries the log, whose JSON lines must stay parseable; on a
 * terminal both show. The log's 'fleetboot started' event has the same facts
 * for machines.
 */
import { existsSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import type { FleetbootConfig } from '../config/config.js';
import { FIREWALL_FLAVORS } from '../config/firewall.js';
import { bootEnvBuildCommand, shellWord } from '../lib/bootenv.js';

export interface SummaryInput {
  version: string;
  config: Readonly<FleetbootConfig>;
  running: {
    serverIp: string;
    baseUrl: string;
    httpPort: number;
    /** null: HTTPS is off. */
    httpsPort: number | null;
    tftpPort: number | null;
    dhcpPorts: { dhcp: number; pxe: number } | null;
    firstStart: boolean;
    /** Users in the store (none: say how to add the first admin). */
    users: number;
  };
  /** The CA clients pin (its file and SHA-256, or null: an admin's certificate without https.caFile), and the certificate served; null when HTTPS is off. */
  tls: { caFile: string | null; caSha256: string | null; certFile: string } | null;
  bootEnvReady: boolean;
  /** Whether the web console is built (web/dist/index.html). */
  consoleBuilt: boolean;
  /** How to call the CLI here: 'fleetboot' when it is on PATH, else 'npx fleetboot' (see cliCommand). */
  cli: string;
  cwd: string;
}

/** 'fleetboot' when an executable of that name is on `path` (the PATH value), else 'npx fleetboot' (from the package root). */
export function cliCommand(path: string | undefined): string {
  const found = (path ?? '').split(delimiter).some((d) => d !== '' && existsSync(join(d, 'fleetboot')));
  return found ? 'fleetboot' : 'npx fleetboot';
}

function dhcpLine(c: Readonly<FleetbootConfig>, ports: { dhcp: number; pxe: number } | null, cli: string): string {
  if (c.dhcp.mode === 'off' || ports === null) {
    return `off: your DHCP server must send the boot file (\`${cli} dhcp options --for isc|kea|dnsmasq|windows\` prints its settings)`;
  }
  if (c.dhcp.mode === 'proxy') return `proxyDHCP on UDP ${ports.dhcp} and ${ports.pxe}, beside your DHCP server (it hands out no addresses)`;
  const pools = c.dhcp.pools.map((p) => `${p.start}-${p.end}`).join(', ');
  return `DHCP server on UDP ${ports.dhcp} and ${ports.pxe}, ${pools ? `pools ${pools}` : 'no pools (only reservations)'}`;
}

/** The HTTPS and CA lines (none when HTTPS is off). */
function httpsLines(s: SummaryInput, httpsBase: string | null): string[] {
  const c = s.config;
  if (httpsBase === null || s.tls === null) return [];
  const at = c.https.host === '0.0.0.0' ? 'all addresses' : c.https.host;
  const lines = [`  HTTPS      ${httpsBase}/api/v1 (REST API), the console and the endpoint agents; TCP ${s.running.httpsPort} on ${at}`];
  if (s.tls.caFile === null || s.tls.caSha256 === null) {
    lines.push(`  CA         none configured (https.caFile): clients must trust ${s.tls.certFile} through their own certificate stores`);
  } else {
    lines.push(`  CA         ${s.tls.caFile} (browsers import it; \`${s.cli} ca show\` prints it)`, `             SHA-256 ${s.tls.caSha256} (what \`fleetboot-agent enroll --ca-sha256\` takes)`);
  }
  return lines;
}

export function formatStartSummary(s: SummaryInput): string {
  const c = s.config;
  const r = s.running;
  const at = c.http.host === '0.0.0.0' ? 'all addresses' : c.http.host;
  const httpsBase = r.httpsPort === null ? null : `https://${r.serverIp}:${r.httpsPort}`;
  const consoleUrl = `${httpsBase ?? r.baseUrl}/ui/`;
  const dataArg = resolve(s.cwd, c.dataDir) === resolve(s.cwd, 'data') ? '' : ` --data-dir ${shellWord(c.dataDir)}`;
  const fb = s.cli;
  const lines = [
    `Fleetboot ${s.version} is running (data directory ${c.dataDir})`,
    `  HTTP       ${r.baseUrl}/boot.ipxe (iPXE script) and ${r.baseUrl}/api/v1 (REST API); TCP ${r.httpPort} on ${at}`,
    ...httpsLines(s, httpsBase),
    s.consoleBuilt ? `  Console    ${consoleUrl} (the web console: log in as a user)` : `  Console    not built: run \`npm run build\` in Fleetboot's directory, then open ${consoleUrl}`,
    `  TFTP       ${r.tftpPort === null ? 'off' : `UDP ${r.tftpPort} on ${c.tftp.bindAddress === '0.0.0.0' ? 'all addresses' : c.tftp.bindAddress}, root ${c.tftp.root}`}`,
    `  DHCP       ${dhcpLine(c, r.dhcpPorts, fb)}`,
    `  API token  ${join(c.dataDir, 'api-token')} (mode 0600, this user only; other users: --token-file FILE or FLEETBOOT_TOKEN)`,
  ];
  if (s.bootEnvReady) lines.push(`  Imaging    boot environment ready in ${c.imaging.bootEnvDir}`);
  else {
    lines.push(
      `  Imaging    no boot environment in ${c.imaging.bootEnvDir}: machines still boot, imaging tasks fail until it is built`,
      `             build it with: ${bootEnvBuildCommand(c.imaging.bootEnvDir, c.dataDir, s.cwd).replace(/^fleetboot/, fb)}`,
    );
  }
  if (r.users === 0) {
    lines.push(
      `  Users      none yet (there is no default password): add the first admin, it prints a one-time password:`,
      `             ${fb} user add admin --role admin${dataArg}`,
    );
  }
  if (r.firstStart) {
    lines.push(
      'Next steps (another terminal):',
      `  ${fb} status${dataArg}`,
      `  ${fb} entry add NAME --kernel FILE --initrd FILE --cmdline TEXT${dataArg}`,
      `  ${fb} host add MAC --name NAME --entry NAME${dataArg}`,
      `  ${fb} host list${dataArg}`,
      `  ${fb} firewall --for ${FIREWALL_FLAVORS.join('|')} (the rules that open these ports)`,
    );
  } else {
    lines.push(`  Commands   ${fb} --help${dataArg ? ` (with${dataArg})` : ''}`);
  }
  return lines.join('\n') + '\n';
}
