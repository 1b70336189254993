/**
 * Recurring schedules (roles: reads viewer; changes, removal too, operator: a schedule is the operator's own
 * plan and removing one deletes no data, its tasks and jobs stay):
 *   GET    /api/v1/schedules                      -> { schedules }
 *   POST   /api/v1/schedules { cron, name?, request } -> 201 the schedule (with its next times)
 *   GET    /api/v1/schedules/:ref                 by id or name, with its next times
 *   DELETE /api/v1/schedules/:ref                 -> { deleted: the schedule }
 * `request` is a task request, the body POST /api/v1/tasks takes, without
 * `at`; it is stored validated (JSON) and submitted at each time the cron
 * expression names (5 fields, or 6 with seconds first; the server's time zone).
 */
import type { FastifyInstance } from 'fastify';
import { FleetbootError } from '../../lib/errors.js';
import { enrolRefused } from '../../imaging/submit.js';
import { nextCronRun } from '../../schedule/scheduler.js';
import { createSchedule, deleteSchedule, getSchedule, listSchedules, type Schedule } from '../../store/index.js';
import type { AppContext } from '../context.js';
import { schedulesApi } from '../schemas/schedules.js';
import type { ApiTypeProvider } from '../type-provider.js';

/** The schedule with its next few times (from its next due time on). */
function withUpcoming(s: Schedule, n = 3): Schedule & { upcoming: string[] } {
  const upcoming: string[] = [s.nextRunAt];
  let t: Date | null = new Date(Date.parse(s.nextRunAt));
  while (upcoming.length < n && t !== null) {
    t = nextCronRun(s.cron, t);
    if (t) upcoming.push(t.toISOString());
  }
  return { ...s, upcoming };
}

export async function scheduleRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  const { store } = ctx;

  app.get('/schedules', { config: { role: 'viewer' }, schema: schedulesApi.list }, async () => ({
    schedules: await listSchedules(store.db),
  }));

  app.post('/schedules', { config: { role: 'operator' }, schema: schedulesApi.create }, async (req, reply) => {
    const { cron, request } = req.body;
    const first = nextCronRun(cron, new Date());
    if (first === null) throw new FleetbootError('INVALID_INPUT', `The cron expression ${JSON.stringify(cron)} names no time from now on: expected one that recurs`);
    const enrolProblem = request.enrol === true ? ctx.imaging.enrolUnavailable() : null;
    if (enrolProblem !== null) throw enrolRefused(enrolProblem);
    const s = await createSchedule(store.db, { name: req.body.name ?? null, cron, request, nextRunAt: first.toISOString() });
    ctx.log.info({ subsystem: 'api', schedule: s.id, name: s.name, cron: s.cron, request: s.request, next: s.nextRunAt }, `schedule #${s.id} added: ${s.cron}, next ${s.nextRunAt}`);
    ctx.tasksChanged();
    return reply.code(201).send(withUpcoming(s));
  });

  app.get('/schedules/:ref', { config: { role: 'viewer' }, schema: schedulesApi.show }, async (req) => {
    const s = await getSchedule(store.db, req.params.ref);
    if (!s) throw new FleetbootError('NOT_FOUND', `No schedule ${/^[0-9]+$/.test(req.params.ref) ? `#${req.params.ref}` : `named '${req.params.ref}'`}`);
    return withUpcoming(s);
  });

  app.delete('/schedules/:ref', { config: { role: 'operator' }, schema: schedulesApi.remove }, async (req) => {
    const s = await deleteSchedule(store.db, req.params.ref);
    ctx.log.info({ subsystem: 'api', schedule: s.id, name: s.name }, `schedule #${s.id} removed`);
    ctx.tasksChanged();
    return { deleted: s };
  });
}
