#!/usr/bin/env node
// Runs inside a lab namespace: accepts connections on a Unix socket (the
// file system is shared across network namespaces) and joins each to
// HOST:PORT inside the namespace. The browser tests reach a server in a
// lab namespace through it (test/console/harness.ts, LabTunnel).
//   node ns-forward.mjs SOCKET HOST PORT
import { createServer, connect } from 'node:net';
import { rmSync } from 'node:fs';

const [path, host, port] = process.argv.slice(2);
if (!path || !host || !port) {
  console.error('usage: ns-forward.mjs SOCKET HOST PORT');
  process.exit(2);
}
rmSync(path, { force: true });
createServer((inbound) => {
  const out = connect({ host, port: Number(port) });
  inbound.pipe(out).pipe(inbound);
  const end = () => {
    inbound.destroy();
    out.destroy();
  };
  inbound.on('error', end);
  out.on('error', end);
  inbound.on('close', end);
  out.on('close', end);
}).listen(path, () => console.log(`ns-forward: ${path} -> ${host}:${port}`));
