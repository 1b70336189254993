/**
 * The database as types (Kysely style). One interface per table; columns the
 * database fills are `Generated<>`; nullable columns are `T | null`.
 *
 * Portability: timestamps are ISO-8601 text written by the application and
 * booleans are avoided, so the same repositories run on PostgreSQL with a
 * PostgreSQL dialect (only the id columns of the first migration would use
 * an identity column there).
 */
import type { Generated } from 'kysely';

export interface BootEntryTable {
  id: Generated<number>;
  /** Unique; ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ */
  name: string;
  /** An http(s) URL, or the name of a file in <dataDir>/entries/<name>/. */
  kernel: string;
  cmdline: string;
  created_at: string;
}

export interface BootEntryInitrdTable {
  entry_id: number;
  /** 0-based order in which iPXE loads the initrds. */
  position: number;
  /** An http(s) URL, or the name of a file in <dataDir>/entries/<name>/. */
  source: string;
}

export interface HostTable {
  id: Generated<number>;
  /** Lower-case colon form: 52:54:00:12:34:56 */
  mac: string;
  name: string | null;
  entry_id: number | null;
  /** Reserved IPv4 address (DHCP server mode), dotted quad; unique when set. */
  ip: string | null;
  /** approved | pending (registered from the boot menu, waiting for an administrator). */
  status: Generated<string>;
  created_at: string;
  updated_at: string;
}

export interface DhcpLeaseTable {
  /** Dotted quad; one row per address. */
  ip: string;
  mac: string;
  client_id: string | null;
  /** The holder, as model/lease.ts leaseKey() names it; every lease write is conditional on it. */
  client_key: Generated<string>;
  state: string;
  /** Milliseconds since the epoch. */
  expires_at: number;
  hostname: string | null;
  updated_at: number;
}

export interface TaskTable {
  id: Generated<number>;
  /** capture | deploy | inventory | register */
  type: string;
  /** Lower-case colon form. */
  mac: string;
  /** capture/deploy: the image name. */
  image: string | null;
  /** scheduled | queued | booting | waiting | running | done | failed | cancelled */
  state: string;
  phase: string | null;
  bytes_done: number;
  bytes_total: number | null;
  rate_bps: number | null;
  eta_seconds: number | null;
  partition: number | null;
  message: string | null;
  error: string | null;
  attempts: number;
  /** JSON: { disk: string | null, table: 'keep' | 'gpt' | 'mbr' } */
  options: string;
  retry_of: number | null;
  /** sha256 (hex) of the token of the last boot; only the hash is kept. */
  token_sha256: string | null;
  /** Transfer slot: first request, and when granted (null: not held). */
  slot_requested_at: string | null;
  slot_granted_at: string | null;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
  last_seen_at: string | null;
  /** deploy: the image revision it writes; capture: the revision it created. */
  revision: number | null;
  /** deploy: the revision it was asked for (null: the current one when it starts); a retry asks for the same. */
  requested_revision: number | null;
  /** The client address the current token was handed to (agent requests from elsewhere get 403). */
  token_ip: string | null;
  /** JSON: the hardware identity the agent reported before any transfer. */
  identity: string | null;
  /** The job (group request) this task belongs to, or null. */
  job_id: number | null;
  /** scheduled: when it becomes queued (ISO). */
  start_at: string | null;
  /** 1: Wake-on-LAN when queued (0/1: no booleans, see above). */
  wake: Generated<number>;
  /** Wake rounds sent so far (0, 1, 2): the wake service's compare-and-swap. */
  wake_rounds: Generated<number>;
  /** When the last wake round started (ISO). */
  woken_at: string | null;
  /** 1: the host's endpoint agent reboots it into the task once queued (src/endpoints/). */
  reboot: Generated<number>;
  /** 1: a deploy writes an enrolment token for its host into the deployed Linux system (src/imaging/tasks.ts). */
  enrol: Generated<number>;
  /** deploy: the multicast session it receives from (multicast_sessions.id), or null (unicast). */
  multicast_id: number | null;
  /** Its receiver id in that session (16 hex digits). */
  multicast_receiver: string | null;
}

export type MulticastSessionState = 'waiting' | 'sending' | 'finished' | 'failed' | 'cancelled';

export interface MulticastSessionTable {
  id: Generated<number>;
  /** The session id every datagram carries (16 hex digits). */
  session: string;
  job_id: number | null;
  image: string;
  revision: number;
  address: string;
  port: number;
  state: MulticastSessionState;
  expected: number;
  min_receivers: number;
  max_wait_seconds: number | null;
  error: string | null;
  /** JSON: the sender's figures when the session ended. */
  stats: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  /** The node (nodes.name) that runs it: its creator, or the one that claimed it while it had none; null before nodes existed. */
  node: string | null;
}

export interface GroupTable {
  id: Generated<number>;
  /** Unique (NAME_PATTERN). */
  name: string;
  created_at: string;
}

export interface GroupMemberTable {
  group_id: number;
  /** A host's MAC (hosts.mac; the membership goes with the host). */
  mac: string;
  added_at: string;
}

