/**
 * Every schema of /api/v1 that routes reference by `$id` (buildApp registers
 * them with app.addSchema; the OpenAPI document lists them under
 * components.schemas), and the document's tags. See ./common.ts.
 */
import type { FromSchema } from 'json-schema-to-ts';
import { agentListSchema, agentSchema, agentWorkListSchema, agentWorkSchema, createdEnrolTokenSchema, enrolTokenListSchema, enrolTokenSchema, packageListSchema, packageSchema } from './agents.js';
import { auditEntrySchema, auditPageSchema } from './audit.js';
import { meSchema, revokedSessionSchema, sessionListSchema, sessionSchema } from './auth.js';
import { errorBodySchema } from './common.js';
import { leaseListSchema, leaseSchema } from './dhcp.js';
import { bootEntryListSchema, bootEntrySchema } from './entries.js';
import { groupListSchema, groupSchema, groupSummarySchema, membersAddedSchema } from './groups.js';
import { assignedHostsSchema, hostDetailSchema, hostListItemSchema, hostListSchema, hostSchema } from './hosts.js';
import { imageDetailSchema, imageListSchema, imageRevisionSchema, imageSchema } from './images.js';
import { nodeListSchema, nodeSchema } from './nodes.js';
import { multicastSessionDetailSchema, multicastSessionListSchema, multicastSessionSchema } from './multicast.js';
import { deletedScheduleSchema, newScheduleSchema, scheduleDetailSchema, scheduleListSchema, scheduleSchema } from './schedules.js';
import { jobDetailSchema, jobListSchema, jobSchema, scheduledTaskRequestSchema, taskListSchema, taskRequestSchema, taskSchema } from './tasks.js';
import { bootDiagnosisSchema, bootEventSchema, bootTimelineSchema } from './timeline.js';
import { tlsInfoSchema } from './tls.js';
import { apiTokenListSchema, apiTokenSchema, createdApiTokenSchema, revokedApiTokenSchema } from './tokens.js';
import { deletedUserSchema, userAndPasswordSchema, userListSchema, userSchema } from './users.js';
import { wakeRoundSchema, wakeTargetSchema, wakeTargetsSchema } from './wake.js';

/** In the order the document lists them (components.schemas): each resource, then what answers list or wrap it. */
export const sharedSchemas = [
  errorBodySchema,
  hostSchema,
  hostListItemSchema,
  hostDetailSchema,
  hostListSchema,
  assignedHostsSchema,
  bootEventSchema,
  bootTimelineSchema,
  bootDiagnosisSchema,
  bootEntrySchema,
  bootEntryListSchema,
  imageSchema,
  imageRevisionSchema,
  imageDetailSchema,
  imageListSchema,
  taskSchema,
  taskListSchema,
  taskRequestSchema,
  jobSchema,
  jobDetailSchema,
  jobListSchema,
  groupSummarySchema,
  groupSchema,
  groupListSchema,
  membersAddedSchema,
  scheduledTaskRequestSchema,
  newScheduleSchema,
  scheduleSchema,
  scheduleDetailSchema,
  scheduleListSchema,
  deletedScheduleSchema,
  multicastSessionSchema,
  multicastSessionDetailSchema,
  multicastSessionListSchema,
  wakeTargetSchema,
  wakeRoundSchema,
  wakeTargetsSchema,
  leaseSchema,
  leaseListSchema,
  meSchema,
  sessionSchema,
  sessionListSchema,
  revokedSessionSchema,
  userSchema,
  userListSchema,
  userAndPasswordSchema,
  deletedUserSchema,
  apiTokenSchema,
  apiTokenListSchema,
  createdApiTokenSchema,
  revokedApiTokenSchema,
  auditEntrySchema,
  auditPageSchema,
  agentSchema,
  agentListSchema,
  enrolTokenSchema,
  createdEnrolTokenSchema,
  enrolTokenListSchema,
  agentWorkSchema,
  agentWorkListSchema,
  packageSchema,
  packageListSchema,
  tlsInfoSchema,
  nodeSchema,
  nodeListSchema,
] as const;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
/** The shared schemas as FromSchema's `references` option (a mutable tuple). */
export type SharedSchemas = Mutable<typeof sharedSchemas>;

/**
 * The type of each shared schema, by `$id`, with its references resolved.
 * Each is computed once here (json-schema-to-ts is costly for tsc): the
 * modules export them by name (`export type Host = ApiType<'Host'>`) and the
 * routes' type provider looks `$ref`s up here (src/http/type-provider.ts).
 */
export type ApiTypes = { [S in SharedSchemas[number] as S['$id']]: FromSchema<S, { references: SharedSchemas }> };
export type ApiType<Id extends keyof ApiTypes> = ApiTypes[Id];

/** The document's tags: one per resource, in the order the reference shows them. */
export const API_TAGS = [
  { name: 'status', description: 'The running server and this document.' },
  { name: 'auth', description: 'Logging in and out, who is asking, login sessions.' },
  { name: 'hosts', description: 'Machines by MAC address: the entry each boots, reserved addresses, the pending inbox.' },
  { name: 'timeline', description: "What the server saw of a machine's boots, and why the last one stopped where it did." },
  { name: 'entries', description: 'Boot entries: a kernel, initrds and a command line.' },
  { name: 'images', description: 'Images made by capture tasks, and their revisions.' },
  { name: 'tasks', description: 'Imaging tasks: capture, deploy, inventory.' },
  { name: 'jobs', description: 'The tasks one request made for a group or a list of machines.' },
  { name: 'groups', description: 'Host groups.' },
  { name: 'schedules', description: 'Task requests submitted at recurring times.' },
  { name: 'multicast', description: 'Multicast sessions of deploy jobs.' },
  { name: 'wake', description: 'Wake-on-LAN.' },
  { name: 'dhcp', description: "The DHCP server's leases." },
  { name: 'agents', description: 'Endpoint agents on installed machines: enrolment tokens, approval, revocation, the work handed to them.' },
  { name: 'packages', description: 'Software packages the agents run (signed by the server, checked by sha256 before anything runs).' },
  { name: 'events', description: 'Live events: what changes, as it happens (Server-Sent Events).' },
  { name: 'users', description: 'Users and their roles (admin).' },
  { name: 'tokens', description: 'Per-user API tokens.' },
  { name: 'audit', description: 'The audit log of every change (admin).' },
  { name: 'tls', description: 'The HTTPS certificates: the CA clients pin, the server certificate and its renewal.' },
  { name: 'nodes', description: 'The Fleetboot servers sharing the database: their heartbeat, what they serve, their free space.' },
] as const;

export * from './common.js';
export * from './agents.js';
export * from './auth.js';
export * from './audit.js';
export * from './dhcp.js';
export * from './entries.js';
export * from './events.js';
export * from './groups.js';
export * from './hosts.js';
export * from './images.js';
export * from './multicast.js';
export * from './nodes.js';
export * from './schedules.js';
export * from './status.js';
export * from './tasks.js';
export * from './timeline.js';
export * from './tls.js';
export * from './tokens.js';
export * from './users.js';
export * from './wake.js';
