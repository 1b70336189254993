/**
 * When each boot subsystem last answered a client, for /api/v1/status and
 * `fleetboot doctor`: the time of the newest recorded boot step of each
 * kind (a DHCP answer, a TFTP reply, an HTTP fetch of the boot chain), kept
 * in memory since the server started. Fed by the boot recorder's
 * subscription (src/server.ts). Pure.
 */
import type { BootEventKind } from '../model/boot-event.js';

export interface ActivitySnapshot {
  /** ISO times; null: not since the server started. */
  dhcp: string | null;
  tftp: string | null;
  http: string | null;
}

export interface ActivityTracker {
  note(e: { kind: BootEventKind; at: string }): void;
  snapshot(): ActivitySnapshot;
}

export function createActivityTracker(): ActivityTracker {
  const last: ActivitySnapshot = { dhcp: null, tftp: null, http: null };
  return {
    note(e) {
      if (e.kind !== 'dhcp' && e.kind !== 'tftp' && e.kind !== 'http') return;
      const prev = last[e.kind];
      if (prev === null || Date.parse(e.at) >= Date.parse(prev)) last[e.kind] = e.at;
    },
    snapshot() {
      return { ...last };
    },
  };
}
