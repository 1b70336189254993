/**
 * A machine's hardware identity: what the imaging agent reports before any
 * transfer, and how it is compared with the host's recorded inventory. Pure;
 * shared by the agent and the server.
 *
 * Why: the boot-time endpoints trust a MAC, and a MAC is easy to claim (a
 * cloned NIC, a swapped network card, a machine that lies). Before a capture
 * may replace an image, a deploy may wipe a disk, or an inventory may
 * overwrite the host's record, the agent says which machine it runs on, and
 * the server refuses when that is not the machine it recorded.
 *
 * The rule: every identity field the recorded inventory has (not null) must
 * be reported the same (case and surrounding blanks ignored); a field the
 * agent leaves out while the record has it is a mismatch, so leaving fields
 * out does not get past the check. Capture and deploy also compare the
 * target disk (model and size) with the recorded disks: a machine whose disk
 * was replaced needs an inventory task first, which records the new disk.
 */
import type { Inventory } from './manifest.js';

export interface HardwareIdentity {
  smbiosUuid: string | null;
  smbiosSerial: string | null;
  /** The disk the task works on (capture, deploy), or null (inventory, register). */
  disk: { name: string; model: string | null; sizeBytes: number } | null;
}

export class IdentityError extends Error {
  override name = 'IdentityError';
}

function optText(o: Record<string, unknown>, k: string, max: number): string | null {
  const v = o[k];
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string' || v.length > max) throw new IdentityError(`identity.${k} must be a string of at most ${max} characters or null: current value is ${JSON.stringify(v).slice(0, 80)}`);
  return v;
}

/** Validate an untrusted identity report. Throws IdentityError naming the field. */
export function parseIdentity(input: unknown): HardwareIdentity {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new IdentityError(`identity must be a JSON object: current value is ${JSON.stringify(input)?.slice(0, 80) ?? 'undefined'}`);
  const o = input as Record<string, unknown>;
  const d = o['disk'];
  let disk: HardwareIdentity['disk'] = null;
  if (d !== null && d !== undefined) {
    if (typeof d !== 'object' || Array.isArray(d)) throw new IdentityError(`identity.disk must be an object or null: current value is ${JSON.stringify(d).slice(0, 80)}`);
    const dd = d as Record<string, unknown>;
    const size = dd['sizeBytes'];
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new IdentityError(`identity.disk.sizeBytes must be an integer >= 0: current value is ${JSON.stringify(size)}`);
    const name = dd['name'];
    if (typeof name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new IdentityError(`identity.disk.name must be a block device name such as sda: current value is ${JSON.stringify(name)?.slice(0, 80) ?? 'undefined'}`);
    disk = { name, model: optText(dd, 'model', 256), sizeBytes: size };
  }
  return { smbiosUuid: optText(o, 'smbiosUuid', 64), smbiosSerial: optText(o, 'smbiosSerial', 256), disk };
}

/** The identity part of an inventory, for the log and the messages. */
function identityOfInventory(inv: Inventory): { smbiosUuid: string | null; smbiosSerial: string | null } {
  return { smbiosUuid: inv.smbios.uuid, smbiosSerial: inv.smbios.serial };
}

const same = (a: string | null, b: string | null): boolean => (a ?? '').trim().toLowerCase() === (b ?? '').trim().toLowerCase();

function describe(id: { smbiosUuid: string | null; smbiosSerial: string | null }, disk?: string): string {
  return `SMBIOS UUID ${id.smbiosUuid ?? 'none'}, serial ${id.smbiosSerial ?? 'none'}${disk !== undefined ? `, ${disk}` : ''}`;
}

function diskText(d: { model: string | null; sizeBytes: number }): string {
  return `disk ${d.model ?? '(no model)'} of ${d.sizeBytes} bytes`;
}

/**
 * Null when `reported` is the machine `recorded` describes; otherwise a
 * message naming both. `checkDisk`: the reported disk must match one of the
 * recorded disks by model and size.
 */
export function identityMismatch(reported: HardwareIdentity, recorded: Inventory, checkDisk: boolean): string | null {
  const rec = identityOfInventory(recorded);
  const problems: string[] = [];
  if (rec.smbiosUuid !== null && !same(rec.smbiosUuid, reported.smbiosUuid)) problems.push('SMBIOS UUID');
  if (rec.smbiosSerial !== null && !same(rec.smbiosSerial, reported.smbiosSerial)) problems.push('SMBIOS serial');
  let recordedDisks = '';
  if (checkDisk && recorded.disks.length > 0) {
    const d = reported.disk;
    const match = d !== null && recorded.disks.some((r) => r.sizeBytes === d.sizeBytes && same(r.model, d.model));
    if (!match) problems.push('disk');
    recordedDisks = recorded.disks.map((r) => diskText(r)).join(' or ');
  }
  if (problems.length === 0) return null;
  const reportedText = describe(reported, checkDisk ? (reported.disk ? diskText(reported.disk) : 'no disk') : undefined);
  const recordedText = describe(rec, checkDisk && recordedDisks !== '' ? recordedDisks : undefined);
  return `this machine is not the one recorded for the host (${problems.join(', ')} differ): it reports ${reportedText}; the host's inventory of record has ${recordedText}. If the hardware really changed, forget the old record (fleetboot host forget-inventory MAC), run an inventory task, then this task again`;
}
