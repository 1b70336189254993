/**
 * Imaging tasks and jobs: /api/v1/tasks... and /api/v1/jobs... (see ./common.ts).
 */
import type { TaskPhase, TaskState, TaskType } from '../../model/task.js';
import { DISK_PATTERN, MACS_MAX, MACS_MIN, PARTITION_TABLES, REQUEST_TASK_TYPES } from '../../model/task-request.js';
import { NAME_PATTERN } from '../../model/validate.js';
import { dateTime, errorResponses, idParams, limitString, macString, nullableDateTime, nullableInt, nullableNumber, nullableString } from './common.js';
import type { ApiType } from './index.js';

export const TASK_TYPES = ['capture', 'deploy', 'inventory', 'register'] as const satisfies readonly TaskType[];
export const TASK_STATES = ['scheduled', 'queued', 'booting', 'waiting', 'running', 'done', 'failed', 'cancelled'] as const satisfies readonly TaskState[];
export const TASK_PHASES = ['starting', 'waiting-slot', 'partition-table', 'transfer', 'verify', 'inventory', 'finishing'] as const satisfies readonly TaskPhase[];
export const JOB_STATES = ['scheduled', 'active', 'done', 'failed', 'cancelled'] as const;

/** A task as the API shows it. */
export const taskSchema = {
  $id: 'Task',
  type: 'object',
  description: 'An imaging task: one machine (by MAC) captures, deploys or reports its inventory. `register` tasks are made by the boot menu for unknown machines.',
  additionalProperties: false,
  required: [
    'id', 'type', 'mac', 'hostName', 'image', 'state', 'phase', 'bytesDone', 'bytesTotal', 'rateBps', 'etaSeconds', 'partition', 'message', 'error',
    'attempts', 'options', 'retryOf', 'createdAt', 'updatedAt', 'startedAt', 'finishedAt', 'lastSeenAt', 'revision', 'requestedRevision', 'tokenIp',
    'jobId', 'startAt', 'wake', 'wakeRounds', 'wokenAt', 'reboot', 'multicastId',
  ],
  properties: {
    id: { type: 'integer' },
    type: { type: 'string', enum: TASK_TYPES },
    mac: { type: 'string' },
    hostName: { ...nullableString, description: 'The name of the host with this MAC, when it has one.' },
    image: nullableString,
    state: { type: 'string', enum: TASK_STATES },
    phase: { type: ['string', 'null'], enum: [...TASK_PHASES, null] },
    bytesDone: { type: 'integer' },
    bytesTotal: nullableInt,
    rateBps: { ...nullableNumber, description: 'Bytes per second of the transfer now.' },
    etaSeconds: nullableNumber,
    partition: nullableInt,
    message: nullableString,
    error: nullableString,
    attempts: { type: 'integer', description: 'How many times the machine was handed the boot environment for it.' },
    options: {
      type: 'object',
      additionalProperties: false,
      required: ['disk', 'table'],
      properties: {
        disk: { ...nullableString, description: 'The target disk (/dev/...), or null: the first fixed disk.' },
        table: { type: 'string', enum: PARTITION_TABLES },
      },
    },
    retryOf: { ...nullableInt, description: 'The task this one retries.' },
    createdAt: dateTime,
    updatedAt: dateTime,
    startedAt: nullableDateTime,
    finishedAt: nullableDateTime,
    lastSeenAt: nullableDateTime,
    revision: { ...nullableInt, description: 'deploy: the image revision it writes (null until its agent starts); capture: the revision it made.' },
    requestedRevision: { ...nullableInt, description: 'deploy: the revision asked for (null: the current one when its agent starts).' },
    tokenIp: { ...nullableString, description: 'The address the task token was handed to.' },
    jobId: nullableInt,
    startAt: { ...nullableDateTime, description: 'A scheduled task: when it becomes queued.' },
    wake: { type: 'boolean', description: 'Wake-on-LAN when queued.' },
    wakeRounds: { type: 'integer' },
    wokenAt: nullableDateTime,
    reboot: { type: 'boolean', description: "The machine's endpoint agent reboots it into the task once it is queued." },
    multicastId: { ...nullableInt, description: 'deploy: the multicast session it receives from (null: unicast).' },
  },
} as const;
export type Task = ApiType<'Task'>;

