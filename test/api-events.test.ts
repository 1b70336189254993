/**
 * GET /api/v1/events on a real server (startFleetboot, 127.0.0.1, port 0),
 * read over a real socket with node:http as a browser's EventSource would:
 * machines are played by the real boot and agent endpoints. Checked: the
 * credentials (401; a revoked session ends the stream), the headers, a
 * task's events as its agent reports (progress at most once a second), a
 * resume with Last-Event-ID (the missed events, no duplicates), reset for
 * an id of another run, a pending host from the boot menu, the cap on
 * streams, a close that does not wait on open streams, and `fleetboot
 * events`.
 */
import { openTestStore, testStoreOverrides } from '../src/store/temp-store.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.js';
import { silentLogger } from '../src/lib/log.js';
import { hashPassword, DEFAULT_SCRYPT } from '../src/lib/password-hash.js';
import { SseParser, type SseMessage } from '../src/lib/sse.js';
import type { LiveEvent } from '../src/model/events.js';
import { startFleetboot, type RunningFleetboot } from '../src/server.js';
import { createUser, openStore, type Store } from '../src/store/index.js';
import { program } from '../src/lib/programs.js';
import { agent, inventory, pxe } from './imaging-helpers.js';
import { CLI, cli, fails, ok, ROOT, waitUntil } from './cli-helpers.js';

const MAC = '52:54:00:ee:00:01';
const NEW_MAC = '52:54:00:ee:00:99';
const PW = 'a long enough password';

interface Env {
  fb: RunningFleetboot;
  store: Store;
}

