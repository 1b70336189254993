/**
 * Who holds a port: the kernel's socket tables (/proc/net/udp, tcp and
 * their IPv6 twins, one line per socket with its inode) read as data, and
 * the judgement of `fleetboot doctor`'s port check from them and from which
 * process owns each socket inode (a /proc/PID/fd link "socket:[INODE]").
 * Pure: src/cli/doctor.ts reads the files.
 */
import type { Check } from './report.js';

export interface SocketEntry {
  proto: 'udp' | 'tcp';
  /** The local address as printed: "0.0.0.0", "10.0.0.1", or an IPv6 address in hex. */
  address: string;
  port: number;
  /** TCP: listening (state 0A). UDP sockets are always "listening". */
  listening: boolean;
  inode: number;
}

/** "0100007F" (little-endian) -> "127.0.0.1"; 32 hex digits stay hex (IPv6). */
function hexAddress(hex: string): string {
  if (hex.length !== 8) return hex.toLowerCase();
  const n = Number.parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join('.');
}

/** The sockets of one /proc/net/{udp,tcp,udp6,tcp6} file (lines that do not parse are skipped). */
export function parseProcNet(text: string, proto: 'udp' | 'tcp'): SocketEntry[] {
  const out: SocketEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const local = f[1];
    const st = f[3];
    const inode = Number(f[9]);
    if (!local || !st || !Number.isInteger(inode)) continue;
    const m = /^([0-9A-Fa-f]+):([0-9A-Fa-f]{4})$/.exec(local);
    if (!m) continue;
    out.push({ proto, address: hexAddress(m[1] as string), port: Number.parseInt(m[2] as string, 16), listening: proto === 'udp' || st === '0A', inode });
  }
  return out;
}

/** The inode in a /proc/PID/fd link target "socket:[12345]", else null. */
export function socketInode(linkTarget: string): number | null {
  const m = /^socket:\[(\d+)\]$/.exec(linkTarget);
  return m ? Number(m[1]) : null;
}

export interface ProcessInfo {
  pid: number;
  /** /proc/PID/comm */
  name: string;
}

/** A port the server should hold. */
export interface ExpectedPort {
  proto: 'udp' | 'tcp';
  port: number;
  service: string;
  /** The config key that changes it. */
  setting: string;
}

export interface PortFacts {
  expected: readonly ExpectedPort[];
  sockets: readonly SocketEntry[];
  /** The server's process (server.json). */
  server: ProcessInfo;
  /** Socket inodes of the server's process; null when its /proc/PID/fd could not be read. */
  serverInodes: ReadonlySet<number> | null;
  /** Who owns the other sockets (inode -> process), as far as could be read. */
  owners: ReadonlyMap<number, ProcessInfo>;
}

const who = (p: ProcessInfo): string => `${p.name} (pid ${p.pid})`;

/** One check per expected port: held by the server (ok), by another program (fail, named), by nobody (fail). */
export function judgePorts(f: PortFacts): Check[] {
  return f.expected.map((e) => {
    const id = `port:${e.proto}/${e.port}`;
    const title = `port ${e.proto}/${e.port} (${e.service})`;
    const held = f.sockets.filter((s) => s.proto === e.proto && s.port === e.port && s.listening);
    const ours = f.serverInodes === null ? [] : held.filter((s) => f.serverInodes?.has(s.inode));
    const others = held.filter((s) => !ours.includes(s));
    const otherProcs = new Map<number, ProcessInfo>();
    let unowned = 0;
    for (const s of others) {
      const p = f.owners.get(s.inode);
      if (p && p.pid !== f.server.pid) otherProcs.set(p.pid, p);
      else if (!p) unowned++;
    }
    const othersText = [...otherProcs.values()].map(who).join(', ');
    if (ours.length > 0) {
      if (otherProcs.size > 0) {
        return {
          id,
          status: 'warn',
          title,
          detail: `bound by Fleetboot (pid ${f.server.pid}) and also by ${othersText}: each may get some of the requests`,
          fix: `stop the other program's service on ${e.proto}/${e.port}, or move Fleetboot with ${e.setting}`,
        };
      }
      return { id, status: 'ok', title, detail: `bound by Fleetboot (pid ${f.server.pid}) on ${[...new Set(ours.map((s) => s.address))].join(', ')}`, fix: null };
    }
    if (otherProcs.size > 0) {
      return {
        id,
        status: 'fail',
        title,
        detail: `held by ${othersText}, not by Fleetboot (pid ${f.server.pid})`,
        fix: `stop ${[...otherProcs.values()].map((p) => p.name).join(', ')} (or its ${e.service} service), or move Fleetboot with ${e.setting}, then restart the server`,
      };
    }
    if (f.serverInodes === null) {
      return {
        id,
        status: 'warn',
        title,
        detail: held.length ? `bound, but the sockets of the server (pid ${f.server.pid}) cannot be read: cannot tell by whom` : `nothing is bound to it, and the sockets of the server (pid ${f.server.pid}) cannot be read`,
        fix: "run doctor as root or as the server's user",
      };
    }
    if (unowned > 0) {
      return { id, status: 'fail', title, detail: `held by another process (its owner cannot be read), not by Fleetboot (pid ${f.server.pid})`, fix: `run doctor as root to name it; free ${e.proto}/${e.port} or set ${e.setting}` };
    }
    return { id, status: 'fail', title, detail: `nothing listens on ${e.proto}/${e.port}: the server's ${e.service} is not running`, fix: `look at the server's log for why ${e.service} did not start, and restart it` };
  });
}
