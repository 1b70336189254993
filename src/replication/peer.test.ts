import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { parseHead, peerGet, readBody, requestHead } from './peer.js';

test('requestHead: one GET with the headers given, the host and connection: close; line breaks in a value are refused', () => {
  assert.equal(
    requestHead('/node/v1/images/a/1/manifest', '10.0.0.1:8443', { authorization: 'Node b:s3cret', range: 'bytes=5-' }),
    'GET /node/v1/images/a/1/manifest HTTP/1.1\r\nhost: 10.0.0.1:8443\r\nauthorization: Node b:s3cret\r\nrange: bytes=5-\r\nconnection: close\r\n\r\n',
  );
  assert.throws(() => requestHead('/', 'h', { range: 'bytes=5-\r\nx-evil: 1' }), /a value on one line are expected, got "range: bytes=5-\\r\\nx-evil: 1"/);
  assert.throws(() => requestHead('/', 'h', { 'bad name': 'x' }), /a name of letters, digits and '-'/);
});

test('parseHead: status and headers (lower-case names, repeats joined); malformed or chunked answers are refused saying what came', () => {
  assert.deepEqual(parseHead('HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/10\r\ncontent-length:  5\r\nVia: a\r\nvia: b'), {
    status: 206,
    headers: { 'content-range': 'bytes 5-9/10', 'content-length': '5', via: 'a, b' },
  });
  assert.deepEqual(parseHead('HTTP/1.0 404'), { status: 404, headers: {} });
  assert.throws(() => parseHead('SSH-2.0-OpenSSH_9.2'), /an HTTP\/1\.x status line was expected, got "SSH-2\.0-OpenSSH_9\.2"/);
  assert.throws(() => parseHead('HTTP/1.1 200 OK\r\nno colon here'), /a header line 'name: value' was expected, got "no colon here"/);
  assert.throws(() => parseHead('HTTP/1.1 200 OK\r\nx: 1\r\n folded'), /a header line 'name: value' was expected/);
  assert.throws(() => parseHead('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked'), /a body with Content-Length was expected, got transfer-encoding: chunked/);
});

/** A TCP server that answers every connection with `answer` (after the request's head), then closes. */
async function answering(answer: Buffer | string): Promise<{ server: Server; port: number }> {
  const server = createServer((sock) => {
    let got = '';
    sock.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (got.includes('\r\n\r\n')) sock.end(answer);
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

test('peerGet over plain TCP: the body is what follows the head, read to the end; a malformed head rejects naming the URL', async (t) => {
  const body = Buffer.alloc(200_000, 7);
  const ok = await answering(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`), body]));
  t.after(() => ok.server.close());
  const peer = { name: 'plain', baseUrl: `http://127.0.0.1:${ok.port}`, pin: null };
  const res = await peerGet(peer, '/x', { authorization: 'Node a:b' }, new AbortController().signal);
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-length'], String(body.length));
  assert.deepEqual(await readBody(res.body, 1 << 20), body);

  const bad = await answering('HTTP/1.1 200 OK\r\nbroken header\r\n\r\nxyz');
  t.after(() => bad.server.close());
  await assert.rejects(peerGet({ ...peer, baseUrl: `http://127.0.0.1:${bad.port}` }, '/y', {}, new AbortController().signal), new RegExp(`GET http://127\\.0\\.0\\.1:${bad.port}/y from node 'plain': a header line 'name: value' was expected, got "broken header"`));

  const short = await answering('HTTP/1.1 200 OK\r\ncontent-');
  t.after(() => short.server.close());
  await assert.rejects(peerGet({ ...peer, baseUrl: `http://127.0.0.1:${short.port}` }, '/z', {}, new AbortController().signal), /the connection closed before the answer's header ended \(25 bytes came\)/);

  const long = await answering(`HTTP/1.1 200 OK\r\nx: ${'a'.repeat(70_000)}\r\n\r\n`);
  t.after(() => long.server.close());
  await assert.rejects(peerGet({ ...peer, baseUrl: `http://127.0.0.1:${long.port}` }, '/w', {}, new AbortController().signal), /the answer's header is longer than 65536 bytes/);
});
