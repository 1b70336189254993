/**
 * The agent's version: FLEETBOOT_AGENT_VERSION when the bundle defines it
 * (`esbuild --define:FLEETBOOT_AGENT_VERSION='"0.1.0"'`), else the version
 * of the fleetboot package.json above this file (a checkout, or a bundle
 * installed inside the package), else 0.0.0.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

declare const FLEETBOOT_AGENT_VERSION: string | undefined;

const VERSION_RE = /^[A-Za-z0-9._+-]{1,64}$/;

export function agentVersion(): string {
  if (typeof FLEETBOOT_AGENT_VERSION === 'string' && VERSION_RE.test(FLEETBOOT_AGENT_VERSION)) return FLEETBOOT_AGENT_VERSION;
  let dir: string;
  try {
    dir = dirname(fileURLToPath(import.meta.url));
  } catch {
    return '0.0.0';
  }
  for (let i = 0; i < 6; i++) {
    try {
      const pkg: unknown = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      if (typeof pkg === 'object' && pkg !== null && 'name' in pkg && pkg.name === 'fleetboot' && 'version' in pkg && typeof pkg.version === 'string' && VERSION_RE.test(pkg.version)) return pkg.version;
    } catch {
      // not here: go up
    }
    dir = dirname(dir);
  }
  return '0.0.0';
}
