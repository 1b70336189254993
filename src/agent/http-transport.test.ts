import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { CancelledError, TransportError } from './errors.js';
import { HttpTransport } from './http-transport.js';

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

async function withServer(handler: Handler, fn: (url: string, seen: IncomingMessage[]) => Promise<void>): Promise<void> {
  const seen: IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req);
    const parts: Buffer[] = [];
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => handler(req, res, Buffer.concat(parts)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

test('HttpTransport retries 503 and network errors, then succeeds; it sends the Bearer token', async () => {
  let n = 0;
  await withServer(
    (req, res) => {
      n++;
      if (n === 1) return json(res, 503, { error: 'BUSY', message: 'later' }, { 'retry-after': '0' });
      if (n === 2) return req.socket.destroy();
      json(res, 200, { state: 'running' });
    },
    async (url, seen) => {
      const t = new HttpTransport({ url, token: 'sekrit', baseDelayMs: 5, timeoutSeconds: 5 });
      assert.equal(await t.progress({ phase: 'transfer', bytesDone: 1, bytesTotal: null, partition: 1 }), 'running');
      assert.equal(n, 3);
      assert.equal(seen[0]?.headers.authorization, 'Bearer sekrit');
      assert.equal(seen[0]?.url, '/agent/v1/task/progress');
    },
  );
});

test('HttpTransport: 409 is a CancelledError, 401 and 400 are final (no retry)', async () => {
  let n = 0;
  await withServer(
    (req, res) => {
      n++;
      if (req.url === '/agent/v1/task/slot') return json(res, 409, { error: 'CONFLICT', message: 'task cancelled' });
      if (req.url === '/agent/v1/task') return json(res, 401, { error: 'UNAUTHORIZED', message: 'bad token' });
      json(res, 400, { error: 'INVALID_INPUT', message: 'reason is required' });
    },
    async (url) => {
      const t = new HttpTransport({ url, token: 't', baseDelayMs: 5 });
      await assert.rejects(t.slot(), CancelledError);
      await assert.rejects(t.task(), (e: unknown) => e instanceof TransportError && !e.retryable && /refused the task token/.test(e.message));
      await assert.rejects(t.fail({ reason: '' }), /400 INVALID_INPUT: reason is required/);
      assert.equal(n, 3);
    },
  );
});

test('HttpTransport gives up after timeoutSeconds of failures', async () => {
  await withServer(
    (_req, res) => json(res, 500, { error: 'IO', message: 'disk full' }),
    async (url) => {
      const t = new HttpTransport({ url, token: 't', baseDelayMs: 20, timeoutSeconds: 0.2 });
      await assert.rejects(t.complete({ type: 'deploy', verified: true }), /500 IO: disk full \(gave up after 0.2 s of retries\)/);
    },
  );
});

test('getStream() resumes a cut download with Range and hands over one continuous stream', async () => {
  const data = randomBytes(3 * 1024 * 1024 + 17);
  let cuts = 0;
  await withServer(
    (req, res) => {
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const start = m ? Number(m[1]) : 0;
      const head = { 'content-type': 'application/octet-stream', 'content-length': String(data.length - start) };
      if (m) res.writeHead(206, { ...head, 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` });
      else res.writeHead(200, head);
      if (cuts < 2) {
        // Send a piece, then cut the connection.
        cuts++;
        // The cut is the test: 20 ms after the piece is written, so the client has read part of the response.
        res.write(data.subarray(start, start + 1024 * 1024 + cuts), () => setTimeout(() => req.socket.destroy(), 20));
        return;
      }
      res.end(data.subarray(start));
    },
    async (url, seen) => {
      const t = new HttpTransport({ url, token: 't', baseDelayMs: 5, timeoutSeconds: 5 });
      const s = await t.getStream('p1.pcl.zst', 0, new AbortController().signal);
      const got: Buffer[] = [];
      for await (const c of s) got.push(c as Buffer);
      const all = Buffer.concat(got);
      assert.equal(all.length, data.length);
      assert.equal(createHash('sha256').update(all).digest('hex'), createHash('sha256').update(data).digest('hex'));
      assert.equal(seen.length, 3);
      assert.equal(seen[0]?.headers.range, undefined);
      assert.match(seen[1]?.headers.range ?? '', /^bytes=\d+-$/);
      assert.equal(seen[0]?.url, '/agent/v1/task/image/p1.pcl.zst');
    },
  );
});

test('putStream() streams the body and returns the receipt; a 5xx is a retryable TransportError', async () => {
  let n = 0;
  await withServer(
    (_req, res, body) => {
      n++;
      if (n === 2) return json(res, 503, { error: 'BUSY', message: 'no' });
      json(res, 200, { file: 'p2.raw.zst', bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
    },
    async (url, seen) => {
      const t = new HttpTransport({ url, token: 't', baseDelayMs: 5 });
      const body = randomBytes(200_000);
      const r = await t.putStream('p2.raw.zst', Readable.from([body.subarray(0, 1000), body.subarray(1000)]), new AbortController().signal);
      assert.deepEqual(r, { file: 'p2.raw.zst', bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
      assert.equal(seen[0]?.method, 'PUT');
      assert.equal(seen[0]?.headers['transfer-encoding'], 'chunked');
      await assert.rejects(t.putStream('p2.raw.zst', Readable.from([body]), new AbortController().signal), (e: unknown) => e instanceof TransportError && e.retryable && e.status === 503);
    },
  );
});

test('HttpTransport: stream GETs go to the streams URL with the same token; a refusing or dead streams node hands over to the control server at the byte reached', async () => {
  const data = randomBytes(200_000);
  const controlSeen: string[] = [];
  await withServer(
    (req, res) => {
      controlSeen.push(`${req.method} ${req.url} ${req.headers.range ?? ''}`);
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const from = m ? Number(m[1]) : 0;
      res.writeHead(from > 0 ? 206 : 200, { 'content-length': String(data.length - from), ...(from > 0 ? { 'content-range': `bytes ${from}-${data.length - 1}/${data.length}` } : {}) });
      res.end(data.subarray(from));
    },
    async (control) => {
      // Node B serves the first 50 000 bytes and cuts, then refuses (404: its copy went corrupt).
      let n = 0;
      await withServer(
        (req, res) => {
          n++;
          if (n === 1) {
            res.writeHead(200, { 'content-length': String(data.length) });
            res.write(data.subarray(0, 50_000));
            setTimeout(() => res.destroy(), 20);
            return;
          }
          json(res, 404, { error: 'NOT_FOUND', message: 'not verified here' });
        },
        async (streams, seen) => {
          const logs: string[] = [];
          const t = new HttpTransport({ url: control, token: 'abc', baseDelayMs: 5, timeoutSeconds: 5, log: (m) => logs.push(m) });
          t.useStreamsUrl(streams);
          assert.equal(t.streamsOrigin, new URL(streams).origin);
          const got: Buffer[] = [];
          for await (const c of await t.getStream('p1.pcl.zst', 0, new AbortController().signal)) got.push(c as Buffer);
          assert.deepEqual(Buffer.concat(got), data);
          assert.equal(seen[0]?.url, '/agent/v1/task/image/p1.pcl.zst');
          assert.equal(seen[0]?.headers.authorization, 'Bearer abc');
          assert.equal(seen[1]?.headers.range, 'bytes=50000-');
          assert.deepEqual(controlSeen, ['GET /agent/v1/task/image/p1.pcl.zst bytes=50000-']);
          assert.ok(logs.some((l) => /going on from http:\/\/127\.0\.0\.1:\d+ at byte 50000/.test(l)), logs.join('\n'));
          // The rest of the deploy reads from the control server.
          assert.equal(t.streamsOrigin, new URL(control).origin);
        },
      );
      // A dead streams node (nothing listens): the control server takes over after streamsFallbackSeconds.
      controlSeen.length = 0;
      const t = new HttpTransport({ url: control, token: 'abc', baseDelayMs: 5, timeoutSeconds: 5, streamsFallbackSeconds: 0.05 });
      t.useStreamsUrl('http://127.0.0.1:9/');
      const got: Buffer[] = [];
      for await (const c of await t.getStream('p1.pcl.zst', 0, new AbortController().signal)) got.push(c as Buffer);
      assert.deepEqual(Buffer.concat(got), data);
      assert.deepEqual(controlSeen, ['GET /agent/v1/task/image/p1.pcl.zst ']);
      // Not http(s), or the control URL itself: the control server.
      t.useStreamsUrl('ftp://x/');
      assert.equal(t.streamsOrigin, new URL(control).origin);
    },
  );
});
