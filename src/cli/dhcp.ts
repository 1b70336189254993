/**
 * `fleetboot dhcp leases [--active]`: the DHCP server's leases, through the HTTP API.
 * `fleetboot dhcp options --for isc|kea|dnsmasq|windows`: the settings another
 * DHCP server needs, from the serve configuration (like `fleetboot firewall`).
 * `fleetboot dhcp probe [--interface IFACE] [--timeout SECONDS]`: which DHCP
 * and proxyDHCP servers answer a PXE DISCOVER on a segment.
 */
import type { Command } from 'commander';
import { detectServerIp, httpBaseUrl, loadConfig } from '../config/config.js';
import { FOREIGN_FLAVORS, foreignDhcpConfig, type ForeignFlavor } from '../dhcp/foreign-config.js';
import { SHIM_FILE } from '../boot/grub.js';
import type { LeaseList } from '../http/schemas/index.js';
import { connect } from './client.js';
import { UsageError, type GlobalOptions } from './globals.js';
import { printJson, printLine, printTable } from './output.js';
import { addServeOptions, serveOverrides, type ServeFlags } from './serve.js';

export function registerDhcpCommands(program: Command, globals: GlobalOptions): void {
  const dhcp = program.command('dhcp').description('the DHCP server (dhcp.mode server)');
  dhcp
    .command('leases')
    .description('list leases (all addresses ever handed out; --active: only those held now)')
    .option('--active', 'only leases held now (offered, bound, declined and not expired)')
    .action(async (opts: { active?: boolean }) => {
      const api = await connect(globals);
      const r = await api.request<LeaseList>('GET', `/dhcp/leases${opts.active ? '?all=false' : ''}`);
      if (globals.json) {
        printJson(r.leases);
        return;
      }
      const when = (s: string): string => s.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
      printTable(
        ['IP', 'MAC', 'STATE', 'EXPIRES', 'HOSTNAME'],
        r.leases.map((l) => [l.ip, l.mac, l.active || l.state === 'released' || l.state === 'expired' ? l.state : 'expired', when(l.expiresAt), l.hostname]),
        r.mode === 'server' ? 'No leases.' : `No leases (dhcp.mode is '${r.mode}', not 'server').`,
      );
    });

  addServeOptions(
    dhcp
      .command('options')
      .description('print the settings another DHCP server needs so PXE clients boot from Fleetboot without the proxy (takes the serve flags)')
      .requiredOption('--for <server>', `the other DHCP server: ${FOREIGN_FLAVORS.join(', ')}`),
  ).action((flags: ServeFlags & { for: string }) => {
    if (!(FOREIGN_FLAVORS as readonly string[]).includes(flags.for)) {
      throw new UsageError(`--for must be one of ${FOREIGN_FLAVORS.join(', ')}: current value is ${JSON.stringify(flags.for)}`);
    }
    const config = loadConfig({ ...(flags.config ? { file: flags.config } : {}), overrides: serveOverrides(globals, flags) });
    const serverIp = config.serverIp ?? detectServerIp(config.interface);
    if (!serverIp) throw new UsageError('No server address: set --server-ip IP or --interface IFACE');
    if (config.http.port === 0 && !config.http.publicUrl) throw new UsageError('--http-port 0 (any free port) has no fixed URL for another server: set --http-port or --public-url');
    const lines = foreignDhcpConfig(flags.for as ForeignFlavor, { serverIp, httpBaseUrl: httpBaseUrl(config, serverIp), files: config.boot.files, secureBootLoader: config.uefi.secureBoot === 'off' ? null : SHIM_FILE });
    if (globals.json) return printJson({ for: flags.for, serverIp, lines });
    for (const l of lines) printLine(l);
  });

  dhcp
    .command('probe')
    .description('send a PXE DHCPDISCOVER on an interface and list every DHCP and proxyDHCP server that answers (needs root: port 68)')
    .option('--interface <iface>', 'interface to probe on (default: the one holding the first non-loopback IPv4 address)')
    .option('--timeout <seconds>', 'how long to collect answers (dnsmasq pings ~3 s before it offers)', '5')
    .action(async (opts: { interface?: string; timeout: string }) => {
      if (!/^\d+(\.\d+)?$/.test(opts.timeout) || Number(opts.timeout) <= 0 || Number(opts.timeout) > 120) {
        throw new UsageError(`--timeout must be a number of seconds (0-120]: current value is ${JSON.stringify(opts.timeout)}`);
      }
      const { interfaceOf, probeDhcpServers } = await import('../net/dhcp-probe.js');
      let iface = opts.interface ?? null;
      if (iface === null) {
        const ip = detectServerIp(null);
        iface = ip ? interfaceOf(ip) : null;
        if (iface === null) throw new UsageError('No interface with an IPv4 address found: set --interface IFACE');
      }
      const answers = await probeDhcpServers({ interface: iface, timeoutMs: Math.round(Number(opts.timeout) * 1000) });
      if (globals.json) return printJson({ interface: iface, servers: answers });
      printTable(
        ['SERVER', 'FROM', 'KIND', 'OFFERED', 'NEXT-SERVER', 'BOOT FILE'],
        answers.map((a) => [a.serverId, a.from, a.kind === 'proxy' ? 'proxyDHCP' : 'DHCP', a.offered ?? '-', a.nextServer ?? '-', a.bootFile ?? '-']),
        `No DHCP server answered on ${iface} within ${opts.timeout} s.`,
      );
    });
}
