/**
 * GET /api/v1/events in an app built alone (app.inject, payloadAsStream):
 * the bus buildApp makes for itself, history, a client too far behind.
 * test/api-events.test.ts runs it on a real server and socket.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../config/config.js';
import { createEventBus, type EventBus } from '../../events/bus.js';
import { silentLogger } from '../../lib/log.js';
import { SseParser, type SseMessage } from '../../lib/sse.js';
import { ensureApiToken } from '../../store/index.js';
import { withTempStore } from '../../store/temp-store.js';
import { buildApp, type AppOptions } from '../app.js';

const MAC = '52:54:00:ee:01:01';

async function withApp(fn: (app: FastifyInstance, auth: { authorization: string }) => Promise<void>, extra: Partial<AppOptions> = {}): Promise<void> {
  await withTempStore('api-events', async (store, dir) => {
    const config = loadConfig({ overrides: { dataDir: dir, serverIp: '127.0.0.1' } });
    const token = ensureApiToken(dir);
    const app = buildApp({ store, config, serverIp: '127.0.0.1', logger: silentLogger, token, ...extra });
    try {
      await app.ready();
      await fn(app, { authorization: `Bearer ${token}` });
    } finally {
      await app.close();
    }
  });
}

/** The messages of an injected stream as they come; `until` waits for one `pred` accepts. */
function reader(stream: Readable) {
  const parser = new SseParser();
  const messages: SseMessage[] = [];
  let ended = false;
  stream.setEncoding('utf8');
  stream.on('data', (c: string) => messages.push(...parser.push(c)));
  stream.on('end', () => (ended = true));
  return {
    messages,
    get ended() {
      return ended;
    },
    async until(pred: (m: SseMessage) => boolean, what: string): Promise<SseMessage> {
      for (const limit = Date.now() + 5000; Date.now() < limit; await new Promise((r) => setTimeout(r, 5))) {
        const m = messages.find(pred);
        if (m) return m;
      }
      throw new Error(`no ${what}: got ${messages.map((m) => m.event).join(', ')}`);
    },
  };
}

test('buildApp() without a bus makes its own: the stream carries what its routes and imaging publish, and ends when the app closes', async () => {
  let r: ReturnType<typeof reader> | null = null;
  await withApp(async (app, auth) => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/events', headers: auth, payloadAsStream: true });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
    r = reader(res.stream());
    await r.until((m) => m.event === 'ready', 'ready');
    assert.equal((await app.inject({ method: 'POST', url: '/api/v1/hosts', headers: auth, payload: { mac: MAC } })).statusCode, 201);
    const task = await app.inject({ method: 'POST', url: '/api/v1/tasks', headers: auth, payload: { type: 'inventory', mac: MAC } });
    assert.equal(task.statusCode, 201);
    const cancel = await app.inject({ method: 'POST', url: `/api/v1/tasks/${task.json<{ id: number }>().id}/cancel`, headers: auth });
    assert.equal(cancel.statusCode, 200);
    await r.until((m) => m.event === 'task.state' && (JSON.parse(m.data) as { state: string }).state === 'cancelled', 'cancelled');
    assert.deepEqual(
      r.messages.filter((m) => m.event !== 'ready').map((m) => {
        const d = JSON.parse(m.data) as { kind: string; change?: string; state?: string; error?: string | null };
        return [m.event, d.change ?? d.state, d.error ?? null];
      }),
      [
        ['host.changed', 'created', null],
        ['task.state', 'queued', null],
        ['task.state', 'cancelled', 'cancelled by the administrator'],
      ],
    );
  });
  const done = r as ReturnType<typeof reader> | null;
  assert.ok(done?.ended, 'closing the app ended the stream');
  assert.match(done.messages.at(-1)?.data ?? '', /"kind":"end".*the server is stopping/);
});

test('?history=true starts with the events kept; a client too far behind is cut off and unsubscribed', async () => {
  const bus: EventBus = createEventBus();
  const lease = (i: number) =>
    ({ kind: 'dhcp.lease', ip: `10.0.0.${i % 250}`, mac: MAC, clientId: null, hostname: 'x'.repeat(200), state: 'bound', expiresAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', active: true }) as const;
  await withApp(
    async (app, auth) => {
      for (let i = 0; i < 3; i++) bus.publish(lease(i));
      const res = await app.inject({ method: 'GET', url: '/api/v1/events?history=true', headers: auth, payloadAsStream: true });
      const r = reader(res.stream());
      const ready = await r.until((m) => m.event === 'ready', 'ready');
      assert.deepEqual(JSON.parse(ready.data), { kind: 'ready', id: `${bus.epoch}-3`, resumed: false, replayed: 3 });
      assert.deepEqual(r.messages.slice(0, 3).map((m) => m.id), [1, 2, 3].map((n) => `${bus.epoch}-${n}`));

      // A stream nobody reads: past 4 KiB waiting, it is cut off.
      const stuck = await app.inject({ method: 'GET', url: '/api/v1/events', headers: auth, payloadAsStream: true });
      assert.equal(stuck.statusCode, 200);
      assert.equal(bus.subscriberCount, 2);
      for (let i = 0; i < 100 && bus.subscriberCount === 2; i++) bus.publish(lease(i));
      assert.equal(bus.subscriberCount, 1, 'the stuck one is gone, the reader stays');
      await r.until((m) => m.id === bus.lastId(), 'the reader has every event');
      stuck.stream().destroy();
    },
    { events: bus, eventStream: { maxBufferedBytes: 4096 } },
  );
});

test('the stream options are checked when the app is built', async () => {
  await assert.rejects(
    withApp(async () => undefined, { eventStream: { heartbeatMs: 0 } }),
    /'heartbeatMs' must be a positive whole number: current value is 0/,
  );
});
