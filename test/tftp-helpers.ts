/**
 * Test helpers for the TFTP service: a raw UDP client that sees every packet,
 * a minimal downloading client (lock-step or windowed), and a service
 * fixture on 127.0.0.1 with port 0.
 */
import dgram from 'node:dgram';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createTftpService, type TftpService, type TftpServiceOptions } from '../src/net/tftp-server.js';
import { silentLogger, type Logger } from '../src/lib/log.js';
import { decode, encode, type TftpOption, type TftpPacket } from '../src/protocol/tftp/index.js';

export interface Received {
  msg: Buffer;
  port: number;
  address: string;
}

/** A UDP socket on 127.0.0.1 whose incoming packets are queued for the test to take one by one. */
export class RawClient {
  readonly sock: dgram.Socket;
  private readonly queue: Received[] = [];
  private waiter: ((r: Received) => void) | null = null;

  private constructor(sock: dgram.Socket) {
    this.sock = sock;
    sock.on('message', (msg, rinfo) => {
      const r = { msg, port: rinfo.port, address: rinfo.address };
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = null;
        w(r);
      } else this.queue.push(r);
    });
  }

  static async open(port = 0): Promise<RawClient> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(port, '127.0.0.1', () => resolve());
    });
    return new RawClient(sock);
  }

  get port(): number {
    return this.sock.address().port;
  }

  private pending = 0;
  private drained: (() => void) | null = null;

  send(packet: TftpPacket | Buffer, port: number): void {
    this.pending++;
    this.sock.send(Buffer.isBuffer(packet) ? packet : encode(packet), port, '127.0.0.1', () => {
      if (--this.pending === 0 && this.drained) this.drained();
    });
  }

  /** The next packet, or a rejection after `timeoutMs`. */
  next(timeoutMs = 3000): Promise<Received> {
    const r = this.queue.shift();
    if (r) return Promise.resolve(r);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no packet within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (got) => {
        clearTimeout(t);
        resolve(got);
      };
    });
  }

  /** The next packet decoded. */
  async nextPacket(timeoutMs = 3000): Promise<{ p: TftpPacket; port: number }> {
    const r = await this.next(timeoutMs);
    return { p: decode(r.msg), port: r.port };
  }

  /** Resolves true when nothing arrives within `ms`. */
  async silentFor(ms: number): Promise<boolean> {
    try {
      await this.next(ms);
      return false;
    } catch {
      return true;
    }
  }

  /** Close once every packet handed to send() has left. */
  async close(): Promise<void> {
    if (this.pending > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    await new Promise<void>((resolve) => this.sock.close(() => resolve()));
  }
}

export interface DownloadOptions {
  options?: TftpOption[];
  /** The client's window: ACK every `window` blocks (must match what was negotiated). */
  window?: number;
  mode?: string;
}

/**
 * Download `file` with a minimal, strict client. Fails on anything unexpected,
 * except what a stall of this process may cause (client and server share one
 * event loop in most tests): when the server's resend timer fires before our
 * ACK is read, the repeated OACK or blocks are legitimate TFTP. Those are
 * skipped and counted (`repeats`), and the last ACK is sent again, as real
 * clients do. Returns the bytes, the negotiated OACK (if any) and the data port.
 */
export async function download(
  serverPort: number,
  file: string,
  opts: DownloadOptions = {},
): Promise<{ data: Buffer; oack: TftpOption[] | null; dataPort: number; blocks: number; repeats: number }> {
  const c = await RawClient.open();
  try {
    c.send({ op: 'RRQ', filename: file, mode: opts.mode ?? 'octet', options: opts.options ?? [] }, serverPort);
    let blksize = 512;
    let window = opts.window ?? 1;
    let oack: TftpOption[] | null = null;
    const parts: Buffer[] = [];
    let expected = 1; // absolute block
    let sinceAck = 0;
    let first = await c.next();
    const dataPort = first.port;
    const p0 = decode(first.msg);
    if (p0.op === 'ERROR') throw new Error(`ERROR ${p0.code} ${p0.message}`);
    if (p0.op === 'OACK') {
      oack = p0.options;
      for (const o of p0.options) {
        if (o.name.toLowerCase() === 'blksize') blksize = Number(o.value);
        if (o.name.toLowerCase() === 'windowsize') window = Number(o.value);
      }
      c.send({ op: 'ACK', block: 0 }, dataPort);
      first = await c.next();
    }
    let r: Received = first;
    let repeats = 0;
    let lastAck = oack ? 0 : -1; // the block last acknowledged (16-bit), -1 before any
    for (;;) {
      if (r.port !== dataPort) throw new Error(`packet from port ${r.port}, expected ${dataPort}`);
      const p = decode(r.msg);
      if (p.op === 'ERROR') throw new Error(`ERROR ${p.code} ${p.message}`);
      if (p.op === 'OACK' && oack && expected === 1) {
        // Our ACK 0 came late: the server sent its OACK again.
        repeats++;
        c.send({ op: 'ACK', block: 0 }, dataPort);
        r = await c.next();
        continue;
      }
      if (p.op !== 'DATA') throw new Error(`unexpected ${p.op}`);
      const behind = ((expected & 0xffff) - p.block) & 0xffff; // 1 = the block before the expected one
      if (behind >= 1 && behind <= window && expected - behind >= 1) {
        // A block we already have, resent on the server's timeout.
        repeats++;
        if (p.block === lastAck) c.send({ op: 'ACK', block: p.block }, dataPort);
        r = await c.next();
        continue;
      }
      if (p.block !== (expected & 0xffff)) throw new Error(`block ${p.block}, expected ${expected & 0xffff}`);
      parts.push(Buffer.from(p.data));
      const last = p.data.length < blksize;
      sinceAck++;
      if (last || sinceAck === window) {
        c.send({ op: 'ACK', block: p.block }, dataPort);
        lastAck = p.block;
        sinceAck = 0;
      }
      if (last) return { data: Buffer.concat(parts), oack, dataPort, blocks: expected, repeats };
      expected++;
      r = await c.next();
    }
  } finally {
    await c.close();
  }
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(path)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve())
      .on('error', reject);
  });
  return h.digest('hex');
}

/** A pino logger whose lines are collected as objects. */
export function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

export async function startTftp(root: string, over: Partial<TftpServiceOptions> = {}): Promise<TftpService> {
  const svc = createTftpService({
    root,
    bindAddress: '127.0.0.1',
    port: 0,
    dataPorts: null,
    timeoutMs: 1000,
    maxRetries: 5,
    maxBlksize: 65464,
    maxWindowsize: 64,
    // src/net/tftp-server-busypoll.test.ts reruns the TFTP unit suite with busy polling on.
    busyPollMicros: Number(process.env.FLEETBOOT_TEST_TFTP_BUSY_POLL ?? 0),
    logger: silentLogger,
    ...over,
  });
  await svc.start();
  return svc;
}

/** A port that was free a moment ago (bind 0, read, close). */
export async function freePort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
