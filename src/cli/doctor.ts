/**
 * `fleetboot doctor`: checks the running server and this machine, one line
 * per check (ok / warn / FAIL / info, what was seen, what to do), `--json`
 * for scripts, exit status 1 when a check failed. It takes the serve flags
 * (like `fleetboot firewall`), so it describes the configuration the server
 * runs with, and asks the server itself (server.json, GET /api/v1/status)
 * what it bound. Run it on the server's machine (in its network namespace),
 * as root or as the server's user.
 *
 * This file gathers the facts (the files, /proc, `nft -j list ruleset`, the
 * DHCP probe); the judgements are pure, in src/doctor/.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, readlink, realpath, stat, statfs } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { DEBIAN_IPXE_DIR, detectServerIp, loadConfig, type FleetbootConfig } from '../config/config.js';
import { concretePort, requiredPorts } from '../config/ports.js';
import { judgeActivity, judgeAddress, judgeBootEnv, judgeDataDir, judgeDhcpServers, judgeFirewall, judgeIpxe, judgeNodes, judgeReplication, judgeSecureBoot, judgeStore, type FileFacts, type FirewallPort, type LagFacts, type NodeFacts } from '../doctor/judge.js';
import { DB_FILE } from '../store/db.js';
import { inspectPostgres, redactUrl } from '../store/postgres.js';
import { verifyAuthenticode } from '../boot/authenticode.js';
import { GRUB_ROOT_CONFIG, SIGNED_FILES } from '../boot/grub.js';
import { exitStatus, formatReport, type Check } from '../doctor/report.js';
import { judgePorts, parseProcNet, socketInode, type ExpectedPort, type ProcessInfo, type SocketEntry } from '../doctor/sockets.js';
import type { Status } from '../http/schemas/index.js';
import { BOOTENV_FILES, BOOTENV_INFO_FILE, bootEnvBuildCommand } from '../lib/bootenv.js';
import { errorMessage } from '../lib/errors.js';
import { IPXE_BINARIES, IPXE_MANIFEST, parseIpxeManifest } from '../lib/ipxe-files.js';
import { program } from '../lib/programs.js';
import { connect } from './client.js';
import { ExitStatus, UsageError, type GlobalOptions } from './globals.js';
import { printJson } from './output.js';
import { addServeOptions, serveOverrides, type ServeFlags } from './serve.js';

/** Debian's checksums of the ipxe package's files (what /usr/lib/ipxe should hold). */
const DPKG_IPXE_MD5SUMS = '/var/lib/dpkg/info/ipxe.md5sums';

interface DoctorFlags extends ServeFlags {
  probe: boolean;
  probeTimeout?: string;
}

/** What server.json says, as far as doctor needs it. */
interface ServerFile {
  pid: number;
  url: string;
}

/** SHA-256 and MD5 of a non-empty regular file; null when it is missing, empty or unreadable. */
async function hashFile(file: string): Promise<{ sha256: string; md5: string } | null> {
  try {
    const st = await stat(file);
    if (!st.isFile() || st.size === 0) return null;
    const sha = createHash('sha256');
    const md5 = createHash('md5');
    for await (const chunk of createReadStream(file)) {
      sha.update(chunk as Buffer);
      md5.update(chunk as Buffer);
    }
    return { sha256: sha.digest('hex'), md5: md5.digest('hex') };
  } catch {
    return null;
  }
}

/** dpkg's record of the ipxe package's files: path without the leading / -> MD5. */
async function ipxePackageMd5s(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const text = await readFile(DPKG_IPXE_MD5SUMS, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{32}) {2}(.+)$/.exec(line);
    if (m) out.set(m[2] as string, m[1] as string);
  }
  return out;
}

async function readServerFile(dataDir: string): Promise<ServerFile | string> {
  const file = join(dataDir, 'server.json');
  let j: unknown;
  try {
    j = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? `${file} does not exist: no server runs with this data directory` : `cannot read ${file}: ${errorMessage(err)}`;
  }
  if (typeof j !== 'object' || j === null) return `${file} is not a JSON object`;
  const { pid, url } = j as Record<string, unknown>;
  if (typeof pid !== 'number' || typeof url !== 'string') return `${file} has no pid or url`;
  return { pid, url };
}

async function processName(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '?')).trim();
}

