/**
 * The CLI as one ES module (esbuild, npm packages left to node_modules), for
 * lab tests that start many short-lived `fleetboot` processes: it starts in
 * about a tenth of the time tsx takes to compile the sources each time, and
 * stays as close to them as the compiled program. Written to
 * build/test/fleetboot-cli.mjs, two levels below the repository like
 * dist/src/cli, so the native addon and package.json are found the same way.
 */
import { build } from 'esbuild';
import { join } from 'node:path';
import type { Argv } from '../../src/lib/programs.js';

const ROOT = new URL('../..', import.meta.url).pathname;

let bundled: Promise<string> | null = null;
let imagerBundled: Promise<string> | null = null;

/**
 * Argv prefix that runs the imaging agent (`fleetboot-imager`, src/agent/main.ts)
 * bundled as the boot environment bundles it: self-contained.
 */
export async function bundledImager(): Promise<Argv> {
  imagerBundled ??= (async () => {
    const outfile = join(ROOT, 'build', 'test', 'fleetboot-imager.mjs');
    await build({ entryPoints: [join(ROOT, 'src/agent/main.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning', outfile });
    return outfile;
  })();
  return ['node', await imagerBundled];
}

/** Argv prefix that runs the bundled CLI: ['node', bundle] (spread it through resolveArgv). Built once per test process. */
export async function bundledCli(): Promise<Argv> {
  bundled ??= (async () => {
    const outfile = join(ROOT, 'build', 'test', 'fleetboot-cli.mjs');
    await build({ entryPoints: [join(ROOT, 'src/cli/main.ts')], bundle: true, packages: 'external', platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning', outfile });
    return outfile;
  })();
  return ['node', await bundled];
}
