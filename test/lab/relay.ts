/**
 * Routed labs: a router namespace joining lab subnets, and ISC dhcrelay
 * (Debian isc-dhcp-relay) on it, relaying a subnet's DHCP broadcasts to
 * servers on the others. The relay labs (dhcp-relay, wake, replication,
 * cluster) build their topology from these.
 *
 *   const router = await addRouter(labA, 'relay', '10.213.80.254', [{ lab: labB, ip: '10.213.81.1' }]);
 *   await routeVia(labA, ['fb'], '10.213.81.0/24', '10.213.80.254');
 *   const relay = await startDhcrelay(labA, router, { upstream: ['eth0'], downstream: ['eth1'], servers: ['10.213.80.1'], pidFile });
 */
import type { Lab, LabHost } from './lab.js';
import { ProcessLog } from './bootenv/services.js';

export interface RouterLeg {
  /** The lab whose bridge this interface joins. */
  lab: Lab;
  /** The router's address there (/24, as lab hosts'). */
  ip: string;
}

export interface RouterOptions {
  /**
   * Also forward directed broadcasts (10.x.y.255) onto its subnets, as Cisco's
   * `ip directed-broadcast` does: Linux 4.19+ needs bc_forwarding on `all` and
   * on each interface. Wake-on-LAN across a router needs it; DHCP does not.
   */
  directedBroadcast?: boolean;
}

/**
 * A router: a host of `lab` named `name` at `ip` (eth0), one more interface
 * per leg (eth1, eth2, … in order) on the leg's lab, and IPv4 forwarding on.
 * Its interfaces are removed with the labs (see Lab.attach).
 */
export async function addRouter(lab: Lab, name: string, ip: string, legs: readonly RouterLeg[], o: RouterOptions = {}): Promise<LabHost> {
  const router = await lab.addHost(name, ip);
  const ifnames = ['eth0'];
  for (const [i, leg] of legs.entries()) {
    const ifname = `eth${i + 1}`;
    await leg.lab.attach(router, ifname, leg.ip);
    ifnames.push(ifname);
  }
  const keys = ['net.ipv4.ip_forward=1'];
  if (o.directedBroadcast) keys.push('net.ipv4.conf.all.bc_forwarding=1', ...ifnames.map((n) => `net.ipv4.conf.${n}.bc_forwarding=1`));
  for (const key of keys) await lab.nsExec(router.netns, ['sysctl', '-q', '-w', key]);
  return router;
}

/** `ip route add to via gateway` in each of `hosts` (of `lab`); `to` may be `default`. */
export async function routeVia(lab: Lab, hosts: readonly string[], to: string, gateway: string): Promise<void> {
  for (const h of hosts) await lab.exec(h, ['ip', 'route', 'add', to, 'via', gateway]);
}

export interface DhcrelayOptions {
  /** Interfaces toward the servers (-iu). */
  upstream: readonly string[];
  /** Interfaces whose clients' broadcasts are relayed (-id): giaddr is the interface's address. */
  downstream: readonly string[];
  /** The DHCP servers every relayed request goes to. */
  servers: readonly string[];
  /** Add option 82 (-a: circuit id = the downstream interface); default true. */
  agentInformation?: boolean;
  /**
   * Drop requests that already have this many hops (-c; dhcrelay's default 10). dhcrelay
   * on Linux reads every frame to UDP port 67 on its downstream interfaces (a packet
   * socket), so it also relays another relay agent's unicast passing through the router
   * (giaddr kept, to every server): 1 leaves those (hops 1) to the kernel's forwarding.
   */
  maxHops?: number;
  /** dhcrelay writes its pid there (-pf): give each lab its own, in its work directory. */
  pidFile: string;
}

/** ISC dhcrelay in the foreground (-d) in `router`'s namespace (of `lab`), once it listens; killed by lab.destroy(). */
export async function startDhcrelay(lab: Lab, router: LabHost, o: DhcrelayOptions): Promise<ProcessLog> {
  if (o.servers.length === 0) throw new TypeError('startDhcrelay needs at least one server to relay to');
  const args = ['-4', '-d', ...(o.agentInformation === false ? [] : ['-a']), ...(o.maxHops !== undefined ? ['-c', String(o.maxHops)] : []), '-pf', o.pidFile];
  for (const i of o.upstream) args.push('-iu', i);
  for (const i of o.downstream) args.push('-id', i);
  args.push(...o.servers);
  const log = new ProcessLog('dhcrelay', lab.spawnIn(router.netns, ['dhcrelay', ...args]));
  if (!(await log.waitFor(/Listening on|Sending on/, 5000))) throw new Error(`dhcrelay ${args.join(' ')} did not start within 5 s:\n${log.tail()}`);
  return log;
}