/** The socket inodes of a process; null when its fd directory cannot be read. */
async function socketInodes(pid: number): Promise<Set<number> | null> {
  let fds: string[];
  try {
    fds = await readdir(`/proc/${pid}/fd`);
  } catch {
    return null;
  }
  const out = new Set<number>();
  await Promise.all(
    fds.map(async (fd) => {
      const inode = socketInode(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
      if (inode !== null) out.add(inode);
    }),
  );
  return out;
}

/** Which processes own `inodes` (every /proc/PID/fd that can be read). */
async function ownersOf(inodes: ReadonlySet<number>): Promise<Map<number, ProcessInfo>> {
  const owners = new Map<number, ProcessInfo>();
  if (inodes.size === 0) return owners;
  const pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d)).map(Number);
  for (const pid of pids) {
    const mine = await socketInodes(pid);
    if (!mine) continue;
    const hit = [...mine].filter((i) => inodes.has(i));
    if (hit.length === 0) continue;
    const info = { pid, name: await processName(pid) };
    for (const i of hit) if (!owners.has(i)) owners.set(i, info);
  }
  return owners;
}

async function readSockets(): Promise<SocketEntry[]> {
  const out: SocketEntry[] = [];
  for (const [file, proto] of [['udp', 'udp'], ['udp6', 'udp'], ['tcp', 'tcp'], ['tcp6', 'tcp']] as const) {
    const text = await readFile(`/proc/net/${file}`, 'utf8').catch(() => '');
    out.push(...parseProcNet(text, proto));
  }
  return out;
}

/** The ports of requiredPorts(config), with the numbers the server bound where it says so. */
function portsOf(config: Readonly<FleetbootConfig>, status: Status | null): Array<{ proto: 'udp' | 'tcp'; port: number | [number, number]; service: string; setting: string }> {
  const bound: Record<string, number | null | undefined> = {
    'dhcp.port': status?.dhcp.port,
    'dhcp.pxePort': status?.dhcp.pxePort,
    'tftp.port': status?.tftp.port,
    'http.port': status?.http.port,
    'https.port': status?.https.port,
  };
  return requiredPorts(config).map((p) => {
    const actual = bound[p.setting];
    const port = typeof actual === 'number' ? actual : concretePort(p.port, 'linux');
    return { proto: p.proto, port, service: p.service, setting: p.setting };
  });
}

/** `nft -j list ruleset`: its output, or the error (ENOENT: nft is not installed). */
function nftRuleset(): Promise<{ stdout: string; error: { code: string | number | null | undefined; message: string } | null; stderr: string }> {
  return new Promise((res) => {
    execFile(program('nft'), ['-j', 'list', 'ruleset'], { timeout: 10_000, maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) => res({ stdout, stderr, error: error ? { code: error.code, message: error.message } : null }));
  });
}

async function firewallChecks(ports: FirewallPort[], iface: string): Promise<Check[]> {
  const r = await nftRuleset();
  let ruleset: unknown = null;
  let unavailable: string | null = null;
  if (r.error) {
    if (r.error.code === 'ENOENT') return [{ id: 'firewall', status: 'info', title: 'firewall (nftables)', detail: 'nft is not installed: not checked', fix: null }];
    unavailable = `\`nft -j list ruleset\` failed: ${(r.stderr.trim() || r.error.message).split('\n')[0] ?? ''}`;
  } else {
    try {
      ruleset = r.stdout.trim() === '' ? { nftables: [] } : (JSON.parse(r.stdout) as unknown);
    } catch {
      unavailable = '`nft -j list ruleset` did not print JSON';
    }
  }
  const checks = judgeFirewall({ ruleset, unavailable, ports, iface });
  // Rules of the legacy iptables (x_tables) are not in nft's ruleset.
  const legacy = (await readFile('/proc/net/ip_tables_names', 'utf8').catch(() => '')).trim();
  if (legacy !== '') {
    checks.push({ id: 'firewall:iptables-legacy', status: 'warn', title: 'firewall (legacy iptables)', detail: `legacy iptables tables are loaded (${legacy.split('\n').join(', ')}): doctor cannot tell what they let in`, fix: 'check them with `iptables-legacy -L INPUT -n` against `fleetboot firewall --for iptables`' });
  }
  return checks;
}

async function fileFacts(path: string): Promise<FileFacts | null> {
  try {
    const st = await stat(path);
    return { path, mode: st.mode, uid: st.uid };
  } catch {
    return null;
  }
}

