/**
 * The `fleetboot` command line. Global options (--data-dir, --server,
 * --token, --json) are taken out of argv first, so they work anywhere.
 */
import { Command, CommanderError } from 'commander';
import { FleetbootError } from '../lib/errors.js';
import { fleetbootVersion } from '../http/version.js';
import { CliError } from './client.js';
import { registerApiCommands } from './commands.js';
import { ExitStatus, extractGlobalOptions, UsageError, type GlobalOptions } from './globals.js';
import { registerServe } from './serve.js';
import { registerFirewallCommands } from './firewall.js';
import { registerDoctorCommand } from './doctor.js';
import { registerDhcpCommands } from './dhcp.js';
import { registerImagingCommands } from './imaging.js';
import { registerBootenvCommands } from './bootenv.js';
import { registerMulticastCommands } from './multicast.js';
import { registerFleetCommands } from './fleet.js';
import { registerTimelineCommands } from './timeline.js';
import { registerUserCommands } from './users.js';
import { registerEventCommands } from './events.js';
import { registerAgentCommands } from './agents.js';
import { registerCaCommands } from './ca.js';
import { registerNodeCommands } from './nodes.js';

export function buildProgram(globals: GlobalOptions): Command {
  const program = new Command('fleetboot')
    .description('Network boot server: proxyDHCP, TFTP and iPXE over HTTP, with a REST API and this CLI.')
    .version(fleetbootVersion())
    .exitOverride()
    .showHelpAfterError()
    .addHelpText(
      'after',
      [
        '',
        'Global options (accepted anywhere on the command line, for every command):',
        '  --data-dir <dir>  the server data directory (default ./data); the CLI reads server.json and api-token there',
        '  --server <url>    the server URL (instead of <data-dir>/server.json)',
        '  --token <token>   the API token; visible to other local users in `ps`: prefer --token-file or FLEETBOOT_TOKEN',
        '  --token-file <f>  read the API token from this file (e.g. a copy of the server\'s <data-dir>/api-token)',
        '',
        'The API token is the first of: --token, --token-file, $FLEETBOOT_TOKEN, <data-dir>/api-token.',
        '  --json            print JSON instead of tables',
      ].join('\n'),
    );
  registerServe(program, globals);
  registerApiCommands(program, globals);
  registerImagingCommands(program, globals);
  registerTimelineCommands(program, globals);
  registerFleetCommands(program, globals);
  registerUserCommands(program, globals);
  registerEventCommands(program, globals);
  registerAgentCommands(program, globals);
  registerCaCommands(program, globals);
  registerFirewallCommands(program, globals);
  registerDoctorCommand(program, globals);
  registerDhcpCommands(program, globals);
  registerBootenvCommands(program, globals);
  registerMulticastCommands(program, globals);
  registerNodeCommands(program, globals);
  return program;
}

/** Run the CLI; returns the exit status for commands that finish (serve keeps running). */
export async function runCli(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = process.env): Promise<number> {
  try {
    const { globals, rest } = extractGlobalOptions(argv, env);
    const program = buildProgram(globals);
    await program.parseAsync(rest, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed help, the version or the usage error
      return err.exitCode;
    }
    if (err instanceof ExitStatus) {
      if (err.message !== '') process.stderr.write(`fleetboot: ${err.message}\n`);
      return err.code;
    }
    if (err instanceof CliError || err instanceof FleetbootError || err instanceof UsageError) {
      process.stderr.write(`fleetboot: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`fleetboot: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}
