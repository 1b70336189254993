/** The store's public surface: open it, then call the repositories with `store.db`. */
export { openStore, migrate, sqliteOf, isUniqueViolation, DB_FILE, type Store, type StoreDialect, type OpenStoreOptions } from './db.js';
export { prepareDataDir, ensurePrivateFile, tightenFileIfPresent, octal, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, type DataDirState } from './data-dir.js';
export { ensureApiToken, readApiToken, tokenPath, TOKEN_FILE } from './token.js';
export { listEntries, getEntry, createEntry, deleteEntry, type BootEntry, type NewBootEntry } from './entries.js';
export { listHosts, queryHosts, assignEntry, hostGroups, importHosts, IMPORT_MAX, HOST_SORT_KEYS, getHost, createHost, updateHost, deleteHost, approveHost, rejectHost, findBootTarget, hostReservations, type Host, type HostStatus, type NewHost, type HostChanges, type HostReservation, type HostQuery, type HostSortKey, type HostListItem, type ImportedHost } from './hosts.js';
export { normaliseMac, isReservableIPv4, IPV4_PATTERN, isValidName, isValidFileName, isUrlSource, NAME_PATTERN, FILE_NAME_PATTERN } from '../model/validate.js';
export type { Database } from './schema.js';
export { entryDir, entryFilePath, entryFileSize, writeEntryFile, removeEntryFiles } from './files.js';
export { openLeaseStore, sqliteLeaseStore, kyselyLeaseStore, listLeases, leaseMacOf, type LeaseInfo } from './leases.js';
export {
  createTask,
  getTask,
  listTasks,
  cancelTask,
  retryTask,
  activeTaskForMac,
  finishTask,
  patchActiveTask,
  bootTaskRow,
  taskByTokenHash,
  slotStates,
  isActiveState,
  promoteDueTasks,
  nextStartAt,
  wakeCandidates,
  claimWakeRound,
  TASK_TYPES,
  TERMINAL_TASK_STATES,
  TASK_STATES,
  DISK_PATTERN,
  type Task,
  type NewTask,
  type TaskOptions,
  type TaskPatch,
  type CreateTaskOptions,
} from './tasks.js';
export {
  listImages,
  getImage,
  getImageDetail,
  getRevision,
  listRevisions,
  addRevision,
  setCurrentRevision,
  approveRevision,
  pruneRevisions,
  deleteImageRows,
  imageDirs,
  type ImageInfo,
  type ImageRevision,
  type RevisionRecord,
  type RevisionState,
} from './images.js';
export { getInventory, putInventory, deleteInventory } from './inventory.js';
export { listGroups, getGroup, groupMacs, createGroup, deleteGroup, addGroupMembers, removeGroupMembers, checkGroupName, type GroupInfo, type GroupDetail, type GroupMember } from './groups.js';
export { createJob, getJob, listJobs, jobState, taskPercent, type Job, type JobDetail, type JobState, type NewJob } from './jobs.js';
export {
  createSchedule,
  listSchedules,
  getSchedule,
  deleteSchedule,
  dueSchedules,
  nextScheduleRunAt,
  claimScheduleRun,
  recordScheduleResult,
  checkScheduleName,
  type Schedule,
  type NewSchedule,
} from './schedules.js';
export { noteRelay, listRelays, type Relay } from './relays.js';
export { insertBootEvents, listBootEvents, pruneBootEvents } from './boot-events.js';
export { listUsers, countUsers, getUser, userWithPasswordHash, createUser, updateUser, setPasswordHash, rehashPassword, deleteUser, checkUserName, type User, type NewUser, type UserChanges } from './users.js';
export { createSession, sessionForAuth, getSession, touchSession, listSessions, revokeSession, type Session, type NewSession } from './sessions.js';
export { createApiToken, getApiToken, tokenForAuth, listApiTokens, touchApiToken, revokeApiToken, checkTokenName, type ApiToken, type NewApiToken } from './api-tokens.js';
export { appendAudit, listAudit, type AuditEntry, type NewAuditEntry } from './audit.js';
export {
  registerNode,
  heartbeatNode,
  markNodeStopped,
  listNodes,
  getNode,
  nodeWithCredential,
  liveNodes,
  nodeForSubnet,
  removeNode,
  nodeStateOf,
  DOWN_AFTER_BEATS,
  type NodeRecord,
  type NodeRegistration,
  type NodeState,
  type HeartbeatUpdate,
  type Registered,
} from './nodes.js';
export { ensureNodeSecret, readNodeSecret, nodeSecretPath, hashNodeSecret, NODE_SECRET_RE } from './node-secret.js';