async function dataDirChecks(config: Readonly<FleetbootConfig>, serverPid: number | null): Promise<Check[]> {
  const dir = await fileFacts(config.dataDir);
  if (!dir) return [{ id: 'data-dir', status: 'fail', title: `data directory ${config.dataDir}`, detail: 'does not exist', fix: 'start the server with this --data-dir (it creates it), or pass the right --data-dir' }];
  const names = ['api-token', 'fleetboot.db', 'fleetboot.db-wal', 'fleetboot.db-shm', 'server.json', join('tls', 'ca.key'), join('tls', 'server.key')].map((n) => join(config.dataDir, n));
  if (config.https.keyFile) names.push(resolve(config.https.keyFile));
  const secrets = (await Promise.all(names.map(fileFacts))).filter((f): f is FileFacts => f !== null);
  const serverUid = serverPid === null ? null : ((await stat(`/proc/${serverPid}`).catch(() => null))?.uid ?? null);
  const fs = await statfs(config.dataDir);
  return judgeDataDir({ dir, secrets, serverUid, freeBytes: fs.bavail * fs.bsize, totalBytes: fs.blocks * fs.bsize });
}

function ipv4Interfaces(): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, addrs] of Object.entries(networkInterfaces())) out[name] = (addrs ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address);
  return out;
}

