/**
 * Wake-on-LAN timing. A wake round sends each machine's magic packet
 * (src/protocol/wol.ts) to every target (src/wake/targets.ts),
 * `wake.repeats` times, `wake.spacingSeconds` apart (default: three sends
 * over 30 s; UDP packets get lost and a switch port may still be coming up).
 *
 * Tasks with `wake` (a task command's --wake), once queued (at once, or at
 * their start time):
 *
 *   queued, 0 rounds --sweep--> round 1 --contactTimeoutSeconds, still queued--> round 2
 *   round 2 --contactTimeoutSeconds, still queued--> failed "no contact after wake"
 *
 * "Contact" is the machine's boot request for its task: the boot decision
 * moves it out of queued (booting), which ends the bookkeeping. Each round
 * is claimed by a compare-and-swap on tasks.wake_rounds, so a second server
 * on the same database sends none twice; the round count and its time are
 * in the database, so a restart goes on counting (the sends of a round
 * still pending at a restart are not repeated).
 */
import type { FleetbootConfig } from '../config/config.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Service } from '../lib/service.js';
import type { WakeSender } from '../net/wol-socket.js';
import { encodeMagicPacket } from '../protocol/wol.js';
import type { Store } from '../store/db.js';
import { claimWakeRound, getTask, wakeCandidates, type Task } from '../store/tasks.js';
import type { WakeTarget } from './targets.js';

export interface WakeServiceDeps {
  store: Store;
  config: Readonly<FleetbootConfig>;
  log: Logger;
  sender: WakeSender;
  /** Where packets go now (the wiring: config and the relays heard). */
  targets: () => Promise<WakeTarget[]>;
  /** End a task as failed (the imaging lifecycle's finish); false when it had ended already. */
  failTask: (t: Task, reason: string) => Promise<boolean>;
  /**
   * Also ask endpoint agents on the machines' segments to send the packets
   * (src/endpoints/service.ts wakeThroughAgents); returns how many agents
   * were asked. Absent: none are.
   */
  relay?: (macs: readonly string[], why: string) => Promise<number>;
  /** Clock (ms since the epoch). */
  now?: () => number;
  /** How often queued tasks are looked at (default 5 s; poke() looks at once). */
  intervalMs?: number;
}

/** What one round was asked to do, and its first send. */
export interface WakeRound {
  macs: string[];
  targets: WakeTarget[];
  repeats: number;
  spacingSeconds: number;
  /** Datagrams sent by the first send (macs x targets when nothing failed). */
  sent: number;
  /** What failed in the first send, one line per target. */
  errors: string[];
  /** Endpoint agents asked to send the packets on the machines' own segments. */
  agents: number;
}

export interface WakeService extends Service {
  /** Wake these machines now: one round (the first send is awaited, the repeats follow). */
  wake(macs: readonly string[], why: string): Promise<WakeRound>;
  /** Look at the queued tasks soon (after a task was created or queued). */
  poke(): void;
  /** One pass over the queued tasks that wake: ids woken and failed. */
  sweep(): Promise<{ woken: number[]; failed: number[] }>;
  /** Where packets go now. */
  targets(): Promise<WakeTarget[]>;
}

export function noContactReason(c: Readonly<FleetbootConfig>['wake']): string {
  return `no contact after wake: woken twice (${c.repeats} magic packets each, ${c.contactTimeoutSeconds} s apart: wake.contactTimeoutSeconds) and the machine never network-booted; is Wake-on-LAN on in its firmware and do the packets reach its subnet (fleetboot wake targets)?`;
}

