/**
 * This server as a node: every Fleetboot server sharing the database
 * registers itself in the nodes table at start (src/store/nodes.ts) and
 * beats a heartbeat every node.heartbeatSeconds (default 10 s), which also
 * refreshes the free space of its data directory. A node is down after 3
 * missed beats, or at once when it stops cleanly (close()). Down nodes get
 * no new work (liveNodes, nodeForSubnet).
 *
 * - Its name: node.name, else the host name.
 * - Its credential: a secret of its own, made at its first start and kept
 *   0600 in its data directory (src/store/node-secret.ts); the table holds
 *   its sha256. It presents `authorization()` to other nodes, which check it
 *   with verifyNodeCredential (src/nodes/auth.ts).
 * - A name held by another node that is up, with another credential, stops
 *   the start with the whole story (registerNode's CONFLICT, as CONFIG).
 * - What it serves (which machines are near it: src/nodes/directory.ts):
 *   in server mode, node.subnets when set, else the subnets of its DHCP
 *   pools (servers sharing one PostgreSQL share their pools too, so the
 *   pools do not say which node is near a subnet: the operator does);
 *   otherwise the subnet of its own address (proxy or no DHCP; not
 *   loopback) plus node.subnets (relayed subnets).
 * - Its groups: node.groups, published in its row at register and at every
 *   heartbeat (like its certificate): an image assigned to `group:NAME`
 *   is pulled by every node in that group (src/model/image-nodes.ts).
 * - When its row is removed while it runs (`node rm --force`), it registers
 *   again at its next heartbeat; when another server took its name over
 *   (possible only while this one was down), it logs an error and stops beating.
 */
