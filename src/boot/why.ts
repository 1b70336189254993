/**
 * `fleetboot host why MAC`: how far a machine's last boot got, from the
 * server's own records (src/model/boot-event.ts), and what was expected
 * next. Pure.
 *
 * A boot attempt starts with a DHCP answer from the firmware's PXE or HTTP
 * boot client (not iPXE), or with iPXE's own first DHCP answer when the NIC
 * runs iPXE itself (SeaBIOS with an iPXE ROM) or after the attempt before
 * had reached its decision. Its steps, in the order a healthy boot takes
 * them:
 *
 *   dhcp (a boot file)  ->  tftp (that file)  ->  dhcp from iPXE (the script URL)
 *     ->  http /boot.ipxe  ->  decision  ->  [task: booting -> running -> done]
 *
 * (UEFI HTTP boot and iPXE ROMs skip TFTP: their answer is already a URL.)
 * The verdict names the last step reached and the one that never came,
 * with what usually stops it there.
 */
import type { BootEvent } from '../model/boot-event.js';
import { GRUB_FILE, GRUB_ROOT_CONFIG, SHIM_FILE } from './grub.js';

export type BootStage = 'none' | 'offered' | 'boot-file' | 'script' | 'decision' | 'task';

export interface BootDiagnosis {
  mac: string;
  /** The last attempt's steps, oldest first. */
  steps: BootEvent[];
  /** The furthest step reached. */
  stage: BootStage;
  /** True when the boot went where it was sent (an entry, the menu, the local disk, a finished task). */
  completed: boolean;
  /** One line: how far it got. */
  verdict: string;
  /** What was expected next and what usually stops it, or null when it completed. */
  next: string | null;
}

const str = (e: BootEvent, k: string): string | null => {
  const v = e.detail[k];
  return typeof v === 'string' ? v : null;
};
const num = (e: BootEvent, k: string): number | null => {
  const v = e.detail[k];
  return typeof v === 'number' ? v : null;
};

/** The events of the last attempt: from its first DHCP answer on. */
export function lastAttempt(events: readonly BootEvent[]): BootEvent[] {
  let start = -1;
  /** Something other than the firmware's own DHCP exchange happened since `start`. */
  let moved = false;
  let decided = false;
  for (const [i, e] of events.entries()) {
    if (e.kind === 'dhcp' && str(e, 'file') !== null) {
      const fromIpxe = e.detail['ipxe'] === true;
      // The firmware's DISCOVER/REQUEST (and 4011) answers are one exchange; iPXE's answer after TFTP belongs to the
      // attempt that loaded it; a firmware request after anything else, or iPXE's after a decision, starts another.
      const fresh = start < 0 || (fromIpxe ? decided : moved);
      if (fresh) {
        start = i;
        moved = false;
        decided = false;
      } else if (fromIpxe) moved = true;
      continue;
    }
    if (start >= 0) moved = true;
    if (e.kind === 'decision') decided = true;
  }
  if (start < 0) {
    // No DHCP answer on record (e.g. another DHCP server gave the boot file): from the last decision on.
    for (let i = events.length - 1; i >= 0; i--) if (events[i]?.kind === 'decision') return events.slice(i);
    return [...events];
  }
  return events.slice(start);
}

