/**
 * What the server saw of a machine's boot, one record per step: the DHCP
 * answer (with the boot file and why), TFTP and HTTP fetches, the boot
 * decision, and the imaging task's start, progress and end. They are the
 * server's own records behind `fleetboot host timeline MAC`, `fleetboot
 * host why MAC` (src/boot/why.ts) and the console's boot timeline; the log
 * says the same in prose.
 *
 * A step that names no MAC (TFTP and HTTP file fetches know only the
 * client's address) is given the MAC that address had in the server's
 * records (a DHCP answer or boot decision for it) or in its neighbour
 * table when it is stored (src/events/boot-recorder.ts).
 */

export const BOOT_EVENT_KINDS = ['dhcp', 'tftp', 'http', 'decision', 'task'] as const;
export type BootEventKind = (typeof BOOT_EVENT_KINDS)[number];

/** Flat details: what the step was (file, reason, state...), for programs and the timeline. */
export type BootEventDetail = Record<string, string | number | boolean | null>;

/** A step as a service reports it. */
export interface NewBootEvent {
  kind: BootEventKind;
  /** Normalised MAC (aa:bb:..), or null when the step knows only the address. */
  mac: string | null;
  /** The client's IPv4 address, when known. */
  ip: string | null;
  /** One line, for people: "proxyDHCP offer: ipxe.efi (x64 UEFI, chain to iPXE)". */
  summary: string;
  detail: BootEventDetail;
  /** ISO time; the recorder's clock when absent. */
  at?: string;
}

/** A stored step. */
export interface BootEvent extends Required<NewBootEvent> {
  id: number;
}

/** Longest summary kept (longer ones are cut, with an ellipsis). */
export const MAX_SUMMARY = 300;

/** A summary cut to MAX_SUMMARY characters, control characters replaced (it may quote a client's request). */
export function cleanSummary(s: string): string {
  // eslint-disable-next-line no-control-regex
  const flat = s.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return flat.length <= MAX_SUMMARY ? flat : `${flat.slice(0, MAX_SUMMARY - 1)}…`;
}
