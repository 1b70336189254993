/**
 * The per-machine boot decision, by MAC. Pure: the caller looks the host and
 * its entry up and passes them in; this module says what the machine boots
 * and renders the iPXE script for it.
 */
import { BOOTENV_BUILD_COMMAND } from '../lib/bootenv.js';
import type { TaskState } from '../model/task.js';
import { normaliseMac } from '../model/validate.js';
import { bootEnvScript, entryProblem, entryScript, menuScript, messageScript, retryScript, type MenuTool, type Platform, type ScriptEntry } from './ipxe.js';

/** What iPXE reports in the decision request (see chainScript). */
export interface DecideRequest {
  /** Normalised MAC (lower-case, colons), or null when missing/malformed. */
  mac: string | null;
  /** The MAC as sent, for messages and logs (cut to 64 characters). */
  rawMac: string;
  platform: Platform | null;
  buildarch: string | null;
  uuid: string | null;
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/** Read the query of /boot/decide. Unknown or malformed values become null; nothing throws. */
export function parseDecideQuery(query: Readonly<Record<string, unknown>>): DecideRequest {
  const raw = str(query['mac']) ?? '';
  const platform = str(query['platform']);
  const buildarch = str(query['buildarch']);
  const uuid = str(query['uuid']);
  return {
    mac: normaliseMac(raw),
    rawMac: raw.slice(0, 64),
    platform: platform === 'pcbios' || platform === 'efi' ? platform : null,
    buildarch: buildarch !== null && /^[A-Za-z0-9_-]{1,16}$/.test(buildarch) ? buildarch : null,
    uuid: uuid !== null && /^[0-9A-Fa-f-]{32,36}$/.test(uuid) ? uuid.toLowerCase() : null,
  };
}

export interface DecisionHost {
  readonly mac: string;
  readonly name: string | null;
  readonly entry: string | null;
  /** 'pending': registered from the boot menu, waiting for an administrator. */
  readonly status?: 'approved' | 'pending';
}

export type MenuReason = 'unknown-host' | 'unassigned' | 'entry-missing' | 'entry-invalid';

/** An active imaging task of the machine (scheduled, queued, booting, waiting or running). */
export interface DecisionTask {
  readonly id: number;
  readonly type: string;
  /** A scheduled task waits for its start time: the decision is made as if there were none. */
  readonly state: Extract<TaskState, 'scheduled' | 'queued' | 'booting' | 'waiting' | 'running'>;
  /** Boot environments handed out for it so far. */
  readonly attempts: number;
  /** Last agent contact or hand-out (ms since the epoch), null when neither happened. */
  readonly lastSeenMs: number | null;
  /** The client address the current token went to, null when none is out. */
  readonly tokenIp: string | null;
}

/** The imaging rules of the decision (from the config). */
export interface ImagingPolicy {
  /** Unknown machines: the menu, or a register task at once. */
  readonly unknownPolicy: 'menu' | 'register';
  /** imaging.maxAttempts: a task whose machine booted that often without finishing fails. */
  readonly maxAttempts: number;
  /** A token out to one address is not handed to another until the attempt was silent this long. */
  readonly attemptTimeoutMs: number;
  /** A transferring agent heard from within this long is not handed a new token, even on its own address. */
  readonly runningQuietMs: number;
}

/** Everything the decision needs; the route gathers it (src/http/routes/boot.ts). */
export interface DecideInput {
  readonly req: DecideRequest;
  /** The address the request came from. */
  readonly clientIp: string;
  readonly host: DecisionHost | null;
  readonly entry: ScriptEntry | null;
  readonly task: DecisionTask | null;
  /**
   * The MAC the server's own network knows for clientIp (neighbour table on
   * the same segment, or a DHCP lease in server mode); null when it cannot
   * tell (a routed client, IPv6, no entry): then the token binding and the
   * hardware identity check are what protect the task.
   */
  readonly addressMac: string | null;
  readonly bootEnvReady: boolean;
  /** A register task of this MAC failed within the hour (no registration loop). */
  readonly registerFailedRecently: boolean;
  readonly nowMs: number;
  readonly policy: ImagingPolicy;
}

export type BootDecision =
  | { readonly kind: 'invalid-mac'; readonly rawMac: string }
  /** Boot the boot environment for the task; the caller hands out a new token bound to the client address. */
  | { readonly kind: 'task'; readonly mac: string; readonly host: DecisionHost | null; readonly task: DecisionTask }
  /** The machine must ask again later (its task's token is out, or its agent is transferring). */
  | { readonly kind: 'wait'; readonly mac: string; readonly task: DecisionTask; readonly reason: string; readonly retrySeconds: number; readonly suspicious: boolean }
  /** The request cannot come from that MAC: nothing is handed out. */
  | { readonly kind: 'refuse'; readonly mac: string; readonly task: DecisionTask; readonly reason: string }
  /** The caller fails the task with `reason`, then the machine boots as `then` says. */
  | { readonly kind: 'fail-task'; readonly mac: string; readonly task: DecisionTask; readonly reason: string; readonly then: BootDecision }
  /** Unknown machine, policy register: the caller creates a register task (rate-limited), then boots it as a 'task'. */
  | { readonly kind: 'register'; readonly mac: string }
  | { readonly kind: 'entry'; readonly mac: string; readonly host: DecisionHost; readonly entry: ScriptEntry }
  /** Straight to the local disk (a host waiting for approval). */
  | { readonly kind: 'local'; readonly mac: string; readonly host: DecisionHost; readonly reason: string }
  | { readonly kind: 'menu'; readonly mac: string; readonly reason: MenuReason; readonly host: DecisionHost | null; readonly problem?: string };

/** What a machine gets when its task cannot boot because the boot environment was not built. */
export const BOOTENV_MISSING_MESSAGE = `the imaging boot environment is not built on the server: run ${BOOTENV_BUILD_COMMAND} there (or scripts/build-bootenv.sh), then queue the task again`;

/** The decision without imaging work: entry, local disk or menu. */
function plainDecision(mac: string, host: DecisionHost | null, entry: ScriptEntry | null): BootDecision {
  if (host === null) return { kind: 'menu', mac, reason: 'unknown-host', host: null };
  if (host.status === 'pending') return { kind: 'local', mac, host, reason: 'registered, waiting for approval (fleetboot host approve)' };
  if (host.entry === null) return { kind: 'menu', mac, reason: 'unassigned', host };
  if (entry === null) return { kind: 'menu', mac, reason: 'entry-missing', host };
  const problem = entryProblem(entry);
  if (problem !== null) return { kind: 'menu', mac, reason: 'entry-invalid', host, problem };
  return { kind: 'entry', mac, host, entry };
}

/**
 * Decide what machine `req.mac` boots. Pure: the route gathers the inputs
 * and performs the effects the decision names (hand out a token, fail a
 * task, create a register task). In order:
 *
 * 1. A malformed MAC gets a script that says so.
 * 2. A machine with an active task:
 *    - the request's address belongs to another MAC (the server's neighbour
 *      table or DHCP leases say so): refused, nothing handed out;
 *    - no boot environment on the server: the task fails naming the build
 *      command, the machine boots as it would without the task;
 *    - its token is out to another address and that attempt has not timed
 *      out: wait (a second asker never rotates the token of the first);
 *    - its agent is transferring and was heard from recently: wait;
 *    - it booted imaging.maxAttempts times without finishing: the task fails,
 *      the machine boots as it would without it (no re-imaging loop);
 *    - otherwise: the boot environment with a new token.
 *    Finished tasks play no part: after a deploy the machine boots as before;
 *    nor does a scheduled task (it waits for its start time): the machine
 *    boots as it would without it.
 * 3. An unknown machine under the 'register' policy gets a register task
 *    (unless its last one failed within the hour, there is no boot
 *    environment to run it, or its address is another MAC's).
 * 4. A pending host boots its local disk; a host with an assigned entry
 *    that renders safely boots it; anything else gets the menu, whose
 *    default is the local disk.
 */
export function decideBoot(input: DecideInput): BootDecision {
  const { req, host, entry, policy } = input;
  // A scheduled task is not handed out before its time: decide as if there were none.
  const task = input.task !== null && input.task.state !== 'scheduled' ? input.task : null;
  const mac = req.mac;
  if (mac === null) return { kind: 'invalid-mac', rawMac: req.rawMac };
  if (task !== null) {
    if (input.addressMac !== null && input.addressMac !== mac) {
      return { kind: 'refuse', mac, task, reason: `the request for ${mac} came from ${input.clientIp}, which is ${input.addressMac} on this network: task #${task.id} is not handed out` };
    }
    if (!input.bootEnvReady) return { kind: 'fail-task', mac, task, reason: BOOTENV_MISSING_MESSAGE, then: plainDecision(mac, host, entry) };
    const silentMs = task.lastSeenMs === null ? Infinity : input.nowMs - task.lastSeenMs;
    const tokenOut = task.state !== 'queued' && task.tokenIp !== null;
    if (tokenOut && task.tokenIp !== input.clientIp && silentMs < policy.attemptTimeoutMs) {
      return {
        kind: 'wait',
        mac,
        task,
        suspicious: true,
        reason: `task #${task.id} (${task.type}) was handed to ${task.tokenIp}, last contact ${Math.round(silentMs / 1000)} s ago; not handed to ${input.clientIp} before that attempt times out`,
        retrySeconds: Math.min(60, Math.ceil((policy.attemptTimeoutMs - silentMs) / 1000) + 1),
      };
    }
    if ((task.state === 'running' || task.state === 'waiting') && silentMs < policy.runningQuietMs) {
      return {
        kind: 'wait',
        mac,
        task,
        suspicious: false,
        reason: `task #${task.id} (${task.type}) is running on this machine, last contact ${Math.round(silentMs / 1000)} s ago`,
        retrySeconds: Math.ceil((policy.runningQuietMs - silentMs) / 1000) + 1,
      };
    }
    if (task.attempts >= policy.maxAttempts) {
      return {
        kind: 'fail-task',
        mac,
        task,
        reason: `the machine PXE-booted ${task.attempts} times without finishing the task (imaging.maxAttempts ${policy.maxAttempts}); does its boot environment reach the agent? See the machine's console`,
        then: plainDecision(mac, host, entry),
      };
    }
    return { kind: 'task', mac, host, task };
  }
  // A register task only for the machine itself: not when its address is another MAC's.
  const addressIsMac = input.addressMac === null || input.addressMac === mac;
  if (host === null && policy.unknownPolicy === 'register' && input.bootEnvReady && !input.registerFailedRecently && addressIsMac) return { kind: 'register', mac };
  return plainDecision(mac, host, entry);
}

const reasonText: Record<MenuReason, string> = {
  'unknown-host': 'unknown machine',
  unassigned: 'no boot entry assigned',
  'entry-missing': 'assigned boot entry not found',
  'entry-invalid': 'assigned boot entry is invalid',
};

export interface RenderContext {
  baseUrl: string;
  platform: Platform | null;
  menuTimeoutSeconds: number;
  /** Boot entries offered in the menu. */
  menuEntries: readonly ScriptEntry[];
  /** A 'task' decision: the token the caller handed out, the boot environment's extra kernel arguments and the client address. */
  bootEnv?: { token: string; kernelArgs: string; clientIp: string | null } | null;
  /** Does the menu offer "Register this machine" / "Hardware inventory"? */
  menuTools?: boolean;
}

/** The menu's imaging items for a machine (register only for unknown ones). */
export function imagingMenuTools(baseUrl: string, mac: string, known: boolean): MenuTool[] {
  const tools: MenuTool[] = [];
  if (!known) tools.push({ id: 'fb-register', label: 'Register this machine', url: `${baseUrl}/boot/task?mac=${mac}&type=register` });
  tools.push({ id: 'fb-inventory', label: 'Hardware inventory', url: `${baseUrl}/boot/task?mac=${mac}&type=inventory` });
  return tools;
}

/** The iPXE script for a decision. */
export function renderDecision(d: BootDecision, ctx: RenderContext): string {
  switch (d.kind) {
    case 'invalid-mac':
      return messageScript(`invalid MAC address in the boot request: ${JSON.stringify(d.rawMac)}`);
    case 'entry':
      return entryScript({ baseUrl: ctx.baseUrl, mac: d.mac, hostName: d.host.name, entry: d.entry, platform: ctx.platform });
    case 'task': {
      const env = ctx.bootEnv ?? null;
      if (env === null) return messageScript(BOOTENV_MISSING_MESSAGE, { pauseSeconds: 10 });
      return bootEnvScript({ baseUrl: ctx.baseUrl, mac: d.mac, hostName: d.host?.name ?? null, taskId: d.task.id, taskType: d.task.type, token: env.token, kernelArgs: env.kernelArgs, clientIp: env.clientIp ?? undefined });
    }
    case 'wait':
      return retryScript(ctx.baseUrl, d.reason, d.retrySeconds);
    case 'refuse':
      return messageScript(d.reason, { pauseSeconds: 10 });
    case 'fail-task':
      return renderDecision(d.then, ctx);
    case 'register':
      // The caller turns this into a 'task' decision once the register task exists.
      return messageScript('automatic registration did not start; see the server log', { pauseSeconds: 10 });
    case 'local':
      return menuScript({ baseUrl: ctx.baseUrl, mac: d.mac, title: `${d.host.name ? `${d.mac} (${d.host.name})` : d.mac}, ${d.reason}`, entries: [], timeoutSeconds: 0, platform: ctx.platform });
    case 'menu': {
      const who = d.host?.name ? `${d.mac} (${d.host.name})` : d.mac;
      return menuScript({
        baseUrl: ctx.baseUrl,
        mac: d.mac,
        title: `${who}, ${reasonText[d.reason]}`,
        entries: ctx.menuEntries,
        timeoutSeconds: ctx.menuTimeoutSeconds,
        platform: ctx.platform,
        tools: ctx.menuTools ? imagingMenuTools(ctx.baseUrl, d.mac, d.host !== null) : [],
      });
    }
  }
}

/** The fields of the one log line per decision. */
export function decisionLogFields(d: BootDecision): { mac: string; decision: string; entry: string | null; reason?: string; problem?: string; task?: number } {
  switch (d.kind) {
    case 'task':
      return { mac: d.mac, decision: 'task', entry: d.host?.entry ?? null, task: d.task.id, reason: d.task.type };
    case 'wait':
    case 'refuse':
      return { mac: d.mac, decision: d.kind, entry: null, task: d.task.id, reason: d.reason };
    case 'fail-task':
      return { ...decisionLogFields(d.then), decision: `fail-task+${d.then.kind}`, task: d.task.id, reason: d.reason };
    case 'register':
      return { mac: d.mac, decision: 'register', entry: null };
    case 'invalid-mac':
      return { mac: d.rawMac, decision: 'invalid-mac', entry: null };
    case 'entry':
      return { mac: d.mac, decision: 'entry', entry: d.entry.name };
    case 'local':
      return { mac: d.mac, decision: 'local', entry: d.host.entry, reason: d.reason };
    case 'menu':
      return { mac: d.mac, decision: 'menu', entry: d.host?.entry ?? null, reason: d.reason, ...(d.problem ? { problem: d.problem } : {}) };
  }
}
