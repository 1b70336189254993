/**
 * The judgements of `fleetboot doctor`, from facts that src/cli/doctor.ts
 * gathers (files, sockets, the DHCP probe, the firewall, the server's
 * status). Pure: each takes what was seen and returns checks with what to
 * do about a problem. The port check is in ./sockets.ts, the nftables
 * evaluator in ./nft-eval.ts.
 */
import { evaluateInput, inputChainCount, NftRulesetError, type NftPacket, type NftVerdict } from './nft-eval.js';
import { ago, type Check } from './report.js';

// ---- other DHCP servers ------------------------------------------------------

export interface DhcpAnswer {
  serverId: string;
  kind: 'dhcp' | 'proxy';
  offered: string | null;
  bootFile: string | null;
  nextServer: string | null;
}

/**
 * Other DHCP servers on the segment, by the mode Fleetboot runs in: beside
 * a DHCP server Fleetboot hands out addresses itself, so any other is a
 * conflict; a proxyDHCP works beside a plain DHCP server (that is what it is
 * for), but not beside another proxyDHCP or a DHCP server that gives PXE
 * clients a boot file of its own; with DHCP off they are only listed.
 */
export function judgeDhcpServers(o: { mode: 'proxy' | 'server' | 'off'; serverIp: string; iface: string; answers: readonly DhcpAnswer[] }): Check {
  const id = 'dhcp-servers';
  const title = `other DHCP servers on ${o.iface}`;
  const others = o.answers.filter((a) => a.serverId !== o.serverIp);
  const text = (a: DhcpAnswer): string =>
    `${a.kind === 'proxy' ? 'a proxyDHCP' : 'a DHCP server'} at ${a.serverId}${a.offered ? ` (offered ${a.offered})` : ''}${a.bootFile ? ` with boot file ${a.bootFile}` : ''}${a.nextServer && !a.bootFile ? ` with next-server ${a.nextServer}` : ''}`;
  if (others.length === 0) return { id, status: 'ok', title, detail: 'none answered a PXE DHCPDISCOVER', fix: null };
  if (o.mode === 'off') return { id, status: 'info', title, detail: `answering: ${others.map(text).join('; ')} (Fleetboot's DHCP is off)`, fix: null };
  const conflicts = o.mode === 'server' ? others : others.filter((a) => a.kind === 'proxy' || a.bootFile !== null || a.nextServer !== null);
  const plain = others.filter((a) => !conflicts.includes(a));
  if (conflicts.length === 0) {
    return { id, status: 'ok', title, detail: `${plain.map(text).join('; ')} hands out addresses; Fleetboot's proxyDHCP adds the boot file beside it`, fix: null };
  }
  const fix =
    o.mode === 'server'
      ? 'two DHCP servers on one segment fight over clients: stop the other one, or run Fleetboot with --dhcp proxy beside it'
      : 'PXE clients may boot from the other server instead: remove its PXE answers (proxy mode, dhcp-boot / option 66, 67, next-server), or stop it';
  return { id, status: 'fail', title, detail: `answering besides Fleetboot: ${conflicts.map(text).join('; ')}${plain.length ? ` (also ${plain.map(text).join('; ')}, which is fine)` : ''}`, fix };
}

// ---- iPXE binaries and the boot environment ------------------------------------

export interface RecordedFile {
  sha256: string;
  /** Where it was copied from. */
  source: string;
  /** When. */
  at: string;
}

export interface IpxeFileFacts {
  name: string;
  /** Its path in the TFTP root. */
  path: string;
  /** The file's SHA-256 now; null when it is missing (or not a regular file). */
  sha256: string | null;
  /** What the server recorded when it copied it; null: no record. */
  recorded: RecordedFile | null;
  /** The file's MD5 now (null when missing), and the installed Debian package's (dpkg's md5sums), null when unknown. */
  md5: string | null;
  packagedMd5: string | null;
}

