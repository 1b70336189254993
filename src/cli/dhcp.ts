/**
 * `fleetboot dhcp leases [--active]`: the DHCP server's leases, through the HTTP API.
 */
import type { Command } from 'commander';
import { connect } from './client.js';
import type { GlobalOptions } from './globals.js';
import { printJson, printTable } from './output.js';

interface LeaseInfo {
  ip: string;
  mac: string;
  clientId: string | null;
  hostname: string | null;
  state: string;
  expiresAt: string;
  updatedAt: string;
  active: boolean;
}

export function registerDhcpCommands(program: Command, globals: GlobalOptions): void {
  const dhcp = program.command('dhcp').description('the DHCP server (dhcp.mode server)');
  dhcp
    .command('leases')
    .description('list leases (all addresses ever handed out; --active: only those held now)')
    .option('--active', 'only leases held now (offered, bound, declined and not expired)')
    .action(async (opts: { active?: boolean }) => {
      const api = await connect(globals);
      const r = await api.request<{ mode: string; leases: LeaseInfo[] }>('GET', `/dhcp/leases${opts.active ? '?all=false' : ''}`);
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
}
