/**
 * Lab networks for end-to-end tests and benchmarks: network namespaces joined
 * by veth pairs to a bridge that lives in its own namespace. Every name carries
 * a unique prefix, and `destroy()` removes everything the lab created. Traffic
 * only ever goes to addresses inside these namespaces.
 *
 *   const lab = await Lab.create({ subnet: '10.213.7' });   // 10.213.7.0/24
 *   const srv = await lab.addHost('srv', '10.213.7.1');
 *   const tap = await lab.addTap();                          // for a QEMU guest
 *   await lab.exec('srv', ['ip', 'addr']);
 *   await lab.destroy();
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { program, resolveArgv, type Argv, type ProgramName } from '../../src/lib/programs.js';

const run = promisify(execFile);

export async function sh(cmd: ProgramName, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(program(cmd), args, { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

export interface LabHost {
  /** Short name given by the test. */
  name: string;
  /** The network namespace name. */
  netns: string;
  /** The interface inside the namespace. */
  ifname: string;
  ip: string;
  mac: string;
  /** Its veth's other end, on the bridge (in `bridgeNs`): what reaches the host leaves the bridge by it. */
  bridgePort: string;
}

export interface LabOptions {
  /** First three octets of the lab's /24, e.g. '10.213.7'. Pick one per test file. */
  subnet: string;
}

export class Lab {
  readonly id: string;
  readonly subnet: string;
  /** Namespace holding the bridge (and the tap devices of QEMU guests). */
  readonly bridgeNs: string;
  readonly bridge = 'br0';
  readonly hosts = new Map<string, LabHost>();
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  private tapCount = 0;
  private vethCount = 0;

  private constructor(id: string, subnet: string) {
    this.id = id;
    this.subnet = subnet;
    this.bridgeNs = `fb${id}-br`;
  }

