/** Fleetboot's version and package directory, from the package.json above this file (in src/ or in dist/src/). */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let found: { root: string; version: string } | null | undefined;

function findPackage(): { root: string; version: string } | null {
  if (found !== undefined) return found;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg: unknown = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      if (typeof pkg === 'object' && pkg !== null && 'name' in pkg && pkg.name === 'fleetboot' && 'version' in pkg && typeof pkg.version === 'string') {
        found = { root: dir, version: pkg.version };
        return found;
      }
    } catch {
      // not here; go up
    }
    dir = dirname(dir);
  }
  found = null;
  return found;
}

export function fleetbootVersion(): string {
  return findPackage()?.version ?? '0.0.0';
}

/** The directory of Fleetboot's package.json (web/dist, the console's build, is under it), or null. */
export function fleetbootPackageDir(): string | null {
  return findPackage()?.root ?? null;
}
