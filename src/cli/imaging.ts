/**
 * Imaging commands: `image list|show|set|rm`, `task capture|deploy|inventory|
 * list|show|cancel|retry|wait` and `host show`. They speak only the HTTP API
 * (/api/v1/images, /api/v1/tasks, /api/v1/hosts/:mac).
 */
import type { Command } from 'commander';
import { IMAGE_NODE_ENTRY_RULE, parseImageNodeEntry, type ImageNodes } from '../model/image-nodes.js';
import type { Inventory, Manifest } from '../model/manifest.js';
import type { DeletedName, HostDetail as ApiHostDetail, Image as ImageInfoOut, ImageDetail as ApiImageDetail, ImageList, ImageRevision, Submitted, Task, TaskList } from '../http/schemas/index.js';
import { defineTaskRequestCommands, parseRevision, queuedText } from './task-request.js';
import { connect, CliError, type ApiClient } from './client.js';
import { ExitStatus, type GlobalOptions } from './globals.js';
import { printJson, printLine, printTable } from './output.js';

/** GET /api/v1/images/:name (its schema leaves the manifest open: the server validated it when it was stored, src/model/manifest.ts). */
type ImageDetail = Omit<ApiImageDetail, 'manifest'> & { manifest: Manifest | null };

/** GET /api/v1/hosts/:mac (likewise the inventory, as the agent sent it). */
type HostDetail = Omit<ApiHostDetail, 'inventory'> & { inventory: Inventory | null };

const FINISHED = new Set<string>(['done', 'failed', 'cancelled']);

// ---------------------------------------------------------------- formatting

/** Bytes in binary units: 512 B, 1.5 KiB, 20.0 GiB (one decimal below 100, none above). */
export function formatBytes(n: number | null | undefined): string | null {
  if (n === null || n === undefined || !Number.isFinite(n)) return null;
  if (Math.abs(n) < 1024) return `${Math.round(n)} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n / 1024;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(Math.abs(v) >= 100 ? 0 : 1)} ${units[i]}`;
}

export function formatRate(bytesPerSecond: number | null | undefined): string | null {
  const b = formatBytes(bytesPerSecond);
  return b === null ? null : `${b}/s`;
}

