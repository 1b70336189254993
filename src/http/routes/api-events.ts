/**
 * Live events (role viewer), one stream per browser tab:
 *   GET /api/v1/events[?lastEventId=ID][?history=true]
 *        text/event-stream (src/model/events.ts lists the kinds and their
 *        fields); history: start with the events still kept (the newest
 *        5,000 of the last 5 minutes), e.g. for `fleetboot events`
 *
 * Made for EventSource: it sends the session cookie (a GET needs no CSRF
 * token) and, when it reconnects, `Last-Event-ID`; the query parameter is
 * for a client that opens a new stream itself. The stream starts with a
 * `retry:` hint, then what the bus answers (src/events/bus.ts): the events
 * missed and `ready`, or `reset`, or `ready` alone for a new stream.
 *
 * It is sent as a stream through reply.send(), not hijacked, so the
 * request's hooks (the role check before, onResponse after) run as for any
 * route. A comment every `heartbeatMs` keeps proxies from closing it; at
 * each, the credentials are checked again (src/auth/service.ts recheck:
 * the stream itself does not keep a session from its idle timeout), and
 * the stream ends with an `end` event once they no longer hold (revoked,
 * expired, idle, user disabled). Also ended: every stream when the server
 * closes (preClose: app.close() does not wait on them), and a client so far
 * behind that `maxBufferedBytes` wait for it (cut off; it reconnects and
 * resumes). At most `maxPerPrincipal` streams are open at once per
 * session, API token or local token (429 beyond).
 *
 * Every kind is a viewer's to see: events carry no secret (no task token,
 * no password, no session); EVENT_ROLES is where a kind would be kept for
 * a higher role.
 */
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { FleetbootError, errorMessage } from '../../lib/errors.js';
import { sseBlock, sseComment, sseRetry } from '../../lib/sse.js';
import type { LiveEvent, LiveEventKind, StreamEvent } from '../../model/events.js';
import { roleAtLeast, type Role } from '../../model/roles.js';
import type { Principal } from '../../auth/service.js';
import { principalOf } from '../auth.js';
import type { AppContext } from '../context.js';
import { eventsApi } from '../schemas/events.js';

export interface EventStreamOptions {
  /** A comment this often; the credentials are checked again at each. Default 15 s. */
  heartbeatMs?: number;
  /** The reconnection delay suggested to clients (`retry:`). Default 3 s. */
  retryMs?: number;
  /** Streams open at once per session or token. Default 20. */
  maxPerPrincipal?: number;
  /** A client with this much waiting to be sent is cut off. Default 1 MiB. */
  maxBufferedBytes?: number;
}

/** The least role that sees each kind. */
export const EVENT_ROLES: Readonly<Record<LiveEventKind, Role>> = {
  'task.progress': 'viewer',
  'task.state': 'viewer',
  'host.pending': 'viewer',
  'host.changed': 'viewer',
  'host.imported': 'viewer',
  'dhcp.lease': 'viewer',
  'boot.event': 'viewer',
  'multicast.session': 'viewer',
  'multicast.member': 'viewer',
};

const DEFAULTS: Required<EventStreamOptions> = { heartbeatMs: 15_000, retryMs: 3000, maxPerPrincipal: 20, maxBufferedBytes: 1024 * 1024 };

/** One SSE block for an event: its id, its kind as the SSE event name, the whole event as JSON. */
export function eventBlock(e: LiveEvent | StreamEvent): string {
  return sseBlock({ id: e.id, event: e.kind, data: JSON.stringify(e) });
}

function streamKey(p: Principal): string {
  return p.kind === 'local' ? 'local' : p.kind === 'token' ? `token:${p.token.id}` : `session:${p.session.id}`;
}