async function withServer(fn: (env: Env) => Promise<void>, eventStream: { heartbeatMs?: number; maxPerPrincipal?: number } = {}): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-events-'));
  mkdirSync(join(dir, 'bootenv'), { recursive: true });
  writeFileSync(join(dir, 'bootenv', 'vmlinuz'), 'kernel');
  writeFileSync(join(dir, 'bootenv', 'initrd.img'), 'initrd');
  const config = loadConfig({ overrides: { ...(await testStoreOverrides(dir)), dataDir: dir, serverIp: '127.0.0.1', http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0 }, tftp: { enabled: false }, dhcp: { mode: 'off' } } });
  const fb = await startFleetboot(config, { logger: silentLogger, ipxeDir: join(dir, 'no-ipxe'), eventStream });
  const store = await openTestStore(dir);
  try {
    await fn({ fb, store });
  } finally {
    await store.close();
    await fb.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An open event stream, read as it arrives. */
interface Stream {
  status: number;
  headers: IncomingHttpHeaders;
  /** Everything received, as text. */
  raw: () => string;
  /** Every event block received (data parsed). */
  messages: SseMessage[];
  /** The live events (not ready/reset/end). */
  events: () => LiveEvent[];
  /** Resolves with the first message (from the start) that `pred` accepts. */
  waitFor(pred: (m: SseMessage, data: Record<string, unknown>) => boolean, what: string, timeoutMs?: number): Promise<SseMessage>;
  /** Resolves when the server ended the response. */
  ended: Promise<void>;
  /** Cut the connection (as a network failure would). */
  cut(): void;
  /** Arrival time (ms) of each message, by index. */
  arrivals: number[];
  body: () => Record<string, unknown>;
}

function openStream(fb: RunningFleetboot, opts: { headers?: Record<string, string>; query?: string; auth?: 'local' | 'none' } = {}): Promise<Stream> {
  const headers: Record<string, string> = { accept: 'text/event-stream', ...(opts.auth === 'none' ? {} : opts.headers?.cookie ? {} : { authorization: `Bearer ${fb.token}` }), ...opts.headers };
  return new Promise((resolve, reject) => {
    const req = request(`${fb.url}/api/v1/events${opts.query ?? ''}`, { headers }, (res: IncomingMessage) => {
      let raw = '';
      const parser = new SseParser();
      const messages: SseMessage[] = [];
      const arrivals: number[] = [];
      let waiters: Array<() => void> = [];
      const ended = new Promise<void>((r) => {
        res.on('end', r);
        res.on('close', r);
        res.on('error', () => r());
      });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        raw += chunk;
        for (const m of parser.push(chunk)) {
          messages.push(m);
          arrivals.push(Date.now());
        }
        for (const w of waiters) w();
      });
      const parsed = (m: SseMessage): Record<string, unknown> => JSON.parse(m.data) as Record<string, unknown>;
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        raw: () => raw,
        messages,
        arrivals,
        events: () => messages.filter((m) => !['ready', 'reset', 'end'].includes(m.event)).map((m) => parsed(m) as unknown as LiveEvent),
        body: () => JSON.parse(raw) as Record<string, unknown>,
        ended,
        cut: () => {
          req.destroy();
          res.destroy();
        },
        waitFor(pred, what, timeoutMs = 10_000) {
          return new Promise((ok, fail) => {
            const look = (): boolean => {
              const m = messages.find((x) => pred(x, parsed(x)));
              if (!m) return false;
              clearTimeout(timer);
              waiters = waiters.filter((w) => w !== check);
              ok(m);
              return true;
            };
            const check = (): void => void look();
            const timer = setTimeout(() => {
              waiters = waiters.filter((w) => w !== check);
              fail(new Error(`timed out waiting for ${what}; got ${messages.map((m) => m.event).join(', ')}`));
            }, timeoutMs);
            if (!look()) waiters.push(check);
          });
        },
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function api(fb: RunningFleetboot, method: string, path: string, body?: unknown, headers: Record<string, string> = { authorization: `Bearer ${fb.token}` }): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${fb.url}/api/v1${path}`, { method, headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>), headers: res.headers };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const seqOf = (id: string): number => Number(id.split('-')[1]);

test('GET /api/v1/events: 401 without credentials or with wrong ones; an event stream with its headers, retry hint and ready', async () => {
  await withServer(async ({ fb }) => {
    const refused: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong-token-wrong-token' }, { cookie: 'fleetboot_session=nope' }];
    for (const headers of refused) {
      const s = await openStream(fb, { auth: 'none', headers });
      await s.ended;
      assert.equal(s.status, 401, JSON.stringify(headers));
      assert.match(String(s.headers['content-type']), /application\/json/);
      assert.equal(s.body()['error'], 'UNAUTHORIZED');
    }
    const s = await openStream(fb);
    assert.equal(s.status, 200);
    assert.equal(s.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(s.headers['cache-control'], 'no-store');
    assert.equal(s.headers['x-accel-buffering'], 'no');
    const ready = await s.waitFor((m) => m.event === 'ready', 'ready');
    assert.ok(s.raw().startsWith('retry: 3000\n\n'), s.raw());
    assert.deepEqual(JSON.parse(ready.data), { kind: 'ready', id: ready.id, resumed: false, replayed: 0 });
    assert.match(ready.id, /^[0-9a-z]+-0$/, 'the newest id so far: none yet');
    const bad = await api(fb, 'GET', '/events?since=1');
    assert.equal(bad.status, 400);
    s.cut();
  });
});

test('a task\'s events arrive as its agent reports through the agent endpoints; progress at most once a second, the newest not lost', async () => {
  await withServer(async ({ fb }) => {
    const s = await openStream(fb);
    await s.waitFor((m) => m.event === 'ready', 'ready');
    assert.equal((await api(fb, 'POST', '/hosts', { mac: MAC, name: 'pc1' })).status, 201);
    const created = await api(fb, 'POST', '/tasks', { type: 'inventory', mac: MAC });
    assert.equal(created.status, 201);
    const taskId = Number(created.body['id']);
    const boot = await pxe(fb, MAC);
    assert.ok(boot.token);
    const a = agent(fb, boot.token);
    assert.equal((await a.get('/task')).status, 200);

    // 25 reports in 2.5 s: about three go out.
    const started = Date.now();
    for (let i = 1; i <= 25; i++) {
      const r = await a.post('/task/progress', { phase: 'inventory', bytesDone: i * 40, bytesTotal: 1000, partition: null, message: `step ${i}` });
      assert.equal(r.status, 200);
      await sleep(Math.max(0, started + i * 100 - Date.now()));
    }
    const span = Date.now() - started;
    const last = await s.waitFor((m, d) => m.event === 'task.progress' && d['bytesDone'] === 1000, 'the last report');
    assert.deepEqual(
      Object.keys(JSON.parse(last.data) as object).sort(),
      ['at', 'bytesDone', 'bytesTotal', 'etaSeconds', 'id', 'kind', 'mac', 'message', 'partition', 'phase', 'rateBps', 'taskId'],
    );
    const lastData = JSON.parse(last.data) as Record<string, unknown>;
    assert.equal(lastData['message'], 'step 25');
    assert.equal(lastData['mac'], MAC);
    assert.equal(typeof lastData['rateBps'], 'number', 'the server\'s rate');
    const progress = s.messages.map((m, i) => ({ m, at: s.arrivals[i] ?? 0 })).filter((x) => x.m.event === 'task.progress');
    // One at once, then one at the end of each second with reports (the last one waits for its second to end).
    assert.ok(progress.length >= 3 && progress.length <= Math.ceil(span / 1000) + 1, `${progress.length} progress events for 25 reports in ${span} ms`);
    // The server sends them at least a second apart; over loopback on a busy machine one may arrive some milliseconds late.
    for (let i = 1; i < progress.length; i++) {
      const gap = (progress[i]?.at ?? 0) - (progress[i - 1]?.at ?? 0);
      assert.ok(gap >= 800, `progress ${i} came ${gap} ms after the one before (reports came every 100 ms)`);
    }

    assert.equal((await a.post('/task/complete', { type: 'inventory', inventory })).status, 200);
    await s.waitFor((m, d) => m.event === 'task.state' && d['state'] === 'done', 'done');
    const states = s.events().filter((e) => e.kind === 'task.state');
    assert.deepEqual(
      states.map((e) => e.kind === 'task.state' && [e.taskId, e.from, e.state]),
      [
        [taskId, null, 'queued'],
        [taskId, 'queued', 'booting'],
        [taskId, 'booting', 'running'],
        [taskId, 'running', 'done'],
      ],
    );
    const host = s.events().find((e) => e.kind === 'host.changed');
    assert.ok(host?.kind === 'host.changed');
    assert.deepEqual([host.mac, host.change, host.name, host.status], [MAC, 'created', 'pc1', 'approved']);
    const kinds = s.events().map((e) => (e.kind === 'task.state' ? e.state : e.kind));
    assert.ok(kinds.lastIndexOf('task.progress') < kinds.indexOf('done'), `no progress after done: ${kinds.join(', ')}`);
    const seqs = s.messages.filter((m) => m.event !== 'ready').map((m) => seqOf(m.id));
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'ids in order, none skipped');
    assert.ok(!s.raw().includes(boot.token), 'no task token in any event');
    s.cut();
  });
});

test('a cut stream resumed with Last-Event-ID (header or query) gets the events it missed, once; an id of another run gets reset', async () => {
  await withServer(async ({ fb }) => {
    const witness = await openStream(fb);
    const first = await openStream(fb);
    await first.waitFor((m) => m.event === 'ready', 'ready');
    assert.equal((await api(fb, 'POST', '/hosts', { mac: MAC })).status, 201);
    assert.equal((await api(fb, 'POST', '/tasks', { type: 'inventory', mac: MAC })).status, 201);
    await first.waitFor((m) => m.event === 'task.state', 'the task');
    const seenBefore = first.messages.filter((m) => m.event !== 'ready');
    const lastId = seenBefore.at(-1)?.id ?? '';
    first.cut();

    // While it is away: the machine boots, its agent starts and reports.
    const boot = await pxe(fb, MAC);
    assert.ok(boot.token);
    const a = agent(fb, boot.token);
    assert.equal((await a.get('/task')).status, 200);
    assert.equal((await a.post('/task/progress', { phase: 'inventory', bytesDone: 10, bytesTotal: 100, partition: null })).status, 200);
    await witness.waitFor((m) => m.event === 'task.progress', 'progress (witness)');

    const resumed = await openStream(fb, { headers: { 'last-event-id': lastId } });
    const ready = await resumed.waitFor((m) => m.event === 'ready', 'ready after the replay');
    const replay = resumed.messages.slice(0, resumed.messages.indexOf(ready));
    assert.deepEqual(JSON.parse(ready.data), { kind: 'ready', id: ready.id, resumed: true, replayed: replay.length });
    assert.deepEqual(
      replay.filter((m) => m.event !== 'boot.event').map((m) => `${m.event} ${(JSON.parse(m.data) as { state?: string }).state ?? ''}`),
      ['task.state booting', 'task.state running', 'task.progress '],
    );
    assert.ok(replay.some((m) => m.event === 'boot.event' && (JSON.parse(m.data) as { step: string }).step === 'decision'), 'and the boot steps (the decision)');
    // Then live again.
    assert.equal((await a.post('/task/complete', { type: 'inventory', inventory })).status, 200);
    await resumed.waitFor((m, d) => m.event === 'task.state' && d['state'] === 'done', 'done (resumed)');
    await witness.waitFor((m, d) => m.event === 'task.state' && d['state'] === 'done', 'done (witness)');
    const union = [...seenBefore, ...resumed.messages.filter((m) => m.event !== 'ready')].map((m) => `${m.id} ${m.event}`);
    assert.equal(new Set(union).size, union.length, 'no event twice');
    assert.deepEqual(union, witness.messages.filter((m) => m.event !== 'ready').map((m) => `${m.id} ${m.event}`), 'nothing missed: what a stream that stayed saw');

    // A client opening a new stream itself passes the id as a query parameter.
    const byQuery = await openStream(fb, { query: `?lastEventId=${encodeURIComponent(lastId)}` });
    const r2 = await byQuery.waitFor((m) => m.event === 'ready', 'ready (query)');
    const missed = witness.messages.filter((m) => m.event !== 'ready' && seqOf(m.id) > seqOf(lastId));
    assert.equal((JSON.parse(r2.data) as { replayed: number }).replayed, missed.length);
    assert.deepEqual(byQuery.messages.slice(0, missed.length).map((m) => m.id), missed.map((m) => m.id));

    // An id from before a restart (another epoch): reset, carrying the newest id.
    const other = await openStream(fb, { headers: { 'last-event-id': '1abc-5' } });
    const reset = await other.waitFor(() => true, 'the first event');
    assert.equal(reset.event, 'reset');
    assert.match(String((JSON.parse(reset.data) as { reason: string }).reason), /another run of the server/);
    assert.equal(reset.id, ready.id.replace(/-\d+$/, `-${seqOf(witness.messages.at(-1)?.id ?? '')}`));
    for (const s of [witness, resumed, byQuery, other]) s.cut();
  });
});

test('an unknown machine registering from the boot menu shows up as a pending host; approving it says so', async () => {
  await withServer(async ({ fb }) => {
    const s = await openStream(fb);
    await s.waitFor((m) => m.event === 'ready', 'ready');
    const res = await fetch(`${fb.url}/boot/task?mac=${NEW_MAC}&type=register`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /fleetboot\.token=/);
    const pending = await s.waitFor((m) => m.event === 'host.pending', 'host.pending');
    const p = JSON.parse(pending.data) as Record<string, unknown>;
    assert.deepEqual({ mac: p['mac'], via: p['via'], ip: p['ip'], name: p['name'] }, { mac: NEW_MAC, via: 'boot-menu', ip: '127.0.0.1', name: null });
    await s.waitFor((m, d) => m.event === 'task.state' && d['type'] === 'register' && d['state'] === 'booting', 'its register task boots');
    assert.equal((await api(fb, 'POST', `/hosts/${NEW_MAC}/approve`, { name: 'newbie' })).status, 200);
    const approved = await s.waitFor((m) => m.event === 'host.changed', 'host.changed');
    assert.deepEqual(
      (({ mac, change, name, status }) => ({ mac, change, name, status }))(JSON.parse(approved.data) as Record<string, unknown>),
      { mac: NEW_MAC, change: 'approved', name: 'newbie', status: 'approved' },
    );
    s.cut();
  });
});

test('a viewer\'s session streams until it is revoked: then an end event, and a reconnect gets 401', async () => {
  await withServer(
    async ({ fb, store }) => {
      await createUser(store.db, { name: 'vera', role: 'viewer', passwordHash: await hashPassword(PW, { ...DEFAULT_SCRYPT, N: 1024 }), mustChangePassword: false });
      const login = await api(fb, 'POST', '/auth/login', { name: 'vera', password: PW }, {});
      assert.equal(login.status, 200);
      const cookie = /^(fleetboot_session=[^;]+)/.exec(login.headers.get('set-cookie') ?? '')?.[1] ?? '';
      assert.ok(cookie);
      const s = await openStream(fb, { headers: { cookie } });
      assert.equal(s.status, 200);
      await s.waitFor((m) => m.event === 'ready', 'ready');
      await sleep(450);
      assert.ok(!s.messages.some((m) => m.event === 'end'), 'still open past two heartbeats');
      assert.match(s.raw(), /\n: ping\n\n/, 'heartbeat comments');
      const sessions = await api(fb, 'GET', '/sessions?user=vera');
      const id = String((sessions.body['sessions'] as Array<{ id: string }>)[0]?.id);
      assert.equal((await api(fb, 'DELETE', `/sessions/${id}`)).status, 200);
      const end = await s.waitFor((m) => m.event === 'end', 'end', 3000);
      assert.match(String((JSON.parse(end.data) as { reason: string }).reason), /revoked/);
      await s.ended;
      const again = await openStream(fb, { headers: { cookie } });
      await again.ended;
      assert.equal(again.status, 401);
    },
    { heartbeatMs: 200 },
  );
});

test('streams per principal are capped (429 saying why); the server closes without waiting on open streams', async () => {
  let open: Stream[] = [];
  let closedIn = 0;
  await withServer(
    async ({ fb }) => {
      open = [await openStream(fb), await openStream(fb)];
      for (const s of open) await s.waitFor((m) => m.event === 'ready', 'ready');
      const third = await openStream(fb);
      await third.ended;
      assert.equal(third.status, 429);
      assert.match(String(third.body()['message']), /local admin token has 2 event streams open, the most allowed at once/);
      open[0]?.cut();
      await sleep(100);
      const again = await openStream(fb);
      assert.equal(again.status, 200, 'a stream closed by its client frees its place');
      open = [open[1] as Stream, again];
      await again.waitFor((m) => m.event === 'ready', 'ready');
      const t0 = Date.now();
      await fb.close();
      closedIn = Date.now() - t0;
    },
    { maxPerPrincipal: 2 },
  );
  assert.ok(closedIn < 3000, `close took ${closedIn} ms`);
  for (const s of open) {
    await s.ended;
    const end = s.messages.find((m) => m.event === 'end');
    assert.match(String((JSON.parse(end?.data ?? '{}') as { reason?: string }).reason), /the server is stopping/);
  }
});

test('fleetboot events prints the events kept, one line each (or JSON), filtered by kind; --follow goes on as they happen', async () => {
  await withServer(async ({ fb }) => {
    assert.equal((await api(fb, 'POST', '/hosts', { mac: MAC, name: 'pc1' })).status, 201);
    assert.equal((await api(fb, 'POST', '/tasks', { type: 'inventory', mac: MAC })).status, 201);
    const where = ['--server', fb.url, '--token', fb.token];
    const plain = ok(await cli(['events', ...where]), 'events');
    assert.match(plain.stdout, new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ\\s+host\\.changed\\s+host ${MAC} \\(pc1\\) created$`, 'm'));
    assert.match(plain.stdout, new RegExp(`task\\.state\\s+task #\\d+ inventory ${MAC}: created, queued$`, 'm'));
    const json = ok(await cli(['events', '--kind', 'task', '--json', ...where]), 'events --json');
    const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; mac: string });
    assert.deepEqual(lines.map((e) => [e.kind, e.mac]), [['task.state', MAC]]);
    fails(await cli(['events', '--kind', 'nope', ...where]), 'a wrong kind', /--kind "nope" is not an event kind/);
    fails(await cli(['events', '--server', fb.url, '--token', 'wrong-token-wrong-token']), 'a wrong token', /Missing or wrong API token/);

    const child = spawn(program(CLI[0]), [...CLI.slice(1), 'events', '--follow', '--kind', 'host', ...where], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    try {
      await waitUntil(() => out.includes('created'), 'the kept host event', 60_000, child);
      assert.equal((await api(fb, 'PATCH', `/hosts/${MAC}`, { name: 'pc2' })).status, 200);
      await waitUntil(() => out.includes(`host ${MAC} (pc2) updated`), 'the live host event', 10_000, child);
    } finally {
      child.kill();
    }
  });
});
