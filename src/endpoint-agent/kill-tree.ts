/**
 * Kill a process and everything it started (Linux, through /proc).
 *
 * A package's command runs in its own process group (spawn `detached`), so
 * one kill(-pgid) reaches most of it; children that called setsid() or
 * setpgid() left that group, and are found through the parent links of
 * /proc/<pid>/stat. The tree is snapshotted before the first signal (a
 * child whose parent dies is re-parented to init and loses the link), each
 * process is named by pid + start time (so a recycled pid is never hit),
 * and the walk is repeated until nothing of the tree is left.
 *
 *   SIGTERM to the group and to every process of the tree
 *   wait up to graceMs for them to go (walking again for new children)
 *   SIGKILL to whatever is left, walking again, until nothing remains
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProcStat {
  pid: number;
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  /** Clock ticks since boot: with the pid, names a process uniquely. */
  startTime: string;
}

/** Parse /proc/<pid>/stat (the command may hold spaces and parentheses: split after the last ')'). */
export function parseProcStat(text: string): ProcStat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  const f = text.slice(close + 2).trim().split(/\s+/);
  // After ')': state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime
  if (!Number.isInteger(pid) || f.length < 20) return null;
  return { pid, state: f[0] ?? '?', ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]), startTime: f[19] ?? '' };
}

/** Every process of /proc (a snapshot). */
export function readProcs(procRoot = '/proc'): ProcStat[] {
  const out: ProcStat[] = [];
  let names: string[];
  try {
    names = readdirSync(procRoot);
  } catch {
    return out;
  }
  for (const n of names) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const s = parseProcStat(readFileSync(join(procRoot, n, 'stat'), 'utf8'));
      if (s) out.push(s);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const key = (p: ProcStat): string => `${p.pid}/${p.startTime}`;

/**
 * The live processes of the tree: `known` (pid/starttime keys) still alive,
 * the members of process group `pgid`, and every descendant of those.
 * Zombies count as gone (only their parent's wait() is left).
 */
export function treeOf(procs: ProcStat[], rootPid: number, pgid: number, known: Map<string, ProcStat>): ProcStat[] {
  const children = new Map<number, ProcStat[]>();
  for (const p of procs) {
    const l = children.get(p.ppid);
    if (l) l.push(p);
    else children.set(p.ppid, [p]);
  }
  const seen = new Set<string>();
  // Zombies are walked through (their children still name them as parent) but not returned.
  const queue: ProcStat[] = procs.filter((p) => known.has(key(p)) || p.pgrp === pgid || (known.size === 0 && p.pid === rootPid));
  const out: ProcStat[] = [];
  while (queue.length > 0) {
    const p = queue.shift() as ProcStat;
    if (seen.has(key(p))) continue;
    seen.add(key(p));
    if (p.state !== 'Z' && p.state !== 'X') out.push(p);
    for (const c of children.get(p.pid) ?? []) queue.push(c);
  }
  return out;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone, or not ours
  }
}

export interface KillTreeOptions {
  /** Where /proc is (tests). */
  procRoot?: string;
  /** How often the tree is walked again while waiting (default 100 ms). */
  pollMs?: number;
}

/**
 * Kill `pid` (the leader of its own process group) and every process of its
 * tree: SIGTERM, then SIGKILL after `graceMs`. Resolves when none remains;
 * returns how many processes were signalled in all.
 */
export async function killTreeLinux(pid: number, graceMs: number, opts: KillTreeOptions = {}): Promise<number> {
  const { procRoot = '/proc', pollMs = 100 } = opts;
  const known = new Map<string, ProcStat>();
  const walk = (): ProcStat[] => {
    const t = treeOf(readProcs(procRoot), pid, pid, known);
    for (const p of t) known.set(key(p), p);
    return t;
  };
  let tree = walk();
  signal(-pid, 'SIGTERM');
  for (const p of tree) signal(p.pid, 'SIGTERM');
  const termDeadline = Date.now() + graceMs;
  while (tree.length > 0 && Date.now() < termDeadline) {
    await sleep(pollMs);
    const before = new Set(tree.map(key));
    tree = walk();
    for (const p of tree) if (!before.has(key(p))) signal(p.pid, 'SIGTERM');
  }
  for (let round = 0; tree.length > 0; round++) {
    signal(-pid, 'SIGKILL');
    for (const p of tree) signal(p.pid, 'SIGKILL');
    await sleep(Math.min(pollMs, 50));
    tree = walk();
    if (round > 200) throw new Error(`killTree: processes of ${pid}'s tree survive SIGKILL: ${tree.map((p) => p.pid).join(', ')}`);
  }
  return known.size;
}