/** One check per iPXE binary in the TFTP root. */
export function judgeIpxe(files: readonly IpxeFileFacts[], ipxeSource: string): Check[] {
  return files.map((f) => {
    const id = `ipxe:${f.name}`;
    const title = `iPXE ${f.name}`;
    if (f.sha256 === null) {
      return { id, status: 'fail', title, detail: `missing: ${f.path} does not exist`, fix: `restart the server: it copies ${f.name} from ${ipxeSource} (Debian package ipxe) into the TFTP root` };
    }
    const packaged = f.packagedMd5 !== null && f.md5 !== null ? f.md5 === f.packagedMd5 : null;
    if (f.recorded === null) {
      if (packaged === true) return { id, status: 'ok', title, detail: `present, the installed Debian ipxe package's file (dpkg md5sums)`, fix: null };
      return { id, status: 'warn', title, detail: `${f.path} is there, but Fleetboot did not put it there (no recorded checksum): cannot tell whether it is intact`, fix: `to let Fleetboot manage it, delete it and restart the server (it copies it from ${ipxeSource})` };
    }
    if (f.recorded.sha256 !== f.sha256) {
      return {
        id,
        status: 'fail',
        title,
        detail: `${f.path} changed since it was copied from ${f.recorded.source} at ${f.recorded.at}: sha256 ${f.sha256.slice(0, 16)}…, recorded ${f.recorded.sha256.slice(0, 16)}…`,
        fix: 'delete it and restart the server to copy it again (or, if you replaced it on purpose, delete its entry from the manifest)',
      };
    }
    if (packaged === false) {
      return {
        id,
        status: 'warn',
        title,
        detail: `as copied from ${f.recorded.source} at ${f.recorded.at}, but not the installed Debian ipxe package's file (dpkg md5sums): the package was upgraded or its file changed since`,
        fix: 'delete it and restart the server to copy the installed one (or `apt-get install --reinstall ipxe` when /usr/lib/ipxe itself changed)',
      };
    }
    return { id, status: 'ok', title, detail: `present, sha256 ${f.sha256.slice(0, 16)}… as copied from ${f.recorded.source}${packaged === true ? ', the Debian package\'s file' : ''}`, fix: null };
  });
}

export interface BootEnvFacts {
  dir: string;
  /** Each needed file's SHA-256 now, null when missing or empty. */
  files: ReadonlyArray<{ name: string; sha256: string | null }>;
  /** bootenv.json's sha256 per file; null when bootenv.json is missing or unreadable. */
  recorded: Readonly<Record<string, string | null>> | null;
  /** The command that builds it for this server. */
  buildCommand: string;
}

/** The imaging boot environment: present, and as built (bootenv.json's checksums). */
export function judgeBootEnv(b: BootEnvFacts): Check {
  const id = 'bootenv';
  const title = `boot environment ${b.dir}`;
  const missing = b.files.filter((f) => f.sha256 === null).map((f) => f.name);
  if (missing.length === b.files.length) {
    return { id, status: 'fail', title, detail: `missing (no ${missing.join(', ')}): imaging tasks (capture, deploy, inventory) cannot boot`, fix: `build it: ${b.buildCommand}` };
  }
  if (missing.length > 0) return { id, status: 'fail', title, detail: `incomplete: ${missing.join(', ')} missing`, fix: `rebuild it: ${b.buildCommand} --force` };
  if (b.recorded === null) {
    return { id, status: 'warn', title, detail: 'present, but bootenv.json (its recorded checksums) is missing or unreadable: cannot tell whether the files are intact', fix: `rebuild it: ${b.buildCommand} --force` };
  }
  const rec = b.recorded;
  const changed = b.files.filter((f) => rec[f.name] !== undefined && rec[f.name] !== null && rec[f.name] !== f.sha256).map((f) => f.name);
  if (changed.length > 0) return { id, status: 'fail', title, detail: `${changed.join(', ')} changed since it was built (sha256 differs from bootenv.json)`, fix: `rebuild it: ${b.buildCommand} --force` };
  const unrecorded = b.files.filter((f) => !rec[f.name]).map((f) => f.name);
  if (unrecorded.length > 0) return { id, status: 'warn', title, detail: `bootenv.json records no checksum for ${unrecorded.join(', ')}: cannot tell whether it is intact`, fix: `rebuild it: ${b.buildCommand} --force` };
  return { id, status: 'ok', title, detail: `${b.files.map((f) => f.name).join(' and ')} present and match bootenv.json`, fix: null };
}

// ---- Secure Boot ----------------------------------------------------------------

