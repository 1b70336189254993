/**
 * The API's shapes as the console reads them: the types of the route
 * schemas (src/http/schemas/, json-schema-to-ts), the same the server
 * checks its answers against and the CLI reads. Types only: esbuild drops
 * these imports, so no server code reaches the bundle. The names are the
 * console's own.
 */
import type {
  ApiTokenList,
  ApiType,
  BootEntryList,
  CreatedApiToken,
  Group,
  GroupSummary,
  Image,
  MembersAdded,
  MulticastSessionDetail,
  MulticastSessionList,
  Schedule as ApiSchedule,
} from '../../src/http/schemas/index.js';

export type {
  ApiToken,
  AuditEntry,
  AuditPage,
  BootEntry,
  BootEvent,
  Group,
  GroupList,
  Host,
  HostDetail,
  HostListItem,
  ImageDetail,
  ImageList,
  ImageRevision,
  Lease,
  LeaseList,
  MulticastSession,
  ScheduleList,
  Session,
  SessionList,
  Task,
  User,
  UserAndPassword,
  UserList,
} from '../../src/http/schemas/index.js';

/** GET /api/v1/hosts: a page of the list. */
export type { HostList as HostPage } from '../../src/http/schemas/index.js';
export type GroupListItem = GroupSummary;
export type GroupMember = Group['members'][number];
export type GroupMembersAdded = MembersAdded;
/** GET /api/v1/images items; PATCH /api/v1/images/:name. */
export type ImageInfo = Image;
export type EntryList = BootEntryList;
export type MulticastList = MulticastSessionList;
/** GET /api/v1/multicast/:id, and the answer of its cancel, drop and rate. */
export type MulticastDetail = MulticastSessionDetail;
export type MulticastMember = MulticastSessionDetail['members'][number];
/** A schedule as lists show it (one by itself, ScheduleDetail, also has its next times). */
export type Schedule = ApiSchedule;
export type TokenList = ApiTokenList;
export type TokenCreated = CreatedApiToken;

/* Endpoint agents and software packages (src/http/schemas/agents.ts). */
export type { Agent, AgentWork, CreatedEnrolToken, EnrolToken, Package } from '../../src/http/schemas/index.js';
/** GET /api/v1/agents. */
export type AgentList = ApiType<'AgentList'>;
/** GET /api/v1/agents/work; the answers of POST /agents/work and of a package's deploy. */
export type AgentWorkList = ApiType<'AgentWorkList'>;
/** GET /api/v1/agents/tokens. */
export type EnrolTokenList = ApiType<'EnrolTokenList'>;
/** GET /api/v1/packages (the newest revision of each). */
export type PackageList = ApiType<'PackageList'>;