export interface JobTable {
  id: Generated<number>;
  /** capture | deploy | inventory */
  type: string;
  /** The group's name when the job was made; null for a list of MACs (request.macs). */
  group_name: string | null;
  image: string | null;
  /** The task request as submitted (JSON). */
  request: string;
  schedule_id: number | null;
  /** The multicast session that carries a multicast deploy, or null. */
  multicast_session_id: number | null;
  created_at: string;
}

export interface ScheduleTable {
  id: Generated<number>;
  name: string | null;
  /** A cron expression (5 fields, or 6 with seconds first), in the server's time zone. */
  cron: string;
  /** The task request it submits (JSON, src/model/task-request.ts). */
  request: string;
  group_name: string | null;
  mac: string | null;
  /** The next due time (ISO); compare-and-swapped when it fires. */
  next_run_at: string;
  last_run_at: string | null;
  /** What the last firing did ("job #3: 12 tasks", "failed: ..."). */
  last_result: string | null;
  last_job_id: number | null;
  last_task_id: number | null;
  created_at: string;
}

export interface DhcpRelayTable {
  /** The relay agent's address (giaddr), dotted quad. */
  giaddr: string;
  first_seen_at: string;
  last_seen_at: string;
}

export interface ImageTable {
  id: Generated<number>;
  /** Unique image name (NAME_PATTERN). */
  name: string;
  /** The revision deploys use; null while none is ready (approved). */
  current_revision: number | null;
  created_at: string;
  /** 1: capture tasks into this image are refused (0 by default). */
  protected: Generated<number>;
  /** JSON list of the node names its revisions are replicated to; null: every node. */
  nodes: string | null;
}

export interface ImageRevisionTable {
  id: Generated<number>;
  /** The image's name. */
  image: string;
  /** 1, 2, ... per image, never reused while the image exists. */
  number: number;
  /** ready | pending (waits for `fleetboot image approve`). */
  state: string;
  /** Directory name under <dataDir>/images/ (a UUID). */
  dir: string;
  /** The manifest, JSON text. */
  manifest: string;
  /** sha256 (hex) of manifest.json in the directory. */
  manifest_sha256: string;
  /** Bytes of the stored stream files. */
  size_bytes: number;
  source_mac: string | null;
  task_id: number | null;
  created_at: string;
  approved_at: string | null;
}

export interface InventoryTable {
  mac: string;
  /** The Inventory, JSON text. */
  inventory: string;
  collected_at: string;
  /** smbios.serial of the inventory (the host search), or null. */
  serial: string | null;
}

export interface BootEventTable {
  id: Generated<number>;
  at: string;
  /** dhcp | tftp | http | decision | task (src/model/boot-event.ts). */
  kind: string;
  mac: string | null;
  ip: string | null;
  summary: string;
  /** BootEventDetail, JSON text. */
  detail: string;
}

export interface UserTable {
  id: Generated<number>;
  /** Unique (NAME_PATTERN). */
  name: string;
  /** viewer | operator | admin (src/model/roles.ts). */
  role: string;
  /** `scrypt$N$r$p$salt$hash` (src/lib/password-hash.ts). */
  password_hash: string;
  created_at: string;
  updated_at: string;
  /** Set: the user can neither log in nor use a session or token. */
  disabled_at: string | null;
  /** 1: the password was generated (shown once); a session can do nothing but change it (0/1: no booleans). */
  must_change_password: number;
}

export interface SessionTable {
  /** sha256 (hex) of the cookie's secret; the secret itself is never stored. */
  id: string;
  user_id: number;
  /** Sent back in x-csrf-token by cookie-authenticated writes. */
  csrf_token: string;
  created_at: string;
  /** Moved forward by requests (at most once a minute): the idle timeout counts from it. */
  last_seen_at: string;
  /** The absolute timeout. */
  expires_at: string;
  ip: string | null;
  user_agent: string | null;
  revoked_at: string | null;
}

export interface ApiTokenTable {
  id: Generated<number>;
  user_id: number;
  /** Unique per user among unrevoked tokens (NAME_PATTERN). */
  name: string;
  /** viewer | operator | admin, never above the owner's when made; capped by the owner's current role when used. */
  role: string;
  /** sha256 (hex) of the secret, which is shown once. */
  token_hash: string;
  created_at: string;
  /** null: never. */
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: string;
  /** 'user NAME', 'token NAME of USER', 'local admin token', 'login as NAME', 'anonymous'. */
  actor: string;
  ip: string | null;
  method: string;
  /** The route pattern (/api/v1/hosts/:mac), null when no route matched. */
  route: string | null;
  /** The URL as asked. */
  url: string;
  status: number;
  /** JSON: params, query and body, without secrets (src/http/audit.ts). */
  summary: string | null;
}

export interface AgentTable {
  /** First 32 hex digits of the sha256 of the public key (SPKI DER). */
  id: string;
  /** SPKI DER, base64 (Ed25519). */
  public_key: string;
  /** active | pending | revoked */
  state: string;
  host_id: number | null;
  /** JSON AgentIdentity reported at enrolment. */
  identity: string;
  last_identity: string | null;
  last_ip: string | null;
  enrolled_at: string;
  approved_at: string | null;
  revoked_at: string | null;
  last_seen_at: string | null;
  token_id: number | null;
}

