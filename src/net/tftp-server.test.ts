import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { capturingLogger, download, freePort, RawClient, startTftp } from '../../test/tftp-helpers.js';
import { waitFor } from '../../test/wait.js';
import { createTftpService } from './tftp-server.js';
import { silentLogger } from '../lib/log.js';
import type { TftpPacket } from '../protocol/tftp/index.js';

let root = '';
const files = {
  small: randomBytes(5000),
  exact: randomBytes(1024), // two full 512-byte blocks, then an empty one
  empty: Buffer.alloc(0),
  rollover: randomBytes(8 * 70_000 + 3), // 70001 blocks of 8 bytes: past 65535
  medium: randomBytes(300_000),
};

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'fb-tftp-unit-'));
  for (const [name, data] of Object.entries(files)) await writeFile(join(root, name), data);
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function op(p: { op: string }): string {
  return p.op;
}

test('createTftpService() serves a file lock-step at 512 bytes without options', async () => {
  const svc = await startTftp(root);
  try {
    const r = await download(svc.port, 'small');
    assert.deepEqual(r.data, files.small);
    assert.equal(r.oack, null);
    assert.notEqual(r.dataPort, svc.port);
    assert.equal(r.blocks, 10);
  } finally {
    await svc.close();
  }
});

test('createTftpService() negotiates tsize, blksize and windowsize in an OACK', async () => {
  const svc = await startTftp(root, { maxBlksize: 1468, maxWindowsize: 8 });
  try {
    const r = await download(svc.port, 'medium', {
      options: [
        { name: 'tsize', value: '0' },
        { name: 'blksize', value: '9000' },
        { name: 'windowsize', value: '16' },
        { name: 'foo', value: 'bar' },
      ],
    });
    assert.deepEqual(r.oack, [
      { name: 'tsize', value: '300000' },
      { name: 'blksize', value: '1468' },
      { name: 'windowsize', value: '8' },
    ]);
    assert.deepEqual(r.data, files.medium);
  } finally {
    await svc.close();
  }
});

test('createTftpService() ends a file whose size is a multiple of blksize with an empty block, and serves empty files', async () => {
  const svc = await startTftp(root);
  try {
    const exact = await download(svc.port, 'exact');
    assert.deepEqual(exact.data, files.exact);
    assert.equal(exact.blocks, 3);
    const empty = await download(svc.port, 'empty', { options: [{ name: 'tsize', value: '0' }] });
    assert.equal(empty.data.length, 0);
    assert.deepEqual(empty.oack, [{ name: 'tsize', value: '0' }]);
  } finally {
    await svc.close();
  }
});

test('createTftpService() wraps block numbers from 65535 to 0', async () => {
  const svc = await startTftp(root);
  try {
    // The helper checks every block number modulo 65536.
    const lock = await download(svc.port, 'rollover', { options: [{ name: 'blksize', value: '8' }] });
    assert.equal(lock.blocks, 70_001);
    assert.deepEqual(lock.data, files.rollover);
    const win = await download(svc.port, 'rollover', { options: [{ name: 'blksize', value: '8' }, { name: 'windowsize', value: '64' }] });
    assert.deepEqual(win.data, files.rollover);
  } finally {
    await svc.close();
  }
});

test('createTftpService() never resends DATA because of a duplicate ACK', async () => {
  const svc = await startTftp(root, { timeoutMs: 5000 });
  const c = await RawClient.open();
  try {
    c.send({ op: 'RRQ', filename: 'small', mode: 'octet', options: [] }, svc.port);
    const d1 = await c.nextPacket();
    assert.deepEqual([d1.p.op, d1.p.op === 'DATA' && d1.p.block], ['DATA', 1]);
    c.send({ op: 'ACK', block: 1 }, d1.port);
    c.send({ op: 'ACK', block: 1 }, d1.port);
    c.send({ op: 'ACK', block: 0 }, d1.port);
    const d2 = await c.nextPacket();
    assert.ok(d2.p.op === 'DATA' && d2.p.block === 2);
    assert.equal(await c.silentFor(400), true, 'a duplicate ACK caused a resend');
  } finally {
    await c.close();
    await svc.close();
  }
});

test('createTftpService() retransmits on timeout a bounded number of times, then gives up with an ERROR', async () => {
  const svc = await startTftp(root, { timeoutMs: 100, maxRetries: 3 });
  const c = await RawClient.open();
  try {
    c.send({ op: 'RRQ', filename: 'small', mode: 'octet', options: [] }, svc.port);
    const got: string[] = [];
    for (let i = 0; i < 4; i++) {
      const { p } = await c.nextPacket(1000);
      got.push(p.op === 'DATA' ? `DATA ${p.block}` : p.op === 'ERROR' ? `ERROR ${p.code}` : p.op);
    }
    assert.deepEqual(got, ['DATA 1', 'DATA 1', 'DATA 1', 'ERROR 0']);
    assert.equal(await c.silentFor(350), true);
  } finally {
    await c.close();
    await svc.close();
  }
});

