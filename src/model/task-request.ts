/**
 * What asks for imaging tasks: the body of POST /api/v1/tasks, and what a
 * recurring schedule stores and submits at each of its times. One machine
 * (`mac`), a list of machines (`macs`) or every member of a host group
 * (`group`); a list or a group makes one task each, shown together as a
 * job. Pure: the HTTP layer checks types with its JSON
 * schema and then this; the store checks a stored request again when it
 * reads it back.
 */
import { FleetbootError } from '../lib/errors.js';
import { isValidName, normaliseMac } from './validate.js';

export const REQUEST_TASK_TYPES = ['capture', 'deploy', 'inventory'] as const;
export type RequestTaskType = (typeof REQUEST_TASK_TYPES)[number];

export const PARTITION_TABLES = ['keep', 'gpt', 'mbr'] as const;
export type PartitionTable = (typeof PARTITION_TABLES)[number];

/** Target disks a task may name. */
export const DISK_PATTERN = '^/dev/[a-z0-9/_-]+$';
const DISK_RE = new RegExp(DISK_PATTERN);

export interface TaskRequest {
  type: RequestTaskType;
  /** One machine (any usual MAC spelling; normalised here)... */
  mac?: string;
  /** ...or these machines (MACS_MIN..MACS_MAX distinct ones, normalised; one task each: a job)... */
  macs?: string[];
  /** ...or every member of this host group. */
  group?: string;
  /** capture/deploy: the image. */
  image?: string | null;
  /** deploy: a ready revision (default: the current one when the agent starts). */
  revision?: number | null;
  /** capture/deploy: the disk (default: the first fixed disk). */
  disk?: string | null;
  /** deploy: the partition table to write. */
  table?: PartitionTable;
  /** Send Wake-on-LAN packets when the task is queued (at once, or at its start time). */
  wake?: boolean;
  /** The machine's endpoint agent (if enrolled) reboots it into the task once it is queued (FOG's task reboot). */
  reboot?: boolean;
  /** Start time (the task waits as `scheduled`); see src/model/when.ts. Never in a stored schedule. */
  at?: string;
  /**
   * deploy to a group or a list of MACs: one multicast session carries the
   * image to every member (src/multicast/service.ts). It starts when every member has
   * joined, or once `maxWaitSeconds` have passed with `minReceivers` joined.
   */
  multicast?: MulticastRequest;
}

export interface MulticastRequest {
  minReceivers?: number;
  maxWaitSeconds?: number;
}

/** How many machines `macs` names: two at least (one is `mac`), as many as one job makes at most. */
export const MACS_MIN = 2;
export const MACS_MAX = 1000;

const KEYS: readonly string[] = ['type', 'mac', 'macs', 'group', 'image', 'revision', 'disk', 'table', 'wake', 'reboot', 'at', 'multicast'];

function bad(message: string): FleetbootError {
  return new FleetbootError('INVALID_INPUT', message);
}

const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

/** The message for a capture asked of a group: one image comes from one disk. */
export const CAPTURE_GROUP_REFUSED =
  'A capture takes one machine, not a group: an image is captured from one disk (name the MAC of the reference machine); deploy and inventory take a group';

/** The message for a capture asked of several MACs. */
export const CAPTURE_MACS_REFUSED =
  'A capture takes one machine, not several: an image is captured from one disk (name the MAC of the reference machine); deploy and inventory take several';

/** The message for a multicast deploy to one machine. */
export const MULTICAST_ONE_REFUSED =
  'A multicast session sends one image to several machines at once: a deploy to one machine goes by unicast (drop multicast, or name more machines or a group)';

const INVALID_MAC = 'expected six hex bytes such as 52:54:00:12:34:56';

/** `macs` -> the normalised list, or INVALID_INPUT naming every bad and every repeated MAC. */
function parseMacs(value: unknown): string[] {
  if (!Array.isArray(value)) throw bad(`"macs" must be a list of MAC addresses: got ${show(value)}`);
  const items: readonly unknown[] = value;
  if (items.length < MACS_MIN || items.length > MACS_MAX) {
    throw bad(`"macs" names ${MACS_MIN} to ${MACS_MAX} machines: got ${items.length}${items.length === 1 ? ' (for one machine use "mac")' : ''}`);
  }
  const list = items.map((m) => (typeof m === 'string' ? normaliseMac(m) : null));
  const badOnes = items.filter((_, i) => list[i] === null);
  if (badOnes.length) throw bad(`Invalid MAC address${badOnes.length > 1 ? 'es' : ''} ${badOnes.map(show).join(', ')} in "macs": ${INVALID_MAC}`);
  const macs = list.filter((m): m is string => m !== null);
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const m of macs) (seen.has(m) ? repeated : seen).add(m);
  if (repeated.size) throw bad(`"macs" names ${[...repeated].join(', ')} more than once: each machine gets one task`);
  return macs;
}

/** "52:54:00:00:00:01 52:54:00:00:00:02" or, past `max`, "52:54:00:00:00:01 ... and 7 more". */
export function macListText(macs: readonly string[], max = 4): string {
  return macs.length <= max ? macs.join(' ') : `${macs.slice(0, max).join(' ')} and ${macs.length - max} more`;
}

/**
 * Check a task request (its types and which fields go with which type) and
 * return a new, normalised one (MAC in lower-case colon form, absent fields
 * left out). `allowAt`: false for what a schedule stores (it has its own
 * times). Throws FleetbootError('INVALID_INPUT') saying what was expected
 * and what was seen.
 */