/**
 * The fields of a task request (src/model/task-request.ts) as JSON schema:
 * types and patterns; parseTaskRequest() then says which go together.
 */
export const taskRequestProperties = {
  type: { type: 'string', enum: REQUEST_TASK_TYPES },
  mac: { ...macString, description: 'One machine.' },
  macs: { type: 'array', minItems: MACS_MIN, maxItems: MACS_MAX, items: macString, description: `Several machines (${MACS_MIN} to ${MACS_MAX}): a job with one task each.` },
  group: { type: 'string', pattern: NAME_PATTERN, description: 'Every member of a host group: a job with one task each.' },
  // (a pattern applies to strings only: null passes it)
  image: { type: ['string', 'null'], pattern: NAME_PATTERN, description: 'capture, deploy: the image.' },
  revision: { type: ['integer', 'null'], minimum: 1, description: 'deploy: a ready revision (default: the current one when the agent starts).' },
  disk: { type: ['string', 'null'], pattern: DISK_PATTERN, maxLength: 128, description: 'capture, deploy: the disk (default: the first fixed disk).' },
  table: { type: 'string', enum: PARTITION_TABLES, description: 'deploy: the partition table to write (default keep).' },
  wake: { type: 'boolean', description: 'Send Wake-on-LAN when the task is queued.' },
  reboot: { type: 'boolean', description: "capture, deploy: an enrolled machine's endpoint agent reboots it into the task (network boot) once it is queued." },
  at: { type: 'string', minLength: 1, maxLength: 64, description: 'Start time (the tasks wait as scheduled): ISO 8601, or HH:MM (server time).' },
  multicast: {
    description: 'deploy to a group or a list of MACs: one multicast session carries the image to every member.',
    oneOf: [
      { type: 'boolean' },
      {
        type: 'object',
        additionalProperties: false,
        properties: { minReceivers: { type: 'integer', minimum: 1, maximum: 10000 }, maxWaitSeconds: { type: 'integer', minimum: 0, maximum: 86400 } },
      },
    ],
  },
} as const;

/** What asks for tasks: the body of POST /api/v1/tasks, and the request a job was made from. */
export const taskRequestSchema = {
  $id: 'TaskRequest',
  type: 'object',
  description: 'One machine (`mac`), a list (`macs`) or a host group (`group`); a list or a group makes a job.',
  required: ['type'],
  additionalProperties: false,
  properties: taskRequestProperties,
} as const;
export type TaskRequest = ApiType<'TaskRequest'>;

const { at: _at, ...scheduledRequestProperties } = taskRequestProperties;

/** A task request without `at`: what a schedule submits at each of its times. */
export const scheduledTaskRequestSchema = {
  $id: 'ScheduledTaskRequest',
  type: 'object',
  description: 'A task request without `at`: a schedule submits it at each of its times.',
  required: ['type'],
  additionalProperties: false,
  properties: scheduledRequestProperties,
} as const;
export type ScheduledTaskRequest = ApiType<'ScheduledTaskRequest'>;

const count = { type: 'integer' } as const;
const countProperties = { scheduled: count, queued: count, booting: count, waiting: count, running: count, done: count, failed: count, cancelled: count } as const satisfies Record<TaskState, typeof count>;

const jobProperties = {
  id: { type: 'integer' },
  type: { type: 'string', description: 'capture, deploy or inventory.' },
  group: { ...nullableString, description: 'The group it was made for; null for a list of MACs (request.macs).' },
  image: nullableString,
  state: { type: 'string', enum: JOB_STATES },
  total: { type: 'integer', description: 'Member tasks.' },
  counts: { type: 'object', additionalProperties: false, properties: countProperties, description: 'Member tasks per state (states that occur).' },
  percent: { ...nullableNumber, description: 'Mean progress of the members (a done one counts 100).' },
  startAt: nullableDateTime,
  scheduleId: { ...nullableInt, description: 'The schedule that made it.' },
  multicastSessionId: nullableInt,
  createdAt: dateTime,
} as const;

const jobRequired = ['id', 'type', 'group', 'image', 'state', 'total', 'counts', 'percent', 'startAt', 'scheduleId', 'multicastSessionId', 'createdAt'] as const;

