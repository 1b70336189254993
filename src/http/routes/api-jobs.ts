/**
 * Jobs: the tasks one request made for a host group or a list of MACs (roles: reads viewer, changes operator):
 *   GET  /api/v1/jobs[?limit=N]     newest first -> { jobs } (state, counts per task state, mean percent)
 *   GET  /api/v1/jobs/:id           the job with its request and member tasks (state, phase, progress each)
 *   POST /api/v1/jobs/:id/cancel    cancel every unfinished member -> the job
 * Jobs are made by POST /api/v1/tasks with `group` or `macs` (and by schedules); a
 * job for a list of MACs has `group: null` (its MACs are in `request.macs`).
 */
import type { FastifyInstance } from 'fastify';
import { FleetbootError } from '../../lib/errors.js';
import { getJob, isActiveState, listJobs, type JobDetail } from '../../store/index.js';
import type { AppContext } from '../context.js';
import { jobsApi } from '../schemas/tasks.js';
import type { ApiTypeProvider } from '../type-provider.js';

export async function jobRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  const { store } = ctx;

  const found = async (raw: string): Promise<JobDetail> => {
    const j = await getJob(store.db, Number(raw));
    if (!j) throw new FleetbootError('NOT_FOUND', `No job ${raw}`);
    return j;
  };

  app.get('/jobs', { config: { role: 'viewer' }, schema: jobsApi.list }, async (req) => ({
    jobs: await listJobs(store.db, req.query.limit !== undefined ? { limit: Number(req.query.limit) } : {}),
  }));

  app.get('/jobs/:id', { config: { role: 'viewer' }, schema: jobsApi.show }, async (req) => found(req.params.id));

  app.post('/jobs/:id/cancel', { config: { role: 'operator' }, schema: jobsApi.cancel }, async (req) => {
    const job = await found(req.params.id);
    const cancelled: number[] = [];
    for (const t of job.tasks.filter((x) => isActiveState(x.state))) {
      try {
        await ctx.imaging.cancel(t.id);
        cancelled.push(t.id);
      } catch (err) {
        // Finished between the read and the cancel: nothing to do.
        if (!(err instanceof FleetbootError && err.code === 'CONFLICT')) throw err;
      }
    }
    ctx.log.info({ subsystem: 'api', job: job.id, cancelled }, `job #${job.id}: ${cancelled.length} task(s) cancelled`);
    ctx.tasksChanged();
    return found(req.params.id);
  });
}