export function parseTaskRequest(value: unknown, opts: { allowAt: boolean }): TaskRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(`A task request must be an object { type, mac | macs | group, ... }: got ${show(value)}`);
  const r = value as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!KEYS.includes(k)) throw bad(`Unknown field "${k}" in a task request (known: ${KEYS.join(', ')})`);
  const type = REQUEST_TASK_TYPES.find((t) => t === r['type']);
  if (type === undefined) throw bad(`Invalid task type ${show(r['type'])}: expected one of ${REQUEST_TASK_TYPES.join(', ')}`);
  const out: TaskRequest = { type };
  const given = (['mac', 'macs', 'group'] as const).filter((k) => r[k] !== undefined && r[k] !== null);
  if (given.length !== 1) {
    throw bad(`A task request names one machine ("mac"), a list of machines ("macs") or a host group ("group"): got ${given.length === 0 ? 'none of them' : given.map((k) => `"${k}"`).join(' and ')}`);
  }
  if (given[0] === 'mac') {
    const mac = typeof r['mac'] === 'string' ? normaliseMac(r['mac']) : null;
    if (mac === null) throw bad(`Invalid MAC address ${show(r['mac'])}: ${INVALID_MAC}`);
    out.mac = mac;
  } else if (given[0] === 'macs') {
    if (type === 'capture') throw bad(CAPTURE_MACS_REFUSED);
    out.macs = parseMacs(r['macs']);
  } else {
    if (type === 'capture') throw bad(CAPTURE_GROUP_REFUSED);
    if (typeof r['group'] !== 'string' || !isValidName(r['group'])) throw bad(`Invalid group name ${show(r['group'])}: expected letters, digits, . _ - (up to 64, starting with a letter or digit)`);
    out.group = r['group'];
  }
  const image = r['image'] ?? null;
  if (image !== null && (typeof image !== 'string' || !isValidName(image))) throw bad(`Invalid image name ${show(image)}: expected letters, digits, . _ - (up to 64)`);
  if ((type === 'capture' || type === 'deploy') && image === null) throw bad(`A ${type} task needs an image name ("image")`);
  if (type === 'inventory' && image !== null) throw bad('An inventory task takes no image');
  if (image !== null) out.image = image;
  const revision = r['revision'] ?? null;
  if (revision !== null) {
    if (type !== 'deploy') throw bad(`A ${type} task takes no revision`);
    if (typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 1) throw bad(`Invalid revision ${show(revision)}: expected a revision number (1, 2, ...)`);
    out.revision = revision;
  }
  const disk = r['disk'] ?? null;
  if (disk !== null) {
    if (type === 'inventory') throw bad('An inventory task takes no disk (it lists them all)');
    if (typeof disk !== 'string' || !DISK_RE.test(disk) || disk.length > 128 || disk.includes('..')) throw bad(`Invalid disk ${show(disk)}: expected a device path such as /dev/sda or /dev/nvme0n1`);
    out.disk = disk;
  }
  if (r['table'] !== undefined) {
    if (type !== 'deploy') throw bad(`"table" applies to deploy tasks only, not to ${type}`);
    const table = PARTITION_TABLES.find((t) => t === r['table']);
    if (table === undefined) throw bad(`Invalid partition table ${show(r['table'])}: expected keep, gpt or mbr`);
    out.table = table;
  }
  if (r['wake'] !== undefined) {
    if (typeof r['wake'] !== 'boolean') throw bad(`"wake" must be true or false: got ${show(r['wake'])}`);
    if (r['wake']) out.wake = true;
  }
  if (r['reboot'] !== undefined) {
    if (typeof r['reboot'] !== 'boolean') throw bad(`"reboot" must be true or false: got ${show(r['reboot'])}`);
    if (r['reboot']) out.reboot = true;
  }
  if (r['at'] !== undefined && r['at'] !== null) {
    if (!opts.allowAt) throw bad('A schedule\'s task request takes no start time ("at"): the schedule\'s cron expression says when it runs');
    if (typeof r['at'] !== 'string') throw bad(`"at" must be a time (text): got ${show(r['at'])}`);
    out.at = r['at'];
  }
  if (r['multicast'] !== undefined && r['multicast'] !== null && r['multicast'] !== false) {
    if (type !== 'deploy') throw bad(`"multicast" applies to deploy tasks to several machines (a group or a list of MACs: one session for them all), not to ${type} tasks`);
    if (out.mac !== undefined) throw bad(MULTICAST_ONE_REFUSED);
    const m = r['multicast'] === true ? {} : r['multicast'];
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw bad(`"multicast" must be true or { minReceivers, maxWaitSeconds }: got ${show(m)}`);
    const mo = m as Record<string, unknown>;
    for (const k of Object.keys(mo)) if (k !== 'minReceivers' && k !== 'maxWaitSeconds') throw bad(`Unknown field "${k}" in "multicast" (known: minReceivers, maxWaitSeconds)`);
    const mr: MulticastRequest = {};
    if (mo['minReceivers'] !== undefined) {
      const n = mo['minReceivers'];
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > 10_000) throw bad(`"multicast.minReceivers" must be a whole number from 1: got ${show(n)}`);
      mr.minReceivers = n;
    }
    if (mo['maxWaitSeconds'] !== undefined) {
      const n = mo['maxWaitSeconds'];
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > 86_400) throw bad(`"multicast.maxWaitSeconds" must be whole seconds from 0 to 86400: got ${show(n)}`);
      mr.maxWaitSeconds = n;
    }
    if (mr.minReceivers !== undefined && mr.maxWaitSeconds === undefined) throw bad('"multicast.minReceivers" goes with "maxWaitSeconds": the session starts with that many once the wait has passed (without a wait it waits for every member)');
    out.multicast = mr;
  }
  return out;
}
