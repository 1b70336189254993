/**
 * A PostgreSQL for a lab (src/store/test-postgres.ts): it runs in a lab
 * host's namespace, listens on that host's address for the lab's subnet,
 * and has an empty `fleetboot` database (C collation, as doctor wants it).
 * It trusts connections from the lab's /24, or from `allowFrom` (routed labs
 * whose servers sit on other subnets).
 * The cluster and replication labs and the cluster benchmarks use it.
 */
import pg from 'pg';
import { startPostgres, type PostgresServer, type StartPostgresOptions } from '../../src/store/test-postgres.js';
import type { Lab } from './lab.js';

export interface LabPostgres {
  server: PostgresServer;
  /** The URL Fleetboot servers in the lab are given (TCP to the host's address). */
  url: string;
  /** The same database over the server's Unix socket (from this process, outside the namespaces). */
  localUrl: string;
  /** One query on the fleetboot database, on a connection of its own. */
  sql<T extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<T[]>;
}

export async function startLabPostgres(lab: Lab, host: string, o: Pick<StartPostgresOptions, 'fsync' | 'synchronousCommit' | 'cpus' | 'parentDir' | 'allowFrom'> = {}): Promise<LabPostgres> {
  const h = lab.host(host);
  if (!h.ip) throw new TypeError(`lab host ${host} has no address for PostgreSQL to listen on`);
  const server = await startPostgres({ ...o, host: h.ip, netns: h.netns, allowFrom: o.allowFrom ?? `${lab.subnet}.0/24` });
  const admin = new pg.Client({ connectionString: server.url('postgres') });
  try {
    await admin.connect();
    await admin.query("CREATE DATABASE fleetboot TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'");
  } catch (err) {
    await server.stop();
    throw err;
  } finally {
    await admin.end().catch(() => undefined);
  }
  const localUrl = server.url('fleetboot');
  return {
    server,
    url: `postgres://postgres@${h.ip}:${server.port}/fleetboot`,
    localUrl,
    async sql<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
      const c = new pg.Client({ connectionString: localUrl });
      await c.connect();
      try {
        return (await c.query<T>(text, values)).rows;
      } finally {
        await c.end();
      }
    },
  };
}
