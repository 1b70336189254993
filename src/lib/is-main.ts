/**
 * Whether the module at `moduleUrl` (its import.meta.url) is the program
 * node was started with (process.argv[1], links resolved): a module that is
 * both a library and a command runs its command only then.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function isMainModule(moduleUrl: string, argv1: string | undefined = process.argv[1]): boolean {
  if (!argv1) return false;
  try {
    return realpathSync(fileURLToPath(moduleUrl)) === realpathSync(argv1);
  } catch {
    return false;
  }
}
