/**
 * The sender and receiver engines over an in-memory network (no sockets):
 * loss, late joiners, restarts, foreign sessions. Receivers take the
 * JavaScript path here (the fake sockets have no native fast path); the lab
 * tests (test/multicast.lab.test.ts) run the native one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { McastSocket } from '../net/mcast-udp.js';
import { ipv4ToNumber, udpPeer, type UdpPeer } from '../net/udp.js';
import { DATA_HEADER_BYTES, writeDataHeader, type SessionId } from '../protocol/mcast/codec.js';
import { MulticastReceiver, type ReceiveResult } from './receiver.js';
import { MulticastSender, type SenderOptions } from './sender.js';
import { FileObject } from './source.js';

type Handler = (msg: Buffer, ip: number, port: number) => void;

/** A LAN in memory: unicast by (ip, port), multicast to every socket that joined the group; optional random loss per receiving socket. */
class FakeNet {
  private readonly byAddr = new Map<string, FakeSock>();
  private readonly groups = new Map<number, Set<FakeSock>>();
  private nextPort = 40000;

  open(ip: string, handler: () => Handler, opts: { join?: string; loss?: number; port?: number } = {}): FakeSock {
    const s = new FakeSock(this, ipv4ToNumber(ip), opts.port ?? this.nextPort++, handler, opts.loss ?? 0);
    this.byAddr.set(`${s.ip}:${s.port}`, s);
    if (opts.join) {
      const g = ipv4ToNumber(opts.join);
      if (!this.groups.has(g)) this.groups.set(g, new Set());
      this.groups.get(g)?.add(s);
    }
    return s;
  }

  route(from: FakeSock, buf: Buffer, peer: UdpPeer): void {
    const targets = this.groups.get(peer.ip) ?? [this.byAddr.get(`${peer.ip}:${peer.port}`)];
    for (const t of targets) {
      if (!t || t.closed || (this.groups.has(peer.ip) && t.port !== peer.port)) continue;
      if (t.loss > 0 && Math.random() < t.loss) continue;
      const copy = Buffer.from(buf);
      setImmediate(() => {
        if (!t.closed) t.handler()(copy, from.ip, from.port);
      });
    }
  }

  close(s: FakeSock): void {
    this.byAddr.delete(`${s.ip}:${s.port}`);
    for (const g of this.groups.values()) g.delete(s);
  }
}

class FakeSock implements McastSocket {
  readonly backend = 'dgram' as const;
  closed = false;
  constructor(
    private readonly net: FakeNet,
    readonly ip: number,
    readonly port: number,
    readonly handler: () => Handler,
    public loss: number,
  ) {}
  send(buf: Buffer, peer: UdpPeer): boolean {
    if (!this.closed) this.net.route(this, buf, peer);
    return true;
  }
  sendSegments(buf: Buffer, segment: number, peer: UdpPeer): number {
    let n = 0;
    for (let off = 0; off < buf.length; off += segment, n++) this.send(buf.subarray(off, Math.min(buf.length, off + segment)), peer);
    return n;
  }
  onWritable(): void {}
  receiveDrops(): null {
    return null;
  }
  attachRing(): boolean {
    return false;
  }
  close(): Promise<void> {
    this.closed = true;
    this.net.close(this);
    return Promise.resolve();
  }
}

const GROUP = '239.255.9.9';
const PORT = 9000;

function tempObject(bytes: number): { dir: string; path: string; data: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'fbmc-'));
  const data = randomBytes(bytes);
  const path = join(dir, 'object.bin');
  writeFileSync(path, data);
  return { dir, path, data };
}

function startSender(net: FakeNet, path: string, o: Partial<SenderOptions>): { sender: MulticastSender; object: FileObject } {
  const object = FileObject.ofFile(path);
  let sender: MulticastSender | null = null;
  const sock = net.open('10.0.0.1', () => (m, ip, port) => sender?.handle(m, ip, port));
  sender = new MulticastSender(sock, {
    object,
    label: 'object.bin',
    group: udpPeer(ipv4ToNumber(GROUP), PORT),
    expected: 1,
    minReceivers: 1,
    maxWaitMs: null,
    maxRateBps: 200e6,
    blockSize: 1000,
    maxWindow: 512,
    slowMs: 10_000,
    receiverTimeoutMs: 3000,
    ...o,
  });
  return { sender, object };
}

