/**
 * Which program reads/writes a filesystem: partclone.<fs> (only used blocks)
 * for the filesystems partclone knows, raw bytes for anything else.
 */
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { isProgramName, type ProgramName } from '../lib/programs.js';

/** blkid TYPE -> the partclone tool recorded in the manifest, or 'raw'. */
export function toolFor(filesystem: string | null): string {
  switch (filesystem) {
    case 'ext2':
    case 'ext3':
    case 'ext4':
      return 'partclone.extfs';
    case 'vfat':
    case 'fat':
    case 'msdos':
      return 'partclone.fat';
    case 'ntfs':
      return 'partclone.ntfs';
    case 'xfs':
      return 'partclone.xfs';
    case 'btrfs':
      return 'partclone.btrfs';
    default:
      return 'raw';
  }
}

/** Program names that do the work of a manifest tool (Debian installs aliases; the boot environment may carry only one). */
const ALIASES: Record<string, ProgramName[]> = {
  'partclone.extfs': ['partclone.extfs', 'partclone.ext4', 'partclone.ext3', 'partclone.ext2'],
  'partclone.fat': ['partclone.fat', 'partclone.vfat', 'partclone.fat32', 'partclone.fat16', 'partclone.fat12'],
};

/** Find an executable in PATH. */
export function which(name: string, path = process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'): string | null {
  for (const dir of path.split(':')) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

/**
 * The program to run for a manifest tool (partclone.extfs -> partclone.ext4
 * when only that exists), or null: also null for a tool src/lib/programs.ts
 * does not list (a manifest is data from elsewhere; we run only listed programs).
 */
export function resolveTool(tool: string, path?: string): ProgramName | null {
  for (const name of ALIASES[tool] ?? (isProgramName(tool) ? [tool] : [])) {
    if (which(name, path)) return name;
  }
  return null;
}

/** partclone's summary on stderr: "Space in use: 10.1 MB = 9870 Blocks" and "Block size: 1024 Byte". */
export function parsePartcloneUsed(stderr: string): number | null {
  const text = stderr.replace(/\r/g, '\n');
  const used = /Space in use:[^=\n]*=\s*(\d+)\s*Blocks/i.exec(text);
  const bs = /Block size:\s*(\d+)\s*Byte/i.exec(text);
  if (!used?.[1] || !bs?.[1]) return null;
  return Number(used[1]) * Number(bs[1]);
}