export interface SecureBootFacts {
  mode: 'auto' | 'on' | 'off';
  dhcpMode: 'proxy' | 'server' | 'off';
  serverIp: string | null;
  signedDir: string;
  /** Each signed file: its source in signedDir and its copy in the TFTP root (sha256, null when missing). */
  files: ReadonlyArray<{ source: string; tftp: string; sourceSha256: string | null; tftpSha256: string | null }>;
  /** The TFTP root's grub/grub.cfg is there. */
  rootConfig: boolean;
  /** The boot environment's kernel: signed (by whom), why not, or null when it is missing. */
  bootEnvKernel: { signed: true; signer: string } | { signed: false; reason: string } | null;
}

/** uefi.secureBoot: the signed chain is in place, and what GRUB needs from the network. */
export function judgeSecureBoot(f: SecureBootFacts): Check[] {
  const title = 'Secure Boot (uefi.secureBoot)';
  if (f.mode === 'off') return [{ id: 'secure-boot', status: 'info', title, detail: "off: x64 UEFI machines get iPXE, which firmware with Secure Boot on refuses", fix: null }];
  const out: Check[] = [];
  const missing = f.files.filter((x) => x.sourceSha256 === null).map((x) => x.source);
  if (missing.length > 0) {
    out.push({ id: 'secure-boot', status: f.mode === 'on' ? 'fail' : 'warn', title, detail: `${f.mode}, but Debian's signed files are missing in ${f.signedDir}: ${missing.join(', ')}${f.mode === 'auto' ? ': x64 UEFI machines get iPXE' : ''}`, fix: 'run scripts/install-deps.sh (it extracts them from shim-signed and grub-efi-amd64-signed), then restart the server' });
    return out;
  }
  const stale = f.files.filter((x) => x.tftpSha256 !== x.sourceSha256).map((x) => x.tftp);
  if (stale.length > 0 || !f.rootConfig) {
    out.push({ id: 'secure-boot', status: 'fail', title, detail: `the TFTP root ${stale.length ? `has no current ${stale.join(', ')}` : ''}${stale.length && !f.rootConfig ? ' and ' : ''}${f.rootConfig ? '' : 'has no grub/grub.cfg'}`, fix: 'restart the server (it copies the signed files and writes grub/grub.cfg at start)' });
  } else {
    out.push({ id: 'secure-boot', status: 'ok', title, detail: `${f.mode}: x64 UEFI PXE firmware gets ${f.files.map((x) => x.tftp).join(' then ')} (Debian's signed chain) and grub/grub.cfg`, fix: null });
  }
  if (f.bootEnvKernel !== null) {
    if (f.bootEnvKernel.signed) out.push({ id: 'secure-boot:bootenv', status: 'ok', title: "the boot environment's kernel under Secure Boot", detail: `signed by ${f.bootEnvKernel.signer}`, fix: null });
    else out.push({ id: 'secure-boot:bootenv', status: 'fail', title: "the boot environment's kernel under Secure Boot", detail: `refused for Secure Boot machines: ${f.bootEnvKernel.reason}`, fix: "rebuild the boot environment from Debian's signed kernel (scripts/build-bootenv.sh --force)" });
  }
  if (f.dhcpMode === 'proxy') {
    out.push({
      id: 'secure-boot:next-server',
      status: 'warn',
      title: 'Secure Boot beside another DHCP server',
      detail: "Debian's GRUB finds its TFTP server in the address server's answer (next-server), never in the proxyDHCP's: doctor cannot see what the site's DHCP server sends",
      fix: `make the site's DHCP server send next-server ${f.serverIp ?? '<this server>'} to UEFI clients (fleetboot dhcp options --for isc|kea|dnsmasq|windows), or run --dhcp server`,
    });
  }
  return out;
}

// ---- the server address ------------------------------------------------------

