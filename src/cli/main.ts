#!/usr/bin/env node
/** Entry point of the `fleetboot` command (bin/fleetboot.js loads the compiled copy). */
import { runCli } from './program.js';

process.exitCode = await runCli(process.argv.slice(2));
