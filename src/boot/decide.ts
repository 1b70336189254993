/**
 * The per-machine boot decision, by MAC. Pure: the caller looks the host and
 * its entry up and passes them in; this module says what the machine boots
 * and renders the iPXE script for it.
 */
import { normaliseMac } from '../store/validate.js';
import { entryProblem, entryScript, menuScript, messageScript, type Platform, type ScriptEntry } from './ipxe.js';

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

export type BootDecision =
  | { readonly kind: 'invalid-mac'; readonly rawMac: string }
  | { readonly kind: 'entry'; readonly mac: string; readonly host: DecisionHost; readonly entry: ScriptEntry }
  | { readonly kind: 'menu'; readonly mac: string; readonly reason: MenuReason; readonly host: DecisionHost | null; readonly problem?: string };

/**
 * Decide: a host with an assigned entry that renders safely boots it; anything
 * else (unknown MAC, no entry assigned, the entry vanished or holds values
 * that cannot go into a script) gets the menu, whose default is the local disk.
 */
export function decideBoot(req: DecideRequest, host: DecisionHost | null, entry: ScriptEntry | null): BootDecision {
  if (req.mac === null) return { kind: 'invalid-mac', rawMac: req.rawMac };
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
}

/** The iPXE script for a decision. */
export function renderDecision(d: BootDecision, ctx: RenderContext): string {
  switch (d.kind) {
    case 'invalid-mac':
      return messageScript(`invalid MAC address in the boot request: ${JSON.stringify(d.rawMac)}`);
    case 'entry':
      return entryScript({ baseUrl: ctx.baseUrl, mac: d.mac, hostName: d.host.name, entry: d.entry, platform: ctx.platform });
    case 'menu': {
      const who = d.host?.name ? `${d.mac} (${d.host.name})` : d.mac;
      return menuScript({
        baseUrl: ctx.baseUrl,
        mac: d.mac,
        title: `${who}, ${reasonText[d.reason]}`,
        entries: ctx.menuEntries,
        timeoutSeconds: ctx.menuTimeoutSeconds,
        platform: ctx.platform,
      });
    }
  }
}

/** The fields of the one log line per decision. */
export function decisionLogFields(d: BootDecision): { mac: string; decision: string; entry: string | null; reason?: string; problem?: string } {
  switch (d.kind) {
    case 'invalid-mac':
      return { mac: d.rawMac, decision: 'invalid-mac', entry: null };
    case 'entry':
      return { mac: d.mac, decision: 'entry', entry: d.entry.name };
    case 'menu':
      return { mac: d.mac, decision: 'menu', entry: d.host?.entry ?? null, reason: d.reason, ...(d.problem ? { problem: d.problem } : {}) };
  }
}