/** The server address is on the interface it serves (config interface), or at least on this machine. */
export function judgeAddress(o: { serverIp: string; configuredInterface: string | null; interfaces: Readonly<Record<string, readonly string[]>> }): Check {
  const id = 'address';
  const holder = Object.entries(o.interfaces).find(([, addrs]) => addrs.includes(o.serverIp))?.[0] ?? null;
  if (o.configuredInterface !== null) {
    const title = `server address ${o.serverIp} on ${o.configuredInterface}`;
    const addrs = o.interfaces[o.configuredInterface];
    if (addrs === undefined) return { id, status: 'fail', title, detail: `there is no interface ${o.configuredInterface} (interfaces: ${Object.keys(o.interfaces).join(', ')})`, fix: 'set interface (--interface) to the interface on the clients\' segment' };
    if (addrs.includes(o.serverIp)) return { id, status: 'ok', title, detail: `${o.configuredInterface} has ${o.serverIp}`, fix: null };
    return {
      id,
      status: 'fail',
      title,
      detail: `${o.configuredInterface} has ${addrs.length ? addrs.join(', ') : 'no IPv4 address'}${holder ? `; ${o.serverIp} is on ${holder}` : `; ${o.serverIp} is on no interface of this machine`}`,
      fix: `clients are told to use ${o.serverIp}: set serverIp (--server-ip) to an address of ${o.configuredInterface}, or give ${o.configuredInterface} that address, then restart the server`,
    };
  }
  const title = `server address ${o.serverIp}`;
  if (holder !== null) return { id, status: 'ok', title, detail: `on ${holder}`, fix: null };
  return { id, status: 'fail', title, detail: `${o.serverIp} is on no interface of this machine: clients are told to use an address nobody answers`, fix: 'set serverIp (--server-ip) or interface (--interface) to this machine\'s address on the clients\' segment, then restart the server' };
}

// ---- the firewall ----------------------------------------------------------------

export interface FirewallPort {
  proto: 'udp' | 'tcp';
  port: number | [number, number];
  service: string;
  setting: string;
  /** Clients' packets to it answer what the server sent (TFTP data): established is enough. */
  replies: boolean;
}

/** Every number in the rules: where a port range's verdict can change. */
function numbersIn(v: unknown, out: Set<number>): void {
  if (typeof v === 'number') out.add(v);
  else if (Array.isArray(v)) for (const x of v) numbersIn(x, out);
  else if (typeof v === 'object' && v !== null) for (const x of Object.values(v)) numbersIn(x, out);
}

/** The ports of a range whose verdicts stand for all of it: its ends and each constant of the ruleset (and its neighbours) inside it. */
function samplePorts(port: number | [number, number], ruleset: unknown): number[] {
  if (!Array.isArray(port)) return [port];
  const [lo, hi] = port;
  const nums = new Set<number>();
  numbersIn(ruleset, nums);
  const out = new Set<number>([lo, hi]);
  for (const n of nums) for (const x of [n - 1, n, n + 1]) if (x >= lo && x <= hi && Number.isInteger(x)) out.add(x);
  return [...out].sort((a, b) => a - b);
}

function verdictFor(ruleset: unknown, p: FirewallPort, iface: string, state: NftPacket['ctState']): { verdict: NftVerdict; port: number } {
  let unknown: { verdict: NftVerdict; port: number } | null = null;
  for (const port of samplePorts(p.port, ruleset)) {
    const v = evaluateInput(ruleset, { proto: p.proto, dport: port, iifname: iface, ctState: state });
    if (v.verdict === 'drop') return { verdict: v, port };
    if (v.verdict === 'unknown') unknown ??= { verdict: v, port };
  }
  return unknown ?? { verdict: { verdict: 'accept' }, port: Array.isArray(p.port) ? p.port[0] : p.port };
}

const portText = (p: number | [number, number]): string => (Array.isArray(p) ? `${p[0]}-${p[1]}` : String(p));

/**
 * Whether nftables lets each port in, for a client's packet arriving on
 * `iface`. `ruleset` is `nft -j list ruleset`'s output, or null with
 * `unavailable` saying why it could not be read.
 */
