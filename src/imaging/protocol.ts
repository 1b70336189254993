/**
 * The imaging agent <-> server protocol (HTTP, JSON). Shared by the server's
 * routes (src/http/routes/agent.ts) and the agent (src/agent/): types and
 * paths only, no I/O, no imports from the server, so the agent bundle stays
 * free of server code.
 *
 * Authentication: every request carries `Authorization: Bearer <task token>`.
 * The token is made when the boot decision hands the boot environment to the
 * machine (a new one per boot; only its sha256 is stored), goes to the agent
 * on the kernel command line (`fleetboot.token=`) and is valid for that one
 * task while it is not finished. It grants nothing else, and only from the
 * client address it was handed to (403 from any other). Capture and deploy
 * transfers (slot, streams, image) need the identity reported first (409).
 *
 *   GET  /agent/v1/task                  -> TaskSpec (first call: state booting -> running)
 *   POST /agent/v1/task/identity         HardwareIdentity -> { ok: true }; 409 when it is not
 *                                        the machine the host's inventory records (task failed)
 *   POST /agent/v1/task/progress         ProgressReport -> ProgressAnswer
 *   POST /agent/v1/task/slot             -> SlotAnswer (transfer slot, FOG's "max clients")
 *   PUT  /agent/v1/task/streams/:file    capture: one partition stream (octet-stream, chunked)
 *                                        -> StreamReceipt
 *   GET  /agent/v1/task/image/:file      deploy: a stream file of the task's image (Range), from
 *                                        TaskSpec.streamsUrl when the spec names one
 *   POST /agent/v1/task/complete         CompleteBody -> { ok: true }
 *   POST /agent/v1/task/fail             FailBody -> { ok: true }
 *
 * Errors: JSON `{ error: CODE, message }` with 400 (bad input), 401 (no or
 * wrong token), 404, 409 (task not in a state that allows this, e.g.
 * cancelled: the agent stops), 413, 503 (+ Retry-After: try again later).
 * The agent retries network errors and 5xx with backoff for as long as
 * `TaskSpec.agentTimeoutSeconds`; a 4xx other than 429 is final.
 */
import type { Inventory, Manifest } from '../model/manifest.js';
import type { EnrolSpec } from '../model/endpoint.js';

export type { EnrolSpec } from '../model/endpoint.js';

export type { HardwareIdentity } from '../model/identity.js';

export type { Inventory, Manifest } from '../model/manifest.js';

export const AGENT_PREFIX = '/agent/v1';

export { ACTIVE_TASK_STATES, type TaskPhase, type TaskState, type TaskType } from '../model/task.js';
import type { TaskState, TaskType, TaskPhase } from '../model/task.js';

/** What the agent is told to do. */
export interface TaskSpec {
  id: number;
  type: TaskType;
  /** The machine's MAC (lower-case, colons). */
  mac: string;
  /** capture/deploy: the image name. */
  image: string | null;
  /** deploy: the revision of the image it writes (its manifest is below). */
  revision: number | null;
  /** deploy: the manifest of the image revision to write. */
  manifest: Manifest | null;
  /**
   * Target disk: a device path the server was told (task option), or null for
   * "the first fixed disk" (sd*, vd*, nvme*n*, hd*, in name order; removable
   * and zero-size ones skipped).
   */
  disk: string | null;
  /** deploy: write the partition table as captured ('keep') or converted. */
  table: 'keep' | 'gpt' | 'mbr';
  /** Seconds between progress reports. */
  progressIntervalSeconds: number;
  /** How long the agent keeps retrying when the server is unreachable. */
  agentTimeoutSeconds: number;
  /**
   * deploy: the base URL (http://10.1.0.2:8080) of the node the agent reads
   * its streams from (GET /agent/v1/task/image/:file, same token), chosen
   * by the server as the nearest node holding a verified copy
   * (src/imaging/streams-source.ts). Absent or null: the control server (the
   * URL on the kernel command line), as with servers built before nodes.
   * Everything else (progress, slot, complete, uploads) stays on the
   * control server. When the streams node fails, the agent goes on from
   * its control server.
   */
  streamsUrl?: string | null;
  /** deploy: receive the image from this multicast session (null or absent: unicast). */
  multicast?: MulticastSpec | null;
  /**
   * deploy with `enrol`: what the agent writes, once every partition is
   * written and verified, into the deployed Linux root filesystem as
   * var/lib/fleetboot-agent/enrol.json (0600, in a 0700 directory), so the
   * machine's endpoint agent enrols as its host at first boot. A one-use
   * token bound to the host's MAC, made for this request (an earlier one of
   * the task is revoked). null: not asked for. The agent checks every field
   * (src/model/endpoint.ts parseEnrolSpec) before it writes anything.
   */
  enrol: EnrolSpec | null;
}

