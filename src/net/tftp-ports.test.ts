import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataPortAllocator, dataPortMode, NoFreeDataPortError, type BoundPort } from './tftp-ports.js';
import { openUdp } from './udp.js';
import { download, RawClient, startTftp } from '../../test/tftp-helpers.js';
import { waitFor } from '../../test/wait.js';

/** A fake network: which ports are bound (by us or by "another process"), and what was closed, in order. */
class FakeNet {
  readonly bound = new Set<number>();
  readonly closed: number[] = [];
  binds: number[] = [];
  nextEphemeral = 40000;
  /** Delay each close by this many ms (to see that a port is freed only after its close). */
  closeDelayMs = 0;

  readonly bind = async (port: number): Promise<BoundPort> => {
    this.binds.push(port);
    const p = port === 0 ? this.nextEphemeral++ : port;
    if (this.bound.has(p)) throw Object.assign(new Error(`bind ${p}: address in use`), { code: 'EADDRINUSE' });
    this.bound.add(p);
    return {
      port: p,
      close: async () => {
        if (this.closeDelayMs > 0) await new Promise((r) => setTimeout(r, this.closeDelayMs));
        this.bound.delete(p);
        this.closed.push(p);
      },
    };
  };
}

test('dataPortMode() tells ephemeral, a range and one shared port apart', () => {
  assert.deepEqual(dataPortMode(null), { kind: 'ephemeral' });
  assert.deepEqual(dataPortMode({ from: 64001, to: 65000 }), { kind: 'range', range: { from: 64001, to: 65000 } });
  assert.deepEqual(dataPortMode({ from: 6969, to: 6969 }), { kind: 'shared', port: 6969 });
});

test('DataPortAllocator() refuses a one-port or reversed range, or ports outside 1-65535 (RangeError with the value)', () => {
  assert.throws(() => new DataPortAllocator({ from: 70, to: 70 }), /from < to: current value is 70-70/);
  assert.throws(() => new DataPortAllocator({ from: 10, to: 5 }), RangeError);
  assert.throws(() => new DataPortAllocator({ from: 0, to: 5 }), RangeError);
  assert.throws(() => new DataPortAllocator({ from: 65000, to: 65536 }), RangeError);
});

test('acquire() in ephemeral mode binds port 0 each time and holds what the kernel gave', async () => {
  const net = new FakeNet();
  const ports = new DataPortAllocator(null);
  const a = await ports.acquire(net.bind);
  const b = await ports.acquire(net.bind);
  assert.deepEqual(net.binds, [0, 0]);
  assert.deepEqual([a.port, b.port], [40000, 40001]);
  assert.equal(ports.held, 2);
  await ports.release(a);
  assert.equal(ports.held, 1);
  assert.deepEqual(net.closed, [40000]);
});

test('acquire() hands out the range in turn after the last port given, and wraps around to from', async () => {
  const net = new FakeNet();
  const ports = new DataPortAllocator({ from: 100, to: 102 });
  const a = await ports.acquire(net.bind);
  const b = await ports.acquire(net.bind);
  assert.deepEqual([a.port, b.port], [100, 101]);
  await ports.release(a);
  // Not 100 again at once: the next after the last one handed out.
  const c = await ports.acquire(net.bind);
  assert.equal(c.port, 102);
  // Past 'to' it wraps to 'from' (free again), skipping 101 (held) without a bind.
  net.binds = [];
  const d = await ports.acquire(net.bind);
  assert.equal(d.port, 100);
  assert.deepEqual(net.binds, [100]);
  await ports.release(b);
  const e = await ports.acquire(net.bind);
  assert.equal(e.port, 101);
});

test('acquire() skips a port bound elsewhere (EADDRINUSE) and tries it again next time round', async () => {
  const net = new FakeNet();
  net.bound.add(101); // someone else's
  const ports = new DataPortAllocator({ from: 100, to: 102 });
  const a = await ports.acquire(net.bind);
  const b = await ports.acquire(net.bind);
  assert.deepEqual([a.port, b.port], [100, 102]);
  net.bound.delete(101);
  await ports.release(a);
  // After 102 comes 100 (wrapped), then 101, free now.
  assert.equal((await ports.acquire(net.bind)).port, 100);
  assert.equal((await ports.acquire(net.bind)).port, 101);
});

test('acquire() on a full range throws NoFreeDataPortError naming the range and why, and works again once a port is released', async () => {
  const net = new FakeNet();
  net.bound.add(102);
  const ports = new DataPortAllocator({ from: 100, to: 102 });
  const a = await ports.acquire(net.bind);
  await ports.acquire(net.bind);
  const err = await ports.acquire(net.bind).then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(err instanceof NoFreeDataPortError);
  assert.equal(err.message, 'no free TFTP data port in 100-102: 2 held by transfers, 1 busy in other sockets or processes (tftp.dataPorts)');
  assert.deepEqual([err.held, err.busy], [2, 1]);
  await ports.release(a);
  assert.equal((await ports.acquire(net.bind)).port, 100);
});

test('release() frees the port only once its socket is closed; releasing twice is harmless', async () => {
  const net = new FakeNet();
  net.closeDelayMs = 50;
  const ports = new DataPortAllocator({ from: 100, to: 101 });
  const a = await ports.acquire(net.bind);
  const b = await ports.acquire(net.bind);
  const released = ports.release(a);
  await ports.release(a);
  // 100 is still closing: the range is full, and nothing tried to bind 100 again.
  net.binds = [];
  await assert.rejects(ports.acquire(net.bind), NoFreeDataPortError);
  assert.deepEqual(net.binds, []);
  await released;
  assert.equal((await ports.acquire(net.bind)).port, 100);
  assert.deepEqual(net.closed, [100]);
  void b;
});

