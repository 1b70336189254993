/**
 * `fleetboot multicast send|receive`: one file to N receivers, with the same
 * sender and receiver the server and the boot environment use.
 *
 * The receiver writes FILE.part and, beside it, FILE.fbmc-state (its session,
 * its receiver id and how many blocks are on disk, recorded after an
 * fdatasync about once a second). Restarted with the same --out while the
 * session still runs, it rejoins as the same receiver at its own offset;
 * the file is renamed to FILE only once complete and verified.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, fdatasyncSync, fsyncSync, ftruncateSync, openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { basename } from 'node:path';
import { DEFAULT_BLOCK_SIZE, parseSessionIdHex, sessionIdHex, type Announce, type SessionId } from '../protocol/mcast/codec.js';
import { openMcast, type McastSocket } from '../net/mcast-udp.js';
import { defaultUdpBackend, ipv4ToNumber, udpPeer, type UdpBackend } from '../net/udp.js';
import { multicastAddressProblem } from '../model/multicast.js';
import { MulticastReceiver, type ReceiveResult, type Sink } from './receiver.js';
import { MulticastSender, type SenderStats } from './sender.js';
import { FileObject } from './source.js';

export const DEFAULT_WINDOW = 8192;

export class MulticastSetupError extends Error {
  override name = 'MulticastSetupError';
}

/**
 * The IPv4 address of an interface given by name or address; with none
 * given, the machine's only non-loopback IPv4 interface (more than one: the
 * caller must choose, since multicast leaves by one interface).
 */
export function interfaceAddress(iface: string | undefined): string {
  const all = networkInterfaces();
  if (iface !== undefined) {
    if (!Number.isNaN(ipv4ToNumber(iface))) return iface;
    const v4 = (all[iface] ?? []).find((a) => a.family === 'IPv4');
    if (!v4) throw new MulticastSetupError(`interface ${iface}: no such interface with an IPv4 address (have: ${Object.keys(all).join(', ')})`);
    return v4.address;
  }
  const candidates = Object.entries(all).flatMap(([name, addrs]) => (addrs ?? []).filter((a) => a.family === 'IPv4' && !a.internal).map((a) => ({ name, address: a.address })));
  if (candidates.length === 1) return (candidates[0] as { address: string }).address;
  if (candidates.length === 0) throw new MulticastSetupError('no network interface with an IPv4 address: give --interface');
  throw new MulticastSetupError(`several interfaces could carry the session (${candidates.map((c) => `${c.name} ${c.address}`).join(', ')}): give --interface`);
}

function checkGroup(address: string, port: number): void {
  const problem = multicastAddressProblem(address);
  if (problem) throw new MulticastSetupError(problem);
  if (!(Number.isInteger(port) && port >= 1 && port <= 65535)) throw new MulticastSetupError(`port must be 1-65535, got ${port}`);
}

export interface SendFileOptions {
  file: string;
  address: string;
  port: number;
  receivers: number;
  minReceivers?: number;
  iface?: string;
  maxWaitS?: number | null;
  maxRateMbps: number;
  ttl?: number;
  blockSize?: number;
  window?: number;
  slowS?: number;
  receiverTimeoutS?: number;
  /** The sender's own port, where receivers answer (0: a free port the kernel picks). */
  feedbackPort?: number;
  backend?: UdpBackend;
  log?: (msg: string) => void;
}

export interface SendFileResult {
  ok: boolean;
  stats: SenderStats;
}

export async function sendFile(o: SendFileOptions): Promise<SendFileResult> {
  checkGroup(o.address, o.port);
  if (!(Number.isInteger(o.receivers) && o.receivers >= 1)) throw new MulticastSetupError(`--receivers must be a whole number of at least 1, got ${o.receivers}`);
  if (!(o.maxRateMbps > 0)) throw new MulticastSetupError(`--max-rate must be above 0 Mbit/s, got ${o.maxRateMbps}`);
  const local = interfaceAddress(o.iface);
  const object = FileObject.ofFile(o.file);
  let sender: MulticastSender | null = null;
  let sock: McastSocket | null = null;
  try {
    sock = await openMcast(o.backend ?? defaultUdpBackend(), {
      address: local,
      port: o.feedbackPort ?? 0,
      interfaceAddress: local,
      ttl: o.ttl ?? 1,
      sndbuf: 4 << 20,
      rcvbuf: 4 << 20,
      onMessage: (m, ip, port) => sender?.handle(m, ip, port),
      onError: (err) => o.log?.(`socket: ${err.message}`),
    });
    sender = new MulticastSender(sock, {
      object,
      label: basename(o.file),
      group: udpPeer(ipv4ToNumber(o.address), o.port),
      expected: o.receivers,
      minReceivers: o.minReceivers ?? 1,
      maxWaitMs: o.maxWaitS == null ? null : o.maxWaitS * 1000,
      maxRateBps: (o.maxRateMbps * 1e6) / 8,
      blockSize: o.blockSize ?? DEFAULT_BLOCK_SIZE,
      maxWindow: o.window ?? DEFAULT_WINDOW,
      // Without --slow-seconds every receiver is waited for: the standalone pair has no unicast to fall back to.
      slowMs: o.slowS === undefined ? Number.POSITIVE_INFINITY : o.slowS * 1000,
      receiverTimeoutMs: (o.receiverTimeoutS ?? 5) * 1000,
      log: o.log,
    });
    o.log?.(`session ${sender.id}: ${o.file} (${object.bytes} bytes) to ${o.address}:${o.port} from ${local}:${sock.port}, waiting for ${o.receivers} receiver(s)`);
    const ok = await sender.run();
    // Stay a moment to answer receivers that missed their bye or their drop (a second when one did not finish).
    await new Promise((r) => setTimeout(r, ok ? 200 : 1000));
    return { ok, stats: sender.stats() };
  } finally {
    await sock?.close();
    object.close();
  }
}

