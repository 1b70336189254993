/** Fleetboot's version, and where its package is: from the package.json above this file (in src/ or in dist/src/). */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: { root: string | null; version: string } | null = null;

function findPackage(): { root: string | null; version: string } {
  if (cached !== null) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg: unknown = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      if (typeof pkg === 'object' && pkg !== null && 'name' in pkg && pkg.name === 'fleetboot' && 'version' in pkg && typeof pkg.version === 'string') {
        cached = { root: dir, version: pkg.version };
        return cached;
      }
    } catch {
      // not here; go up
    }
    dir = dirname(dir);
  }
  cached = { root: null, version: '0.0.0' };
  return cached;
}

export function fleetbootVersion(): string {
  return findPackage().version;
}

/** The directory of Fleetboot's package.json (the checkout), for files served as they are (src/http/api-docs/). */
export function fleetbootRoot(): string {
  const { root } = findPackage();
  if (root === null) throw new Error(`Cannot find Fleetboot's package.json above ${dirname(fileURLToPath(import.meta.url))}: is this a complete Fleetboot checkout?`);
  return root;
}
