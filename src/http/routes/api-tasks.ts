/**
 * Imaging tasks (roles: reads viewer, changes operator):
 *   GET    /api/v1/tasks[?mac=MAC&active=true|false&state=STATE&limit=N]   newest first -> { tasks }
 *   GET    /api/v1/tasks/:id
 *   POST   /api/v1/tasks            { type: capture|deploy|inventory, mac | macs | group, image?, revision?, disk?, table?,
 *                                     wake?, at?, multicast? } -> 201 the task (mac), or the job with its tasks (macs, group)
 *   POST   /api/v1/tasks/:id/cancel -> the task (409 when it has already finished)
 *   POST   /api/v1/tasks/:id/retry  -> 201, a new queued task (retryOf = id)
 *
 * `register` tasks are made by the boot decision for unknown machines, never
 * here (a MAC given here is a known host). capture and deploy need an image
 * name; a deploy writes `revision` (a ready one) or, by default, the revision
 * that is current when its agent starts; `disk` (a /dev path on the machine, default: its first fixed disk)
 * applies to capture and deploy, `table` (keep | gpt | mbr) to deploy only.
 * The repository checks the rest: the host exists, a deploy's image exists,
 * the MAC has no other active task (409). `group` or `macs` (2 to 1000
 * distinct MACs): one task per member, all or none (404 naming every listed
 * MAC that is no host, 409 naming the members that have an active task); a
 * capture takes one MAC. `multicast`: a deploy to a group or to `macs`.
 * `wake`: Wake-on-LAN when queued. `at` (src/model/when.ts): the tasks wait
 * as scheduled until then (a time without offset is the server's local time;
 * the CLI sends UTC).
 */
import type { FastifyInstance } from 'fastify';
import { FleetbootError } from '../../lib/errors.js';
import { getTask, listTasks, normaliseMac, retryTask, DISK_PATTERN, NAME_PATTERN, TASK_STATES, type Task } from '../../store/index.js';
import type { TaskState } from '../../model/task.js';
import { MACS_MAX, MACS_MIN, PARTITION_TABLES, REQUEST_TASK_TYPES, parseTaskRequest, type TaskRequest } from '../../model/task-request.js';
import { announceTasks, describeSubmitted, submitTaskRequest } from '../../imaging/submit.js';
import type { AppContext } from '../context.js';

const nullableString = { type: ['string', 'null'] } as const;
const nullableInt = { type: ['integer', 'null'] } as const;
const nullableNumber = { type: ['number', 'null'] } as const;

/** A task as the API returns it (every field of the repository's Task). */
export const taskSchema = {
  type: 'object',
  required: ['id', 'type', 'mac', 'state', 'bytesDone', 'attempts', 'options', 'createdAt', 'updatedAt'],
  properties: {
    id: { type: 'integer' },
    type: { type: 'string' },
    mac: { type: 'string' },
    hostName: nullableString,
    image: nullableString,
    state: { type: 'string' },
    phase: nullableString,
    bytesDone: { type: 'integer' },
    bytesTotal: nullableInt,
    rateBps: nullableNumber,
    etaSeconds: nullableNumber,
    partition: nullableInt,
    message: nullableString,
    error: nullableString,
    attempts: { type: 'integer' },
    options: { type: 'object', properties: { disk: nullableString, table: { type: 'string' } } },
    retryOf: nullableInt,
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
    startedAt: nullableString,
    finishedAt: nullableString,
    lastSeenAt: nullableString,
    revision: nullableInt,
    tokenIp: nullableString,
    jobId: nullableInt,
    startAt: nullableString,
    wake: { type: 'boolean' },
    wakeRounds: { type: 'integer' },
    wokenAt: nullableString,
    multicastId: nullableInt,
  },
} as const;

/** A job (GET /api/v1/jobs) without its tasks. */
export const jobSchema = {
  type: 'object',
  required: ['id', 'type', 'group', 'state', 'total', 'counts', 'createdAt'],
  properties: {
    id: { type: 'integer' },
    type: { type: 'string' },
    // null: the job was made for a list of MACs (request.macs).
    group: nullableString,
    image: nullableString,
    state: { type: 'string' },
    total: { type: 'integer' },
    counts: { type: 'object', additionalProperties: { type: 'integer' } },
    percent: nullableNumber,
    startAt: nullableString,
    scheduleId: nullableInt,
    multicastSessionId: nullableInt,
    createdAt: { type: 'string' },
  },
} as const;

/** A job with the request it was made from and its member tasks. */
export const jobDetailSchema = {
  type: 'object',
  required: [...jobSchema.required, 'request', 'tasks'],
  properties: { ...jobSchema.properties, request: { type: 'object', additionalProperties: true }, tasks: { type: 'array', items: taskSchema } },
} as const;

/**
 * The fields of a task request (src/model/task-request.ts) as JSON schema:
 * types and patterns; parseTaskRequest() then says which go together.
 * Also the `request` of a schedule (without `at`).
 */
