/**
 * The stale-task reaper: a started task (booting, waiting, running) whose
 * agent has not been heard from for `agentTimeoutSeconds` fails. After a
 * server restart the silence counts from the start at the earliest, so a
 * restart never fails tasks whose agents were only retrying while the server
 * was down. Queued tasks are never reaped: they wait for the machine to boot.
 * Each sweep also removes incoming capture directories of tasks that ended
 * elsewhere (a cancel through the API).
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Store } from '../store/db.js';
import { getTask, isActiveState, listTasks } from '../store/tasks.js';
import { imagesRoot, INCOMING_DIR } from './image-store.js';
import type { TaskState } from './protocol.js';
import type { ImagingService } from './tasks.js';

export interface ReapCandidate {
  id: number;
  state: TaskState;
  lastSeenAt: string | null;
  updatedAt: string;
}

/** Ids of the tasks to fail: started, and silent for timeoutMs counted from max(last contact, graceStartMs). */
export function staleTaskIds(tasks: readonly ReapCandidate[], nowMs: number, timeoutMs: number, graceStartMs: number): number[] {
  return tasks
    .filter((t) => t.state === 'booting' || t.state === 'waiting' || t.state === 'running')
    .filter((t) => {
      const seen = Date.parse(t.lastSeenAt ?? t.updatedAt);
      const from = Math.max(Number.isFinite(seen) ? seen : 0, graceStartMs);
      return nowMs - from > timeoutMs;
    })
    .map((t) => t.id);
}

export function reapReason(timeoutSeconds: number): string {
  return `no contact from the agent for ${timeoutSeconds} s (machine off or network down?)`;
}

export interface Reaper {
  /** One pass; returns the ids of the tasks it failed. */
  sweep(): Promise<number[]>;
  stop(): void;
}

export function startReaper(opts: { store: Store; imaging: ImagingService; timeoutSeconds: number; log: Logger; intervalMs?: number; now?: () => number; startedAtMs?: number }): Reaper {
  const now = opts.now ?? Date.now;
  const graceStart = opts.startedAtMs ?? now();
  const log = opts.log.child({ subsystem: 'imaging' });
  let running: Promise<number[]> | null = null;

  async function pass(): Promise<number[]> {
    const active = await listTasks(opts.store.db, { active: true });
    const ids = staleTaskIds(active, now(), opts.timeoutSeconds * 1000, graceStart);
    const failed: number[] = [];
    for (const id of ids) {
      const t = await getTask(opts.store.db, id);
      if (!t || !isActiveState(t.state)) continue;
      if (await opts.imaging.finish(t, 'failed', reapReason(opts.timeoutSeconds))) failed.push(id);
    }
    await sweepIncoming(opts.store, new Set(active.filter((t) => t.type === 'capture' && !ids.includes(t.id)).map((t) => t.id)));
    return failed;
  }

  const sweep = (): Promise<number[]> => {
    running ??= pass().finally(() => {
      running = null;
    });
    return running;
  };

  const timer = setInterval(
    () => {
      sweep().catch((err: unknown) => log.error({ err: errorMessage(err) }, 'stale-task sweep failed'));
    },
    opts.intervalMs ?? Math.max(1000, Math.min(10_000, (opts.timeoutSeconds * 1000) / 4)),
  );
  timer.unref();
  return {
    sweep,
    stop() {
      clearInterval(timer);
    },
  };
}

/** Remove incoming directories whose task is not among `keep`. */
async function sweepIncoming(store: Store, keep: ReadonlySet<number>): Promise<void> {
  const dir = join(imagesRoot(store), INCOMING_DIR);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^task-(\d+)-/.exec(n);
    if (m && keep.has(Number(m[1]))) continue;
    await rm(join(dir, n), { recursive: true, force: true });
  }
}
