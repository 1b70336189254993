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
import { getTask, listTasks, normaliseMac, retryTask, type Task as StoredTask } from '../../store/index.js';
import type { TaskState } from '../../model/task.js';
import { parseTaskRequest } from '../../model/task-request.js';
import { announceTasks, describeSubmitted, submitTaskRequest } from '../../imaging/submit.js';
import type { AppContext } from '../context.js';
import { tasksApi, type Task } from '../schemas/tasks.js';
import type { ApiTypeProvider } from '../type-provider.js';

/**
 * A stored task as the API shows it: without the agent's identity report
 * (the inventory of record is served instead) and its multicast receiver
 * id. Where a task is an anyOf branch (POST /api/v1/tasks, a host's
 * activeTask) the serialiser picks the branch by validating the value, and
 * the Task schema admits no other property: so those answers go through here.
 */
export function taskView(t: StoredTask): Task {
  const { identity: _identity, multicastReceiver: _receiver, ...shown } = t;
  return shown;
}

function taskId(raw: string): number {
  const id = Number(raw);
  if (!Number.isSafeInteger(id) || id < 1) throw new FleetbootError('INVALID_INPUT', `Invalid task id ${JSON.stringify(raw)}: expected a positive integer`);
  return id;
}

export async function taskRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  const { store } = ctx;

  const found = async (id: number): Promise<StoredTask> => {
    const t = await getTask(store.db, id);
    if (!t) throw new FleetbootError('NOT_FOUND', `No task ${id}`);
    return t;
  };

  app.get('/tasks', { config: { role: 'viewer' }, schema: tasksApi.list }, async (req) => {
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
  });

  app.get('/tasks/:id', { config: { role: 'viewer' }, schema: tasksApi.show }, async (req) => found(taskId(req.params.id)));

  app.post('/tasks', { config: { role: 'operator' }, schema: tasksApi.create }, async (req, reply) => {
    const request = parseTaskRequest(req.body, { allowAt: true });
    const sub = await submitTaskRequest(store, request, { now: new Date(), allocateMulticast: ctx.multicast?.allocate ?? null, events: ctx.events, enrolUnavailable: ctx.imaging.enrolUnavailable });
    if (sub.kind === 'task') {
      const t = sub.task;
      ctx.log.info({ subsystem: 'api', task: t.id, type: t.type, mac: t.mac, image: t.image, state: t.state, startAt: t.startAt, wake: t.wake }, `${describeSubmitted(sub)}: ${t.state}`);
    } else {
      const j = sub.job;
      ctx.log.info({ subsystem: 'api', job: j.id, type: j.type, group: j.group, image: j.image, tasks: j.tasks.map((t) => t.id), startAt: j.startAt, wake: request.wake === true }, describeSubmitted(sub));
    }
    ctx.tasksChanged();
    return reply.code(201).send(sub.kind === 'task' ? taskView(sub.task) : { ...sub.job, tasks: sub.job.tasks.map(taskView) });
  });

  app.post('/tasks/:id/cancel', { config: { role: 'operator' }, schema: tasksApi.cancel }, async (req) => {
    const task = await ctx.imaging.cancel(taskId(req.params.id));
    ctx.log.info({ subsystem: 'api', task: task.id, mac: task.mac }, 'task cancelled');
    return task;
  });

  app.post('/tasks/:id/retry', { config: { role: 'operator' }, schema: tasksApi.retry }, async (req, reply) => {
    const task = await retryTask(store.db, taskId(req.params.id));
    ctx.log.info({ subsystem: 'api', task: task.id, retryOf: task.retryOf, mac: task.mac }, 'task retried');
    announceTasks(ctx.events, [task]);
    return reply.code(201).send(task);
  });
}