test('createTftpService() retransmits an unacknowledged OACK', async () => {
  const svc = await startTftp(root, { timeoutMs: 100, maxRetries: 2 });
  const c = await RawClient.open();
  try {
    c.send({ op: 'RRQ', filename: 'small', mode: 'octet', options: [{ name: 'tsize', value: '0' }] }, svc.port);
    assert.equal(op((await c.nextPacket()).p), 'OACK');
    const again = await c.nextPacket();
    assert.equal(op(again.p), 'OACK');
    c.send({ op: 'ACK', block: 0 }, again.port);
    const d = await c.nextPacket();
    assert.ok(d.p.op === 'DATA' && d.p.block === 1);
  } finally {
    await c.close();
    await svc.close();
  }
});

test('createTftpService() restarts the window after the block an ACK names (RFC 7440)', async () => {
  const svc = await startTftp(root, { timeoutMs: 5000 });
  const c = await RawClient.open();
  try {
    c.send({ op: 'RRQ', filename: 'small', mode: 'octet', options: [{ name: 'windowsize', value: '4' }] }, svc.port);
    const o = await c.nextPacket();
    assert.equal(op(o.p), 'OACK');
    c.send({ op: 'ACK', block: 0 }, o.port);
    const blocks = async (n: number): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const { p } = await c.nextPacket();
        assert.ok(p.op === 'DATA');
        out.push(p.block);
      }
      return out;
    };
    assert.deepEqual(await blocks(4), [1, 2, 3, 4]);
    c.send({ op: 'ACK', block: 2 }, o.port); // "I lost 3": restart at 3
    assert.deepEqual(await blocks(4), [3, 4, 5, 6]);
    c.send({ op: 'ACK', block: 1 }, o.port); // older than acknowledged: ignored
    assert.equal(await c.silentFor(300), true);
    c.send({ op: 'ACK', block: 6 }, o.port);
    assert.deepEqual(await blocks(4), [7, 8, 9, 10]);
  } finally {
    await c.close();
    await svc.close();
  }
});

test('createTftpService() answers a wrong TID with ERROR 5 and keeps the transfer going', async () => {
  const svc = await startTftp(root, { timeoutMs: 5000 });
  const c = await RawClient.open();
  const intruder = await RawClient.open();
  try {
    c.send({ op: 'RRQ', filename: 'small', mode: 'octet', options: [] }, svc.port);
    const d1 = await c.nextPacket();
    intruder.send({ op: 'ACK', block: 1 }, d1.port);
    const e = await intruder.nextPacket();
    assert.ok(e.p.op === 'ERROR' && e.p.code === 5);
    assert.equal(await c.silentFor(200), true);
    c.send({ op: 'ACK', block: 1 }, d1.port);
    const d2 = await c.nextPacket();
    assert.ok(d2.p.op === 'DATA' && d2.p.block === 2);
  } finally {
    await c.close();
    await intruder.close();
    await svc.close();
  }
});

test('createTftpService() stops a transfer when the client sends an ERROR', async () => {
  const { logger, lines } = capturingLogger();
  const svc = await startTftp(root, { timeoutMs: 100, logger });
  const c = await RawClient.open();
  try {
    c.send({ op: 'RRQ', filename: 'small', mode: 'octet', options: [{ name: 'tsize', value: '0' }] }, svc.port);
    const o = await c.nextPacket();
    assert.equal(op(o.p), 'OACK');
    c.send({ op: 'ERROR', code: 8, message: 'just wanted the size' }, o.port);
    assert.equal(await c.silentFor(400), true);
    assert.ok(lines.some((l) => l.msg === 'tftp transfer aborted' && String(l.reason).includes('ERROR 8')));
  } finally {
    await c.close();
    await svc.close();
  }
});

test('createTftpService() refuses writes, missing files and unknown modes with the right ERROR', async () => {
  const svc = await startTftp(root);
  const c = await RawClient.open();
  try {
    const ask = async (p: Parameters<RawClient['send']>[0]): Promise<string> => {
      c.send(p, svc.port);
      const { p: r } = await c.nextPacket();
      return r.op === 'ERROR' ? `ERROR ${r.code} ${r.message}` : r.op;
    };
    assert.equal(await ask({ op: 'WRQ', filename: 'new', mode: 'octet', options: [] }), 'ERROR 2 Read-only server');
    assert.equal(await ask({ op: 'RRQ', filename: 'nope', mode: 'octet', options: [] }), 'ERROR 1 File not found');
    assert.equal(await ask({ op: 'RRQ', filename: 'small', mode: 'mail', options: [] }), 'ERROR 4 Unsupported mode');
    assert.equal(await ask({ op: 'RRQ', filename: '../etc/passwd', mode: 'octet', options: [] }), 'ERROR 2 Access violation');
    // netascii is served as octet, byte for byte.
    const r = await download(svc.port, 'small', { mode: 'NetASCII' });
    assert.deepEqual(r.data, files.small);
  } finally {
    await c.close();
    await svc.close();
  }
});

