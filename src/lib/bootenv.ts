/**
 * The imaging boot environment as the server and the CLI see it: the
 * command that builds it (named in every message about a missing one), the
 * files that must be there, and what bootenv.json says about them. No I/O
 * here (boot/ imports it); src/cli/bootenv.ts looks at the files.
 */
import { resolve } from 'node:path';

/** The command that builds the boot environment (`fleetboot bootenv build`, src/cli/bootenv.ts). */
export const BOOTENV_BUILD_COMMAND = 'fleetboot bootenv build';

/** The files the boot environment needs; bootenv.json only describes them. */
export const BOOTENV_FILES = ['vmlinuz', 'initrd.img'] as const;
export const BOOTENV_INFO_FILE = 'bootenv.json';

export interface BootEnvInfo {
  builtAt: string | null;
  kernelVersion: string | null;
  kernelPackage: string | null;
  initrdCompression: string | null;
  modules: number | null;
  firmwareMissing: number | null;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/** The fields of bootenv.json worth showing (scripts/build-bootenv.sh writes it); null when it is not a JSON object. */
export function parseBootEnvInfo(text: string): BootEnvInfo | null {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isRecord(j)) return null;
  const kernel = isRecord(j.kernel) ? j.kernel : {};
  const initrd = isRecord(j.initrd) ? j.initrd : {};
  const firmware = isRecord(j.firmware) ? j.firmware : {};
  return {
    builtAt: str(j.builtAt),
    kernelVersion: str(kernel.version),
    kernelPackage: str(kernel.packageVersion),
    initrdCompression: str(initrd.compression),
    modules: Array.isArray(j.modules) ? j.modules.length : null,
    firmwareMissing: Array.isArray(firmware.missing) ? firmware.missing.length : null,
  };
}

/** Quote a path for a shell command line only when it needs it. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The exact command that builds the boot environment `bootEnvDir` of a
 * server whose data directory is `dataDir`: `--data-dir` only when it is not
 * the default ./data, `--dir` when the directory is not <dataDir>/bootenv.
 */
export function bootEnvBuildCommand(bootEnvDir: string, dataDir: string, cwd: string = process.cwd()): string {
  const args: string[] = [];
  if (resolve(cwd, dataDir) !== resolve(cwd, 'data')) args.push('--data-dir', shellWord(dataDir));
  if (resolve(cwd, bootEnvDir) !== resolve(cwd, dataDir, 'bootenv')) args.push('--dir', shellWord(bootEnvDir));
  return [BOOTENV_BUILD_COMMAND, ...args].join(' ');
}