function when(e: BootEvent): string {
  return e.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function diagnoseBoot(mac: string, events: readonly BootEvent[], ctx: { httpPort: number | null; tftpDataPorts: string | null } = { httpPort: null, tftpDataPorts: null }): BootDiagnosis {
  const steps = lastAttempt(events);
  const base = { mac, steps };
  const dhcp = steps.filter((e) => e.kind === 'dhcp' && str(e, 'file') !== null);
  if (steps.length === 0 || (dhcp.length === 0 && !steps.some((e) => e.kind === 'decision'))) {
    return {
      ...base,
      stage: 'none',
      completed: false,
      verdict: `no boot of ${mac} on record: no DHCP request from it reached Fleetboot`,
      next: 'a DHCP request from the machine: check that network (PXE) boot is on in its firmware, that it is on a segment Fleetboot serves or whose relay forwards to Fleetboot, and that no firewall drops UDP 67/4011 (fleetboot doctor, fleetboot firewall)',
    };
  }
  const decision = [...steps].reverse().find((e) => e.kind === 'decision');
  if (decision) {
    const kind = str(decision, 'decision') ?? '';
    const reason = str(decision, 'reason');
    const taskId = num(decision, 'task');
    if (kind === 'task' && taskId !== null) {
      const taskSteps = steps.filter((e) => e.kind === 'task' && num(e, 'task') === taskId && str(e, 'state') !== null && e.detail['progress'] === undefined);
      const last = taskSteps[taskSteps.length - 1];
      const state = last ? str(last, 'state') : null;
      if (state === 'done') return { ...base, stage: 'task', completed: true, verdict: `completed: task #${taskId} done at ${when(last as BootEvent)}`, next: null };
      if (state === 'failed' || state === 'cancelled')
        return { ...base, stage: 'task', completed: false, verdict: `task #${taskId} ${state} at ${when(last as BootEvent)}${str(last as BootEvent, 'reason') ? `: ${str(last as BootEvent, 'reason')}` : ''}`, next: 'see fleetboot task show ' + taskId };
      const fetched = steps.filter((e) => e.kind === 'http' && str(e, 'what') === 'file' && e.id > decision.id);
      if (state === 'running' || state === 'waiting')
        return { ...base, stage: 'task', completed: false, verdict: `task #${taskId} is ${state} (its agent reports)`, next: 'the agent finishing its work' };
      const env = fetched.length ? `it fetched ${fetched.map((e) => str(e, 'path')).join(', ')}` : 'it fetched no boot environment file over HTTP';
      return {
        ...base,
        stage: 'decision',
        completed: false,
        verdict: `sent to the imaging environment for task #${taskId} at ${when(decision)}; its agent never reported (${env})`,
        next: 'the boot environment starting its agent: look at the machine\'s console (kernel or network driver problems), and that it reaches the HTTP port',
      };
    }
    if (kind === 'entry' || kind === 'menu' || kind === 'local')
      return { ...base, stage: 'decision', completed: true, verdict: `completed: ${decision.summary.replace(/^decision: /, '')} at ${when(decision)}`, next: null };
    const then = /^fail-task\+(entry|menu|local)$/.exec(kind)?.[1];
    if (then !== undefined) {
      const what = then === 'entry' ? `boots entry ${str(decision, 'entry') ?? ''}`.trim() : then === 'menu' ? 'gets the boot menu' : 'boots its local disk';
      return { ...base, stage: 'decision', completed: true, verdict: `completed: ${what} at ${when(decision)}, as without its task #${taskId ?? '?'}, which failed (${reason ?? 'see fleetboot task show'})`, next: null };
    }
    return { ...base, stage: 'decision', completed: false, verdict: `not booted: the decision at ${when(decision)} was ${kind}${reason ? ` (${reason})` : ''}`, next: kind === 'wait' ? 'the machine asking again once the reason is gone' : 'see the decision\'s reason' };
  }
  const script = steps.find((e) => e.kind === 'http' && str(e, 'what') === 'script');
  if (script) {
    return { ...base, stage: 'script', completed: false, verdict: `fetched the entry script at ${when(script)} but never asked for its boot decision (/boot/decide)`, next: 'iPXE chaining to /boot/decide: an iPXE without HTTP, or the HTTP port blocked between' };
  }
  const offer = dhcp[dhcp.length - 1] as BootEvent;
  const file = str(offer, 'file') ?? '';
  // Nearest node: the answer sent the machine to another node for its files.
  const node = str(offer, 'node');
  const servedBy = node !== null ? ` (served by node ${node})` : '';
  const http = ctx.httpPort !== null ? `TCP ${ctx.httpPort}` : 'the HTTP port';
  if (str(offer, 'via') === 'http') {
    return {
      ...base,
      stage: 'offered',
      completed: false,
      verdict: `offered ${file} at ${when(offer)}${servedBy}, never fetched it over HTTP`,
      next: `an HTTP request from the machine: ${http} blocked between it and the ${node !== null ? `node ${node}` : 'server'} (fleetboot firewall), or its iPXE/firmware could not reach ${file}`,
    };
  }
  const tftp = steps.filter((e) => e.kind === 'tftp' && (str(e, 'file') ?? '').replace(/^\/+/, '') === file.replace(/^\/+/, ''));
  const lastTftp = tftp[tftp.length - 1];
  if (!lastTftp) {
    const data = ctx.tftpDataPorts ? `UDP 69 and the data ports ${ctx.tftpDataPorts}` : 'UDP 69 and the TFTP data ports';
    return {
      ...base,
      stage: 'offered',
      completed: false,
      verdict: `offered ${file} at ${when(offer)}${servedBy}, never fetched the boot file`,
      next: `a TFTP request for ${file}${node !== null ? ` to node ${node}` : ''}: ${data} blocked (fleetboot firewall), ${node !== null ? `node ${node} not running TFTP, ` : ''}or another DHCP answer won (fleetboot doctor)`,
    };
  }
  const outcome = str(lastTftp, 'outcome');
  if (outcome !== 'done') {
    return { ...base, stage: 'offered', completed: false, verdict: `TFTP transfer of ${file} ${outcome ?? 'failed'} at ${when(lastTftp)}${str(lastTftp, 'reason') ? `: ${str(lastTftp, 'reason')}` : ''}`, next: outcome === 'refused' ? 'the file in the TFTP root (fleetboot doctor)' : 'a complete TFTP transfer: packet loss, or the TFTP data ports blocked' };
  }
  if (file.replace(/^\/+/, '') === SHIM_FILE) {
    // The Secure Boot path (src/boot/grub.ts): shim -> GRUB -> grub/grub.cfg -> the machine's configuration over TFTP.
    const fetched = (name: string): boolean => steps.some((e) => e.kind === 'tftp' && str(e, 'outcome') === 'done' && (str(e, 'file') ?? '').replace(/^\/+/, '') === name);
    const got = [GRUB_FILE, GRUB_ROOT_CONFIG].filter(fetched);
    return {
      ...base,
      stage: 'boot-file',
      completed: false,
      verdict: `fetched ${file} by TFTP at ${when(lastTftp)}${got.length ? `, then ${got.join(' and ')}` : ''}; GRUB never asked for this machine's configuration`,
      next: got.includes(GRUB_FILE)
        ? "GRUB's TFTP requests for grub/grub.cfg and fleetboot/grub/<MAC>/...: Debian's GRUB asks the server named in the address server's answer (next-server), never the proxyDHCP's: with --dhcp proxy the site's DHCP server must send next-server = this server (README, Secure Boot)"
        : `shim loading ${GRUB_FILE} from the same TFTP server: the file in the TFTP root (fleetboot doctor), the TFTP data ports`,
    };
  }
  return {
    ...base,
    stage: 'boot-file',
    completed: false,
    verdict: `fetched ${file} by TFTP at ${when(lastTftp)}; iPXE never fetched its script`,
    next: `iPXE's DHCP request (answered with the script URL) then an HTTP request: ${http} blocked, or iPXE found no network driver for the NIC`,
  };
}