export function judgeFirewall(o: { ruleset: unknown; unavailable: string | null; ports: readonly FirewallPort[]; iface: string }): Check[] {
  if (o.unavailable !== null) return [{ id: 'firewall', status: 'warn', title: 'firewall (nftables)', detail: `cannot tell: ${o.unavailable}`, fix: 'run doctor as root (nft needs it), or check the rules by hand against `fleetboot firewall --for nft`' }];
  let chains: number;
  try {
    chains = inputChainCount(o.ruleset);
  } catch (err) {
    if (!(err instanceof NftRulesetError)) throw err;
    return [{ id: 'firewall', status: 'warn', title: 'firewall (nftables)', detail: `cannot tell: ${err.message}`, fix: 'check the rules by hand against `fleetboot firewall --for nft`' }];
  }
  if (chains === 0) return [{ id: 'firewall', status: 'ok', title: 'firewall (nftables)', detail: 'no input chain: nothing coming in is filtered', fix: null }];
  return o.ports.map((p) => {
    const id = `firewall:${p.proto}/${portText(p.port)}`;
    const title = `firewall ${p.proto}/${portText(p.port)} (${p.service})`;
    const rule = `nft add rule inet filter input ${p.proto} dport ${portText(p.port)} accept`;
    const fresh = verdictFor(o.ruleset, p, o.iface, 'new');
    if (fresh.verdict.verdict === 'accept') return { id, status: 'ok', title, detail: `let in on ${o.iface}`, fix: null };
    if (p.replies && fresh.verdict.verdict === 'drop') {
      const back = verdictFor(o.ruleset, p, o.iface, 'established');
      if (back.verdict.verdict === 'accept') return { id, status: 'ok', title, detail: `let in as replies to what the server sends (ct state established) on ${o.iface}`, fix: null };
    }
    const at = Array.isArray(p.port) ? ` (port ${fresh.port})` : '';
    if (fresh.verdict.verdict === 'drop') {
      return { id, status: 'fail', title, detail: `dropped${at} by ${fresh.verdict.by}`, fix: `let it in, e.g. \`${rule}\` (all rules: fleetboot firewall --for nft)` };
    }
    return { id, status: 'warn', title, detail: `cannot tell${at}: ${fresh.verdict.verdict === 'unknown' ? fresh.verdict.why : ''}`, fix: `make sure the rules let ${p.proto}/${portText(p.port)} in (fleetboot firewall --for nft)` };
  });
}

// ---- the data directory -------------------------------------------------------------

export interface FileFacts {
  path: string;
  mode: number;
  uid: number;
}

export interface DataDirFacts {
  dir: FileFacts;
  /** Files that must be private (API token, database, TLS keys, server.json) that exist. */
  secrets: readonly FileFacts[];
  /** The server process's user; null when unknown. */
  serverUid: number | null;
  freeBytes: number;
  totalBytes: number;
}

/** Below this free space a capture fails soon: fail. */
export const FREE_FAIL_BYTES = 256 * 1024 * 1024;
/** Below this: warn. */
export const FREE_WARN_BYTES = 4 * 1024 * 1024 * 1024;

