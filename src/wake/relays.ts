/**
 * The relay agents the DHCP services hear (giaddr of relayed requests),
 * kept in the store for Wake-on-LAN's directed broadcasts. The DHCP
 * services call note() for every relayed request; it writes a relay at
 * most every few minutes and never blocks or fails a DHCP answer.
 */
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Store } from '../store/db.js';
import { noteRelay } from '../store/relays.js';

/** A relay already written is written again (last seen) after this long. */
const REFRESH_MS = 10 * 60_000;
/** At most this many relays remembered between writes (a flood of forged giaddrs stays bounded). */
const MAX_TRACKED = 1024;

export interface RelayRecorder {
  note(giaddr: string): void;
}

export function createRelayRecorder(opts: { store: Store; log: Logger; now?: () => number }): RelayRecorder {
  const now = opts.now ?? Date.now;
  const log = opts.log.child({ subsystem: 'wake' });
  const written = new Map<string, number>();
  return {
    note(giaddr) {
      const n = now();
      const last = written.get(giaddr);
      if (last !== undefined && n - last < REFRESH_MS) return;
      if (last === undefined && written.size >= MAX_TRACKED) return;
      written.set(giaddr, n);
      noteRelay(opts.store.db, giaddr, new Date(n).toISOString()).then(
        (kept) => {
          if (kept && last === undefined) log.info({ giaddr }, `DHCP relay ${giaddr} heard: Wake-on-LAN reaches its subnet by directed broadcast`);
        },
        (err: unknown) => log.warn({ giaddr, err: errorMessage(err) }, 'recording a DHCP relay failed'),
      );
    },
  };
}
