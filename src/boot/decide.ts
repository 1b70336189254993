/**
 * The per-machine boot decision, by MAC. Pure: the caller looks the host and
 * its entry up and passes them in; this module says what the machine boots
 * and renders the iPXE script for it.
 */
import { normaliseMac } from '../store/validate.js';
import { bootEnvScript, entryProblem, entryScript, menuScript, messageScript, type MenuTool, type Platform, type ScriptEntry } from './ipxe.js';
import { BOOTENV_BUILD_COMMAND } from '../lib/bootenv.js';

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
}

export type MenuReason = 'unknown-host' | 'unassigned' | 'entry-missing' | 'entry-invalid';

/** An active imaging task of the machine (queued, booting, waiting or running). */
export interface DecisionTask {
  readonly id: number;
  readonly type: string;
}

/** What imaging adds to the decision. */
export interface ImagingInput {
  /** The MAC's active task, or null. */
  readonly task: DecisionTask | null;
  /** Unknown machines: the menu, or a register task at once. */
  readonly unknownPolicy: 'menu' | 'register';
}

export type BootDecision =
  | { readonly kind: 'invalid-mac'; readonly rawMac: string }
  /** The machine has an active task: it boots the boot environment (the caller makes the token). */
  | { readonly kind: 'task'; readonly mac: string; readonly host: DecisionHost | null; readonly task: DecisionTask }
  /** Unknown machine, policy register: the caller creates a register task, then it is a 'task' decision. */
  | { readonly kind: 'register'; readonly mac: string }
  | { readonly kind: 'entry'; readonly mac: string; readonly host: DecisionHost; readonly entry: ScriptEntry }
  | { readonly kind: 'menu'; readonly mac: string; readonly reason: MenuReason; readonly host: DecisionHost | null; readonly problem?: string };

/**
 * Decide: a machine with an active imaging task boots the boot environment
 * (finished tasks play no part: after a deploy the machine boots as before,
 * no re-imaging loop); an unknown machine under the 'register' policy gets a
 * register task; a host with an assigned entry that renders safely boots it;
 * anything else (unknown MAC, no entry assigned, the entry vanished or holds
 * values that cannot go into a script) gets the menu, whose default is the
 * local disk.
 */
export function decideBoot(req: DecideRequest, host: DecisionHost | null, entry: ScriptEntry | null, imaging?: ImagingInput): BootDecision {
  if (req.mac === null) return { kind: 'invalid-mac', rawMac: req.rawMac };
  if (imaging?.task) return { kind: 'task', mac: req.mac, host, task: imaging.task };
  if (host === null && imaging?.unknownPolicy === 'register') return { kind: 'register', mac: req.mac };
  if (host === null) return { kind: 'menu', mac: req.mac, reason: 'unknown-host', host: null };
  if (host.entry === null) return { kind: 'menu', mac: req.mac, reason: 'unassigned', host };
  if (entry === null) return { kind: 'menu', mac: req.mac, reason: 'entry-missing', host };
  const problem = entryProblem(entry);
  if (problem !== null) return { kind: 'menu', mac: req.mac, reason: 'entry-invalid', host, problem };
  return { kind: 'entry', mac: req.mac, host, entry };
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
  /**
   * Imaging: the boot environment for a 'task' decision (token made by the
   * caller; null when the files are missing), and whether the menu offers
   * "Register this machine" / "Hardware inventory".
   */
  imaging?: { bootEnv: { token: string; kernelArgs: string } | null; menuTools: boolean };
}

/** The menu's imaging items for a machine (register only for unknown ones). */
export function imagingMenuTools(baseUrl: string, mac: string, known: boolean): MenuTool[] {
  const tools: MenuTool[] = [];
  if (!known) tools.push({ id: 'fb-register', label: 'Register this machine', url: `${baseUrl}/boot/task?mac=${mac}&type=register` });
  tools.push({ id: 'fb-inventory', label: 'Hardware inventory', url: `${baseUrl}/boot/task?mac=${mac}&type=inventory` });
  return tools;
}

/** What a machine gets when its task cannot boot because the boot environment was not built. */
export const BOOTENV_MISSING_MESSAGE = `the imaging boot environment is not built on the server: run ${BOOTENV_BUILD_COMMAND} there, then boot this machine again`;

/** The iPXE script for a decision. */
export function renderDecision(d: BootDecision, ctx: RenderContext): string {
  switch (d.kind) {
    case 'invalid-mac':
      return messageScript(`invalid MAC address in the boot request: ${JSON.stringify(d.rawMac)}`);
    case 'entry':
      return entryScript({ baseUrl: ctx.baseUrl, mac: d.mac, hostName: d.host.name, entry: d.entry, platform: ctx.platform });
    case 'task': {
      const env = ctx.imaging?.bootEnv ?? null;
      if (env === null) return messageScript(BOOTENV_MISSING_MESSAGE, { pauseSeconds: 10 });
      return bootEnvScript({ baseUrl: ctx.baseUrl, mac: d.mac, hostName: d.host?.name ?? null, taskId: d.task.id, taskType: d.task.type, token: env.token, kernelArgs: env.kernelArgs });
    }
    case 'register':
      // The caller turns this into a 'task' decision when the boot environment is there.
      return messageScript(`automatic registration: ${BOOTENV_MISSING_MESSAGE}`, { pauseSeconds: 10 });
    case 'menu': {
      const who = d.host?.name ? `${d.mac} (${d.host.name})` : d.mac;
      return menuScript({
        baseUrl: ctx.baseUrl,
        mac: d.mac,
        title: `${who}, ${reasonText[d.reason]}`,
        entries: ctx.menuEntries,
        timeoutSeconds: ctx.menuTimeoutSeconds,
        platform: ctx.platform,
        tools: ctx.imaging?.menuTools ? imagingMenuTools(ctx.baseUrl, d.mac, d.host !== null) : [],
      });
    }
  }
}

/** The fields of the one log line per decision. */
export function decisionLogFields(d: BootDecision): { mac: string; decision: string; entry: string | null; reason?: string; problem?: string; task?: number } {
  switch (d.kind) {
    case 'task':
      return { mac: d.mac, decision: 'task', entry: d.host?.entry ?? null, task: d.task.id, reason: d.task.type };
    case 'register':
      return { mac: d.mac, decision: 'register', entry: null };
    case 'invalid-mac':
      return { mac: d.rawMac, decision: 'invalid-mac', entry: null };
    case 'entry':
      return { mac: d.mac, decision: 'entry', entry: d.entry.name };
    case 'menu':
      return { mac: d.mac, decision: 'menu', entry: d.host?.entry ?? null, reason: d.reason, ...(d.problem ? { problem: d.problem } : {}) };
  }
}
