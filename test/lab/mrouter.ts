/**
 * A routed multicast lab: two lab subnets joined by a router namespace that
 * forwards unicast (net.ipv4.ip_forward) and multicast (smcrouted, from
 * Debian's smcroute, with static (*,G) routes), as a site whose imaging
 * clients sit behind a router would have it:
 *
 *   subnet A (eth0 .254) ── router [ip_forward, smcrouted] ── (eth1 .254) subnet B
 *
 *   const net = await MulticastRoutedLab.create({ a: '10.213.86', b: '10.213.87', groups: ['239.255.86.0/24'] });
 *   await net.addHost('a', 'snd', '10.213.86.1');   // routes to B through the router
 *   await net.addHost('b', 'rcv', '10.213.87.2');
 *   ... net.a.spawnIn(...), net.b.spawnIn(...)
 *   await net.destroy();
 *
 * `groups` are forwarded from A to B (the session's data); `returnGroups`
 * from B to A (a protocol whose receivers speak to a group, like udpcast's
 * rendezvous). The kernel forwards a multicast packet only when its TTL is
 * above the interface's threshold (1): a sender must use TTL 2 or more to
 * cross the router. smcrouted runs inside the router namespace (the kernel's
 * multicast routing table is per namespace) with its configuration, control
 * socket and pid file in a temporary directory, and is stopped by destroy().
 * Hosts get their subnet broadcast (`brd +`) as real ones have.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, type LabHost } from './lab.js';
import { ProcessLog } from './bootenv/services.js';

export interface MulticastRoutedLabOptions {
  /** First three octets of subnet A (the sender's side), e.g. '10.213.86'. */
  a: string;
  /** First three octets of subnet B (the receivers' side). */
  b: string;
  /** Groups (GROUP or GROUP/LEN) routed from A to B. */
  groups: string[];
  /** Groups routed from B to A. */
  returnGroups?: string[];
}

/** The router's address on each side. */
const ROUTER_OCTET = '254';

export class MulticastRoutedLab {
  private constructor(
    readonly a: Lab,
    readonly b: Lab,
    /** The router namespace (a host of lab A with a second interface, eth1, on B). */
    readonly router: LabHost,
    /** smcrouted's output (started with -l info: one line per route it installs). */
    readonly smcroute: ProcessLog,
    private readonly dir: string,
  ) {}

  static async create(opts: MulticastRoutedLabOptions): Promise<MulticastRoutedLab> {
    if (opts.groups.length === 0) throw new RangeError('MulticastRoutedLab: groups must name at least one group to route from A to B');
    const groupRe = /^2(2[4-9]|3\d)\.\d{1,3}\.\d{1,3}\.\d{1,3}(\/\d{1,2})?$/;
    for (const g of [...opts.groups, ...(opts.returnGroups ?? [])]) if (!groupRe.test(g)) throw new RangeError(`MulticastRoutedLab: not an IPv4 multicast group: '${g}'`);
    const labs: Lab[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'fb-mrouter-'));
    try {
      const a = await Lab.create({ subnet: opts.a });
      labs.push(a);
      const b = await Lab.create({ subnet: opts.b });
      labs.push(b);
      const router = await a.addHost('router', `${opts.a}.${ROUTER_OCTET}`, { broadcast: true });
      await b.attach(router, 'eth1', `${opts.b}.${ROUTER_OCTET}`, { broadcast: true });
      await a.nsExec(router.netns, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
      // -N: only the interfaces the configuration enables become multicast VIFs.
      const conf = join(dir, 'smcroute.conf');
      writeFileSync(conf, [
        'phyint eth0 enable',
        'phyint eth1 enable',
        ...opts.groups.map((g) => `mroute from eth0 group ${g} to eth1`),
        ...(opts.returnGroups ?? []).map((g) => `mroute from eth1 group ${g} to eth0`),
        '',
      ].join('\n'));
      const smcroute = new ProcessLog(
        'smcrouted',
        a.spawnIn(router.netns, ['smcrouted', '-n', '-N', '-l', 'info', '-f', conf, '-i', 'fblab', '-u', join(dir, 'smcroute.sock'), '-P', join(dir, 'smcroute.pid')]),
      );
      if (!(await smcroute.waitFor(/Ready, waiting for client request/, 10_000))) throw new Error(`smcrouted did not start in the router namespace:\n${smcroute.tail(30)}`);
      return new MulticastRoutedLab(a, b, router, smcroute, dir);
    } catch (err) {
      for (const lab of labs.reverse()) await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** A host on side a or b whose route to the other subnet goes through the router. */
  async addHost(side: 'a' | 'b', name: string, ip: string): Promise<LabHost> {
    const [lab, other] = side === 'a' ? [this.a, this.b] : [this.b, this.a];
    const host = await lab.addHost(name, ip, { broadcast: true });
    await lab.exec(name, ['ip', 'route', 'add', `${other.subnet}.0/24`, 'via', `${lab.subnet}.${ROUTER_OCTET}`]);
    return host;
  }

  /** smcrouted's routes as smcroutectl shows them, and the kernel's multicast forwarding cache (diagnostics). */
  async routes(): Promise<string> {
    const ctl = await this.a.nsExec(this.router.netns, ['smcroutectl', '-p', '-u', join(this.dir, 'smcroute.sock'), 'show', 'routes']).catch((e: Error) => e.message);
    const mfc = await this.a.nsExec(this.router.netns, ['ip', 'mroute', 'show']).catch((e: Error) => e.message);
    return `smcroutectl show routes:\n${ctl}\nip mroute show:\n${mfc}`;
  }

  async destroy(): Promise<void> {
    await this.smcroute.stop('SIGTERM', 3000);
    await this.b.destroy();
    await this.a.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