export async function runDoctor(config: Readonly<FleetbootConfig>, globals: GlobalOptions, opts: { probe: boolean; probeTimeoutMs: number }): Promise<Check[]> {
  const checks: Check[] = [];
  const now = Date.now();

  // The server: server.json, its process, its API.
  let status: Status | null = null;
  let api: Awaited<ReturnType<typeof connect>> | null = null;
  const sf = await readServerFile(config.dataDir);
  let pid: number | null = null;
  if (typeof sf === 'string') {
    checks.push({ id: 'server', status: 'fail', title: 'server', detail: sf, fix: `start it: fleetboot serve --data-dir ${config.dataDir} (or give doctor the --data-dir / --config the server runs with)` });
  } else if ((await stat(`/proc/${sf.pid}`).catch(() => null)) === null) {
    checks.push({ id: 'server', status: 'fail', title: 'server', detail: `server.json names pid ${sf.pid}, which does not run (a server that stopped without cleaning up)`, fix: `start it: fleetboot serve --data-dir ${config.dataDir}` });
  } else {
    pid = sf.pid;
    try {
      api = await connect({ ...globals, dataDir: config.dataDir });
      status = await api.request<Status>('GET', '/status');
      checks.push({ id: 'server', status: 'ok', title: 'server', detail: `Fleetboot ${status.version} runs (pid ${sf.pid}, up ${status.uptimeSeconds} s), API at ${api.baseUrl}`, fix: null });
    } catch (err) {
      checks.push({ id: 'server', status: 'fail', title: 'server', detail: `pid ${sf.pid} runs, but its API does not answer: ${errorMessage(err)}`, fix: "look at the server's log; restart it" });
    }
  }
  if (status) {
    const differ: string[] = [];
    if (resolve(status.dataDir) !== resolve(config.dataDir)) differ.push(`data directory ${status.dataDir} (doctor: ${config.dataDir})`);
    if (resolve(status.tftp.root) !== resolve(config.tftp.root)) differ.push(`TFTP root ${status.tftp.root} (doctor: ${config.tftp.root})`);
    if (status.dhcp.mode !== 'off' && status.dhcp.mode !== config.dhcp.mode) differ.push(`DHCP mode ${status.dhcp.mode} (doctor: ${config.dhcp.mode})`);
    if (status.tftp.enabled !== config.tftp.enabled) differ.push(`TFTP ${status.tftp.enabled ? 'on' : 'off'} (doctor: ${config.tftp.enabled ? 'on' : 'off'})`);
    if (differ.length) checks.push({ id: 'config', status: 'warn', title: 'configuration', detail: `the server runs with another configuration: ${differ.join('; ')}`, fix: 'give doctor the same --config and flags as `fleetboot serve`' });
  }

  // 1. Each configured port is bound by the server.
  const ports = portsOf(config, status);
  if (pid !== null && status !== null) {
    const expected: ExpectedPort[] = ports.filter((p): p is typeof p & { port: number } => !Array.isArray(p.port) && p.setting !== 'tftp.dataPorts' && p.setting !== 'multicast.ports').map((p) => ({ ...p }));
    const sockets = await readSockets();
    const serverInodes = await socketInodes(pid);
    const watched = new Set(expected.map((e) => `${e.proto}/${e.port}`));
    const foreign = new Set(sockets.filter((s) => watched.has(`${s.proto}/${s.port}`) && !serverInodes?.has(s.inode)).map((s) => s.inode));
    const owners = await ownersOf(foreign);
    checks.push(...judgePorts({ expected, sockets, server: { pid, name: await processName(pid) }, serverInodes, owners }));
  }

  // 2. No other DHCP/proxyDHCP server on the segment.
  const serverIp = status?.serverIp ?? config.serverIp ?? detectServerIp(config.interface);
  const { interfaceOf, probeDhcpServers } = await import('../net/dhcp-probe.js');
  const iface = config.interface ?? (serverIp ? interfaceOf(serverIp) : null);
  const mode = status ? status.dhcp.mode : config.dhcp.mode;
  const dhcpPort = status?.dhcp.port ?? config.dhcp.port;
  if (!opts.probe) checks.push({ id: 'dhcp-servers', status: 'info', title: 'other DHCP servers', detail: 'not probed (--no-probe)', fix: null });
  else if (iface === null || iface === 'lo' || serverIp === null || serverIp.startsWith('127.')) {
    checks.push({ id: 'dhcp-servers', status: 'info', title: 'other DHCP servers', detail: 'not probed: the server is on loopback', fix: null });
  } else if (mode !== 'off' && dhcpPort !== 67) {
    checks.push({ id: 'dhcp-servers', status: 'info', title: 'other DHCP servers', detail: `not probed: the server's DHCP is on port ${dhcpPort}, not 67`, fix: null });
  } else {
    try {
      const answers = await probeDhcpServers({ interface: iface, timeoutMs: opts.probeTimeoutMs });
      checks.push(judgeDhcpServers({ mode, serverIp, iface, answers }));
    } catch (err) {
      checks.push({ id: 'dhcp-servers', status: 'warn', title: `other DHCP servers on ${iface}`, detail: `cannot tell: the probe failed: ${errorMessage(err)}`, fix: 'run doctor as root (the probe binds port 68)' });
    }
  }

  // 3. The iPXE binaries and the boot environment.
  const root = status?.tftp.root ?? config.tftp.root;
  const manifest = parseIpxeManifest(await readFile(join(config.dataDir, IPXE_MANIFEST), 'utf8').catch(() => ''));
  const packageMd5s = await ipxePackageMd5s();
  const ipxe = await Promise.all(
    IPXE_BINARIES.map(async (name) => {
      const path = join(root, name);
      const m = manifest[name];
      const h = await hashFile(path);
      // Debian's ipxe.efi is a symlink to /boot/ipxe.efi: dpkg lists the real path.
      const source = await realpath(m?.source ?? join(DEBIAN_IPXE_DIR, name)).catch(() => null);
      const packagedMd5 = source === null ? null : (packageMd5s.get(source.replace(/^\//, '')) ?? null);
      return { name, path, sha256: h?.sha256 ?? null, md5: h?.md5 ?? null, packagedMd5, recorded: m ? { sha256: m.sha256, source: m.source, at: m.copiedAt } : null };
    }),
  );
  checks.push(...judgeIpxe(ipxe, DEBIAN_IPXE_DIR));
  const bootDir = config.imaging.bootEnvDir;
  const files = await Promise.all(BOOTENV_FILES.map(async (name) => ({ name, sha256: (await hashFile(join(bootDir, name)))?.sha256 ?? null })));
  let recorded: Record<string, string | null> | null = null;
  try {
    const j = JSON.parse(await readFile(join(bootDir, BOOTENV_INFO_FILE), 'utf8')) as Record<string, unknown>;
    const sha = (v: unknown): string | null => (typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>).sha256 === 'string' ? ((v as Record<string, unknown>).sha256 as string) : null);
    recorded = { vmlinuz: sha(j.vmlinuz), 'initrd.img': sha(j.initrd) };
  } catch {
    recorded = null;
  }
  checks.push(judgeBootEnv({ dir: bootDir, files, recorded, buildCommand: bootEnvBuildCommand(bootDir, config.dataDir) }));

  // 3b. Secure Boot: Debian's signed shim and GRUB in the TFTP root, a signed boot environment kernel.
  if (config.uefi.secureBoot !== 'off') {
    const signed = await Promise.all(
      SIGNED_FILES.map(async (f) => ({ source: f.from, tftp: f.to, sourceSha256: (await hashFile(join(config.uefi.signedDir, f.from)))?.sha256 ?? null, tftpSha256: (await hashFile(join(config.tftp.root, f.to)))?.sha256 ?? null })),
    );
    const kernel = await readFile(join(bootDir, 'vmlinuz')).catch(() => null);
    const v = kernel === null ? null : verifyAuthenticode(kernel);
    checks.push(
      ...judgeSecureBoot({
        mode: config.uefi.secureBoot,
        dhcpMode: config.dhcp.mode,
        serverIp,
        signedDir: config.uefi.signedDir,
        files: signed,
        rootConfig: (await stat(join(config.tftp.root, GRUB_ROOT_CONFIG)).catch(() => null)) !== null,
        bootEnvKernel: v === null ? null : v.signed ? { signed: true, signer: v.signer } : { signed: false, reason: v.reason },
      }),
    );
  } else checks.push(...judgeSecureBoot({ mode: 'off', dhcpMode: config.dhcp.mode, serverIp, signedDir: config.uefi.signedDir, files: [], rootConfig: false, bootEnvKernel: null }));

  // 4. The server address is on the interface it serves.
  if (serverIp === null) checks.push({ id: 'address', status: 'fail', title: 'server address', detail: 'none: no serverIp, and no IPv4 address on the interface', fix: 'set --server-ip or --interface' });
  else checks.push(judgeAddress({ serverIp, configuredInterface: config.interface, interfaces: ipv4Interfaces() }));

  // 5. The host firewall lets the configured ports in.
  const fwPorts: FirewallPort[] = ports.map((p) => ({ ...p, replies: p.setting === 'tftp.dataPorts' }));
  checks.push(...(await firewallChecks(fwPorts, iface ?? '(no interface holds the server address)')));

  // 6. The data directory: free space, permissions.
  checks.push(...(await dataDirChecks(config, pid)));

  // 7. When each subsystem last answered a client.
  if (status) checks.push(...judgeActivity(status.activity, { dhcp: status.dhcp.mode !== 'off', tftp: status.tftp.port !== null }, status.startedAt, now));

  // 8. The store: reachable, how fast, its collation; the nodes sharing it.
  checks.push(...(await storeChecks(config)));
  if (api && status) {
    try {
      const r = await api.request<{ nodes: NodeFacts[]; self: string | null; replicationLag?: LagFacts[] }>('GET', '/nodes');
      checks.push(judgeNodes(r.nodes, r.self));
      // 9. Replication lag: assigned revisions a node that is up holds no verified copy of, and since when.
      if (r.replicationLag) checks.push(judgeReplication(r.replicationLag, config.replication.lagWarnMinutes * 60, now));
    } catch (err) {
      checks.push({ id: 'nodes', status: 'warn', title: 'nodes', detail: `cannot tell: ${errorMessage(err)}`, fix: null });
    }
  }
  return checks;
}

async function storeChecks(config: Readonly<FleetbootConfig>): Promise<Check[]> {
  const url = config.store.url;
  if (url === null) return judgeStore({ dialect: 'sqlite', location: join(config.dataDir, DB_FILE), error: null, postgres: null });
  const location = redactUrl(url);
  try {
    return judgeStore({ dialect: 'postgres', location, error: null, postgres: await inspectPostgres(url) });
  } catch (err) {
    return judgeStore({ dialect: 'postgres', location, error: errorMessage(err), postgres: null });
  }
}

export function registerDoctorCommand(cli: Command, globals: GlobalOptions): void {
  addServeOptions(
    cli
      .command('doctor')
      .description('check the running server and this machine: ports, other DHCP servers, iPXE binaries, boot environment, address, firewall, data directory, store and nodes (takes the serve flags; exit 1 when a check fails)')
      .option('--no-probe', 'do not send the DHCP probe (a PXE DHCPDISCOVER on the served interface)')
      .option('--probe-timeout <seconds>', 'how long the DHCP probe listens (default: dhcp.probeTimeoutMs)'),
  ).action(async (flags: DoctorFlags) => {
    let probeTimeoutMs: number | undefined;
    if (flags.probeTimeout !== undefined) {
      const t = flags.probeTimeout;
      if (!/^\d+(\.\d+)?$/.test(t) || Number(t) <= 0 || Number(t) > 60) throw new UsageError(`--probe-timeout must be a number of seconds (0-60]: current value is ${JSON.stringify(t)}`);
      probeTimeoutMs = Math.round(Number(t) * 1000);
    }
    const config = loadConfig({ ...(flags.config ? { file: flags.config } : {}), overrides: serveOverrides(globals, flags) });
    const checks = await runDoctor(config, globals, { probe: flags.probe, probeTimeoutMs: probeTimeoutMs ?? config.dhcp.probeTimeoutMs });
    const code = exitStatus(checks);
    if (globals.json) printJson({ ok: code === 0, checks });
    else process.stdout.write(formatReport(checks));
    if (code !== 0) throw new ExitStatus(code);
  });
}
