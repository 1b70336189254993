/**
 * TFTP data ports: which local port (the server's TID, RFC 1350 §4) each
 * transfer gets. Three modes, from `tftp.dataPorts` (dataPortMode()):
 *
 *   - ephemeral (null): the kernel picks a free port for each transfer (bind
 *     to port 0), as tftp-hpa and dnsmasq do by default.
 *   - a range (from < to), like WDS's 64001-65000, for firewalls: the next
 *     free port after the last one handed out, wrapping from `to` back to
 *     `from`, so a port just released is the last to be used again (a late
 *     packet of the old transfer then finds no one rather than a stranger).
 *     Ports our own transfers hold are skipped without a system call; a port
 *     busy in another process (the bind fails with EADDRINUSE, or EACCES) is
 *     skipped and tried again next time round. When every port is taken,
 *     acquire() throws NoFreeDataPortError naming the range and why each port
 *     was unavailable; the server answers that request with ERROR 0.
 *   - one shared port (from === to): nothing to allocate. The server binds
 *     that one port at start and tells transfers apart by the client's
 *     address:port (tftp-server.ts); DataPortAllocator refuses this mode.
 *
 * A port is released when its transfer ends, however it ends (done, failed,
 * aborted, or the request refused after the port was taken): release()
 * closes the socket and frees the port only once the close is done, so the
 * next bind of that port cannot fail because the old socket still holds it.
 *
 * Allocation runs once per transfer, never per packet. How the socket is
 * bound (one socket, or the connected pair of udp.ts openUdpForPeer) is the
 * caller's `bind` function: this unit only picks ports and keeps count.
 */

/** An inclusive range of UDP ports (structurally the config's tftp.dataPorts). */
export interface DataPortRange {
  readonly from: number;
  readonly to: number;
}

export type DataPortMode = { kind: 'ephemeral' } | { kind: 'range'; range: DataPortRange } | { kind: 'shared'; port: number };

/** The mode `tftp.dataPorts` selects (see the header). */
export function dataPortMode(dataPorts: DataPortRange | null): DataPortMode {
  if (dataPorts === null) return { kind: 'ephemeral' };
  if (dataPorts.from === dataPorts.to) return { kind: 'shared', port: dataPorts.from };
  return { kind: 'range', range: { from: dataPorts.from, to: dataPorts.to } };
}

/** What acquire() needs of a bound socket. */
export interface BoundPort {
  /** The bound local port. */
  readonly port: number;
  close(): Promise<void>;
}

/** Binds a socket on `port` (0: any free port); rejects with `code` EADDRINUSE or EACCES when the port cannot be had. */
export type BindPort<S extends BoundPort> = (port: number) => Promise<S>;

/** Every port of the range is taken: by our own transfers or by other processes. */
export class NoFreeDataPortError extends Error {
  readonly range: DataPortRange;
  /** Ports held by our transfers (or being closed). */
  readonly held: number;
  /** Ports another socket had bound (EADDRINUSE / EACCES at this attempt). */
  readonly busy: number;
  constructor(range: DataPortRange, held: number, busy: number) {
    super(`no free TFTP data port in ${range.from}-${range.to}: ${held} held by transfers, ${busy} busy in other sockets or processes (tftp.dataPorts)`);
    this.name = 'NoFreeDataPortError';
    this.range = range;
    this.held = held;
    this.busy = busy;
  }
}

function isPortBusy(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return code === 'EADDRINUSE' || code === 'EACCES';
}

/** Hands out data ports for transfers, in ephemeral or range mode (see the header). */
export class DataPortAllocator {
  private readonly range: DataPortRange | null;
  /** Range mode: ports held (bound, being bound, or being closed). */
  private readonly ports = new Set<number>();
  /** Sockets handed out and not yet released. */
  private readonly sockets = new Set<BoundPort>();
  private readonly closing = new Set<Promise<void>>();
  /** Range mode: offset from `from` of the port to try first. */
  private cursor = 0;

  /** `range` null: ephemeral ports. A one-port range is the shared mode, which needs no allocator (RangeError). */
  constructor(range: DataPortRange | null) {
    if (range !== null) {
      const ok = (v: number): boolean => Number.isInteger(v) && v >= 1 && v <= 65535;
      if (!ok(range.from) || !ok(range.to) || range.to <= range.from) {
        throw new RangeError(`TFTP data port range must be two ports 1-65535 with from < to: current value is ${range.from}-${range.to}`);
      }
      this.range = { from: range.from, to: range.to };
    } else {
      this.range = null;
    }
  }

  /** Sockets handed out and not released yet. */
  get held(): number {
    return this.sockets.size;
  }

  /**
   * A socket on a free data port, bound by `bind`, held until release().
   * Range mode: NoFreeDataPortError when no port is free; a bind error other
   * than a busy port is thrown as is (and the port is free again).
   */
  async acquire<S extends BoundPort>(bind: BindPort<S>): Promise<S> {
    if (this.range === null) {
      const sock = await bind(0);
      this.sockets.add(sock);
      return sock;
    }
    const { from, to } = this.range;
    const n = to - from + 1;
    let held = 0;
    let busy = 0;
    for (let i = 0; i < n; i++) {
      const offset = (this.cursor + i) % n;
      const port = from + offset;
      if (this.ports.has(port)) {
        held++;
        continue;
      }
      this.ports.add(port);
      let sock: S;
      try {
        sock = await bind(port);
      } catch (err) {
        this.ports.delete(port);
        if (!isPortBusy(err)) throw err;
        busy++;
        continue;
      }
      this.cursor = (offset + 1) % n;
      this.sockets.add(sock);
      return sock;
    }
    throw new NoFreeDataPortError(this.range, held, busy);
  }

  /** Close a socket acquire() gave, then free its port. Releasing twice is harmless. */
  async release(sock: BoundPort): Promise<void> {
    if (!this.sockets.delete(sock)) return;
    const p = sock
      .close()
      .catch(() => undefined)
      .then(() => {
        this.ports.delete(sock.port);
        this.closing.delete(p);
      });
    this.closing.add(p);
    await p;
  }

  /** Release every socket still held and wait for every close under way. */
  async closeAll(): Promise<void> {
    await Promise.all([...[...this.sockets].map((s) => this.release(s)), ...this.closing]);
  }
}
