/**
 * The steps of a machine's boot as the services see them, made into boot
 * events (src/model/boot-event.ts) for the timeline and `host why`: a DHCP
 * answer (which file, why), a TFTP transfer, an HTTP fetch of the boot
 * chain, the boot decision, an imaging task's state. Pure.
 */
import type { NewBootEvent } from '../model/boot-event.js';
import { firmwareLabel, type FirmwareInfo } from './firmware.js';

export interface DhcpAnswerFacts {
  mode: 'proxy' | 'server';
  mac: string;
  /** The request's ciaddr ('0.0.0.0' when it had none). */
  ciaddr: string;
  /** "DISCOVER -> OFFER" */
  step: string;
  /** Which socket: the DHCP port (67) or the PXE boot server port (4011). */
  port: 'dhcp' | 'pxe';
  /** The boot file or URL offered, or null (an address without one). */
  file: string | null | undefined;
  reason: string;
  firmware: FirmwareInfo | null;
  /** Server mode: the address offered or acknowledged. */
  offeredIp: string | null;
  /** Nearest node: the answer pointed at this other node (next-server, URLs); absent or null: at this server. */
  node?: string | null;
}

/** True when `file` is fetched over HTTP (iPXE's script, UEFI HTTP boot), not TFTP. */
export function isHttpBootFile(file: string): boolean {
  return /^https?:\/\//i.test(file);
}

export function dhcpBootEvent(f: DhcpAnswerFacts): NewBootEvent {
  const file = f.file ?? null;
  const who = f.mode === 'proxy' ? 'proxyDHCP' : 'DHCP';
  const where = f.port === 'pxe' ? ' (port 4011)' : '';
  const offered = f.offeredIp ? ` ${f.offeredIp}` : '';
  const what = file === null ? 'no boot file' : `${isHttpBootFile(file) ? 'boot URL' : 'boot file'} ${file}`;
  return {
    kind: 'dhcp',
    mac: f.mac,
    ip: f.offeredIp ?? (f.ciaddr !== '0.0.0.0' ? f.ciaddr : null),
    summary: `${who} ${f.step}${where}:${offered} ${what}${f.node && !f.reason.includes(`node ${f.node}`) ? ` from node ${f.node}` : ''} (${f.reason})`,
    detail: {
      mode: f.mode,
      step: f.step,
      port: f.port,
      file,
      via: file === null ? null : isHttpBootFile(file) ? 'http' : 'tftp',
      reason: f.reason,
      ipxe: f.firmware?.ipxe ?? null,
      arch: f.firmware?.arch ?? null,
      firmware: f.firmware ? firmwareLabel(f.firmware) : null,
      offeredIp: f.offeredIp,
      node: f.node ?? null,
    },
  };
}

export interface TftpTransferFacts {
  /** The client's address. */
  ip: string;
  /** The file asked for (null when the request could not be read). */
  file: string | null;
  outcome: 'done' | 'failed' | 'aborted' | 'refused';
  /** Bytes sent (done) or acknowledged (otherwise). */
  bytes: number;
  reason: string | null;
}

export function tftpBootEvent(t: TftpTransferFacts): NewBootEvent {
  const file = t.file ?? '(unreadable request)';
  const summary =
    t.outcome === 'done'
      ? `TFTP sent ${file} (${t.bytes} bytes)`
      : t.outcome === 'refused'
        ? `TFTP refused ${file}: ${t.reason ?? 'refused'}`
        : `TFTP transfer of ${file} ${t.outcome} after ${t.bytes} bytes${t.reason ? `: ${t.reason}` : ''}`;
  return { kind: 'tftp', mac: null, ip: t.ip, summary, detail: { file: t.file, outcome: t.outcome, bytes: t.bytes, reason: t.reason } };
}

/** What an HTTP fetch of the boot chain was: iPXE's entry script, or a boot file (kernel, initrd, boot environment). */
export type HttpFetchWhat = 'script' | 'file';

export interface HttpFetchFacts {
  ip: string;
  mac: string | null;
  what: HttpFetchWhat;
  path: string;
  status: number;
  bytes: number | null;
}

export function httpBootEvent(h: HttpFetchFacts): NewBootEvent {
  const ok = h.status < 400;
  const summary = h.what === 'script' ? `HTTP entry script ${h.path} (${h.status})` : `HTTP ${ok ? 'sent' : 'refused'} ${h.path} (${h.status}${h.bytes !== null && ok ? `, ${h.bytes} bytes` : ''})`;
  return { kind: 'http', mac: h.mac, ip: h.ip, summary, detail: { what: h.what, path: h.path, status: h.status, bytes: h.bytes } };
}

export interface DecisionFacts {
  ip: string;
  mac: string;
  /** The decision's kind (src/boot/decide.ts): entry, menu, local, task, wait, refuse, fail-task, register. */
  decision: string;
  entry: string | null;
  task: number | null;
  reason: string;
}

export function decisionBootEvent(d: DecisionFacts): NewBootEvent {
  const what =
    d.decision === 'entry' && d.entry !== null
      ? `boots entry ${d.entry}`
      : d.decision === 'task' && d.task !== null
        ? `boots the imaging environment for task #${d.task}`
        : d.decision === 'local'
          ? 'boots its local disk'
          : d.decision === 'menu'
            ? 'gets the boot menu'
            : d.decision;
  return { kind: 'decision', mac: d.mac, ip: d.ip, summary: `decision: ${what} (${d.reason})`, detail: { decision: d.decision, entry: d.entry, task: d.task, reason: d.reason } };
}

export interface TaskStepFacts {
  task: number;
  mac: string;
  type: string;
  from: string;
  to: string;
  reason: string | null;
  ip: string | null;
}

export function taskBootEvent(t: TaskStepFacts): NewBootEvent {
  return {
    kind: 'task',
    mac: t.mac,
    ip: t.ip,
    summary: `task #${t.task} ${t.type}: ${t.from} -> ${t.to}${t.reason ? ` (${t.reason})` : ''}`,
    detail: { task: t.task, type: t.type, from: t.from, state: t.to, reason: t.reason },
  };
}
