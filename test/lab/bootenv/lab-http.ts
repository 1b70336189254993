/**
 * A tiny HTTP server for lab tests, run inside a lab namespace:
 *
 *   node --import tsx test/lab/bootenv/lab-http.ts --host 10.213.40.1 --port 9999 [--root DIR]
 *
 * - GET /ran?mac=..&ip=..&marker=.. (any path ending in /ran): the test initrd's
 *   callback; answered 200 "ok" and reported on stdout.
 * - With --root: every other GET/HEAD serves the file of that name from DIR
 *   (no `..`), so it can stand in for a boot server's HTTP side.
 *
 * Every event is one JSON line on stdout: {"event":"listening",...},
 * {"event":"callback","mac":..,"ip":..,"marker":..,"remote":..},
 * {"event":"request","method":..,"url":..,"status":..,"remote":..}.
 */
import { createServer } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { join, normalize, sep } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '0.0.0.0' },
    port: { type: 'string', default: '9999' },
    root: { type: 'string' },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`--port must be 0-65535: ${values.port}`);
const root = values.root;

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ t: Date.now(), ...o })}\n`);
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://lab');
  const remote = req.socket.remoteAddress ?? '';
  if (url.pathname.endsWith('/ran')) {
    emit({
      event: 'callback',
      path: url.pathname,
      mac: url.searchParams.get('mac'),
      ip: url.searchParams.get('ip'),
      marker: url.searchParams.get('marker'),
      remote,
    });
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  let status = 404;
  if (root && (req.method === 'GET' || req.method === 'HEAD')) {
    const rel = normalize(decodeURIComponent(url.pathname)).replace(/^[/\\]+/, '');
    const file = join(root, rel);
    if (rel !== '' && !rel.split(sep).includes('..')) {
      try {
        const st = statSync(file);
        if (st.isFile()) {
          status = 200;
          res.writeHead(200, { 'content-length': String(st.size), 'content-type': 'application/octet-stream' });
          if (req.method === 'HEAD') res.end();
          else createReadStream(file).pipe(res);
        }
      } catch {
        /* 404 below */
      }
    }
  }
  if (status === 404) res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  emit({ event: 'request', method: req.method, url: req.url, status, remote });
});

server.listen(port, values.host, () => {
  const a = server.address();
  emit({ event: 'listening', address: typeof a === 'object' && a ? `${a.address}:${a.port}` : String(a) });
});
for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => server.close(() => process.exit(0)));
