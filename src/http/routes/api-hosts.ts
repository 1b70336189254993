/**
 * Hosts (roles: reads viewer, changes operator, deletes admin):
 *   GET    /api/v1/hosts[?status=pending|approved][&q=TEXT][&group=NAME]
 *                    [&sort=name|mac|entry|status|createdAt|updatedAt][&order=asc|desc]
 *                    [&offset=N&limit=1..1000]  -> { hosts (each with its groups), total, offset, limit }
 *                               (pending: the inbox of machines registered from the boot menu;
 *                               q: part of a name, MAC in any spelling, address, serial or
 *                               group; without limit, every match)
 *   POST   /api/v1/hosts/:mac/approve { name? }  a pending host becomes a host
 *   POST   /api/v1/hosts/:mac/reject             a pending host is removed
 *   DELETE /api/v1/hosts/:mac/inventory          forget the inventory of record (after a
 *                               hardware change: the identity check compares with it)
 *   POST   /api/v1/hosts        { mac, name?, entry?, ip? } -> 201
 *   POST   /api/v1/hosts/import { hosts: [{ mac, name?, ip?, entry?, groups? }] (up to 20,000), skipExisting? }
 *                               add many hosts, all or none (missing groups are made) -> 201
 *                               { added, skipped, groupsCreated }; `fleetboot host import FILE.csv`
 *   POST   /api/v1/hosts/entry  { macs: [MAC...] (1..1000), entry: name | null } assign one entry to
 *                               many hosts, all or none -> { hosts }
 *   GET    /api/v1/hosts/:mac   (any usual MAC spelling; stored lower-case with colons)
 *                               + groups (names), inventory (last collected, or null) and activeTask (or null)
 *   PATCH  /api/v1/hosts/:mac   { entry?: name | null, name?: name | null, ip?: IPv4 | null }
 *                               assign / unassign / rename / reserve / unreserve
 *   DELETE /api/v1/hosts/:mac
 * `ip` is the host's reserved address (DHCP server mode): unique (409 when
 * another host or a dhcp.reservations item of the config has it). After
 * every change ctx.hostsChanged() lets the DHCP server reload reservations.
 */
import type { FastifyInstance } from 'fastify';
import { FleetbootError } from '../../lib/errors.js';
import { approveHost, assignEntry, createHost, deleteHost, getHost, hostGroups, importHosts, listTasks, queryHosts, rejectHost, updateHost, normaliseMac } from '../../store/index.js';
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

  app.get('/hosts', { config: { role: 'viewer' }, schema: hostsApi.list }, async (req) => {
    const { status, q, group, sort, order } = req.query;
    const offset = req.query.offset !== undefined ? Number(req.query.offset) : 0;
    const limit = req.query.limit !== undefined ? Number(req.query.limit) : undefined;
    const r = await queryHosts(store.db, {
      ...(status !== undefined ? { status } : {}),
      ...(q !== undefined ? { q } : {}),
      ...(group !== undefined ? { group } : {}),
      ...(sort !== undefined ? { sort } : {}),
      ...(order !== undefined ? { order } : {}),
      offset,
      ...(limit !== undefined ? { limit } : {}),
    });
    return { ...r, offset, limit: limit ?? null };
  });

  app.post('/hosts/:mac/approve', { config: { role: 'operator' }, schema: hostsApi.approve }, async (req) => {
    const host = await approveHost(store.db, req.params.mac, req.body?.name ?? null);
    ctx.log.info({ subsystem: 'api', mac: host.mac, name: host.name }, 'pending host approved');
    ctx.events.publish({ kind: 'host.changed', mac: host.mac, change: 'approved', name: host.name, status: host.status });
    ctx.hostsChanged();
    return host;
  });

  app.post('/hosts/:mac/reject', { config: { role: 'operator' }, schema: hostsApi.reject }, async (req) => {
    await rejectHost(store.db, req.params.mac);
    ctx.log.info({ subsystem: 'api', mac: req.params.mac }, 'pending host rejected');
    ctx.events.publish({ kind: 'host.changed', mac: normaliseMac(req.params.mac) ?? req.params.mac, change: 'rejected', name: null, status: null });
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
    ctx.events.publish({ kind: 'host.changed', mac: host.mac, change: 'created', name: host.name, status: host.status });
    ctx.hostsChanged();
    return reply.code(201).send(host);
  });

  // 20,000 rows of about 100 bytes.
  app.post('/hosts/import', { config: { role: 'operator' }, bodyLimit: 4 * 1024 * 1024, schema: hostsApi.import }, async (req, reply) => {
    for (const h of req.body.hosts) checkConfigReservation(h.mac, h.ip);
    const r = await importHosts(store.db, req.body.hosts, { skipExisting: req.body.skipExisting === true });
    ctx.log.info({ subsystem: 'api', added: r.added, skipped: r.skipped.length, groupsCreated: r.groupsCreated }, 'hosts imported');
    ctx.hostsChanged();
    ctx.events.publish({ kind: 'host.imported', added: r.added, skipped: r.skipped.length, groupsCreated: r.groupsCreated });
    return reply.code(201).send(r);
  });

  app.post('/hosts/entry', { config: { role: 'operator' }, schema: hostsApi.assignEntry }, async (req) => {
    const hosts = await assignEntry(store.db, req.body.macs, req.body.entry);
    ctx.log.info({ subsystem: 'api', hosts: hosts.length, entry: req.body.entry }, 'entry assigned to hosts');
    ctx.hostsChanged();
    for (const h of hosts) ctx.events.publish({ kind: 'host.changed', mac: h.mac, change: 'updated', name: h.name, status: h.status });
    return { hosts };
  });

  app.get('/hosts/:mac', { config: { role: 'viewer' }, schema: hostsApi.show }, async (req) => {
    const host = await getHost(store.db, req.params.mac);
    if (!host) throw new FleetbootError('NOT_FOUND', `No host with MAC ${req.params.mac}`);
    const [inventory, active, groups] = await Promise.all([getInventory(store.db, host.mac), listTasks(store.db, { mac: host.mac, active: true, limit: 1 }), hostGroups(store.db, host.mac)]);
    const task = active[0];
    return { ...host, groups, inventory: inventory ? { ...inventory.inventory } : null, activeTask: task ? taskView(task) : null };
  });

  app.patch('/hosts/:mac', { config: { role: 'operator' }, schema: hostsApi.update }, async (req) => {
    checkConfigReservation(req.params.mac, req.body.ip);
    const host = await updateHost(store.db, req.params.mac, req.body);
    ctx.log.info({ subsystem: 'api', mac: host.mac, entry: host.entry, name: host.name, ip: host.ip }, 'host changed');
    ctx.events.publish({ kind: 'host.changed', mac: host.mac, change: 'updated', name: host.name, status: host.status });
    ctx.hostsChanged();
    return host;
  });

  app.delete('/hosts/:mac', { config: { role: 'admin' }, schema: hostsApi.remove }, async (req) => {
    await deleteHost(store.db, req.params.mac);
    ctx.log.info({ subsystem: 'api', mac: req.params.mac }, 'host deleted');
    ctx.events.publish({ kind: 'host.changed', mac: normaliseMac(req.params.mac) ?? req.params.mac, change: 'deleted', name: null, status: null });
    ctx.hostsChanged();
    return { deleted: req.params.mac };
  });
}
