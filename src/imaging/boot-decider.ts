/**
 * The boot decision with its effects, shared by the two ways a machine asks
 * what it boots: iPXE over HTTP (GET /boot/decide, src/http/routes/boot.ts)
 * and Debian's GRUB over TFTP on the Secure Boot path
 * (src/imaging/grub-files.ts). The decision itself is pure
 * (src/boot/decide.ts); this gathers its inputs (host, entry, active task,
 * the MAC the network knows for the client's address, the boot
 * environment) and performs what it names: a token bound to the client's
 * address (tasks.ts handOut), a failed task, a register task. Whatever
 * creates something (a register task, a pending host, a menu inventory
 * task) is rate-limited per client address (imaging.createRateLimit), one
 * limit for both paths.
 */
import type { FleetbootConfig } from '../config/config.js';
import { BOOTENV_MISSING_MESSAGE, decideBoot, decisionLogFields, type BootDecision, type DecideRequest, type DecisionTask } from '../boot/decide.js';
import { decisionBootEvent } from '../boot/boot-events.js';
import type { ScriptEntry } from '../boot/ipxe.js';
import { FleetbootError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { RateLimiter } from '../lib/rate-limit.js';
import type { NewBootEvent } from '../model/boot-event.js';
import type { EventPublisher } from '../model/events.js';
import { neighbourMac } from '../net/neighbours.js';
import type { Store } from '../store/db.js';
import { activeTaskForMac, createHost, createTask, findBootTarget, getHost, leaseMacOf, listEntries, listTasks, IPV4_PATTERN, type Task } from '../store/index.js';
import { announceTasks } from './submit.js';
import type { ImagingService } from './tasks.js';

const IPV4 = new RegExp(IPV4_PATTERN);

export interface BootDeciderDeps {
  store: Store;
  config: Readonly<FleetbootConfig>;
  log: Logger;
  imaging: ImagingService;
  events: EventPublisher;
  /** Steps of machines' boots (the timeline); null: not recorded. */
  bootEvents: { record(e: NewBootEvent): void } | null;
  /** Tests: the MAC the network knows for an address (default: neighbour table, then DHCP leases in server mode). */
  addressMac?: (ip: string) => Promise<string | null>;
}

/** What a create refused by the rate limit tells the machine (nothing was created). */
export interface Limited {
  kind: 'limited';
  message: string;
  retryAfterSeconds: number;
}

export type DecideOutcome =
  | {
      kind: 'decided';
      decision: BootDecision;
      /** The token handed out for a 'task' decision. */
      token: string | null;
      /** The boot entries for a 'menu' decision (empty otherwise). */
      menuEntries: ScriptEntry[];
      /** The MAC the network knows for the client's address, when it was looked up. */
      addressMac: string | null;
    }
  | Limited;

export type MenuTaskOutcome =
  | { kind: 'task'; task: Task; token: string; hostName: string | null }
  | { kind: 'message'; message: string; pauseSeconds: number }
  | Limited;

export type BootDecider = ReturnType<typeof createBootDecider>;

function decisionTask(t: Task): DecisionTask {
  const seen = Date.parse(t.lastSeenAt ?? '');
  // activeTaskForMac() returns active tasks only; a finished one here is a programming error.
  if (t.state !== 'scheduled' && t.state !== 'queued' && t.state !== 'booting' && t.state !== 'waiting' && t.state !== 'running') throw new TypeError(`task #${t.id} is ${t.state}, not active`);
  return { id: t.id, type: t.type, state: t.state, attempts: t.attempts, lastSeenMs: Number.isFinite(seen) ? seen : null, tokenIp: t.tokenIp };
}

export function createBootDecider(deps: BootDeciderDeps) {
  const { store, config, log, imaging, events } = deps;
  const limiter = new RateLimiter(config.imaging.createRateLimit);
  const policy = {
    unknownPolicy: config.imaging.unknownPolicy,
    maxAttempts: config.imaging.maxAttempts,
    // An attempt is over when its agent was silent as long as the reaper allows.
    attemptTimeoutMs: config.imaging.agentTimeoutSeconds * 1000,
    runningQuietMs: Math.max(30_000, config.imaging.progressIntervalSeconds * 3000),
  };

  /** Auto-registration does not loop: not again within the hour after a register task of this MAC failed. */
  async function recentlyFailedRegister(mac: string): Promise<boolean> {
    const [last] = await listTasks(store.db, { mac, limit: 1 });
    return last !== undefined && last.type === 'register' && last.state === 'failed' && Date.now() - Date.parse(last.finishedAt ?? last.updatedAt) < 3600_000;
  }

  /**
   * The MAC this server's network knows for `ip`: the neighbour table first
   * (who holds the address on our segment now), then, in DHCP server mode,
   * the lease; null when neither tells (a routed client, IPv6, no entry).
   */
  async function addressMac(ip: string): Promise<string | null> {
    if (deps.addressMac) return deps.addressMac(ip);
    if (!IPV4.test(ip)) return null;
    const neighbour = await neighbourMac(ip);
    if (neighbour !== null || config.dhcp.mode !== 'server') return neighbour;
    return leaseMacOf(store.db, ip);
  }

  /** A create refused by the rate limit, or null when it may go on. */
  function limited(ip: string, mac: string, what: string): Limited | null {
    const r = limiter.take(ip);
    if (r.allowed) return null;
    const { burst, perMinute } = config.imaging.createRateLimit;
    log.warn({ subsystem: 'imaging', ip, mac, what, retryAfterSeconds: r.retryAfterSeconds }, `${what} for ${mac} refused: ${ip} is over the boot-time creation limit (imaging.createRateLimit: ${burst} at once, ${perMinute} per minute)`);
    return {
      kind: 'limited',
      retryAfterSeconds: r.retryAfterSeconds,
      message: `too many registrations or tasks from ${ip}: at most ${burst} at once and ${perMinute} per minute; nothing was created, try again in ${r.retryAfterSeconds} s`,
    };
  }

  /** One log line and one timeline step per decision. */
  function report(decision: BootDecision, q: DecideRequest, ip: string, via: 'ipxe' | 'grub', extra: { addressMac: string | null; secureBoot?: boolean }): void {
    const fields = decisionLogFields(decision);
    const line = { subsystem: via === 'grub' ? 'tftp' : 'http', via, ip, ...fields, platform: q.platform, buildarch: q.buildarch, uuid: q.uuid, ...(extra.secureBoot !== undefined ? { secureBoot: extra.secureBoot } : {}) };
    const by = via === 'grub' ? ' (GRUB)' : '';
    switch (decision.kind) {
      case 'entry':
        log.info(line, `boot decision${by}: ${fields.mac} boots entry ${fields.entry}`);
        break;
      case 'menu':
        log.info(line, `boot decision${by}: ${fields.mac} gets the menu (${fields.reason})`);
        break;
      case 'local':
        log.info(line, `boot decision${by}: ${fields.mac} boots its local disk (${decision.reason})`);
        break;
      case 'task':
        log.info(line, `boot decision${by}: ${fields.mac} boots the imaging environment for task #${decision.task.id} (${decision.task.type}), token bound to ${ip}`);
        break;
      case 'wait':
        if (decision.suspicious) log.warn({ ...line, tokenIp: decision.task.tokenIp }, `boot decision${by}: ${fields.mac} from ${ip} waits, possible impostor or second machine with this MAC: ${decision.reason}`);
        else log.info(line, `boot decision${by}: ${fields.mac} waits (${decision.reason})`);
        break;
      case 'refuse':
        log.warn({ ...line, addressMac: extra.addressMac }, `boot decision${by}: impostor refused: ${decision.reason}`);
        break;
      case 'fail-task':
        log.warn(line, `boot decision${by}: task #${decision.task.id} of ${fields.mac} failed (${decision.reason}); the machine boots as without it (${decision.then.kind})`);
        break;
      default:
        log.warn(line, `boot decision${by}: ${decision.kind === 'invalid-mac' ? 'invalid MAC in the request' : 'registration did not start'}`);
    }
    if (decision.kind !== 'invalid-mac') {
      const reason = fields.reason ?? (decision.kind === 'entry' ? `host ${fields.mac} boots entry ${fields.entry}` : decision.kind);
      deps.bootEvents?.record(decisionBootEvent({ ip, mac: fields.mac, decision: fields.decision, entry: fields.entry, task: fields.task ?? null, reason: via === 'grub' ? `${reason} (GRUB${extra.secureBoot ? ', Secure Boot on' : ''})` : reason }));
    }
  }

  return {
    addressMac,

    /** Decide what machine `q.mac` at `ip` boots, and perform the decision's effects. */
    async decide(q: DecideRequest, ip: string, via: 'ipxe' | 'grub', opts: { secureBoot?: boolean } = {}): Promise<DecideOutcome> {
      const gather = async () => {
        const target = q.mac ? await findBootTarget(store.db, q.mac) : { host: null, entry: null };
        const task = q.mac ? await activeTaskForMac(store.db, q.mac) : null;
        const unknownRegister = target.host === null && config.imaging.unknownPolicy === 'register';
        return {
          task,
          input: {
            req: q,
            clientIp: ip,
            host: target.host,
            entry: target.entry,
            task: task ? decisionTask(task) : null,
            addressMac: task !== null || unknownRegister ? await addressMac(ip) : null,
            bootEnvReady: task !== null || unknownRegister ? await imaging.bootEnvReady() : false,
            registerFailedRecently: unknownRegister && q.mac !== null ? await recentlyFailedRegister(q.mac) : false,
            nowMs: Date.now(),
            policy,
          },
        };
      };
      let g = await gather();
      let decision: BootDecision = decideBoot(g.input);
      let token: string | null = null;
      // Effects. A hand-out that lost a race (the task changed since it was read) decides again, once.
      for (let round = 0; round < 2; round++) {
        if (decision.kind === 'register') {
          const refused = limited(ip, decision.mac, 'automatic registration');
          if (refused) return refused;
          try {
            const t = await createTask(store.db, { type: 'register', mac: decision.mac });
            log.info({ subsystem: 'imaging', task: t.id, mac: t.mac, type: 'register', state: 'queued', ip }, `task #${t.id} register ${t.mac}: created (unknown machine, imaging.unknownPolicy register)`);
            announceTasks(events, [t]);
          } catch (err) {
            if (!(err instanceof FleetbootError && err.code === 'CONFLICT')) throw err;
          }
          g = await gather();
          decision = decideBoot(g.input);
        }
        if (decision.kind === 'fail-task' && g.task) {
          await imaging.finish(g.task, 'failed', decision.reason);
        }
        if (decision.kind === 'task' && g.task) {
          const h = await imaging.handOut(g.task, ip);
          if (h.kind === 'token') {
            token = h.token;
            break;
          }
          g = await gather();
          decision = decideBoot(g.input);
          continue;
        }
        break;
      }
      if (decision.kind === 'task' && token === null) decision = { kind: 'wait', mac: decision.mac, task: decision.task, suspicious: false, reason: `task #${decision.task.id} was handed out or ended by another request at the same moment`, retrySeconds: 5 };
      report(decision, q, ip, via, { addressMac: g.input.addressMac, ...(opts.secureBoot !== undefined ? { secureBoot: opts.secureBoot } : {}) });
      return { kind: 'decided', decision, token, menuEntries: decision.kind === 'menu' ? await listEntries(store.db) : [], addressMac: g.input.addressMac };
    },

    /**
     * The menu's imaging items (no auth, as FOG's menu): only register and
     * inventory, only when the machine has no active task, rate-limited per
     * address. Register makes a pending host (the inbox) unless
     * imaging.unknownPolicy is 'register'.
     */
    async menuTask(mac: string, type: 'register' | 'inventory', ip: string): Promise<MenuTaskOutcome> {
      if (!(await imaging.bootEnvReady())) {
        log.warn({ subsystem: 'imaging', mac, type, ip, bootEnvDir: config.imaging.bootEnvDir }, `menu ${type} for ${mac}: the boot environment is missing`);
        return { kind: 'message', message: BOOTENV_MISSING_MESSAGE, pauseSeconds: 10 };
      }
      const owner = await addressMac(ip);
      if (owner !== null && owner !== mac) {
        log.warn({ subsystem: 'imaging', mac, type, ip, addressMac: owner }, `menu ${type} for ${mac} refused: impostor, ${ip} is ${owner} on this network`);
        return { kind: 'message', message: `the request for ${mac} came from ${ip}, which is ${owner} on this network`, pauseSeconds: 10 };
      }
      const refused = limited(ip, mac, `menu ${type}`);
      if (refused) return refused;
      const host = await getHost(store.db, mac);
      if (type === 'register' && host === null) {
        const status = config.imaging.unknownPolicy === 'register' ? 'approved' : 'pending';
        const created = await createHost(store.db, { mac, status });
        log.info({ subsystem: 'imaging', mac, ip, status }, `host ${mac} registered from the boot menu${status === 'pending' ? ', pending approval (fleetboot host approve)' : ''}`);
        events.publish(
          created.status === 'pending'
            ? { kind: 'host.pending', mac: created.mac, name: created.name, ip, via: 'boot-menu' }
            : { kind: 'host.changed', mac: created.mac, change: 'created', name: created.name, status: created.status },
        );
      }
      let task: Task;
      try {
        task = await createTask(store.db, { type, mac }, { allowUnknownHost: true });
      } catch (err) {
        if (err instanceof FleetbootError && (err.code === 'CONFLICT' || err.code === 'NOT_FOUND')) {
          log.info({ subsystem: 'imaging', mac, type, ip, reason: err.message }, `menu ${type} for ${mac} refused`);
          return { kind: 'message', message: err.message, pauseSeconds: 10 };
        }
        throw err;
      }
      log.info({ subsystem: 'imaging', task: task.id, mac, type, state: 'queued', ip }, `task #${task.id} ${type} ${mac}: created from the boot menu`);
      announceTasks(events, [task]);
      const h = await imaging.handOut(task, ip);
      if (h.kind !== 'token') return { kind: 'message', message: `task ${task.id} was ended or handed out elsewhere before it could start; boot again`, pauseSeconds: 5 };
      const target = await findBootTarget(store.db, mac);
      return { kind: 'task', task, token: h.token, hostName: target.host?.name ?? null };
    },
  };
}
