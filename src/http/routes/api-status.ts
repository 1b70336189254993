/**
 *   GET /api/v1/status   version, server address, base URL, ports, counts (role viewer)
 *
 * What runs, not what the config asks for: `dhcp.mode` is 'off' (ports null)
 * when no DHCP service is running, else the config's mode ('proxy' or
 * 'server') with the ports the service bound; likewise `tftp.port`.
 */
import type { FastifyInstance } from 'fastify';
import { listEntries, listHosts } from '../../store/index.js';
import type { AppContext } from '../context.js';
import { statusApi } from '../schemas/status.js';
import type { ApiTypeProvider } from '../type-provider.js';
import { fleetbootVersion } from '../version.js';

export async function statusRoutes(fastify: FastifyInstance, ctx: AppContext): Promise<void> {
  const app = fastify.withTypeProvider<ApiTypeProvider>();
  app.get('/status', { config: { role: 'viewer' }, schema: statusApi.status }, async () => {
    const rt = ctx.runtime();
    const [hosts, entries] = await Promise.all([listHosts(ctx.store.db), listEntries(ctx.store.db)]);
    return {
      name: 'fleetboot',
      version: fleetbootVersion(),
      serverIp: ctx.serverIp,
      baseUrl: ctx.baseUrl(),
      bootScriptUrl: `${ctx.baseUrl()}/boot.ipxe`,
      dataDir: ctx.config.dataDir,
      http: { port: rt.httpPort },
      tftp: { enabled: ctx.config.tftp.enabled, port: rt.tftpPort, root: ctx.config.tftp.root },
      dhcp: { mode: rt.dhcpPort === null ? 'off' : ctx.config.dhcp.mode, port: rt.dhcpPort, pxePort: rt.pxePort },
      counts: { hosts: hosts.length, entries: entries.length },
      startedAt: ctx.startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - ctx.startedAt.getTime()) / 1000),
    };
  });
}