/** What became of a deploy's `enrol` (sent with its completion; the task's message). */
export interface EnrolOutcome {
  /** The partition device it was written to, or null when no Linux root filesystem was found. */
  written: string | null;
  /** One line for the task: "enrolment token written to /dev/sda2 (ext4)", or the warning. */
  message: string;
}

/**
 * A deploy task's multicast session (src/multicast/service.ts): the agent
 * joins the group, receives the streams of `files` one after another (the
 * object is their concatenation, `objectBytes` long) and writes each as
 * it would from HTTP. When the session drops it, is cancelled or ends
 * before it has everything, it goes on by HTTP from where it was.
 */
export interface MulticastSpec {
  /** Session id (16 hex digits): every datagram carries it. */
  session: string;
  /** Group address and UDP port. */
  address: string;
  port: number;
  /** This task's receiver id (16 hex digits), admitted from the task's address only. */
  receiver: string;
  /** Blocks the receiver holds out of order. */
  window: number;
  /** Stream files in the order the session carries them. */
  files: string[];
  objectBytes: number;
}


export interface ProgressReport {
  phase: TaskPhase;
  /** Bytes transferred so far over the whole task (compressed stream bytes). */
  bytesDone: number;
  /** Expected total, when known (deploy: sum of streamBytes). */
  bytesTotal: number | null;
  /** Partition being worked on (1-based), when any. */
  partition: number | null;
  message?: string;
}

export interface ProgressAnswer {
  /** The task's state after the report; 'cancelled' tells the agent to stop. */
  state: TaskState;
}

export type SlotAnswer = { granted: true } | { granted: false; position: number; retryAfterSeconds: number };

/** The server's count of what it stored for one uploaded stream. */
export interface StreamReceipt {
  file: string;
  bytes: number;
  sha256: string;
}

export type CompleteBody =
  /** capture: the manifest; every stream in it must have been uploaded with matching bytes and sha256. */
  | { type: 'capture'; manifest: Manifest }
  /** deploy: what was written and verified. */
  | { type: 'deploy'; verified: true; enrol?: EnrolOutcome }
  | { type: 'inventory' | 'register'; inventory: Inventory };

export interface FailBody {
  reason: string;
  /** Also sent with a capture/deploy failure when the agent has one. */
  inventory?: Inventory;
}

/** Stream file names inside an image directory: p<N>.<tool kind>.zst */
export const STREAM_FILE_PATTERN = '^p[0-9]{1,3}\\.(pcl|raw)\\.zst$';

/** Kernel command line keys the boot environment reads. */
export const CMDLINE = {
  url: 'fleetboot.url',
  task: 'fleetboot.task',
  token: 'fleetboot.token',
  disk: 'fleetboot.disk',
  /** The address the task's token is bound to: the environment asks DHCP for it again (udhcpc -r). */
  ip: 'fleetboot.ip',
  /** What the boot environment does when the agent ends: reboot (default), poweroff, shell. */
  onExit: 'fleetboot.onexit',
} as const;