test('acquire() passes on a bind error that is not a busy port, and the port is free again', async () => {
  const ports = new DataPortAllocator({ from: 100, to: 101 });
  const boom = Object.assign(new Error('no such address'), { code: 'EADDRNOTAVAIL' });
  await assert.rejects(
    ports.acquire(async () => {
      throw boom;
    }),
    boom,
  );
  assert.equal(ports.held, 0);
  const net = new FakeNet();
  assert.equal((await ports.acquire(net.bind)).port, 100);
});

test('closeAll() closes every socket held and waits for closes under way', async () => {
  const net = new FakeNet();
  net.closeDelayMs = 20;
  const ports = new DataPortAllocator(null);
  const a = await ports.acquire(net.bind);
  await ports.acquire(net.bind);
  void ports.release(a);
  await ports.closeAll();
  assert.deepEqual(net.closed.sort(), [40000, 40001]);
  assert.equal(ports.held, 0);
});

/** `count` consecutive ports that were free a moment ago, on 127.0.0.1. */
async function freeRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 40000);
    const socks = [];
    try {
      for (let i = 0; i < count; i++) socks.push(await openUdp('dgram', { address: '127.0.0.1', port: base + i, onMessage: () => undefined, onError: () => undefined }));
      return base;
    } catch {
      // taken: another base
    } finally {
      for (const s of socks) await s.close();
    }
  }
  throw new Error('no free port range found');
}

test('acquire() with real sockets skips a port another process has bound', async () => {
  const base = await freeRange(3);
  // Another process binds base+1 and says so.
  const other = spawn(process.execPath, ['-e', `const s=require('dgram').createSocket('udp4');s.bind(${base + 1},'127.0.0.1',()=>console.log('bound'));setTimeout(()=>{},60000)`], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      other.stdout?.once('data', () => resolve());
      other.once('exit', (code) => reject(new Error(`helper exited ${code}`)));
    });
    const ports = new DataPortAllocator({ from: base, to: base + 2 });
    const bind = (port: number) => openUdp('dgram', { address: '127.0.0.1', port, onMessage: () => undefined, onError: () => undefined });
    const a = await ports.acquire(bind);
    const b = await ports.acquire(bind);
    assert.deepEqual([a.port, b.port], [base, base + 2]);
    await assert.rejects(ports.acquire(bind), (e: unknown) => e instanceof NoFreeDataPortError && e.busy === 1 && e.held === 2);
    await ports.closeAll();
  } finally {
    other.kill();
  }
});

const file = randomBytes(3000);

test('createTftpService() with a range releases a transfer\'s port when it ends, and when it fails', async () => {
  const root = await mkdtemp(join(tmpdir(), 'fb-tftp-ports-'));
  await writeFile(join(root, 'f'), file);
  const base = await freeRange(2);
  const svc = await startTftp(root, { dataPorts: { from: base, to: base + 1 }, timeoutMs: 100, maxRetries: 2 });
  try {
    // Many more transfers than ports, one after another: each one's port comes back.
    for (let i = 0; i < 5; i++) {
      const r = await download(svc.port, 'f');
      assert.deepEqual(r.data, file);
      assert.ok(r.dataPort === base || r.dataPort === base + 1, String(r.dataPort));
    }
    // Two clients that never ACK hold both ports until their transfers fail (2 sends, 100 + 200 ms)...
    const silent = [await RawClient.open(), await RawClient.open()];
    for (const c of silent) {
      c.send({ op: 'RRQ', filename: 'f', mode: 'octet', options: [] }, svc.port);
      await c.nextPacket();
    }
    const c = await RawClient.open();
    c.send({ op: 'RRQ', filename: 'f', mode: 'octet', options: [] }, svc.port);
    const full = await c.nextPacket();
    assert.ok(full.p.op === 'ERROR' && full.p.code === 0 && full.p.message === 'No free data port', JSON.stringify(full.p));
    await c.close();
    // ...then the ports are free again.
    for (const s of silent) {
      let e = await s.nextPacket();
      while (e.p.op === 'DATA') e = await s.nextPacket(); // the retransmission, then the ERROR
      assert.ok(e.p.op === 'ERROR' && e.p.message === 'Timeout', JSON.stringify(e.p));
      await s.close();
    }
    // A port is released just after its transfer's ERROR leaves: retry while the RRQ is refused for want of one.
    const again = await waitFor('a data port to be free again', async () => {
      try {
        return await download(svc.port, 'f');
      } catch (err) {
        if (err instanceof Error && err.message === 'ERROR 0 No free data port') return null;
        throw err;
      }
    }, 5000);
    assert.deepEqual(again.data, file);
  } finally {
    await svc.close();
    await rm(root, { recursive: true, force: true });
  }
});

test('createTftpService() in ephemeral mode gives each transfer a port of its own', async () => {
  const root = await mkdtemp(join(tmpdir(), 'fb-tftp-ports-'));
  await writeFile(join(root, 'f'), file);
  const svc = await startTftp(root, { dataPorts: null });
  try {
    const [a, b] = await Promise.all([download(svc.port, 'f'), download(svc.port, 'f')]);
    assert.notEqual(a.dataPort, b.dataPort);
    assert.notEqual(a.dataPort, svc.port);
    assert.deepEqual(a.data, file);
  } finally {
    await svc.close();
    await rm(root, { recursive: true, force: true });
  }
});