test('createTftpService() ignores a retransmitted RRQ instead of starting a second transfer', async () => {
  const svc = await startTftp(root, { timeoutMs: 5000 });
  const c = await RawClient.open();
  try {
    const rrq: TftpPacket = { op: 'RRQ', filename: 'small', mode: 'octet', options: [] };
    c.send(rrq, svc.port);
    c.send(rrq, svc.port);
    const d1 = await c.nextPacket();
    assert.ok(d1.p.op === 'DATA' && d1.p.block === 1);
    assert.equal(await c.silentFor(300), true);
  } finally {
    await c.close();
    await svc.close();
  }
});

test('createTftpService() with one fixed data port serves concurrent clients on that port', async () => {
  const dataPort = await freePort();
  const svc = await startTftp(root, { dataPorts: { from: dataPort, to: dataPort } });
  try {
    const rs = await Promise.all([
      download(svc.port, 'medium', { options: [{ name: 'blksize', value: '1468' }] }),
      download(svc.port, 'rollover', { options: [{ name: 'blksize', value: '1024' }, { name: 'windowsize', value: '4' }] }),
      download(svc.port, 'small'),
    ]);
    assert.deepEqual(rs.map((r) => r.dataPort), [dataPort, dataPort, dataPort]);
    assert.deepEqual(rs[0]?.data, files.medium);
    assert.deepEqual(rs[1]?.data, files.rollover);
    assert.deepEqual(rs[2]?.data, files.small);
  } finally {
    await svc.close();
  }
});

test('createTftpService() can share the server port itself as the data port', async () => {
  const port = await freePort();
  const svc = await startTftp(root, { port, dataPorts: { from: port, to: port } });
  try {
    const [a, b] = await Promise.all([download(port, 'medium'), download(port, 'small')]);
    assert.equal(a.dataPort, port);
    assert.deepEqual(a.data, files.medium);
    assert.deepEqual(b.data, files.small);
  } finally {
    await svc.close();
  }
});

test('createTftpService() takes data ports from the range, skipping busy ones, and says when none is free', async () => {
  // Find three consecutive free ports and occupy the middle one.
  let base = 0;
  let blocker: dgram.Socket | null = null;
  for (let attempt = 0; attempt < 20 && !blocker; attempt++) {
    base = 20000 + Math.floor(Math.random() * 40000);
    const s = dgram.createSocket('udp4');
    try {
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind(base + 1, '127.0.0.1', () => resolve());
      });
      blocker = s;
    } catch {
      s.close();
    }
  }
  assert.ok(blocker);
  const svc = await startTftp(root, { dataPorts: { from: base, to: base + 2 }, timeoutMs: 5000 });
  const held: RawClient[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < 2; i++) {
      const c = await RawClient.open();
      held.push(c);
      c.send({ op: 'RRQ', filename: 'small', mode: 'octet', options: [] }, svc.port);
      ports.push((await c.nextPacket()).port); // transfer stays open: no ACK
    }
    assert.deepEqual(ports.sort(), [base, base + 2].sort());
    const c = await RawClient.open();
    held.push(c);
    c.send({ op: 'RRQ', filename: 'small', mode: 'octet', options: [] }, svc.port);
    const e = await c.nextPacket();
    assert.ok(e.p.op === 'ERROR' && e.p.code === 0, 'no free data port');
  } finally {
    for (const c of held) await c.close();
    blocker.close();
    await svc.close();
  }
});

test('createTftpService() logs one line at the start and one at the end of a transfer', async () => {
  const { logger, lines } = capturingLogger();
  const svc = await startTftp(root, { logger });
  try {
    await download(svc.port, 'medium', { options: [{ name: 'blksize', value: '1468' }] });
    // The server logs "done" when the last ACK arrives, after the client has its file.
    const done = await waitFor('the "tftp transfer done" log line', () => lines.find((l) => l.msg === 'tftp transfer done'), 5000, { detail: () => JSON.stringify(lines) });
    const start = lines.find((l) => l.msg === 'tftp transfer start');
    assert.ok(start, JSON.stringify(lines));
    assert.equal(start.subsystem, 'tftp');
    assert.equal(start.file, 'medium');
    assert.equal(start.blksize, 1468);
    assert.equal(done.bytes, 300000);
    assert.equal(typeof done.durationMs, 'number');
    assert.equal(typeof done.rateMBps, 'number');
    assert.equal(lines.filter((l) => l.subsystem === 'tftp').length, 3); // listening, start, done
  } finally {
    await svc.close();
  }
});

test('close() aborts running transfers and releases the sockets', async () => {
  const svc = await startTftp(root, { timeoutMs: 5000 });
  const c = await RawClient.open();
  try {
    c.send({ op: 'RRQ', filename: 'small', mode: 'octet', options: [] }, svc.port);
    await c.nextPacket();
    await svc.close();
    await svc.close(); // idempotent
    assert.equal(await c.silentFor(200), true);
  } finally {
    await c.close();
  }
});

test('createTftpService() refuses bad options at once', () => {
  assert.throws(
    () =>
      createTftpService({
        root,
        bindAddress: '127.0.0.1',
        port: 0,
        dataPorts: { from: 10, to: 5 },
        timeoutMs: 1000,
        maxRetries: 5,
        maxBlksize: 1468,
        maxWindowsize: 1,
        logger: silentLogger,
      }),
    RangeError,
  );
});