interface TestReceiver {
  out: Buffer;
  receiver: MulticastReceiver;
  result: Promise<ReceiveResult>;
  close(): void;
}

function startReceiver(
  net: FakeNet,
  n: number,
  o: { loss?: number; ctlLoss?: number; id?: SessionId; resume?: { session: SessionId; blocks: number; prefix: Buffer }; size: number; statusMs?: number },
): TestReceiver {
  const out = Buffer.alloc(o.size);
  if (o.resume) o.resume.prefix.copy(out);
  let receiver: MulticastReceiver | null = null;
  const ip = `10.0.0.${10 + n}`;
  const data = net.open(ip, () => (m, a, p) => receiver?.handleData(m, a, p), { join: GROUP, loss: o.loss ?? 0, port: PORT });
  const ctl = net.open(ip, () => (m, a) => receiver?.handleControl(m, a), { loss: o.ctlLoss ?? o.loss ?? 0 });
  receiver = new MulticastReceiver(data, ctl, {
    session: null,
    receiverId: o.id ?? { hi: n, lo: n * 7 },
    window: 512,
    sink: { write: (chunk, position) => void chunk.copy(out, position) },
    resume: o.resume ? { session: o.resume.session, blocks: o.resume.blocks, hash: createHash('sha256').update(o.resume.prefix) } : null,
    senderTimeoutMs: 3000,
    ...(o.statusMs !== undefined ? { statusMs: o.statusMs } : {}),
  });
  return {
    out,
    receiver,
    result: receiver.run(),
    close: () => {
      receiver?.abort('test');
      void data.close();
      void ctl.close();
    },
  };
}