/** A job: the tasks one request made for a group or a list of MACs. */
export const jobSchema = {
  $id: 'Job',
  type: 'object',
  description: 'The tasks one request made for a host group or a list of MACs.',
  additionalProperties: false,
  required: jobRequired,
  properties: jobProperties,
} as const;
export type Job = ApiType<'Job'>;

export const jobDetailSchema = {
  $id: 'JobDetail',
  type: 'object',
  description: 'A job with the request it was made from and its member tasks.',
  additionalProperties: false,
  required: [...jobRequired, 'request', 'tasks'],
  properties: { ...jobProperties, request: { $ref: 'TaskRequest#' }, tasks: { type: 'array', items: { $ref: 'Task#' } } },
} as const;
export type JobDetail = ApiType<'JobDetail'>;

export const taskListSchema = {
  $id: 'TaskList',
  type: 'object',
  additionalProperties: false,
  required: ['tasks'],
  properties: { tasks: { type: 'array', items: { $ref: 'Task#' } } },
} as const;
export type TaskList = ApiType<'TaskList'>;
export const jobListSchema = {
  $id: 'JobList',
  type: 'object',
  additionalProperties: false,
  required: ['jobs'],
  properties: { jobs: { type: 'array', items: { $ref: 'Job#' } } },
} as const;
export type JobList = ApiType<'JobList'>;

/** What POST /api/v1/tasks answers: the task (mac), or the job with its tasks (macs, group). */
export type Submitted = Task | JobDetail;

export const tasksApi = {
  list: {
    tags: ['tasks'],
    summary: 'List tasks',
    description: 'Newest first. `mac`: one machine\'s; `active=true`: only unfinished ones (scheduled, queued, booting, waiting, running); `state`: only those in it; `limit`: at most N.',
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { mac: macString, active: { type: 'string', enum: ['true', 'false', '1', '0'] }, state: { type: 'string', enum: TASK_STATES }, limit: limitString },
    },
    response: { 200: { $ref: 'TaskList#' }, ...errorResponses },
  },
  show: {
    tags: ['tasks'],
    summary: 'Show a task',
    description: 'State, phase and progress (bytes, rate, ETA).',
    params: idParams,
    response: { 200: { $ref: 'Task#' }, ...errorResponses },
  },
  create: {
    tags: ['tasks'],
    summary: 'Capture, deploy or take inventory',
    description:
      'One machine (`mac`): 201 with the task. A list (`macs`) or a group (`group`): one task per machine, all or none, 201 with the job. ' +
      'capture and deploy need `image`; a capture takes one machine. 404 names every MAC that is no host; 409 names the machines that already have an active task. ' +
      '`at` schedules the tasks, `wake` sends Wake-on-LAN when they are queued, `multicast` sends a deploy to several machines at once.',
    body: { $ref: 'TaskRequest#' },
    response: { 201: { anyOf: [{ $ref: 'Task#' }, { $ref: 'JobDetail#' }] }, ...errorResponses },
  },
  cancel: {
    tags: ['tasks'],
    summary: 'Cancel a task',
    description: '409 when it has already finished. The machine boots from its disk next time.',
    params: idParams,
    response: { 200: { $ref: 'Task#' }, ...errorResponses },
  },
  retry: {
    tags: ['tasks'],
    summary: 'Retry a task',
    description: 'A new queued task with the same request (`retryOf` names the old one); 409 while the machine has an active task.',
    params: idParams,
    response: { 201: { $ref: 'Task#' }, ...errorResponses },
  },
} as const;

export const jobsApi = {
  list: {
    tags: ['jobs'],
    summary: 'List jobs',
    description: 'Newest first, with the member tasks counted per state and their mean progress.',
    querystring: { type: 'object', additionalProperties: false, properties: { limit: limitString } },
    response: { 200: { $ref: 'JobList#' }, ...errorResponses },
  },
  show: {
    tags: ['jobs'],
    summary: 'Show a job',
    description: 'The request it was made from and every member task.',
    params: idParams,
    response: { 200: { $ref: 'JobDetail#' }, ...errorResponses },
  },
  cancel: {
    tags: ['jobs'],
    summary: 'Cancel a job',
    description: 'Cancels every unfinished member task; finished ones stay as they are.',
    params: idParams,
    response: { 200: { $ref: 'JobDetail#' }, ...errorResponses },
  },
} as const;
