/**
 * `fleetboot ports` and `fleetboot firewall --for FLAVOR`: what Fleetboot
 * listens on and the rules that open it, from the same configuration (config
 * file and flags) that `serve` would run with. They read no server state.
 */
import type { Command } from 'commander';
import { loadConfig } from '../config/config.js';
import { commandLines, FIREWALL_FLAVORS, firewallRules, type FirewallFlavor } from '../config/firewall.js';
import { requiredPorts } from '../config/ports.js';
import { UsageError, type GlobalOptions } from './globals.js';
import { printJson, printLine, printTable } from './output.js';
import { addServeOptions, serveOverrides, type ServeFlags } from './serve.js';

function configFrom(globals: GlobalOptions, flags: ServeFlags) {
  return loadConfig({ ...(flags.config ? { file: flags.config } : {}), overrides: serveOverrides(globals, flags) });
}

export function registerFirewallCommands(program: Command, globals: GlobalOptions): void {
  addServeOptions(program.command('ports').description('list the ports the server uses with this configuration (takes the serve flags)')).action(
    (flags: ServeFlags) => {
      const ports = requiredPorts(configFrom(globals, flags));
      if (globals.json) return printJson(ports);
      printTable(
        ['PROTO', 'PORT', 'SERVICE', 'SETTING', 'WHY'],
        ports.map((p) => [p.proto, p.port === null ? 'ephemeral' : Array.isArray(p.port) ? `${p.port[0]}-${p.port[1]}` : String(p.port), p.service, p.setting, p.why]),
        'no ports',
      );
    },
  );
  addServeOptions(
    program
      .command('firewall')
      .description('print the firewall rules that let clients reach the server (takes the serve flags)')
      .requiredOption('--for <flavor>', `firewall: ${FIREWALL_FLAVORS.join(', ')} (windows: PowerShell, then the same rules for netsh)`)
      .option('--output-filtering', 'also what a machine that drops outgoing traffic by default must let out, with the TFTP conntrack helper where one is needed'),
  ).action((flags: ServeFlags & { for: string; outputFiltering?: boolean }) => {
    if (!(FIREWALL_FLAVORS as readonly string[]).includes(flags.for)) {
      throw new UsageError(`--for must be one of ${FIREWALL_FLAVORS.join(', ')}: current value is ${JSON.stringify(flags.for)}`);
    }
    const lines = firewallRules(configFrom(globals, flags), flags.for as FirewallFlavor, { outputFiltering: flags.outputFiltering === true });
    if (globals.json) return printJson(commandLines(lines));
    for (const l of lines) printLine(l);
  });
}