export interface AgentEnrolTokenTable {
  id: Generated<number>;
  /** sha256 (hex) of the secret, which is shown once. */
  token_hash: string;
  host_id: number | null;
  group_id: number | null;
  uses_left: number;
  uses: Generated<number>;
  created_at: string;
  created_by: string;
  expires_at: string;
  revoked_at: string | null;
  /** The deploy task that made it (task deploy --enrol), or null. */
  task_id: number | null;
  /** 1: enrols only an agent that reports its host's MAC. */
  mac_bound: Generated<number>;
}

export interface AgentSessionTable {
  /** sha256 (hex) of the session secret. */
  id: string;
  agent_id: string;
  created_at: string;
  expires_at: string;
}

export interface PackageTable {
  id: Generated<number>;
  name: string;
  revision: number;
  /** The canonical JSON of the manifest the server signed. */
  manifest: string;
  /** Ed25519 signature (base64) of the manifest's signing bytes. */
  signature: string;
  created_at: string;
  created_by: string;
}

export interface AgentWorkTable {
  id: Generated<number>;
  host_id: number;
  /** inventory | hostname | reboot | package | wake */
  kind: string;
  /** JSON: the kind's parameters. */
  payload: string;
  package_id: number | null;
  task_id: number | null;
  /** queued | sent | succeeded | failed | hash-mismatch | bad-signature | timeout | interrupted | refused | cancelled | lost */
  state: string;
  not_before: string | null;
  created_at: string;
  created_by: string;
  agent_id: string | null;
  deliveries: Generated<number>;
  sent_at: string | null;
  finished_at: string | null;
  exit_code: number | string | bigint | null;
  signal: string | null;
  duration_ms: number | string | bigint | null;
  stdout: string | null;
  stderr: string | null;
  message: string | null;
  reboot_requested: Generated<number>;
}

export interface MigrationTable {
  name: string;
  applied_at: string;
}

export interface Database {
  boot_entries: BootEntryTable;
  boot_entry_initrds: BootEntryInitrdTable;
  hosts: HostTable;
  dhcp_leases: DhcpLeaseTable;
  tasks: TaskTable;
  images: ImageTable;
  image_revisions: ImageRevisionTable;
  inventories: InventoryTable;
  groups: GroupTable;
  group_members: GroupMemberTable;
  jobs: JobTable;
  schedules: ScheduleTable;
  dhcp_relays: DhcpRelayTable;
  multicast_sessions: MulticastSessionTable;
  boot_events: BootEventTable;
  users: UserTable;
  sessions: SessionTable;
  api_tokens: ApiTokenTable;
  audit_log: AuditLogTable;
  agents: AgentTable;
  agent_enrol_tokens: AgentEnrolTokenTable;
  agent_sessions: AgentSessionTable;
  packages: PackageTable;
  agent_work: AgentWorkTable;
  nodes: NodeTable;
  revision_copies: RevisionCopyTable;
  agent_nonces: AgentNonceTable;
  fleetboot_migrations: MigrationTable;
}

/** A challenge nonce handed to an endpoint agent, until it is taken or expires (src/store/agent-nonces.ts). */
export interface AgentNonceTable {
  nonce: string;
  expires_at: string;
}

/** A Fleetboot server sharing this database (src/store/nodes.ts). */
export interface NodeTable {
  id: Generated<number>;
  /** Unique (NAME_PATTERN): the host name unless node.name is set. */
  name: string;
  /** JSON: its IPv4 addresses (strings). */
  addresses: string;
  /** JSON: the subnets it serves ("10.1.2.0/24" strings). */
  subnets: string;
  /** The base URL other nodes reach its HTTP at (boot files, streams), or null. */
  http_url: string | null;
  /** The base URL of its HTTPS (the API), or null: HTTPS is off. */
  https_url: string | null;
  /** Its data directory's file system (bytes); null when it could not be read. bigint: PostgreSQL may give a string. */
  capacity_bytes: number | string | null;
  free_bytes: number | string | null;
  version: string;
  started_at: string;
  heartbeat_at: string;
  heartbeat_seconds: number;
  /** When it stopped cleanly; null while it runs (or after a crash). */
  stopped_at: string | null;
  /** sha256 (hex) of its credential. */
  credential_hash: string;
  created_at: string;
  /** sha256 (hex, of the DER) of the certificate its HTTPS serves (pinned by the other nodes); null: HTTPS is off. */
  tls_sha256: string | null;
  /** JSON: the groups it is in (node.groups; names as NAME_PATTERN), for images assigned to `group:NAME`. */
  groups: Generated<string>;
}

/** A node's copy of an image revision (src/store/copies.ts). */
export interface RevisionCopyTable {
  id: Generated<number>;
  image: string;
  number: number;
  node: string;
  /** 'missing' | 'copying' | 'verified' | 'corrupt' */
  state: string;
  /** bigint: a string from PostgreSQL. */
  bytes_done: number | string;
  bytes_total: number | string;
  error: string | null;
  verified_at: string | null;
  updated_at: string;
}
