/**
 * Hosts (roles: reads viewer, changes operator, deletes admin):
 *   GET    /api/v1/hosts[?status=pending|approved]   (pending: the inbox of machines
 *                               registered from the boot menu)
 *   POST   /api/v1/hosts/:mac/approve { name? }  a pending host becomes a host
 *   POST   /api/v1/hosts/:mac/reject             a pending host is removed
 *   DELETE /api/v1/hosts/:mac/inventory          forget the inventory of record (after a
 *                               hardware change: the identity check compares with it)
 *   POST   /api/v1/hosts        { mac, name?, entry?, ip? } -> 201
 *   GET    /api/v1/hosts/:mac   (any usual MAC spelling; stored lower-case with colons)
 *                               + inventory (last collected, or null) and activeTask (or null)
 *   PATCH  /api/v1/hosts/:mac   { entry?: name | null, name?: name | null, ip?: IPv4 | null }
 *                               assign / unassign / rename / reserve / unreserve
 *   DELETE /api/v1/hosts/:mac
 * `ip` is the host's reserved address (DHCP server mode): unique (409 when
 * another host or a dhcp.reservations item of the config has it). After
 * every change ctx.hostsChanged() lets the DHCP server reload reservations.
 */
import type { FastifyInstance } from 'fastify';
import { FleetbootError } from '../../lib/errors.js';
import { approveHost, createHost, deleteHost, getHost, listHosts, listTasks, rejectHost, updateHost, normaliseMac } from '../../store/index.js';
import { deleteInventory, getInventory } from '../../store/inventory.js';
import type { AppContext } from '../context.js';
import { hostsApi } from '../schemas/hosts.js';
import type { ApiTypeProvider } from '../type-provider.js';
import { taskView } from './api-tasks.js';

export async function hostRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  const { store } = ctx;

  /** A config reservation (dhcp.reservations) of this address for another MAC wins: refuse it here. */
  const checkConfigReservation = (mac: string, ip: string | null | undefined): void => {
    const m = normaliseMac(mac);
    if (ip === null || ip === undefined || m === null) return;
    const r = ctx.config.dhcp.reservations.find((x) => x.ip === ip && x.mac !== m);
    if (r) throw new FleetbootError('CONFLICT', `Address ${ip} is reserved for ${r.mac} in the configuration (dhcp.reservations)`);
  };

  app.get('/hosts', { config: { role: 'viewer' }, schema: hostsApi.list }, async (req) => ({
    hosts: await listHosts(store.db, req.query.status !== undefined ? { status: req.query.status } : {}),
  }));

  app.post('/hosts/:mac/approve', { config: { role: 'operator' }, schema: hostsApi.approve }, async (req) => {
    const host = await approveHost(store.db, req.params.mac, req.body?.name ?? null);
    ctx.log.info({ subsystem: 'api', mac: host.mac, name: host.name }, 'pending host approved');
    ctx.hostsChanged();
    return host;
  });

  app.post('/hosts/:mac/reject', { config: { role: 'operator' }, schema: hostsApi.reject }, async (req) => {
    await rejectHost(store.db, req.params.mac);
    ctx.log.info({ subsystem: 'api', mac: req.params.mac }, 'pending host rejected');
    return { rejected: req.params.mac };
  });

  app.delete('/hosts/:mac/inventory', { config: { role: 'admin' }, schema: hostsApi.forgetInventory }, async (req) => {
    const host = await getHost(store.db, req.params.mac);
    if (!host) throw new FleetbootError('NOT_FOUND', `No host with MAC ${req.params.mac}`);
    if (!(await deleteInventory(store.db, host.mac))) throw new FleetbootError('NOT_FOUND', `Host ${host.mac} has no inventory of record`);
    ctx.log.info({ subsystem: 'api', mac: host.mac }, 'inventory of record removed');
    return { deleted: host.mac };
  });

  app.post('/hosts', { config: { role: 'operator' }, schema: hostsApi.create }, async (req, reply) => {
    checkConfigReservation(req.body.mac, req.body.ip);
    const host = await createHost(store.db, req.body);
    ctx.log.info({ subsystem: 'api', mac: host.mac, entry: host.entry, ip: host.ip }, 'host added');
    ctx.hostsChanged();
    return reply.code(201).send(host);
  });

  app.get('/hosts/:mac', { config: { role: 'viewer' }, schema: hostsApi.show }, async (req) => {
    const host = await getHost(store.db, req.params.mac);
    if (!host) throw new FleetbootError('NOT_FOUND', `No host with MAC ${req.params.mac}`);
    const [inventory, active] = await Promise.all([getInventory(store.db, host.mac), listTasks(store.db, { mac: host.mac, active: true, limit: 1 })]);
    const task = active[0];
    return { ...host, inventory: inventory ? { ...inventory.inventory } : null, activeTask: task ? taskView(task) : null };
  });

  app.patch('/hosts/:mac', { config: { role: 'operator' }, schema: hostsApi.update }, async (req) => {
    checkConfigReservation(req.params.mac, req.body.ip);
    const host = await updateHost(store.db, req.params.mac, req.body);
    ctx.log.info({ subsystem: 'api', mac: host.mac, entry: host.entry, name: host.name, ip: host.ip }, 'host changed');
    ctx.hostsChanged();
    return host;
  });

  app.delete('/hosts/:mac', { config: { role: 'admin' }, schema: hostsApi.remove }, async (req) => {
    await deleteHost(store.db, req.params.mac);
    ctx.log.info({ subsystem: 'api', mac: req.params.mac }, 'host deleted');
    ctx.hostsChanged();
    return { deleted: req.params.mac };
  });
}