export const taskRequestProperties = {
  type: { type: 'string', enum: REQUEST_TASK_TYPES },
  mac: { type: 'string', minLength: 12, maxLength: 17 },
  macs: { type: 'array', minItems: MACS_MIN, maxItems: MACS_MAX, items: { type: 'string', minLength: 12, maxLength: 17 } },
  group: { type: 'string', pattern: NAME_PATTERN },
  // (a pattern applies to strings only: null passes it)
  image: { type: ['string', 'null'], pattern: NAME_PATTERN },
  revision: { type: ['integer', 'null'], minimum: 1 },
  disk: { type: ['string', 'null'], pattern: DISK_PATTERN, maxLength: 128 },
  table: { type: 'string', enum: PARTITION_TABLES },
  wake: { type: 'boolean' },
  at: { type: 'string', minLength: 1, maxLength: 64 },
  multicast: {
    oneOf: [
      { type: 'boolean' },
      { type: 'object', additionalProperties: false, properties: { minReceivers: { type: 'integer', minimum: 1, maximum: 10000 }, maxWaitSeconds: { type: 'integer', minimum: 0, maximum: 86400 } } },
    ],
  },
} as const;

/** Task ids in URLs: params are strings (the app does not coerce types). */
const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[1-9][0-9]{0,14}$' } },
} as const;

interface ListQuery {
  mac?: string;
  state?: TaskState;
  active?: 'true' | 'false' | '1' | '0';
  limit?: string;
}

function taskId(raw: string): number {
  const id = Number(raw);
  if (!Number.isSafeInteger(id) || id < 1) throw new FleetbootError('INVALID_INPUT', `Invalid task id ${JSON.stringify(raw)}: expected a positive integer`);
  return id;
}

export async function taskRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const { store } = ctx;

  const found = async (id: number): Promise<Task> => {
    const t = await getTask(store.db, id);
    if (!t) throw new FleetbootError('NOT_FOUND', `No task ${id}`);
    return t;
  };

  app.get<{ Querystring: ListQuery }>(
    '/tasks',
    {
      config: { role: 'viewer' },
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            mac: { type: 'string', minLength: 12, maxLength: 17 },
            active: { type: 'string', enum: ['true', 'false', '1', '0'] },
            state: { type: 'string', enum: TASK_STATES },
            limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' },
          },
        },
        response: { 200: { type: 'object', properties: { tasks: { type: 'array', items: taskSchema } } } },
      },
    },
    async (req) => {
      const { mac, active, state, limit } = req.query;
      const filter: { mac?: string; active?: boolean; state?: TaskState; limit?: number } = {};
      if (state !== undefined) filter.state = state;
      if (mac !== undefined) {
        const m = normaliseMac(mac);
        if (!m) throw new FleetbootError('INVALID_INPUT', `Invalid MAC address ${JSON.stringify(mac)}: expected six hex bytes such as 52:54:00:12:34:56`);
        filter.mac = m;
      }
      if (active !== undefined) filter.active = active === 'true' || active === '1';
      if (limit !== undefined) filter.limit = Number(limit);
      return { tasks: await listTasks(store.db, filter) };
    },
  );

  app.get<{ Params: { id: string } }>('/tasks/:id', { config: { role: 'viewer' }, schema: { params: idParams, response: { 200: taskSchema } } }, async (req) => found(taskId(req.params.id)));

  app.post<{ Body: TaskRequest }>(
    '/tasks',
    {
      config: { role: 'operator' },
      schema: {
        body: { type: 'object', required: ['type'], additionalProperties: false, properties: taskRequestProperties },
        response: { 201: { anyOf: [taskSchema, jobDetailSchema] } },
      },
    },
    async (req, reply) => {
      const request = parseTaskRequest(req.body, { allowAt: true });
      const sub = await submitTaskRequest(store, request, { now: new Date(), allocateMulticast: ctx.multicast?.allocate ?? null, events: ctx.events });
      if (sub.kind === 'task') {
        const t = sub.task;
        ctx.log.info({ subsystem: 'api', task: t.id, type: t.type, mac: t.mac, image: t.image, state: t.state, startAt: t.startAt, wake: t.wake }, `${describeSubmitted(sub)}: ${t.state}`);
      } else {
        const j = sub.job;
        ctx.log.info({ subsystem: 'api', job: j.id, type: j.type, group: j.group, image: j.image, tasks: j.tasks.map((t) => t.id), startAt: j.startAt, wake: request.wake === true }, describeSubmitted(sub));
      }
      ctx.tasksChanged();
      return reply.code(201).send(sub.kind === 'task' ? sub.task : sub.job);
    },
  );

  app.post<{ Params: { id: string } }>('/tasks/:id/cancel', { config: { role: 'operator' }, schema: { params: idParams, response: { 200: taskSchema } } }, async (req) => {
    const task = await ctx.imaging.cancel(taskId(req.params.id));
    ctx.log.info({ subsystem: 'api', task: task.id, mac: task.mac }, 'task cancelled');
    return task;
  });

  app.post<{ Params: { id: string } }>('/tasks/:id/retry', { config: { role: 'operator' }, schema: { params: idParams, response: { 201: taskSchema } } }, async (req, reply) => {
    const task = await retryTask(store.db, taskId(req.params.id));
    ctx.log.info({ subsystem: 'api', task: task.id, retryOf: task.retryOf, mac: task.mac }, 'task retried');
    announceTasks(ctx.events, [task]);
    return reply.code(201).send(task);
  });
}