function gib(n: number): string {
  return n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(1)} GiB` : `${Math.round(n / 1024 ** 2)} MiB`;
}

const oct = (m: number): string => `0${(m & 0o777).toString(8).padStart(3, '0')}`;

export function judgeDataDir(d: DataDirFacts): Check[] {
  const out: Check[] = [];
  const space = `${gib(d.freeBytes)} free of ${gib(d.totalBytes)}`;
  if (d.freeBytes < FREE_FAIL_BYTES) out.push({ id: 'data-dir:space', status: 'fail', title: `free space in ${d.dir.path}`, detail: `${space}: captures and uploads will fail`, fix: 'free space (delete old image revisions: fleetboot image rm) or move the data directory to a larger disk' });
  else if (d.freeBytes < FREE_WARN_BYTES) out.push({ id: 'data-dir:space', status: 'warn', title: `free space in ${d.dir.path}`, detail: `${space}: a capture of a larger disk may not fit`, fix: 'free space or move the data directory to a larger disk' });
  else out.push({ id: 'data-dir:space', status: 'ok', title: `free space in ${d.dir.path}`, detail: space, fix: null });

  const problems: string[] = [];
  const warnings: string[] = [];
  if (d.dir.mode & 0o007) problems.push(`the directory is ${oct(d.dir.mode)}: other users can ${d.dir.mode & 0o004 ? 'list' : 'enter'} it`);
  else if (d.dir.mode & 0o070) warnings.push(`the directory is ${oct(d.dir.mode)}: its group can look into it`);
  for (const s of d.secrets) if (s.mode & 0o044) problems.push(`${s.path} is ${oct(s.mode)}: readable by ${s.mode & 0o004 ? 'every user' : 'its group'}`);
  if (d.serverUid !== null) {
    if (d.dir.uid !== d.serverUid) problems.push(`the directory belongs to uid ${d.dir.uid}, the server runs as uid ${d.serverUid}`);
    const foreign = d.secrets.filter((s) => s.uid !== d.serverUid);
    if (foreign.length) problems.push(`${foreign.map((s) => `${s.path} (uid ${s.uid})`).join(', ')} not owned by the server's user (uid ${d.serverUid})`);
  }
  const title = `permissions of ${d.dir.path}`;
  if (problems.length) {
    out.push({ id: 'data-dir:permissions', status: 'fail', title, detail: [...problems, ...warnings].join('; '), fix: `chmod 0700 the directory and 0600 the files named, owned by the server's user (chown -R USER ${d.dir.path})` });
  } else if (warnings.length) {
    out.push({ id: 'data-dir:permissions', status: 'warn', title, detail: warnings.join('; '), fix: `chmod 0700 ${d.dir.path}` });
  } else {
    out.push({ id: 'data-dir:permissions', status: 'ok', title, detail: `${oct(d.dir.mode)}, ${d.secrets.length} secret files private${d.serverUid !== null ? `, owned by the server's user (uid ${d.serverUid})` : ''}`, fix: null });
  }
  return out;
}

// ---- activity ------------------------------------------------------------------------

export interface Activity {
  dhcp: string | null;
  tftp: string | null;
  http: string | null;
}

/** When each subsystem last answered a client: information, never a failure. */
export function judgeActivity(a: Activity, running: { dhcp: boolean; tftp: boolean }, since: string, nowMs: number): Check[] {
  const line = (key: keyof Activity, name: string, on: boolean): Check => ({
    id: `activity:${key}`,
    status: 'info',
    title: `last ${name} answer`,
    detail: on ? `${ago(a[key], nowMs)}${a[key] === null ? ` (since the server started ${ago(since, nowMs)})` : ''}` : 'off',
    fix: null,
  });
  return [line('dhcp', 'DHCP', running.dhcp), line('tftp', 'TFTP', running.tftp), line('http', 'HTTP boot', true)];
}

export interface StoreFacts {
  dialect: 'sqlite' | 'postgres';
  /** The SQLite file, or the PostgreSQL URL without its password. */
  location: string;
  /** PostgreSQL: why it could not be reached, or null. */
  error: string | null;
  postgres: { serverVersion: string; collation: string; roundTripMs: number; migrated: boolean } | null;
}

/** Above this, every DHCP answer (committed before it leaves) and boot decision waits noticeably for the database. */
export const STORE_SLOW_MS = 20;

export function judgeStore(f: StoreFacts): Check[] {
  if (f.dialect === 'sqlite') return [{ id: 'store', status: 'ok', title: 'store', detail: `SQLite at ${f.location} (this server only)`, fix: null }];
  const title = 'store (PostgreSQL)';
  if (f.error !== null || f.postgres === null) {
    return [{ id: 'store', status: 'fail', title, detail: `cannot reach ${f.location}: ${f.error ?? 'no answer'}`, fix: 'check that PostgreSQL runs and accepts this server (listen_addresses, pg_hba.conf, the password in PGPASSWORD or ~/.pgpass), and that the URL names the right host and database' }];
  }
  const p = f.postgres;
  const out: Check[] = [];
  const rt = `${p.roundTripMs.toFixed(1)} ms round trip`;
  if (p.roundTripMs > STORE_SLOW_MS) out.push({ id: 'store', status: 'warn', title, detail: `PostgreSQL ${p.serverVersion} at ${f.location}, ${rt}: DHCP answers and boot decisions wait for it`, fix: 'put the database near the servers (same site, low latency), or give each site its own' });
  else out.push({ id: 'store', status: 'ok', title, detail: `PostgreSQL ${p.serverVersion} at ${f.location}, ${rt}`, fix: null });
  if (!p.migrated) out.push({ id: 'store:schema', status: 'warn', title: 'store schema', detail: 'the database has no Fleetboot tables yet: no server has opened it', fix: 'start a server with this URL (it creates the tables)' });
  if (p.collation !== 'C' && p.collation !== 'POSIX') {
    out.push({ id: 'store:collation', status: 'warn', title: 'store collation', detail: `the database sorts text by "${p.collation}", not "C": names, MACs and times sort differently from SQLite`, fix: 'create the database with: createdb -E UTF8 --locale=C -T template0 NAME (and move the data with pg_dump/pg_restore)' });
  }
  return out;
}

export interface NodeFacts {
  name: string;
  state: 'up' | 'down';
  heartbeatAgeSeconds: number;
  stoppedAt: string | null;
}

/** The nodes sharing the store: a node down without having stopped is a warning (its machines fall back to others). */
export function judgeNodes(nodes: readonly NodeFacts[], self: string | null): Check {
  const title = 'nodes';
  if (nodes.length === 0) return { id: 'nodes', status: 'info', title, detail: 'no node has registered', fix: null };
  const lost = nodes.filter((n) => n.state === 'down' && n.stoppedAt === null);
  const list = nodes.map((n) => `${n.name}${n.name === self ? ' (this one)' : ''} ${n.state}${n.state === 'down' ? (n.stoppedAt ? ' (stopped)' : ` (no heartbeat for ${n.heartbeatAgeSeconds} s)`) : ''}`).join(', ');
  if (lost.length) return { id: 'nodes', status: 'warn', title, detail: list, fix: `start ${lost.map((n) => n.name).join(', ')} again, or remove ${lost.length > 1 ? 'them' : 'it'} (fleetboot node rm NAME)` };
  return { id: 'nodes', status: 'ok', title, detail: list, fix: null };
}

export interface LagFacts {
  node: string;
  image: string;
  number: number;
  state: 'missing' | 'copying' | 'corrupt';
  since: string;
  holders: number;
  error: string | null;
}

function lasting(seconds: number): string {
  if (seconds < 120) return `${Math.max(0, Math.round(seconds))} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${Math.round(seconds / 86400)} days`;
}

/**
 * Replication lag (GET /api/v1/nodes replicationLag): per node that is up,
 * the assigned ready revisions it holds no verified copy of, and for how
 * long. Past `warnSeconds` it is a warning (a revision nobody can pull from,
 * no other holder, is one at once); under it, info (copies on their way).
 */
export function judgeReplication(lag: readonly LagFacts[], warnSeconds: number, nowMs: number): Check {
  const id = 'replication';
  const title = 'replication lag';
  if (lag.length === 0) return { id, status: 'ok', title, detail: 'every node that is up holds a verified copy of every ready revision assigned to it', fix: null };
  const byNode = new Map<string, LagFacts[]>();
  for (const l of lag) byNode.set(l.node, [...(byNode.get(l.node) ?? []), l]);
  const late = (l: LagFacts): boolean => l.holders === 0 || (nowMs - Date.parse(l.since)) / 1000 > warnSeconds;
  const parts: string[] = [];
  for (const [node, items] of byNode) {
    const oldest = Math.max(...items.map((l) => (nowMs - Date.parse(l.since)) / 1000));
    const counts = (['missing', 'copying', 'corrupt'] as const)
      .map((s) => [s, items.filter((l) => l.state === s).length] as const)
      .filter(([, n]) => n > 0)
      .map(([s, n]) => `${n} ${s}`)
      .join(', ');
    const worst = items.filter(late).slice(0, 3).map((l) => `${l.image} revision ${l.number} (${l.state}${l.holders === 0 ? ', no other node holds it verified' : ''}${l.error ? `: ${l.error}` : ''})`);
    parts.push(`${node}: ${items.length} revision${items.length > 1 ? 's' : ''} not verified (${counts}), the oldest for ${lasting(oldest)}${worst.length ? `; late: ${worst.join('; ')}` : ''}`);
  }
  const anyLate = lag.some(late);
  return {
    id,
    status: anyLate ? 'warn' : 'info',
    title,
    detail: parts.join(' | '),
    fix: anyLate ? `look at fleetboot image show NAME (each node's copy and its error) and the lagging node's log (subsystem replication); a revision no node holds verified cannot be pulled until one does (warning after ${lasting(warnSeconds)}: replication.lagWarnMinutes)` : null,
  };
}
