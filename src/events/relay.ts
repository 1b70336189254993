/**
 * The live events of every server sharing the PostgreSQL store, on each
 * one's bus (src/store/cluster.ts carries them).
 *
 * - What this server's bus delivers (after its coalescing: at most one
 *   progress per task and second) goes to the others as JSON without its
 *   id. Events over the signal limit are dropped with a log line (none of
 *   today's kinds come near it).
 * - What another server sent is published on this bus with `node` set to
 *   that server's node name, and gets an id of this bus: ids stay
 *   `<epoch>-<seq>` of the server the client is connected to, so
 *   Last-Event-ID resumes on that server exactly as before (a client moved
 *   to another server gets `reset`, as after a restart). Events with `node`
 *   are not sent on again (no loops; echoes of one's own signals are
 *   dropped by the cluster signals already).
 * On SQLite nothing is sent or received.
 */
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { isLiveEventKind, type LiveEventInput } from '../model/events.js';
import { MAX_SIGNAL_BYTES, type ClusterSignals } from '../store/cluster.js';
import type { EventBus } from './bus.js';

export function relayEvents(bus: EventBus, signals: ClusterSignals, o: { node: string; log: Logger }): () => void {
  if (!signals.shared) return () => {};
  const sub = bus.subscribe((e) => {
    if (e.node !== undefined) return;
    const { id: _id, ...rest } = e;
    const text = JSON.stringify({ ...rest, node: o.node });
    if (Buffer.byteLength(text) + signals.origin.length + 1 > MAX_SIGNAL_BYTES) {
      o.log.warn({ subsystem: 'events', kind: e.kind, bytes: Buffer.byteLength(text) }, `a ${e.kind} event is too big to tell the other servers (PostgreSQL's NOTIFY takes under 8000 bytes): only this server's streams have it`);
      return;
    }
    void signals.notify('fleetboot_events', text);
  });
  const off = signals.on('fleetboot_events', (payload) => {
    let v: unknown;
    try {
      v = JSON.parse(payload);
    } catch (err) {
      o.log.warn({ subsystem: 'events', err: errorMessage(err) }, 'an event from another server is not JSON: ignored');
      return;
    }
    if (typeof v !== 'object' || v === null || !isLiveEventKind((v as { kind?: unknown }).kind) || typeof (v as { node?: unknown }).node !== 'string') {
      o.log.warn({ subsystem: 'events' }, 'an event from another server has no known kind or node: ignored');
      return;
    }
    bus.publish(v as LiveEventInput);
  });
  return () => {
    sub.unsubscribe();
    off();
  };
}