interface PartialState {
  format: 'fleetboot-multicast-partial';
  session: string;
  receiver: string;
  objectBytes: number;
  blockSize: number;
  blocks: number;
}

function readState(path: string): PartialState | null {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as Partial<PartialState>;
    if (v.format !== 'fleetboot-multicast-partial' || typeof v.session !== 'string' || typeof v.receiver !== 'string') return null;
    if (![v.objectBytes, v.blockSize, v.blocks].every((n) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0)) return null;
    return v as PartialState;
  } catch {
    return null;
  }
}

/** Writes the object into FILE.part by position and records progress in FILE.fbmc-state. */
class PartFileSink implements Sink {
  constructor(
    readonly fd: number,
    private readonly statePath: string,
    private readonly receiver: SessionId,
  ) {}

  write(chunk: Buffer, position: number): void {
    let done = 0;
    while (done < chunk.length) done += writeSync(this.fd, chunk, done, chunk.length - done, position + done);
  }

  checkpoint(_bytes: number, blocks: number, session: SessionId, a: Announce): void {
    fdatasyncSync(this.fd);
    const state: PartialState = {
      format: 'fleetboot-multicast-partial',
      session: sessionIdHex(session),
      receiver: sessionIdHex(this.receiver),
      objectBytes: a.objectBytes,
      blockSize: a.blockSize,
      blocks,
    };
    const tmp = `${this.statePath}.tmp`;
    writeFileSync(tmp, JSON.stringify(state) + '\n', { mode: 0o600 });
    renameSync(tmp, this.statePath);
  }
}

export interface ReceiveFileOptions {
  out: string;
  address: string;
  port: number;
  iface?: string;
  window?: number;
  joinTimeoutS?: number | null;
  senderTimeoutS?: number;
  backend?: UdpBackend;
  log?: (msg: string) => void;
}

export async function receiveFile(o: ReceiveFileOptions): Promise<ReceiveResult> {
  checkGroup(o.address, o.port);
  const local = interfaceAddress(o.iface);
  const part = `${o.out}.part`;
  const statePath = `${o.out}.fbmc-state`;
  const prior = existsSync(part) ? readState(statePath) : null;
  const receiverId = (prior && parseSessionIdHex(prior.receiver)) || { hi: randomBytes(4).readUInt32BE(0), lo: randomBytes(4).readUInt32BE(0) };
  const fd = openSync(part, prior ? 'r+' : 'w', 0o644);
  let resume: { session: SessionId; blocks: number; hash: ReturnType<typeof createHash> } | null = null;
  let data: McastSocket | null = null;
  let ctl: McastSocket | null = null;
  try {
    if (prior) {
      const session = parseSessionIdHex(prior.session);
      // Hash what is already on disk: the receiver's digest covers every byte of the object.
      const bytes = Math.min(prior.objectBytes, prior.blocks * prior.blockSize);
      const hash = createHash('sha256');
      const buf = Buffer.allocUnsafe(1 << 20);
      let at = 0;
      while (at < bytes) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, bytes - at), at);
        if (n === 0) break;
        hash.update(buf.subarray(0, n));
        at += n;
      }
      if (session && at === bytes) {
        resume = { session, blocks: prior.blocks, hash };
        o.log?.(`resuming: ${bytes} bytes of session ${prior.session} already in ${part}`);
      }
    }
    const sink = new PartFileSink(fd, statePath, receiverId);
    const backend = o.backend ?? defaultUdpBackend();
    let receiver: MulticastReceiver | null = null;
    data = await openMcast(backend, {
      address: o.address,
      port: o.port,
      shared: true,
      join: { group: o.address, interfaceAddress: local },
      rcvbuf: 32 << 20,
      onMessage: (m, ip, port) => receiver?.handleData(m, ip, port),
      onBatch: () => receiver?.afterBatch(),
      onError: (err) => o.log?.(`socket: ${err.message}`),
    });
    ctl = await openMcast(backend, {
      address: local,
      port: 0,
      onMessage: (m, ip) => receiver?.handleControl(m, ip),
      onError: (err) => o.log?.(`socket: ${err.message}`),
    });
    receiver = new MulticastReceiver(data, ctl, {
      session: null,
      receiverId,
      window: o.window ?? DEFAULT_WINDOW,
      sink,
      resume,
      joinTimeoutMs: o.joinTimeoutS == null ? null : o.joinTimeoutS * 1000,
      senderTimeoutMs: (o.senderTimeoutS ?? 10) * 1000,
      log: o.log,
    });
    const result = await receiver.run();
    if (result.ok) {
      ftruncateSync(fd, result.bytes);
      fsyncSync(fd);
      renameSync(part, o.out);
      rmSync(statePath, { force: true });
    }
    return result;
  } finally {
    closeSync(fd);
    await data?.close();
    await ctl?.close();
  }
}
