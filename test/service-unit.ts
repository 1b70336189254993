/** Reading packaging/fleetboot.service, for the unit test and the lab test that runs the server with its capabilities. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
export const UNIT_FILE = join(ROOT, 'packaging/fleetboot.service');

/** The unit's Key=value lines (comments and sections left out). */
export function unitSettings(text: string): string[] {
  return text.split('\n').filter((l) => /^[A-Za-z]+=/.test(l));
}

/**
 * The capabilities the unit gives (AmbientCapabilities), lower-case without
 * CAP_ (setpriv's spelling); they must equal CapabilityBoundingSet's.
 */
export function unitCapabilities(text: string = readFileSync(UNIT_FILE, 'utf8')): string[] {
  const list = (key: string): string[] => {
    const line = unitSettings(text).find((l) => l.startsWith(`${key}=`));
    if (!line) throw new Error(`the unit has no ${key}=`);
    return line.slice(key.length + 1).trim().split(/\s+/).map((c) => c.replace(/^CAP_/, '').toLowerCase()).sort();
  };
  const ambient = list('AmbientCapabilities');
  const bounding = list('CapabilityBoundingSet');
  if (ambient.join() !== bounding.join()) throw new Error(`AmbientCapabilities (${ambient.join(', ')}) and CapabilityBoundingSet (${bounding.join(', ')}) differ`);
  return ambient;
}
