/**
 * The API's shapes as the console reads them.
 * TODO(openapi merge): replaced by the types inferred from the route schemas (src/http/schemas).
 */
export interface Host {
  mac: string;
  name: string | null;
  entry: string | null;
  ip: string | null;
  status: 'approved' | 'pending';
  createdAt: string;
  updatedAt: string;
}
export interface HostListItem extends Host {
  groups: string[];
}
export interface HostPage {
  hosts: HostListItem[];
  total: number;
  offset: number;
  limit: number | null;
}
export interface Task {
  id: number;
  type: string;
  mac: string;
  hostName?: string | null;
  image?: string | null;
  state: string;
  phase?: string | null;
  bytesDone: number;
  bytesTotal?: number | null;
  rateBps?: number | null;
  etaSeconds?: number | null;
  message?: string | null;
  error?: string | null;
  attempts: number;
  retryOf?: number | null;
  createdAt: string;
  updatedAt: string;
  startedAt?: string | null;
  finishedAt?: string | null;
  jobId?: number | null;
  startAt?: string | null;
  multicastId?: number | null;
  revision?: number | null;
}
export interface HostDetail extends Host {
  groups: string[];
  inventory: Record<string, unknown> | null;
  activeTask: Task | null;
}
export interface BootEvent {
  id: number;
  at: string;
  kind: string;
  mac: string | null;
  ip: string | null;
  summary: string;
  detail: Record<string, unknown>;
}

// ---- Groups, images, entries, multicast, schedules, leases, audit, users, tokens, sessions
// As the route schemas declare them: a property the schema does not require is optional.

/** GET /api/v1/groups items (src/http/routes/api-groups.ts). */
export interface GroupListItem {
  name?: string;
  members?: number;
  createdAt?: string;
}
export interface GroupList {
  groups?: GroupListItem[];
}
export interface GroupMember {
  mac: string;
  name: string | null;
  addedAt: string;
}
/** A group with its members (GET/POST /api/v1/groups/:name, .../members/remove). */
export interface Group {
  name: string;
  createdAt: string;
  members: GroupMember[];
}
export interface GroupMembersAdded {
  group?: Group;
  added?: string[];
  already?: string[];
}

/** GET /api/v1/images items; PATCH /api/v1/images/:name (src/http/routes/api-images.ts). */
export interface ImageInfo {
  name: string;
  createdAt: string;
  revision: number | null;
  revisionCount: number;
  pending: number;
  sizeBytes: number;
  diskBytes: number;
  tableType: string;
  partitions: number;
  sourceMac: string | null;
  taskId: number | null;
  manifestSha256: string;
  protected: boolean;
}
export interface ImageList {
  images?: ImageInfo[];
}
export interface ImageRevision {
  image: string;
  number: number;
  state: 'ready' | 'pending';
  current: boolean;
  createdAt: string;
  approvedAt?: string | null;
  sourceMac?: string | null;
  taskId?: number | null;
  sizeBytes: number;
  manifestSha256: string;
  diskBytes?: number;
  tableType?: string;
  partitions?: number;
}
export interface ImageDetail extends ImageInfo {
  /** The current revision's manifest (src/model/manifest.ts), null while none is approved. */
  manifest: Record<string, unknown> | null;
  revisions: ImageRevision[];
}

/** A boot entry (src/http/routes/api-entries.ts). */
export interface BootEntry {
  name: string;
  kernel: string;
  initrds: string[];
  cmdline: string;
  createdAt: string;
}
export interface EntryList {
  entries?: BootEntry[];
}

/** GET /api/v1/multicast items (src/http/routes/api-multicast.ts). */
export interface MulticastSession {
  id: number;
  session: string;
  jobId?: number | null;
  image: string;
  revision: number;
  address: string;
  port: number;
  state: string;
  expected: number;
  minReceivers?: number;
  maxWaitSeconds?: number | null;
  error?: string | null;
  /** The sender's figures when it ended (src/multicast/sender.ts SenderStats), or null. */
  stats?: unknown;
  createdAt?: string;
  startedAt?: string | null;
  finishedAt?: string | null;
}
export interface MulticastList {
  sessions?: MulticastSession[];
}
export interface MulticastMember {
  taskId?: number;
  mac?: string;
  taskState?: string;
  tokenIp?: string | null;
  bytesDone?: number;
  bytesTotal?: number | null;
  error?: string | null;
  receiverState?: string | null;
  receiverBytes?: number | null;
  lossShare?: number | null;
  reason?: string | null;
}
/** GET /api/v1/multicast/:id, and the answer of its cancel, drop and rate. */
export interface MulticastDetail extends MulticastSession {
  /** The sender's live figures while it runs (SenderStats without receivers), else null. */
  live?: Record<string, unknown> | null;
  members: MulticastMember[];
}

/** A recurring schedule (src/http/routes/api-schedules.ts). */
export interface Schedule {
  id: number;
  name: string | null;
  cron: string;
  /** The task request it submits (src/model/task-request.ts), without `at`. */
  request: Record<string, unknown>;
  nextRunAt: string;
  lastRunAt?: string | null;
  lastResult?: string | null;
  lastJobId?: number | null;
  lastTaskId?: number | null;
  createdAt: string;
  upcoming?: string[];
}
export interface ScheduleList {
  schedules?: Schedule[];
}

/** A DHCP lease (src/http/routes/api-dhcp.ts). */
export interface Lease {
  ip: string;
  mac: string;
  clientId: string | null;
  hostname: string | null;
  state: string;
  expiresAt: string;
  updatedAt: string;
  active: boolean;
}
export interface LeaseList {
  mode?: string;
  leases?: Lease[];
}

/** An audit log entry (src/http/routes/api-audit.ts). */
export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  ip: string | null;
  method: string;
  route: string | null;
  url: string;
  status: number;
  /** The request's params, query and body, secrets removed. */
  summary: unknown;
}
export interface AuditPage {
  entries?: AuditEntry[];
  nextBefore?: number | null;
}

/** A user (src/http/routes/api-auth.ts userSchema). */
export interface User {
  name: string;
  role: string;
  createdAt: string;
  updatedAt: string;
  disabledAt: string | null;
  mustChangePassword: boolean;
}
export interface UserList {
  users?: User[];
}
/** POST /api/v1/users and .../password: `password` only when it was generated (shown this once). */
export interface UserAndPassword {
  user: User;
  password?: string;
}

/** An API token, never its secret (src/http/routes/api-tokens.ts). */
export interface ApiToken {
  id: number;
  user: string;
  name: string;
  role: string;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}
export interface TokenList {
  tokens?: ApiToken[];
}
export interface TokenCreated {
  token: ApiToken;
  secret: string;
}

/** A login session (src/http/routes/api-auth.ts sessionSchema). */
export interface Session {
  id: string;
  user: string;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  idleExpiresAt: string;
  ip: string | null;
  userAgent: string | null;
  revokedAt: string | null;
  current: boolean;
}
export interface SessionList {
  sessions?: Session[];
}