/** 45s, 3m 05s, 2h 07m. */
export function formatDuration(seconds: number | null | undefined): string | null {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return null;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function formatPercent(done: number, total: number | null): string | null {
  if (total === null || total <= 0) return null;
  return `${Math.min(100, (100 * done) / total).toFixed(1)}%`;
}

export function time(iso: string | null): string | null {
  return iso === null ? null : iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** "1.2 GiB / 2.6 GiB (45.3%)", "1.2 GiB", or null when nothing moved yet and no total is known. */
export function formatProgress(t: Pick<Task, 'bytesDone' | 'bytesTotal'>): string | null {
  if (t.bytesTotal !== null && t.bytesTotal > 0) return `${formatBytes(t.bytesDone)} / ${formatBytes(t.bytesTotal)} (${formatPercent(t.bytesDone, t.bytesTotal)})`;
  return t.bytesDone > 0 ? formatBytes(t.bytesDone) : null;
}

/** One line about a task, as `task wait` prints it. */
export function taskLine(t: Task): string {
  const parts = [`task ${t.id} ${t.state}`];
  if (t.phase && !FINISHED.has(t.state)) parts.push(`phase ${t.phase}`);
  if (t.partition !== null && !FINISHED.has(t.state)) parts.push(`partition ${t.partition}`);
  const progress = formatProgress(t);
  if (progress) parts.push(progress);
  const rate = formatRate(t.rateBps);
  if (rate && !FINISHED.has(t.state)) parts.push(rate);
  const eta = formatDuration(t.etaSeconds);
  if (eta && !FINISHED.has(t.state)) parts.push(`ETA ${eta}`);
  if (t.error) parts.push(`error: ${t.error}`);
  else if (t.message) parts.push(t.message);
  return parts.join(', ');
}

/** Aligned "key  value" lines (no header); null values show as "-". */
export function printFields(rows: ReadonlyArray<readonly [string, string | number | null]>): void {
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) printLine(`${k.padEnd(w)}  ${v === null || v === '' ? '-' : String(v)}`);
}

export function what(t: Task): string {
  const host = `${t.mac}${t.hostName ? ` (${t.hostName})` : ''}`;
  if (t.type === 'capture') return `capture of ${host} into image ${t.image ?? '?'}`;
  if (t.type === 'deploy') return `deploy of image ${t.image ?? '?'} to ${host}`;
  return `${t.type} of ${host}`;
}

function taskRow(t: Task): Array<string | null> {
  const progress = t.bytesTotal !== null && t.bytesTotal > 0 ? formatPercent(t.bytesDone, t.bytesTotal) : formatBytes(t.bytesDone || null);
  return [String(t.id), t.jobId === null ? null : String(t.jobId), t.type, t.mac, t.hostName, t.image, t.state, t.phase, progress, time(t.updatedAt)];
}

function printTask(t: Task): void {
  printFields([
    ['task', t.id],
    ['type', t.type],
    ['host', `${t.mac}${t.hostName ? ` (${t.hostName})` : ''}`],
    ['image', t.image],
    ['state', t.state],
    ['phase', t.phase],
    ['progress', formatProgress(t)],
    ['rate', formatRate(t.rateBps)],
    ['eta', FINISHED.has(t.state) ? null : formatDuration(t.etaSeconds)],
    ['partition', t.partition],
    ['message', t.message],
    ['error', t.error],
    ['disk', t.options.disk ?? 'first fixed disk'],
    ...(t.type === 'deploy' ? [['table', t.options.table] as const] : []),
    ['attempts', t.attempts],
    ['retry of', t.retryOf],
    ['job', t.jobId],
    ['start at', t.state === 'scheduled' ? time(t.startAt) : null],
    ['wake', t.wake ? `yes (${t.wakeRounds} round${t.wakeRounds === 1 ? '' : 's'} sent${t.wokenAt ? `, last ${time(t.wokenAt)}` : ''})` : null],
    ['reboot', t.reboot ? 'by its endpoint agent once queued' : null],
    ['enrol', t.enrol ? 'a one-use enrolment token for its endpoint agent is written into the deployed system' : null],
    ['created', time(t.createdAt)],
    ['started', time(t.startedAt)],
    ['finished', time(t.finishedAt)],
    ['last seen', time(t.lastSeenAt)],
  ]);
}

/** One line: "QEMU Virtual CPU (1 socket, 2 cores, 2 threads), 2.0 GiB memory, 1 disk". */
export function inventorySummary(inv: Inventory): string {
  const cpu = inv.cpu;
  const n = (count: number | null, what: string): string | null => (count === null ? null : `${count} ${what}${count === 1 ? '' : 's'}`);
  const counts = [n(cpu.sockets, 'socket'), n(cpu.cores, 'core'), n(cpu.threads, 'thread')].filter((x) => x !== null);
  return `${cpu.model ?? 'unknown CPU'} (${counts.join(', ')}), ${formatBytes(inv.memoryBytes)} memory, ${inv.disks.length} disk${inv.disks.length === 1 ? '' : 's'}`;
}

function printHostDetail(h: HostDetail): void {
  const t = h.activeTask;
  printFields([
    ['mac', h.mac],
    ['name', h.name],
    ['entry', h.entry ?? 'none (menu, then local disk)'],
    ['reserved ip', h.ip],
    ['created', time(h.createdAt)],
    ['updated', time(h.updatedAt)],
    ['active task', t ? `${t.id}: ${t.type}${t.image ? ` ${t.image}` : ''}, ${t.state}${formatProgress(t) ? `, ${formatProgress(t)}` : ''}` : null],
    ['inventory', h.inventory ? `${inventorySummary(h.inventory)}; collected ${time(h.inventory.collectedAt)}` : 'none (run `fleetboot task inventory MAC`)'],
  ]);
  const inv = h.inventory;
  if (!inv) return;
  const s = inv.smbios;
  printLine('');
  printFields([
    ['cpu', inv.cpu.model],
    ['sockets', inv.cpu.sockets],
    ['cores', inv.cpu.cores],
    ['threads', inv.cpu.threads],
    ['memory', formatBytes(inv.memoryBytes)],
    ['manufacturer', s.manufacturer],
    ['product', s.product],
    ['serial', s.serial],
    ['uuid', s.uuid],
    ['bios', [s.biosVendor, s.biosVersion].filter((x) => x).join(' ') || null],
    ['firmware', inv.firmware],
  ]);
  printLine('');
  printTable(
    ['DISK', 'SIZE', 'MODEL', 'SERIAL', 'TYPE'],
    inv.disks.map((d) => [d.name, formatBytes(d.sizeBytes), d.model, d.serial, d.rotational === null ? null : d.rotational ? 'hdd' : 'ssd']),
    'No disks.',
  );
  printLine('');
  printTable(
    ['NIC', 'MAC', 'DRIVER', 'SPEED'],
    inv.nics.map((n) => [n.name, n.mac, n.driver, n.speedMbps === null ? null : `${n.speedMbps} Mb/s`]),
    'No network interfaces.',
  );
}

/** missing, copying n %, verified, corrupt (fleetboot image show). */
export function copyState(c: { state: string; bytesDone: number; bytesTotal: number }): string {
  if (c.state !== 'copying') return c.state;
  const pct = c.bytesTotal > 0 ? Math.floor((100 * c.bytesDone) / c.bytesTotal) : 0;
  return `copying ${pct} %`;
}

function printImage(img: ImageDetail): void {
  const m = img.manifest;
  printFields([
    ['image', img.name],
    ['created', time(img.createdAt)],
    ['current', img.revision !== null ? `revision ${img.revision}` : 'none (no approved revision yet)'],
    ['stored', formatBytes(img.sizeBytes)],
    ['disk', m ? `${formatBytes(img.diskBytes)}${m.source.diskModel ? ` (${m.source.diskModel})` : ''}` : null],
    ['table', m ? `${img.tableType === 'dos' ? 'MBR (dos)' : 'GPT'}, ${m.table.sectorSize}-byte sectors${m.table.id ? `, id ${m.table.id}` : ''}` : null],
    ['partitions', img.partitions],
    ['source', img.sourceMac ? `${img.sourceMac}${img.taskId !== null ? `, task ${img.taskId}` : ''}` : img.taskId !== null ? `task ${img.taskId}` : null],
    ['protected', img.protected ? 'yes (capture tasks into it are refused)' : 'no'],
    ['nodes', img.nodes === 'all' ? 'all' : img.nodes.join(', ')],
  ]);
  printLine('');
  printTable(
    ['REV', 'STATE', 'CREATED', 'SOURCE', 'SIZE', 'MANIFEST SHA256'],
    img.revisions.map((r) => [`${r.number}${r.current ? ' *' : ''}`, r.current ? 'current' : r.state, time(r.createdAt), r.sourceMac, formatBytes(r.sizeBytes), r.manifestSha256]),
    'No revisions.',
  );
  if (img.copies.length > 0) {
    printLine('');
    printTable(
      ['REV', 'NODE', 'COPY', 'VERIFIED', 'ERROR'],
      img.copies.map((c) => [String(c.number), c.node, copyState(c), c.verifiedAt ? time(c.verifiedAt) : null, c.error]),
      'No copies.',
    );
  }
  if (m) {
    printLine('');
    printTable(
      ['#', 'FS', 'TOOL', 'SIZE', 'USED', 'STREAM', 'SHA256'],
      m.partitions.map((p) => [String(p.number), p.filesystem, p.tool, formatBytes(p.sizeBytes), formatBytes(p.usedBytes), formatBytes(p.streamBytes), p.sha256.slice(0, 12)]),
      'No partitions.',
    );
  }
}


// ------------------------------------------------------------------ commands

/** `--nodes all|a,group:b` -> 'all' or the entries (each a node name or group:NAME, none twice). */
export function parseNodesOption(raw: string): ImageNodes {
  const v = raw.trim();
  if (v === 'all') return 'all';
  const entries = v.split(',').map((n) => n.trim());
  for (const n of entries) {
    if (parseImageNodeEntry(n) === null) throw new CliError(`Invalid --nodes ${JSON.stringify(raw)}: expected 'all' or entries separated by commas, each ${IMAGE_NODE_ENTRY_RULE}; got ${JSON.stringify(n)}`);
  }
  const twice = entries.find((n, i) => entries.indexOf(n) !== i);
  if (twice !== undefined) throw new CliError(`Invalid --nodes ${JSON.stringify(raw)}: '${twice}' is named twice`);
  return entries;
}

export function parseId(raw: string): number {
  if (!/^[1-9][0-9]{0,14}$/.test(raw)) throw new CliError(`Invalid task id ${JSON.stringify(raw)}: expected a positive integer`);
  return Number(raw);
}

function parseSeconds(raw: string, what: string, min: number): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < min) throw new CliError(`Invalid ${what} ${JSON.stringify(raw)}: expected a number of seconds >= ${min}`);
  return n;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface WaitOptions {
  timeout?: string;
  interval?: string;
}