import { statfs } from 'node:fs/promises';
import { hostname, networkInterfaces } from 'node:os';
import type { FleetbootConfig } from '../config/config.js';
import { buildSubnets, maskPrefix, parseCidr, subnetOf } from '../dhcp/subnets.js';
import { errorMessage, FleetbootError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { isValidName, NAME_RULE } from '../model/validate.js';
import type { Store } from '../store/db.js';
import { ensureNodeSecret, hashNodeSecret } from '../store/node-secret.js';
import { getNode, heartbeatNode, markNodeStopped, registerNode, type NodeRecord } from '../store/nodes.js';
import { nodeAuthorization } from './auth.js';

export interface NodeServiceDeps {
  store: Store;
  config: Readonly<FleetbootConfig>;
  serverIp: string;
  version: string;
  log: Logger;
  /** The base URLs other nodes reach this one at (known once HTTP and HTTPS listen). */
  urls: () => { httpUrl: string | null; httpsUrl: string | null };
  /** sha256 (hex) of the certificate HTTPS serves now, published for the other nodes to pin; null: HTTPS is off. */
  tlsSha256?: () => string | null;
  /** The name when node.name is null (default: os.hostname()). */
  hostName?: string;
  /** Tests: the clock, and the data directory's space. */
  now?: () => Date;
  space?: () => Promise<{ capacityBytes: number; freeBytes: number } | null>;
}

export interface NodeService {
  readonly name: string;
  /** The `Authorization` header value for requests to other nodes (`Node <name>:<secret>`). */
  authorization(): string;
  /** Register (refused when another node that is up holds the name), then beat every heartbeatSeconds. */
  start(): Promise<NodeRecord>;
  /** One heartbeat now (the timer calls it; tests too). False: it could not be recorded. */
  beat(): Promise<boolean>;
  /** This node's row as the store has it now. */
  self(): Promise<NodeRecord | null>;
  /** Stop beating and record the clean stop (the node is down at once). */
  close(): Promise<void>;
}

/** node.name, else the host name; CONFIG when that is no valid node name. */
export function resolveNodeName(config: Readonly<FleetbootConfig>, host: string = hostname()): string {
  if (config.node.name !== null) return config.node.name;
  if (isValidName(host)) return host;
  throw new FleetbootError('CONFIG', `The host name ${JSON.stringify(host)} cannot be a node name (${NAME_RULE}): set node.name in the config or --node-name NAME`);
}

/** The subnets this node serves (see the header), deduplicated, in order. */
export function servedSubnets(config: Readonly<FleetbootConfig>, serverIp: string): string[] {
  const out: string[] = [];
  if (config.dhcp.mode === 'server') {
    if (config.node.subnets.length > 0) return [...new Set(config.node.subnets)];
    for (const sn of buildSubnets(config.dhcp.pools, [])) out.push(subnetOf(sn.network, maskPrefix(sn.mask)).label);
  } else {
    const own = Object.values(networkInterfaces())
      .flat()
      .find((a) => a?.family === 'IPv4' && a.address === serverIp);
    // Loopback serves no machine; a /31 or /32 is no segment (parseCidr refuses them).
    if (own?.cidr && !own.internal) {
      try {
        out.push(parseCidr(own.cidr).label);
      } catch {
        // no subnet to serve
      }
    }
  }
  out.push(...config.node.subnets);
  return [...new Set(out)];
}

async function dataDirSpace(dir: string): Promise<{ capacityBytes: number; freeBytes: number } | null> {
  try {
    const fs = await statfs(dir);
    return { capacityBytes: fs.blocks * fs.bsize, freeBytes: fs.bavail * fs.bsize };
  } catch {
    return null;
  }
}

export function createNodeService(deps: NodeServiceDeps): NodeService {
  const { store, config } = deps;
  const log = deps.log.child({ subsystem: 'nodes' });
  const now = deps.now ?? (() => new Date());
  const space = deps.space ?? (() => dataDirSpace(config.dataDir));
  const tlsSha256 = deps.tlsSha256 ?? (() => null);
  const name = resolveNodeName(config, deps.hostName);
  const { secret, created } = ensureNodeSecret(config.dataDir, name);
  const hash = hashNodeSecret(secret);
  const addresses = [deps.serverIp];
  const subnets = servedSubnets(config, deps.serverIp);
  const groups = [...config.node.groups];
  let timer: NodeJS.Timeout | null = null;
  let beating: Promise<boolean> | null = null;
  let starting = false;
  let started = false;
  let closed = false;
  /** Another server took the name over: this one stops beating (logged once). */
  let lost = false;

  async function register(): Promise<NodeRecord> {
    const sp = await space();
    const { httpUrl, httpsUrl } = deps.urls();
    const r = await registerNode(
      store.db,
      { name, addresses, subnets, groups, httpUrl, httpsUrl, tlsSha256: tlsSha256(), capacityBytes: sp?.capacityBytes ?? null, freeBytes: sp?.freeBytes ?? null, version: deps.version, heartbeatSeconds: config.node.heartbeatSeconds, credentialHash: hash },
      now(),
    );
    if (r.tookOverFrom) log.warn({ node: name, was: r.tookOverFrom.addresses, heartbeatAt: r.tookOverFrom.heartbeatAt }, `node ${name} took over the name from a down node with another credential (last heartbeat ${r.tookOverFrom.heartbeatAt})`);
    return r.node;
  }

  async function beatOnce(): Promise<boolean> {
    if (lost || closed) return false;
    const sp = await space();
    if (await heartbeatNode(store.db, name, hash, { capacityBytes: sp?.capacityBytes ?? null, freeBytes: sp?.freeBytes ?? null, groups, tlsSha256: tlsSha256() }, now())) return true;
    const row = await getNode(store.db, name, now());
    if (row === null) {
      log.warn({ node: name }, `node ${name}: its row was removed while it runs (node rm --force); registering again`);
      await register();
      return true;
    }
    // Another credential holds the name (taken over while this node was down): do not fight over it.
    lost = true;
    log.error({ node: name, by: row.addresses }, `node ${name}: another server (${row.addresses.join(', ')}) registered under this name; this server stops its heartbeat. Restart it with another node.name`);
    return false;
  }

  function beat(): Promise<boolean> {
    beating ??= beatOnce()
      .catch((err: unknown) => {
        log.error({ node: name, err: errorMessage(err) }, 'heartbeat failed');
        return false;
      })
      .finally(() => {
        beating = null;
      });
    return beating;
  }

  return {
    name,
    authorization: () => nodeAuthorization(name, secret),

    async start() {
      if (starting) throw new TypeError('the node service has started already');
      starting = true;
      let self: NodeRecord;
      try {
        self = await register();
      } catch (err) {
        if (err instanceof FleetbootError && err.code === 'CONFLICT') throw new FleetbootError('CONFIG', err.message, { cause: err });
        throw err;
      }
      started = true;
      if (created) log.info({ node: name }, `node secret created for ${name} (mode 0600)`);
      log.info({ node: name, addresses, subnets, groups, heartbeatSeconds: config.node.heartbeatSeconds }, `registered as node ${name} (serves ${subnets.length ? subnets.join(', ') : 'no subnet'}; ${groups.length ? `groups ${groups.join(', ')}` : 'in no group'})`);
      timer = setInterval(() => void beat(), config.node.heartbeatSeconds * 1000);
      timer.unref();
      return self;
    },

    beat,

    self: () => getNode(store.db, name, now()),

    async close() {
      if (closed) return;
      closed = true;
      if (timer) clearInterval(timer);
      await beating;
      if (started && !lost) {
        await markNodeStopped(store.db, name, hash, now()).catch((err: unknown) => log.error({ node: name, err: errorMessage(err) }, 'could not record the stop'));
      }
    },
  };
}
