/**
 * entry / host / status commands: they speak only the HTTP API.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import type { BootEntry, BootEntryList, DeletedEntry, DeletedName, Host, HostList, Status } from '../http/schemas/index.js';
import { connect, CliError, type ApiClient } from './client.js';
import type { GlobalOptions } from './globals.js';
import { printJson, printLine, printTable } from './output.js';
import { parseHostCsv, type CsvHost } from './host-csv.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  return Buffer.concat(chunks).toString('utf8');
}

const isUrl = (s: string): boolean => /^https?:\/\//i.test(s);

/** The name a local file gets on the server: its base name, made safe and unique. */
export function serverFileName(localPath: string, taken: Set<string>): string {
  let name = basename(localPath)
    .replace(/[^A-Za-z0-9._+-]/g, '_')
    .slice(0, 120);
  if (!/^[A-Za-z0-9]/.test(name)) name = `f${name}`;
  let candidate = name;
  for (let i = 2; taken.has(candidate); i++) candidate = `${name}-${i}`;
  taken.add(candidate);
  return candidate;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function short(s: string, max = 48): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

async function addEntry(api: ApiClient, name: string, opts: { kernel: string; initrd: string[]; cmdline?: string }): Promise<BootEntry> {
  const taken = new Set<string>();
  const plan: Array<{ local: string; remote: string } | null> = [];
  const sources: string[] = [];
  for (const [what, src] of [['kernel', opts.kernel] as const, ...opts.initrd.map((s) => ['initrd', s] as const)]) {
    if (isUrl(src)) {
      plan.push(null);
      sources.push(src);
      continue;
    }
    let st;
    try {
      st = await stat(src);
    } catch {
      throw new CliError(`${what} ${src}: no such file (give a local file or an http(s) URL)`);
    }
    if (!st.isFile()) throw new CliError(`${what} ${src}: not a regular file`);
    const remote = serverFileName(src, taken);
    plan.push({ local: src, remote });
    sources.push(remote);
  }
  for (const p of plan) {
    if (p) await api.upload(`/entries/${encodeURIComponent(name)}/files/${encodeURIComponent(p.remote)}`, p.local);
  }
  const [kernel, ...initrds] = sources;
  return api.request<BootEntry>('POST', '/entries', { name, kernel, initrds, cmdline: opts.cmdline ?? '' });
}

function hostRow(h: Host): Array<string | null> {
  return [h.mac, h.name, h.ip, h.entry, h.updatedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z')];
}

function printHost(globals: GlobalOptions, h: Host, verb: string): void {
  if (globals.json) printJson(h);
  else printLine(`${verb} host ${h.mac}${h.name ? ` (${h.name})` : ''}: ${h.entry ? `boots entry ${h.entry}` : 'no boot entry (menu, then local disk)'}${h.ip ? `, reserved address ${h.ip}` : ''}`);
}

const macPath = (mac: string): string => `/hosts/${encodeURIComponent(mac)}`;

export function registerApiCommands(program: Command, globals: GlobalOptions): void {
  const api = (): Promise<ApiClient> => connect(globals);

  const entry = program.command('entry').description('boot entries: a kernel, initrds and a command line');
  entry
    .command('add')
    .description('add a boot entry; SRC is a local file (uploaded to the server) or an http(s) URL (used as is)')
    .argument('<name>', 'entry name: letters, digits, . _ - (up to 64)')
    .requiredOption('--kernel <src>', 'the kernel: local file or http(s) URL')
    .option('--initrd <src>', 'an initrd: local file or http(s) URL (repeat for several, in order)', collect, [])
    .option('--cmdline <text>', 'kernel command line')
    .action(async (name: string, opts: { kernel: string; initrd: string[]; cmdline?: string }) => {
      const e = await addEntry(await api(), name, opts);
      if (globals.json) printJson(e);
      else printLine(`Added boot entry ${e.name}: kernel ${e.kernel}${e.initrds.length ? `, initrds ${e.initrds.join(' ')}` : ''}${e.cmdline ? `, cmdline "${e.cmdline}"` : ''}`);
    });
  entry
    .command('list')
    .alias('ls')
    .description('list boot entries')
    .action(async () => {
      const { entries } = await (await api()).request<BootEntryList>('GET', '/entries');
      if (globals.json) printJson(entries);
      else printTable(['NAME', 'KERNEL', 'INITRDS', 'CMDLINE'], entries.map((e) => [e.name, short(e.kernel), e.initrds.map((i) => short(i, 32)).join(' '), short(e.cmdline, 60)]), 'No boot entries.');
    });
  entry
    .command('rm')
    .alias('remove')
    .description('delete a boot entry and its files (refused while hosts use it, unless --force)')
    .argument('<name>')
    .option('--force', 'unassign the hosts that use it first')
    .action(async (name: string, opts: { force?: boolean }) => {
      const r = await (await api()).request<DeletedEntry>('DELETE', `/entries/${encodeURIComponent(name)}${opts.force ? '?force=true' : ''}`);
      if (globals.json) printJson(r);
      else printLine(`Deleted boot entry ${r.deleted}${r.unassigned.length ? ` (unassigned ${r.unassigned.join(', ')})` : ''}`);
    });

  const host = program.command('host').description('hosts: machines by MAC address, the entry each boots and their reserved addresses');
  host
    .command('add')
    .description('add a host')
    .argument('<mac>', 'MAC address (52:54:00:12:34:56, 52-54-00-12-34-56 or 525400123456)')
    .option('--name <name>', 'a name for the host')
    .option('--entry <entry>', 'the boot entry it boots')
    .option('--ip <ip>', 'reserve this IPv4 address for it (DHCP server mode)')
    .action(async (mac: string, opts: { name?: string; entry?: string; ip?: string }) => {
      const h = await (await api()).request<Host>('POST', '/hosts', {
        mac,
        ...(opts.name ? { name: opts.name } : {}),
        ...(opts.entry ? { entry: opts.entry } : {}),
        ...(opts.ip ? { ip: opts.ip } : {}),
      });
      printHost(globals, h, 'Added');
    });
  host
    .command('reserve')
    .description('reserve an IPv4 address for a host: the DHCP server (server mode) always gives it that address')
    .argument('<mac>')
    .argument('<ip>')
    .action(async (mac: string, ip: string) => {
      printHost(globals, await (await api()).request<Host>('PATCH', macPath(mac), { ip }), 'Reserved');
    });
  host
    .command('unreserve')
    .description("remove a host's reserved address (it gets one from the pool)")
    .argument('<mac>')
    .action(async (mac: string) => {
      printHost(globals, await (await api()).request<Host>('PATCH', macPath(mac), { ip: null }), 'Unreserved');
    });
  host
    .command('assign')
    .description('make a host boot an entry')
    .argument('<mac>')
    .argument('<entry>')
    .action(async (mac: string, entryName: string) => {
      printHost(globals, await (await api()).request<Host>('PATCH', macPath(mac), { entry: entryName }), 'Assigned');
    });
  host
    .command('unassign')
    .description('remove the entry from a host (it gets the menu, then the local disk)')
    .argument('<mac>')
    .action(async (mac: string) => {
      printHost(globals, await (await api()).request<Host>('PATCH', macPath(mac), { entry: null }), 'Unassigned');
    });
  host
    .command('list')
    .alias('ls')
    .description('list hosts (approved ones; --pending: the inbox of machines registered from the boot menu)')
    .option('--pending', 'only hosts waiting for approval')
    .option('--search <text>', 'only hosts whose name, MAC (any spelling), address, serial or group contains TEXT')
    .option('--group <name>', 'only members of this group')
    .action(async (opts: { pending?: boolean; search?: string; group?: string }) => {
      const q = new URLSearchParams({ status: opts.pending ? 'pending' : 'approved' });
      if (opts.search !== undefined) q.set('q', opts.search);
      if (opts.group !== undefined) q.set('group', opts.group);
      const { hosts } = await (await api()).request<HostList>('GET', `/hosts?${q.toString()}`);
      if (globals.json) printJson(hosts);
      else printTable(['MAC', 'NAME', 'IP', 'ENTRY', 'UPDATED'], hosts.map(hostRow), opts.pending ? 'No pending hosts.' : 'No hosts.');
    });
  host
    .command('import')
    .description('add many hosts from a CSV file (columns mac,name,ip,entry,groups, or a header naming them; groups separated by ;), all or none')
    .argument('<file>', 'the CSV file ("-": standard input)')
    .option('--skip-existing', 'leave MACs that are already hosts as they are (default: refuse the whole import)')
    .action(async (file: string, opts: { skipExisting?: boolean }) => {
      let text: string;
      try {
        text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
      } catch (err) {
        throw new CliError(`Cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
      }
      let hosts: CsvHost[];
      try {
        hosts = parseHostCsv(text);
      } catch (err) {
        throw new CliError(`${file}: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (hosts.length === 0) throw new CliError(`${file}: no hosts in it`);
      const r = await (await api()).request<{ added: number; skipped: string[]; groupsCreated: string[] }>('POST', '/hosts/import', { hosts, ...(opts.skipExisting ? { skipExisting: true } : {}) });
      if (globals.json) printJson(r);
      else {
        printLine(`Imported ${r.added} host${r.added === 1 ? '' : 's'}${r.skipped.length ? `, skipped ${r.skipped.length} already known` : ''}`);
        if (r.groupsCreated.length) printLine(`Made group${r.groupsCreated.length === 1 ? '' : 's'} ${r.groupsCreated.join(', ')}`);
      }
    });
  host
    .command('approve')
    .description('approve a pending host (registered from the boot menu): it becomes a host that tasks and entries can be given to')
    .argument('<mac>')
    .option('--name <name>', 'a name for the host')
    .action(async (mac: string, opts: { name?: string }) => {
      printHost(globals, await (await api()).request<Host>('POST', `${macPath(mac)}/approve`, opts.name ? { name: opts.name } : {}), 'Approved');
    });
  host
    .command('reject')
    .description('reject a pending host (it is removed; the machine may register again)')
    .argument('<mac>')
    .action(async (mac: string) => {
      const r = await (await api()).request<{ rejected: string }>('POST', `${macPath(mac)}/reject`);
      if (globals.json) printJson(r);
      else printLine(`Rejected pending host ${r.rejected}`);
    });
  host
    .command('forget-inventory')
    .description("forget a host's inventory of record (after a hardware change: imaging tasks compare the machine with it)")
    .argument('<mac>')
    .action(async (mac: string) => {
      const r = await (await api()).request<DeletedName>('DELETE', `${macPath(mac)}/inventory`);
      if (globals.json) printJson(r);
      else printLine(`Forgot the inventory of host ${r.deleted}`);
    });
  host
    .command('rm')
    .alias('remove')
    .description('delete a host')
    .argument('<mac>')
    .action(async (mac: string) => {
      const r = await (await api()).request<DeletedName>('DELETE', macPath(mac));
      if (globals.json) printJson(r);
      else printLine(`Deleted host ${r.deleted}`);
    });

  program
    .command('status')
    .description('show the running server: version, addresses, ports')
    .action(async () => {
      const s = await (await api()).request<Status>('GET', '/status');
      if (globals.json) {
        printJson(s);
        return;
      }
      const show = (v: string | number | null): string => (v === null ? '-' : String(v));
      printTable(
        ['KEY', 'VALUE'],
        [
          ['version', s.version],
          ['node', show(s.node)],
          ['server ip', s.serverIp],
          ['boot script', s.bootScriptUrl],
          ['http port', show(s.http.port)],
          ['https port', s.https.port === null ? 'off' : String(s.https.port)],
          ['tftp', s.tftp.enabled ? `port ${show(s.tftp.port)}, root ${s.tftp.root}` : 'off'],
          ['dhcp', dhcpStatusText(s)],
          ['hosts', show(s.counts.hosts)],
          ['entries', show(s.counts.entries)],
          ['data dir', s.dataDir],
        ],
        '',
      );
    });
}

/**
 * The `dhcp` line of `fleetboot status`, from /api/v1/status: "proxy, ports
 * 67/4011", "server, ports 67/4011" or "off" (the mode as it runs).
 */
export function dhcpStatusText(status: unknown): string {
  const dhcp = typeof status === 'object' && status !== null ? (status as Record<string, unknown>)['dhcp'] : undefined;
  if (typeof dhcp !== 'object' || dhcp === null) return '-';
  const { mode, port, pxePort } = dhcp as Record<string, unknown>;
  if (mode === 'off') return 'off';
  if (typeof mode !== 'string') return '-';
  const show = (p: unknown): string => (typeof p === 'number' ? String(p) : '-');
  return `${mode}, ports ${show(port)}/${show(pxePort)}`;
}