/**
 * Poll a task until it is finished. Prints a progress line every few seconds
 * (and at every state or phase change); on a terminal it rewrites one line.
 * Network errors and 5xx (a server restarting) are retried until the timeout;
 * the server's address is read again each time (its port may change).
 */
async function waitTask(globals: GlobalOptions, id: number, opts: WaitOptions): Promise<void> {
  const timeoutS = opts.timeout === undefined ? null : parseSeconds(opts.timeout, '--timeout', 0);
  const intervalS = opts.interval === undefined ? 2 : parseSeconds(opts.interval, '--interval', 0.1);
  const deadline = timeoutS === null ? Infinity : Date.now() + timeoutS * 1000;
  const tty = process.stdout.isTTY === true && !globals.json;
  const printEveryMs = 5000;
  let api: ApiClient | null = null;
  let lastKey = '';
  let lastPrintAt = 0;
  let ttyWidth = 0;
  let unreachableSince: number | null = null;
  let task: Task | null = null;
  for (;;) {
    try {
      api ??= await connect(globals);
      task = await api.request<Task>('GET', `/tasks/${id}`);
      unreachableSince = null;
    } catch (err) {
      const transient = err instanceof CliError && (err.status === null || err.status >= 500);
      if (!transient) throw err;
      api = null;
      if (unreachableSince === null) {
        unreachableSince = Date.now();
        if (!globals.json) process.stderr.write(`fleetboot: ${err.message}; retrying\n`);
      }
    }
    if (task && FINISHED.has(task.state)) break;
    if (task && !globals.json) {
      const line = taskLine(task);
      const key = `${task.state}/${task.phase ?? ''}/${task.partition ?? ''}`;
      const now = Date.now();
      if (tty) {
        process.stdout.write(`\r${line.padEnd(ttyWidth)}`);
        ttyWidth = line.length;
      } else if (key !== lastKey || now - lastPrintAt >= printEveryMs) {
        printLine(line);
        lastPrintAt = now;
      }
      lastKey = key;
    }
    if (Date.now() >= deadline) {
      if (tty) printLine('');
      throw new CliError(`Timed out after ${timeoutS}s waiting for task ${id}${task ? ` (state ${task.state})` : ''}`);
    }
    await sleep(Math.max(0, Math.min(intervalS * 1000, deadline - Date.now())));
  }
  if (tty) printLine('');
  if (globals.json) printJson(task);
  else printLine(taskLine(task));
  if (task.state === 'failed') throw new CliError(`Task ${id} failed: ${task.error ?? 'no reason given'}`);
  if (task.state === 'cancelled') throw new CliError(`Task ${id} was cancelled`);
}