export async function eventRoutes(app: FastifyInstance, ctx: AppContext, options: EventStreamOptions = {}): Promise<void> {
  const o = { ...DEFAULTS, ...options };
  for (const [k, v] of Object.entries(o)) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`Cannot serve /api/v1/events as '${k}' must be a positive whole number: current value is ${v}`);
  }
  const { events, auth } = ctx;
  const log = ctx.log.child({ subsystem: 'events' });
  /** Streams open per session or token. */
  const perPrincipal = new Map<string, number>();
  /** How to end each open stream. */
  const open = new Set<(reason: string) => void>();

  app.addHook('preClose', async () => {
    for (const end of [...open]) end('the server is stopping');
  });

  app.get<{ Querystring: { lastEventId?: string; history?: 'true' | 'false' } }>(
    '/events',
    {
      config: { role: 'viewer' },
      schema: eventsApi.stream,
    },
    async (req, reply) => {
      let principal = principalOf(req);
      const key = streamKey(principal);
      const count = perPrincipal.get(key) ?? 0;
      if (count >= o.maxPerPrincipal) {
        throw new FleetbootError('RATE_LIMITED', `${principal.actor} has ${count} event streams open, the most allowed at once (one per browser tab): close a tab or another stream first`);
      }
      const header = req.headers['last-event-id'];
      const lastEventId = typeof header === 'string' && header !== '' ? header.slice(0, 64) : (req.query.lastEventId ?? null);

      const out = new PassThrough();
      let ended = false;
      let checking = false;

      const cleanup = (): void => {
        if (ended) return;
        ended = true;
        clearInterval(heartbeat);
        sub.unsubscribe();
        open.delete(end);
        const n = (perPrincipal.get(key) ?? 1) - 1;
        if (n <= 0) perPrincipal.delete(key);
        else perPrincipal.set(key, n);
        log.debug({ actor: principal.actor, ip: req.ip }, 'event stream closed');
      };
      const write = (text: string): void => {
        if (ended) return;
        out.write(text);
        if (out.writableLength + out.readableLength > o.maxBufferedBytes) {
          log.warn({ actor: principal.actor, ip: req.ip, bytes: out.writableLength + out.readableLength }, `event stream of ${principal.actor} cut off: the client is more than ${o.maxBufferedBytes} bytes behind (it reconnects and resumes)`);
          cleanup();
          out.destroy();
        }
      };
      const send = (e: LiveEvent | StreamEvent): void => {
        if (e.kind === 'ready' || e.kind === 'reset' || e.kind === 'end' || roleAtLeast(principal.role, EVENT_ROLES[e.kind])) write(eventBlock(e));
      };
      function end(reason: string): void {
        if (ended) return;
        out.write(eventBlock({ kind: 'end', id: events.lastId(), reason }));
        cleanup();
        out.end();
      }
      async function beat(): Promise<void> {
        write(sseComment('ping'));
        if (checking || ended) return;
        checking = true;
        try {
          const a = await auth.recheck(principal);
          if (!a.ok) {
            log.info({ actor: principal.actor, ip: req.ip, reason: a.message }, `event stream of ${principal.actor} ended: ${a.message}`);
            end(a.message);
          } else principal = a.principal;
        } catch (err) {
          log.error({ actor: principal.actor, err: errorMessage(err) }, 'checking the credentials of an event stream failed');
        } finally {
          checking = false;
        }
      }

      // subscribe() and the writes of its answer run at once: no event can fall between the replay and the live ones.
      const sub = events.subscribe(send, { lastEventId, history: req.query.history === 'true' });
      perPrincipal.set(key, count + 1);
      open.add(end);
      const heartbeat = setInterval(() => void beat(), o.heartbeatMs);
      heartbeat.unref();
      out.on('close', cleanup);

      reply.header('content-type', 'text/event-stream; charset=utf-8').header('cache-control', 'no-store').header('x-accel-buffering', 'no');
      write(sseRetry(o.retryMs));
      for (const e of sub.first) send(e);
      const first = sub.first[0];
      log.debug({ actor: principal.actor, ip: req.ip, lastEventId, first: first?.kind }, first?.kind === 'reset' ? `event stream opened with a reset: ${first.reason}` : 'event stream opened');
      return reply.send(out);
    },
  );
}
