/**
 * `fleetboot bootenv build|status`: the imaging boot environment on this
 * machine. Files only, no server needed. `build` runs
 * scripts/build-bootenv.sh (from the package this CLI belongs to) with
 * `--out <data-dir>/bootenv`, its output on this terminal, and ends with the
 * script's exit status; `status` says whether the files are there and what
 * bootenv.json says about them (exit status 1 when they are not).
 */
import { spawn } from 'node:child_process';
import { program } from '../lib/programs.js';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { constants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { BOOTENV_FILES, BOOTENV_INFO_FILE, bootEnvBuildCommand, parseBootEnvInfo, type BootEnvInfo } from '../lib/bootenv.js';
import { prepareDataDir } from '../store/data-dir.js';
import { CliError, defaultDataDir } from './client.js';
import { ExitStatus, type GlobalOptions } from './globals.js';
import { formatBytes } from './imaging.js';
import { printJson, printLine } from './output.js';

export const BUILD_SCRIPT = join('scripts', 'build-bootenv.sh');
/** Where scripts/serve.sh keeps the build's download cache when it runs as root; `bootenv build` as root uses it too. */
export const ROOT_BUILD_CACHE = '/var/cache/fleetboot/bootenv-build';

export interface BootEnvStatus {
  dir: string;
  /** Every file of BOOTENV_FILES is a non-empty regular file. */
  ready: boolean;
  /** Size of each file, null when absent (or not a regular file). */
  files: Array<{ name: string; bytes: number | null }>;
  /** From bootenv.json when it is there and readable. */
  info: BootEnvInfo | null;
}

export async function bootEnvStatus(dir: string): Promise<BootEnvStatus> {
  const files = await Promise.all(
    BOOTENV_FILES.map(async (name) => {
      try {
        const st = await stat(join(dir, name));
        return { name, bytes: st.isFile() ? st.size : null };
      } catch {
        return { name, bytes: null };
      }
    }),
  );
  let info: BootEnvInfo | null = null;
  try {
    info = parseBootEnvInfo(await readFile(join(dir, BOOTENV_INFO_FILE), 'utf8'));
  } catch {
    // absent: the files may still be there (built by hand)
  }
  return { dir, ready: files.every((f) => f.bytes !== null && f.bytes > 0), files, info };
}

/** The package root (the directory with package.json and scripts/), from src/cli/ or dist/src/cli/. */
export function packageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from, i = 0; i < 6; i++, dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, BUILD_SCRIPT))) return dir;
  }
  throw new CliError(`Cannot find ${BUILD_SCRIPT} above ${from}: is this a complete Fleetboot checkout?`);
}

/** The arguments of `bash` for a build (exported for the tests). */
export function buildArgs(root: string, out: string, opts: { force?: boolean; cache?: string | null }): string[] {
  const args = [join(root, BUILD_SCRIPT), '--out', out];
  if (opts.cache) args.push('--cache', opts.cache);
  if (opts.force) args.push('--force');
  return args;
}

/** Run bash with `args`, output to this process's stdout/stderr; resolves to an exit status (128+N for signal N). */
function run(args: string[]): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(program('bash'), args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', (err) => reject(new CliError(`Cannot run bash: ${err.message}`)));
    child.once('exit', (code, signal) => {
      if (code !== null) resolvePromise(code);
      else resolvePromise(128 + (signal ? (constants.signals[signal] ?? 0) : 0));
    });
  });
}

function describe(s: BootEnvStatus, buildCommand: string): string[] {
  const lines = [`Boot environment in ${s.dir}: ${s.ready ? 'ready' : 'missing'}`];
  for (const f of s.files) lines.push(`  ${f.name.padEnd(11)} ${f.bytes === null ? 'missing' : (formatBytes(f.bytes) ?? '-')}`);
  const i = s.info;
  if (i) {
    const parts = [
      i.builtAt ? `built ${i.builtAt}` : null,
      i.kernelVersion ? `kernel ${i.kernelVersion}` : null,
      i.modules !== null ? `${i.modules} modules` : null,
      i.initrdCompression ? `initramfs ${i.initrdCompression}` : null,
      i.firmwareMissing ? `${i.firmwareMissing} firmware files missing (docs/bootenv.md)` : null,
    ].filter((x): x is string => x !== null);
    if (parts.length) lines.push(`  ${parts.join(', ')}`);
  }
  if (!s.ready) lines.push(`Imaging tasks cannot run until it is built: ${buildCommand}`);
  return lines;
}

interface DirFlags {
  dir?: string;
}

export function registerBootenvCommands(program: Command, globals: GlobalOptions): void {
  const be = program.command('bootenv').description('the imaging boot environment (kernel + initramfs with the agent) on this machine');
  const dirOf = (flags: DirFlags): string => (flags.dir ? resolve(flags.dir) : join(defaultDataDir(globals), 'bootenv'));

  be.command('build')
    .description('build it from Debian packages with scripts/build-bootenv.sh (needs apt to reach a Debian mirror; about a minute the first time)')
    .option('--dir <dir>', 'where to put it (default <data-dir>/bootenv, where the server looks)')
    .option('--force', 'rebuild even when it is up to date (and ask apt again which kernel is current)')
    .option('--cache <dir>', `download cache (default ${ROOT_BUILD_CACHE} as root, else the script's own)`)
    .action(async (flags: DirFlags & { force?: boolean; cache?: string }) => {
      const root = packageRoot();
      // A new data directory is private from the start (the server would tighten it anyway).
      if (!flags.dir) prepareDataDir(defaultDataDir(globals));
      const cache = flags.cache ? resolve(flags.cache) : process.getuid?.() === 0 ? ROOT_BUILD_CACHE : null;
      const code = await run(buildArgs(root, dirOf(flags), { force: flags.force === true, cache }));
      if (code !== 0) throw new ExitStatus(code, `building the boot environment failed (exit status ${code}; the reason is above)`);
    });

  be.command('status')
    .description('whether its files are there, and what bootenv.json says (exit status 1 when they are not)')
    .option('--dir <dir>', 'where it is (default <data-dir>/bootenv)')
    .action(async (flags: DirFlags) => {
      const dir = dirOf(flags);
      const s = await bootEnvStatus(dir);
      const buildCommand = bootEnvBuildCommand(dir, defaultDataDir(globals));
      if (globals.json) printJson({ ...s, buildCommand });
      else for (const line of describe(s, buildCommand)) printLine(line);
      if (!s.ready) throw new ExitStatus(1);
    });
}