export function registerImagingCommands(program: Command, globals: GlobalOptions): void {
  const api = (): Promise<ApiClient> => connect(globals);
  const imagePath = (name: string): string => `/images/${encodeURIComponent(name)}`;

  // ---- image
  const image = program.command('image').description('disk images: made by capture tasks, written by deploy tasks');
  image
    .command('list')
    .alias('ls')
    .description('list images')
    .action(async () => {
      const { images } = await (await api()).request<ImageList>('GET', '/images');
      if (globals.json) printJson(images);
      else
        printTable(
          ['NAME', 'REV', 'REVS', 'CREATED', 'TABLE', 'PARTS', 'DISK', 'STORED', 'SOURCE'],
          images.map((i) => [
            i.name,
            i.revision !== null ? String(i.revision) : '-',
            `${i.revisionCount}${i.pending > 0 ? ` (${i.pending} pending)` : ''}`,
            time(i.createdAt),
            i.tableType === 'dos' ? 'mbr' : 'gpt',
            String(i.partitions),
            formatBytes(i.diskBytes),
            formatBytes(i.sizeBytes),
            i.sourceMac,
          ]),
          'No images.',
        );
    });
  image
    .command('rollback')
    .description('make an earlier revision current (default: the newest ready one before the current); deploys then write it')
    .argument('<name>')
    .option('--to <n>', 'the revision to make current')
    .action(async (name: string, opts: { to?: string }) => {
      const r = await (await api()).request<ImageRevision>('POST', `${imagePath(name)}/rollback`, opts.to !== undefined ? { to: parseRevision(opts.to) } : {});
      if (globals.json) printJson(r);
      else printLine(`Image ${name}: revision ${r.number} is current (manifest sha256 ${r.manifestSha256})`);
    });
  image
    .command('approve')
    .description('approve a pending revision (imaging.captureApproval): it becomes current')
    .argument('<name>')
    .argument('<n>')
    .action(async (name: string, n: string) => {
      const r = await (await api()).request<ImageRevision>('POST', `${imagePath(name)}/revisions/${parseRevision(n)}/approve`);
      if (globals.json) printJson(r);
      else printLine(`Image ${name}: revision ${r.number} approved and current`);
    });
  image
    .command('verify')
    .description("re-hash this server's verified copies of the image's revisions now (a mismatch marks the copy corrupt; replication pulls it again)")
    .argument('<name>')
    .action(async (name: string) => {
      const r = await (await api()).request<{ node: string | null; results: Array<{ revision: number; outcome: 'verified' | 'corrupt'; error?: string }> }>('POST', `${imagePath(name)}/verify`);
      if (globals.json) printJson(r);
      else if (r.results.length === 0) printLine(`Image ${name}: no verified copy on ${r.node ? `node ${r.node}` : 'this server'} to re-hash`);
      else for (const x of r.results) printLine(`Image ${name} revision ${x.revision} on ${r.node ? `node ${r.node}` : 'this server'}: ${x.outcome}${x.error ? ` (${x.error})` : ''}`);
      if (r.results.some((x) => x.outcome === 'corrupt')) throw new ExitStatus(1, 'a copy is corrupt: replication pulls it again from a node with a verified copy');
    });
  image
    .command('show')
    .description("an image's revisions (number, date, source host, size, manifest sha256) and the current one's partitions")
    .argument('<name>')
    .action(async (name: string) => {
      const img = await (await api()).request<ImageDetail>('GET', imagePath(name));
      if (globals.json) printJson(img);
      else printImage(img);
    });
  image
    .command('set')
    .description("change an image's settings: the nodes its revisions are replicated to (--nodes all, or a,b,group:c), protection against capture (--protect, --no-protect)")
    .argument('<name>')
    .option('--nodes <nodes>', "'all' (every node), or node names and group:NAME (every node whose node.groups has NAME) separated by commas")
    .option('--protect', 'refuse capture tasks into the image')
    .option('--no-protect', 'accept capture tasks into the image again')
    .action(async (name: string, opts: { nodes?: string; protect?: boolean }) => {
      const body: { nodes?: ImageNodes; protected?: boolean } = {};
      if (opts.nodes !== undefined) body.nodes = parseNodesOption(opts.nodes);
      if (opts.protect !== undefined) body.protected = opts.protect;
      if (Object.keys(body).length === 0) throw new CliError('Nothing to change: give --nodes all|NAME,group:NAME,..., --protect or --no-protect');
      const r = await (await api()).request<ImageInfoOut>('PATCH', imagePath(name), body);
      if (globals.json) printJson(r);
      else printLine(`Image ${r.name}: replicated to ${r.nodes === 'all' ? 'all nodes' : `nodes ${r.nodes.join(', ')}`}; ${r.protected ? 'protected against capture' : 'not protected'}`);
    });
  image
    .command('rm')
    .alias('remove')
    .description('delete an image and its files (refused while an active task uses it)')
    .argument('<name>')
    .action(async (name: string) => {
      const r = await (await api()).request<DeletedName>('DELETE', imagePath(name));
      if (globals.json) printJson(r);
      else printLine(`Deleted image ${r.deleted}`);
    });

  // ---- task
  const task = program.command('task').description('imaging tasks: capture, deploy, inventory; they run at the machine\'s next network boot');
  defineTaskRequestCommands(task, async (body) => {
    const r = await (await api()).request<Submitted>('POST', '/tasks', body);
    if (globals.json) printJson(r);
    else printLine(queuedText(r));
  });
  task
    .command('list')
    .alias('ls')
    .description('list tasks, newest first')
    .option('--mac <mac>', "only this host's tasks")
    .option('--active', 'only tasks not finished yet')
    .option('--limit <n>', 'at most this many (1-9999)')
    .action(async (opts: { mac?: string; active?: boolean; limit?: string }) => {
      const q = new URLSearchParams();
      if (opts.mac) q.set('mac', opts.mac);
      if (opts.active) q.set('active', 'true');
      if (opts.limit !== undefined) q.set('limit', opts.limit);
      const qs = q.toString();
      const { tasks } = await (await api()).request<TaskList>('GET', `/tasks${qs ? `?${qs}` : ''}`);
      if (globals.json) printJson(tasks);
      else printTable(['ID', 'JOB', 'TYPE', 'MAC', 'HOST', 'IMAGE', 'STATE', 'PHASE', 'PROGRESS', 'UPDATED'], tasks.map(taskRow), opts.active ? 'No active tasks.' : 'No tasks.');
    });
  task
    .command('show')
    .description('a task: state, phase, progress (bytes, percent, rate, ETA), error')
    .argument('<id>')
    .action(async (raw: string) => {
      const t = await (await api()).request<Task>('GET', `/tasks/${parseId(raw)}`);
      if (globals.json) printJson(t);
      else printTask(t);
    });
  task
    .command('cancel')
    .description('cancel a task that has not finished (a running agent stops at its next report)')
    .argument('<id>')
    .action(async (raw: string) => {
      const t = await (await api()).request<Task>('POST', `/tasks/${parseId(raw)}/cancel`);
      if (globals.json) printJson(t);
      else printLine(`Cancelled task ${t.id}: ${what(t)}`);
    });
  task
    .command('retry')
    .description('queue a failed or cancelled task again, as a new task')
    .argument('<id>')
    .action(async (raw: string) => {
      const t = await (await api()).request<Task>('POST', `/tasks/${parseId(raw)}/retry`);
      if (globals.json) printJson(t);
      else printLine(`Queued task ${t.id} (retry of ${t.retryOf ?? raw}): ${what(t)}`);
    });
  task
    .command('wait')
    .description('wait until a task is finished, printing its progress; exit status 0 when it is done, 1 when it failed, was cancelled or the timeout passed')
    .argument('<id>')
    .option('--timeout <seconds>', 'give up after this long (default: wait for ever)')
    .option('--interval <seconds>', 'seconds between polls', '2')
    .action(async (raw: string, opts: WaitOptions) => {
      await waitTask(globals, parseId(raw), opts);
    });

  // ---- host show (the other host commands are in commands.ts)
  const host = program.commands.find((c) => c.name() === 'host');
  if (!host) throw new TypeError('registerImagingCommands() must run after registerApiCommands() (no `host` command)');
  host
    .command('show')
    .description('a host: its entry, reserved address, active task and hardware inventory')
    .argument('<mac>')
    .action(async (mac: string) => {
      const h = await (await api()).request<HostDetail>('GET', `/hosts/${encodeURIComponent(mac)}`);
      if (globals.json) printJson(h);
      else printHostDetail(h);
    });
}
