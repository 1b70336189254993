/**
 * Imaging tasks (token required):
 *   GET    /api/v1/tasks[?mac=MAC&active=true|false&limit=N]   newest first -> { tasks }
 *   GET    /api/v1/tasks/:id
 *   POST   /api/v1/tasks            { type: capture|deploy|inventory, mac, image?, revision?, disk?, table? } -> 201
 *   POST   /api/v1/tasks/:id/cancel -> the task (409 when it has already finished)
 *   POST   /api/v1/tasks/:id/retry  -> 201, a new queued task (retryOf = id)
 *
 * `register` tasks are made by the boot decision for unknown machines, never
 * here (a MAC given here is a known host). capture and deploy need an image
 * name; a deploy writes `revision` (a ready one) or, by default, the revision
 * that is current when its agent starts; `disk` (a /dev path on the machine, default: its first fixed disk)
 * applies to capture and deploy, `table` (keep | gpt | mbr) to deploy only.
 * The repository checks the rest: the host exists, a deploy's image exists,
 * the MAC has no other active task (409).
 */
import type { FastifyInstance } from 'fastify';
import { FleetbootError } from '../../lib/errors.js';
import { createTask, getTask, listTasks, normaliseMac, retryTask, DISK_PATTERN, NAME_PATTERN, type Task, type TaskOptions } from '../../store/index.js';
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
  },
} as const;

/** Task ids in URLs: params are strings (the app does not coerce types). */
const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[1-9][0-9]{0,14}$' } },
} as const;

const IMAGING_TASK_TYPES = ['capture', 'deploy', 'inventory'] as const;
type ApiTaskType = (typeof IMAGING_TASK_TYPES)[number];

interface NewTaskBody {
  type: ApiTaskType;
  mac: string;
  image?: string | null;
  revision?: number | null;
  disk?: string | null;
  table?: TaskOptions['table'];
}

interface ListQuery {
  mac?: string;
  active?: 'true' | 'false' | '1' | '0';
  limit?: string;
}

function taskId(raw: string): number {
  const id = Number(raw);
  if (!Number.isSafeInteger(id) || id < 1) throw new FleetbootError('INVALID_INPUT', `Invalid task id ${JSON.stringify(raw)}: expected a positive integer`);
  return id;
}

/** What the JSON schema cannot say: which fields go with which type. */
function checkNewTask(b: NewTaskBody): void {
  const image = b.image ?? null;
  if ((b.type === 'capture' || b.type === 'deploy') && image === null) {
    throw new FleetbootError('INVALID_INPUT', `A ${b.type} task needs an image name ("image")`);
  }
  if (b.type === 'inventory' && image !== null) throw new FleetbootError('INVALID_INPUT', 'An inventory task takes no image');
  if (b.type === 'inventory' && b.disk !== undefined && b.disk !== null) throw new FleetbootError('INVALID_INPUT', 'An inventory task takes no disk (it lists them all)');
  if (b.table !== undefined && b.type !== 'deploy') throw new FleetbootError('INVALID_INPUT', `"table" applies to deploy tasks only, not to ${b.type}`);
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
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            mac: { type: 'string', minLength: 12, maxLength: 17 },
            active: { type: 'string', enum: ['true', 'false', '1', '0'] },
            limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' },
          },
        },
        response: { 200: { type: 'object', properties: { tasks: { type: 'array', items: taskSchema } } } },
      },
    },
    async (req) => {
      const { mac, active, limit } = req.query;
      const filter: { mac?: string; active?: boolean; limit?: number } = {};
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

  app.get<{ Params: { id: string } }>('/tasks/:id', { schema: { params: idParams, response: { 200: taskSchema } } }, async (req) => found(taskId(req.params.id)));

  app.post<{ Body: NewTaskBody }>(
    '/tasks',
    {
      schema: {
        body: {
          type: 'object',
          required: ['type', 'mac'],
          additionalProperties: false,
          properties: {
            type: { type: 'string', enum: IMAGING_TASK_TYPES },
            mac: { type: 'string', minLength: 12, maxLength: 17 },
            // (a pattern applies to strings only: null passes it)
            image: { type: ['string', 'null'], pattern: NAME_PATTERN },
            revision: { type: ['integer', 'null'], minimum: 1 },
            disk: { type: ['string', 'null'], pattern: DISK_PATTERN, maxLength: 128 },
            table: { type: 'string', enum: ['keep', 'gpt', 'mbr'] },
          },
        },
        response: { 201: taskSchema },
      },
    },
    async (req, reply) => {
      const b = req.body;
      checkNewTask(b);
      const options: Partial<TaskOptions> = {};
      if (b.disk !== undefined) options.disk = b.disk;
      if (b.table !== undefined) options.table = b.table;
      const task = await createTask(store.db, { type: b.type, mac: b.mac, image: b.image ?? null, revision: b.revision ?? null, options });
      ctx.log.info({ subsystem: 'api', task: task.id, type: task.type, mac: task.mac, image: task.image }, 'task queued');
      return reply.code(201).send(task);
    },
  );

  app.post<{ Params: { id: string } }>('/tasks/:id/cancel', { schema: { params: idParams, response: { 200: taskSchema } } }, async (req) => {
    const task = await ctx.imaging.cancel(taskId(req.params.id));
    ctx.log.info({ subsystem: 'api', task: task.id, mac: task.mac }, 'task cancelled');
    return task;
  });

  app.post<{ Params: { id: string } }>('/tasks/:id/retry', { schema: { params: idParams, response: { 201: taskSchema } } }, async (req, reply) => {
    const task = await retryTask(store.db, taskId(req.params.id));
    ctx.log.info({ subsystem: 'api', task: task.id, retryOf: task.retryOf, mac: task.mac }, 'task retried');
    return reply.code(201).send(task);
  });
}