test('three receivers with 10 % random loss each (feedback included) end byte-identical, repairs well under a second copy', async () => {
  const { dir, path, data } = tempObject(3 * 1024 * 1024 + 333);
  const net = new FakeNet();
  try {
    const rs = [0, 1, 2].map((n) => startReceiver(net, n, { loss: 0.1, size: data.length }));
    const { sender, object } = startSender(net, path, { expected: 3 });
    const ok = await sender.run();
    object.close();
    assert.equal(ok, true);
    for (const r of rs) {
      const res = await r.result;
      assert.equal(res.ok, true, res.reason ?? '');
      assert.equal(res.sha256, createHash('sha256').update(data).digest('hex'));
      assert.ok(r.out.equals(data));
    }
    const st = sender.stats();
    assert.ok(st.retransmittedShare > 0.05 && st.retransmittedShare < 0.6, `retransmitted ${st.retransmittedShare}`);
    for (const r of rs) r.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a ceiling below the sender\'s floor rate holds while heavy loss makes it slow down', async () => {
  const { dir, path, data } = tempObject(300 * 1000);
  const net = new FakeNet();
  const ceiling = 400e3;
  let highest = 0;
  const sample = setInterval(() => (highest = Math.max(highest, sender.stats().rateBps)), 5);
  // Reports every 250 ms: enough datagrams between two for the sender to take their loss share.
  const rs = [0, 1, 2].map((n) => startReceiver(net, n, { loss: 0.3, size: data.length, statusMs: 250 }));
  const { sender, object } = startSender(net, path, { expected: 3, maxRateBps: ceiling });
  try {
    assert.equal(await sender.run(), true);
    for (const r of rs) assert.equal((await r.result).ok, true);
    assert.ok(highest > 0 && highest <= ceiling, `rate reached ${highest} B/s, ceiling ${ceiling}`);
  } finally {
    clearInterval(sample);
    object.close();
    for (const r of rs) r.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a receiver that joins after the session started gets the whole object in a second sweep', async () => {
  const { dir, path, data } = tempObject(2 * 1024 * 1024);
  const net = new FakeNet();
  try {
    const first = startReceiver(net, 0, { size: data.length });
    const { sender, object } = startSender(net, path, { expected: 1, maxRateBps: 5e6 });
    const run = sender.run();
    await new Promise((r) => setTimeout(r, 200)); // past the late receiver's window (512 KB), well before the first sweep's end (about 400 ms at 5 MB/s)
    assert.equal(sender.stats().state, 'sending');
    const late = startReceiver(net, 1, { size: data.length });
    assert.equal((await first.result).ok, true);
    const res = await late.result;
    assert.equal(res.ok, true, res.reason ?? '');
    assert.ok(late.out.equals(data));
    assert.equal(await run, true);
    assert.equal(sender.stats().sweeps, 2);
    object.close();
    first.close();
    late.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a restarted receiver rejoins as itself at its own offset; datagrams of another session never reach its sink', async () => {
  const { dir, path, data } = tempObject(1024 * 1024);
  const net = new FakeNet();
  try {
    const id = { hi: 99, lo: 99 };
    const { sender, object } = startSender(net, path, { expected: 1, maxRateBps: 5e6 });
    const first = startReceiver(net, 0, { size: data.length, id });
    const run = sender.run();
    await new Promise((r) => setTimeout(r, 120));
    const got = first.receiver.progress().bytes;
    assert.ok(got > 0 && got < data.length, `progress ${got}`);
    first.close(); // killed
    const blocks = Math.floor(got / 1000);
    // A stranger on the same group and port sends DATA of another session, block 0 onwards, full of 0xee.
    const stranger = net.open('10.0.0.66', () => () => undefined);
    const bogus = Buffer.alloc(DATA_HEADER_BYTES + 1000, 0xee);
    for (let b = 0; b < 50; b++) {
      writeDataHeader(bogus, 0, { hi: 1, lo: 2 }, blocks + b, b);
      stranger.send(bogus, udpPeer(ipv4ToNumber(GROUP), PORT));
    }
    const again = startReceiver(net, 0, { size: data.length, id, resume: { session: sender.session, blocks, prefix: data.subarray(0, blocks * 1000) } });
    const res = await again.result;
    assert.equal(res.ok, true, res.reason ?? '');
    assert.ok(again.out.equals(data));
    assert.equal(await run, true);
    const views = sender.stats().receivers;
    assert.equal(views.length, 1, 'the restarted receiver is the same receiver');
    assert.equal(views[0]?.state, 'done');
    object.close();
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a receiver that goes silent fails alone; the others finish', async () => {
  const { dir, path, data } = tempObject(2 * 1024 * 1024);
  const net = new FakeNet();
  try {
    const rs = [0, 1, 2].map((n) => startReceiver(net, n, { size: data.length }));
    const { sender, object } = startSender(net, path, { expected: 3, maxRateBps: 10e6, receiverTimeoutMs: 500 });
    const run = sender.run();
    await new Promise((r) => setTimeout(r, 60));
    (rs[1] as TestReceiver).close();
    assert.equal(await run, false);
    const views = sender.stats().receivers;
    assert.deepEqual(views.map((v) => v.state).sort(), ['done', 'done', 'failed']);
    assert.match(views.find((v) => v.state === 'failed')?.reason ?? '', /no word from the receiver/);
    for (const n of [0, 2]) assert.ok((rs[n] as TestReceiver).out.equals(data));
    object.close();
    for (const r of rs) r.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a receiver that holds the others back past slowMs is dropped and told why; the others finish', async () => {
  const { dir, path, data } = tempObject(2 * 1024 * 1024);
  const net = new FakeNet();
  try {
    const rs = [0, 1].map((n) => startReceiver(net, n, { size: data.length }));
    // 90 % of its DATA lost; its control path loses less, so that being told why does not hang on a 1 % round trip
    // (were the CONTROL lost to the end, it would fail with "ended", and an agent go on by unicast all the same).
    const slow = startReceiver(net, 2, { size: data.length, loss: 0.9, ctlLoss: 0.3 });
    const { sender, object } = startSender(net, path, { expected: 3, slowMs: 300 });
    const run = sender.run();
    const res = await slow.result;
    assert.equal(res.ok, false);
    assert.equal(res.failure, 'dropped');
    assert.match(res.reason ?? '', /too slow/);
    assert.equal(await run, false); // not every receiver has it
    for (const r of rs) assert.ok(r.out.equals(data));
    object.close();
    for (const r of [...rs, slow]) r.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