  static async create(opts: LabOptions): Promise<Lab> {
    if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(opts.subnet)) throw new TypeError(`Lab subnet must be three octets: ${opts.subnet}`);
    const lab = new Lab(randomBytes(3).toString('hex'), opts.subnet);
    await lab.addNamespace(lab.bridgeNs);
    await lab.nsExec(lab.bridgeNs, ['ip', 'link', 'add', lab.bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    await lab.nsExec(lab.bridgeNs, ['ip', 'link', 'set', lab.bridge, 'up']);
    await lab.nsExec(lab.bridgeNs, ['ip', 'link', 'set', 'lo', 'up']);
    return lab;
  }

  private async addNamespace(ns: string): Promise<void> {
    await sh('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
  }

  /** Run a command inside a namespace and return its stdout. */
  nsExec(ns: string, argv: Argv): Promise<string> {
    return sh('ip', ['netns', 'exec', ns, ...resolveArgv(argv)]);
  }

  /** Run a command inside a lab host's namespace. */
  exec(host: string, argv: Argv): Promise<string> {
    return this.nsExec(this.host(host).netns, argv);
  }

  host(name: string): LabHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no lab host ${name}`);
    return h;
  }

  /**
   * A namespace with one interface (eth0) on the bridge, addressed ip/24 (or no address when ip is null).
   * `broadcast` also gives the address its subnet broadcast (`brd +`), as DHCP clients and ifupdown
   * do; without it the address has none, and udpcast's rendezvous at TTL 1 (to the interface's
   * broadcast address) never reaches anyone.
   */
  async addHost(name: string, ip: string | null, opts: { mac?: string; broadcast?: boolean } = {}): Promise<LabHost> {
    const netns = `fb${this.id}-${name}`;
    await this.addNamespace(netns);
    const n = this.vethCount++;
    const outer = `fb${this.id}v${n}`;
    const inner = `fb${this.id}i${n}`;
    await sh('ip', ['link', 'add', outer, 'type', 'veth', 'peer', 'name', inner]);
    await sh('ip', ['link', 'set', outer, 'netns', this.bridgeNs]);
    await sh('ip', ['link', 'set', inner, 'netns', netns]);
    await this.nsExec(this.bridgeNs, ['ip', 'link', 'set', outer, 'master', this.bridge, 'up']);
    await this.nsExec(netns, ['ip', 'link', 'set', inner, 'name', 'eth0']);
    if (opts.mac) await this.nsExec(netns, ['ip', 'link', 'set', 'eth0', 'address', opts.mac]);
    await this.nsExec(netns, ['ip', 'link', 'set', 'lo', 'up']);
    await this.nsExec(netns, ['ip', 'link', 'set', 'eth0', 'up']);
    if (ip) await this.nsExec(netns, ['ip', 'addr', 'add', `${ip}/24`, ...(opts.broadcast ? ['brd', '+'] : []), 'dev', 'eth0']);
    const mac = (await this.nsExec(netns, ['cat', '/sys/class/net/eth0/address'])).trim();
    const h: LabHost = { name, netns, ifname: 'eth0', ip: ip ?? '', mac, bridgePort: outer };
    this.hosts.set(name, h);
    return h;
  }

  /**
   * A second interface, `ifname`, for a host of another lab (a router or a relay), on this
   * lab's bridge and addressed ip/24 (`broadcast` as in addHost). Its bridge end lives in this
   * lab's bridge namespace, so destroying either lab removes the pair.
   */
  async attach(host: LabHost, ifname: string, ip: string, opts: { broadcast?: boolean } = {}): Promise<void> {
    const outer = `fb${this.id}a${this.vethCount++}`;
    await this.nsExec(host.netns, ['ip', 'link', 'add', ifname, 'type', 'veth', 'peer', 'name', outer, 'netns', this.bridgeNs]);
    await this.nsExec(this.bridgeNs, ['ip', 'link', 'set', outer, 'master', this.bridge, 'up']);
    await this.nsExec(host.netns, ['ip', 'addr', 'add', `${ip}/24`, ...(opts.broadcast ? ['brd', '+'] : []), 'dev', ifname]);
    await this.nsExec(host.netns, ['ip', 'link', 'set', ifname, 'up']);
  }

  /** True when a UDP socket in the host's namespace is bound to `port` (/proc/net/udp is per namespace). */
  async udpBound(host: string, port: number): Promise<boolean> {
    const suffix = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    const table = await this.exec(host, ['cat', '/proc/net/udp']).catch(() => '');
    return table.split('\n').some((line) => line.trim().split(/\s+/)[1]?.endsWith(suffix) ?? false);
  }

  /** A tap device on the bridge for a QEMU guest; QEMU must run inside `bridgeNs` (see spawnIn). */
  async addTap(): Promise<string> {
    const tap = `tap${this.tapCount++}`;
    await this.nsExec(this.bridgeNs, ['ip', 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    await this.nsExec(this.bridgeNs, ['ip', 'link', 'set', tap, 'master', this.bridge, 'up']);
    return tap;
  }

  /** Start a long-running process inside a namespace; it is killed by destroy(). */
  spawnIn(ns: string, argv: Argv, opts: SpawnOptions = {}): ChildProcess {
    const child = spawn(program('ip'), ['netns', 'exec', ns, ...resolveArgv(argv)], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /**
   * Drop a share of UDP packets entering a host's interface (nftables numgen
   * random), for fault tests. `spare` is an nft match (tokens) for packets that
   * are never dropped, e.g. `['@th,64,32', '!=', '0x00040000']` spares TFTP's ACK 0.
   */
  async dropPercent(host: string, percent: number, spare: string[] = []): Promise<void> {
    if (!(percent >= 0 && percent <= 100)) throw new RangeError(`percent must be 0-100: ${percent}`);
    const ns = this.host(host).netns;
    await this.nsExec(ns, ['nft', 'add', 'table', 'inet', 'fblab']);
    await this.nsExec(ns, ['nft', 'add', 'chain', 'inet', 'fblab', 'in', '{ type filter hook input priority 0; }']);
    await this.nsExec(ns, ['nft', 'add', 'rule', 'inet', 'fblab', 'in', 'meta', 'l4proto', 'udp', ...spare, 'numgen', 'random', 'mod', '100', '<', String(percent), 'drop']);
  }

  /** Remove what dropPercent() added to a host (each call adds a rule: clear before setting another share). */
  async clearDrops(host: string): Promise<void> {
    const ns = this.host(host).netns;
    const tables = await this.nsExec(ns, ['nft', 'list', 'tables']);
    if (/\btable inet fblab\b/.test(tables)) await this.nsExec(ns, ['nft', 'delete', 'table', 'inet', 'fblab']);
  }

  /**
   * A slow link toward a host: a token bucket filter (tc tbf) of `mbit`
   * Mbit/s on its bridge port, so everything it receives queues there and the
   * excess is dropped, as at a slow switch port.
   */
  async limitRate(host: string, mbit: number): Promise<void> {
    if (!(mbit > 0)) throw new RangeError(`rate must be above 0 Mbit/s: ${mbit}`);
    await this.nsExec(this.bridgeNs, ['tc', 'qdisc', 'add', 'dev', this.host(host).bridgePort, 'root', 'tbf', 'rate', `${mbit}mbit`, 'burst', '64kb', 'latency', '50ms']);
  }

  /**
   * Kill every process of the lab and delete its namespaces: the children it
   * spawned (waiting for their exit), then whatever else still runs in each
   * namespace (`ip netns pids`: grandchildren such as a server started through
   * npx or a shell script), until the namespace is empty or 5 s have passed.
   */
  async destroy(): Promise<void> {
    const exited = [...this.children].map((c) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r()))));
    for (const c of this.children) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(exited), new Promise<void>((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
    for (const ns of [...this.namespaces].reverse()) {
      const pidsOf = (): Promise<number[]> => sh('ip', ['netns', 'pids', ns]).then((out) => out.split('\n').filter(Boolean).map(Number), () => []);
      const deadline = Date.now() + 5000;
      for (let pids = await pidsOf(); pids.length > 0; pids = await pidsOf()) {
        if (Date.now() > deadline) {
          console.error(`lab: processes ${pids.join(' ')} still run in namespace ${ns} after SIGKILL; deleting it anyway`);
          break;
        }
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        await new Promise((r) => setTimeout(r, 20)); // poll interval; the deadline above bounds the wait
      }
      await sh('ip', ['netns', 'del', ns]).catch(() => undefined);
    }
    this.namespaces.length = 0;
  }
}

/** True when this process can build labs (root, ip netns available). */
export async function labAvailable(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  try {
    await sh('ip', ['netns', 'list']);
    return true;
  } catch {
    return false;
  }
}
