/**
 *   GET /api/v1/status   version, this server's node name, server address, base URL, ports (HTTP, HTTPS, TFTP, DHCP), counts (hosts, pending hosts,
 *                        entries), the data directory's disk (total, free, bytes of images), when DHCP, TFTP
 *                        and HTTP boot last answered a client (role viewer)
 *
 * What runs, not what the config asks for: `dhcp.mode` is 'off' (ports null)
 * when no DHCP service is running, else the config's mode ('proxy' or
 * 'server') with the ports the service bound; likewise `tftp.port`.
 */
import { statfs } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { listEntries, queryHosts } from '../../store/index.js';
import type { AppContext } from '../context.js';
import { statusApi } from '../schemas/status.js';
import type { ApiTypeProvider } from '../type-provider.js';
import { fleetbootVersion } from '../version.js';

export async function statusRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  app.get('/status', { config: { role: 'viewer' }, schema: statusApi.status }, async () => {
    const rt = ctx.runtime();
    const db = ctx.store.db;
    const [hosts, pending, entries, images, fs] = await Promise.all([
      queryHosts(db, { status: 'approved', limit: 1 }),
      queryHosts(db, { status: 'pending', limit: 1 }),
      listEntries(db),
      db.selectFrom('image_revisions').select(sql<number | string | null>`sum(size_bytes)`.as('bytes')).executeTakeFirst(),
      statfs(ctx.config.dataDir).catch(() => null),
    ]);
    return {
      name: 'fleetboot',
      node: ctx.nodeName,
      version: fleetbootVersion(),
      serverIp: ctx.serverIp,
      baseUrl: ctx.baseUrl(),
      bootScriptUrl: `${ctx.baseUrl()}/boot.ipxe`,
      dataDir: ctx.config.dataDir,
      http: { port: rt.httpPort },
      https: { port: rt.httpsPort },
      tftp: { enabled: ctx.config.tftp.enabled, port: rt.tftpPort, root: ctx.config.tftp.root },
      dhcp: { mode: rt.dhcpPort === null ? 'off' : ctx.config.dhcp.mode, port: rt.dhcpPort, pxePort: rt.pxePort },
      counts: { hosts: hosts.total, pendingHosts: pending.total, entries: entries.length },
      // The file system of the data directory, where images are kept.
      storage: fs ? { totalBytes: fs.blocks * fs.bsize, freeBytes: fs.bavail * fs.bsize, imagesBytes: Number(images?.bytes ?? 0) } : null,
      startedAt: ctx.startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - ctx.startedAt.getTime()) / 1000),
      activity: rt.activity ?? { dhcp: null, tftp: null, http: null },
    };
  });
}
