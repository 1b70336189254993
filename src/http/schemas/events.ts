/**
 * Live events: /api/v1/events (see ./common.ts). The events' kinds and
 * fields are src/model/events.ts (types the console imports); the stream
 * is text/event-stream, not JSON, so it has no JSON schema here.
 */
import { errorResponses } from './common.js';

export const eventsApi = {
  stream: {
    tags: ['events'],
    summary: 'Follow live events',
    description:
      'A Server-Sent Events stream (one per browser tab): task progress (at most once a second per task) and states, pending and changed hosts, DHCP leases, boot steps, multicast sessions (src/model/events.ts). ' +
      'After a dropped connection, `Last-Event-ID` (or `lastEventId`) resumes it; an id the server no longer has gets a `reset` event. `history=true` starts with the events still kept. ' +
      'A comment every 15 s; the stream ends with an `end` event once its session or token no longer holds. 429 beyond 20 streams per session or token.',
    querystring: { type: 'object', additionalProperties: false, properties: { lastEventId: { type: 'string', maxLength: 64 }, history: { type: 'string', enum: ['true', 'false'] } } },
    response: {
      200: { description: 'The live events (src/model/events.ts): `id`, `event` (the kind) and `data` (the event as JSON) each.', content: { 'text/event-stream': { schema: { type: 'string' } } } },
      ...errorResponses,
    },
  },
} as const;