export function createWakeService(deps: WakeServiceDeps): WakeService {
  const { store, sender } = deps;
  const cfg = deps.config.wake;
  const log = deps.log.child({ subsystem: 'wake' });
  const now = deps.now ?? Date.now;
  const timers = new Set<NodeJS.Timeout>();
  let interval: NodeJS.Timeout | null = null;
  let running: Promise<{ woken: number[]; failed: number[] }> | null = null;
  let again = false;
  let closed = false;

  async function sendAll(packets: ReadonlyArray<[string, Buffer]>, targets: readonly WakeTarget[]): Promise<{ sent: number; errors: string[] }> {
    let sent = 0;
    const errors = new Set<string>();
    for (const t of targets) {
      for (const [, p] of packets) {
        try {
          await sender.send(p, t.address, t.port);
          sent++;
        } catch (err) {
          errors.add(`${t.address}:${t.port}: ${errorMessage(err)}`);
        }
      }
    }
    return { sent, errors: [...errors] };
  }

  async function round(macs: readonly string[], why: string): Promise<WakeRound> {
    const targets = await deps.targets();
    const packets = macs.map((m): [string, Buffer] => [m, encodeMagicPacket(m)]);
    const fields = { macs, targets: targets.map((t) => `${t.address}:${t.port}`), repeats: cfg.repeats, spacingSeconds: cfg.spacingSeconds, why };
    if (targets.length === 0) log.warn(fields, `wake ${macs.length} machine(s): no target to send to (a loopback server address and no wake.subnets)`);
    const first = await sendAll(packets, targets);
    log.info({ ...fields, send: 1, sent: first.sent }, `wake ${macs.join(' ')}: send 1/${cfg.repeats} to ${fields.targets.join(' ') || 'nothing'} (${why})`);
    if (first.errors.length) log.warn({ ...fields, errors: first.errors }, `wake: ${first.errors.length} target(s) failed: ${first.errors.join('; ')}`);
    for (let i = 1; i < cfg.repeats; i++) {
      const timer = setTimeout(() => {
        timers.delete(timer);
        void sendAll(packets, targets).then((r) => {
          log.info({ ...fields, send: i + 1, sent: r.sent }, `wake ${macs.join(' ')}: send ${i + 1}/${cfg.repeats}`);
          if (r.errors.length) log.warn({ ...fields, errors: r.errors }, `wake: ${r.errors.length} target(s) failed: ${r.errors.join('; ')}`);
        });
      }, i * cfg.spacingSeconds * 1000);
      timer.unref();
      timers.add(timer);
    }
    let agents = 0;
    if (deps.relay) {
      try {
        agents = await deps.relay(macs, why);
      } catch (err) {
        log.error({ ...fields, err: errorMessage(err) }, 'asking endpoint agents to relay the wake failed');
      }
    }
    return { macs: [...macs], targets, repeats: cfg.repeats, spacingSeconds: cfg.spacingSeconds, sent: first.sent, errors: first.errors, agents };
  }

  async function pass(): Promise<{ woken: number[]; failed: number[] }> {
    const timeoutMs = cfg.contactTimeoutSeconds * 1000;
    const n = now();
    const at = new Date(n).toISOString();
    const toWake: Array<{ id: number; mac: string; round: number }> = [];
    const failed: number[] = [];
    for (const c of await wakeCandidates(store.db)) {
      const since = c.wokenAt === null ? -Infinity : n - Date.parse(c.wokenAt);
      if (c.wakeRounds === 0 || (c.wakeRounds === 1 && since >= timeoutMs)) {
        if (await claimWakeRound(store.db, c.id, c.wakeRounds, at)) toWake.push({ id: c.id, mac: c.mac, round: c.wakeRounds + 1 });
      } else if (c.wakeRounds >= 2 && since >= timeoutMs) {
        const t = await getTask(store.db, c.id);
        if (t && t.state === 'queued' && (await deps.failTask(t, noContactReason(cfg)))) failed.push(c.id);
      }
    }
    for (const w of toWake.filter((x) => x.round === 2)) {
      log.warn({ task: w.id, mac: w.mac }, `task #${w.id} ${w.mac}: no contact ${cfg.contactTimeoutSeconds} s after waking it; waking it once more`);
    }
    if (toWake.length) {
      const ids = toWake.map((w) => w.id);
      await round(
        toWake.map((w) => w.mac),
        `task${ids.length > 1 ? 's' : ''} #${ids.join(', #')}`,
      );
    }
    return { woken: toWake.map((w) => w.id), failed };
  }

  function sweep(): Promise<{ woken: number[]; failed: number[] }> {
    if (running) {
      again = true;
      return running;
    }
    running = pass().finally(() => {
      running = null;
      if (again && !closed) {
        again = false;
        sweep().catch((err: unknown) => log.error({ err: errorMessage(err) }, 'wake sweep failed'));
      }
    });
    return running;
  }

  return {
    name: 'wake',
    wake: (macs, why) => round(macs, why),
    poke() {
      if (closed) return;
      sweep().catch((err: unknown) => log.error({ err: errorMessage(err) }, 'wake sweep failed'));
    },
    sweep,
    targets: () => deps.targets(),
    async start() {
      interval = setInterval(() => {
        sweep().catch((err: unknown) => log.error({ err: errorMessage(err) }, 'wake sweep failed'));
      }, deps.intervalMs ?? 5000);
      interval.unref();
      await sweep();
    },
    async close() {
      closed = true;
      if (interval) clearInterval(interval);
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await running?.catch(() => undefined);
      await sender.close();
    },
  };
}
