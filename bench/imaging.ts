/**
 * Imaging benchmark: Fleetboot's deploy and capture of a 2 GiB OS-like disk,
 * in the same run as the two limits they sit under, on a lab bridge.
 *
 *   node --import tsx bench/imaging.ts [--size-gib 2] [--reps 3] [--concurrent 8]
 *        [--out bench/results/imaging.md]
 *
 * Source disk (cached in test/.cache/bench, built once): MBR, p1 ext4 filled
 * with real files copied from /usr (binaries, libraries, text) to ~75 % of
 * the disk, p2 FAT32 with a few libraries. Attached read-only to a loop device.
 *
 * Lab: a server namespace runs `fleetboot serve --dhcp off --no-tftp` (from
 * the sources, tsx) and nginx (nginx-light, own config, serving Fleetboot's
 * stored image directory and accepting PUT through its dav module), both
 * pinned to CPU 0; a client namespace runs the imaging agent (bundled with
 * esbuild, as the boot environment runs it), curl and their children
 * (zstd, partclone) pinned to CPU 1.
 *
 * Deploy, per repetition (order rotated):
 *   curl      curl -o /dev/null of every stream file from nginx (transport limit)
 *   local     agent `deploy --disk LOOP --from DIR` from the same image
 *             directory on the client's file system (client limit: zstd -d + partclone)
 *   fleetboot a deploy task, its token from the boot decision, `agent run --url`
 * Capture, per repetition:
 *   curl-put  curl -T of the locally captured stream files to nginx (dav PUT)
 *   local     agent `capture --disk LOOP --out DIR` (client limit: partclone + zstd)
 *   fleetboot a capture task + `agent run --url` (this also makes the image
 *             the deploys use)
 * Then N machines (loop devices, one agent each) deploy at once through
 * Fleetboot. The server's peak resident memory (VmHWM of the node process)
 * is sampled all along.
 *
 * Times: the agent's own figure (start of its job to its end, the same code
 * path for local and server runs) and the wall time of the process; curl's
 * wall time. CPU: the server's from /proc/PID/stat, the client's as the
 * children's CPU time of the shell that runs it (node + zstd + partclone).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, statfsSync, writeFileSync, copyFileSync, lstatSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { program, resolveArgv, type Argv, type ProgramName } from '../src/lib/programs.js';
import { Lab, labAvailable } from '../test/lab/lab.js';
import { ProcessLog } from '../test/lab/bootenv/services.js';
import { appendResults, cleanupStack, median } from './lib.js';

const execFileP = promisify(execFile);
const repo = join(dirname(fileURLToPath(import.meta.url)), '..');

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : def;
}
const SIZE_GIB = Number(arg('size-gib', '2'));
const REPS = Number(arg('reps', '3'));
const CONCURRENT = Number(arg('concurrent', '8'));
const OUT = arg('out', join(repo, 'bench/results/imaging.md'));
const CACHE = join(repo, 'test/.cache/bench');
if (!(SIZE_GIB >= 0.25 && SIZE_GIB <= 16)) throw new RangeError(`--size-gib must be 0.25-16: current value is ${SIZE_GIB}`);
if (!(Number.isInteger(REPS) && REPS >= 1)) throw new RangeError(`--reps must be a positive integer: current value is ${REPS}`);
if (!(Number.isInteger(CONCURRENT) && CONCURRENT >= 1 && CONCURRENT <= 16)) throw new RangeError(`--concurrent must be 1-16: current value is ${CONCURRENT}`);

const SUBNET = '10.213.77';
const SERVER_IP = `${SUBNET}.1`;
const CLIENT_IP = `${SUBNET}.2`;
const FB_PORT = 8080;
const NGINX_PORT = 8081;
const CLK_TCK = 100;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (msg: string): void => void process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);

async function sh(cmd: ProgramName, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(program(cmd), args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

// Undone last-in first-out, once: from the finally at the end or from a signal.
const cleanups = cleanupStack();
const cleanup = (): Promise<void> => cleanups.run();

async function attachLoop(file: string, opts: { readOnly?: boolean } = {}): Promise<string> {
  const dev = (await sh('losetup', ['-f', '-P', '--show', ...(opts.readOnly ? ['-r'] : []), file])).trim();
  cleanups.push(() => sh('losetup', ['-d', dev]).then(() => undefined));
  await sh('partx', ['-u', dev]).catch(() => '');
  return dev;
}

async function waitPath(path: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`${path} did not appear within ${ms} ms`);
    await sleep(50);
  }
}

// ---- the source disk ----

/** Regular files under `roots`, depth first, in a stable order. */
function* walkFiles(root: string): Generator<string> {
  let entries: string[];
  try {
    entries = readdirSync(root).sort();
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(root, e);
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) yield* walkFiles(p);
    else if (st.isFile()) yield p;
  }
}

/** Copy real files from `roots` into `dest` (keeping their paths), round after round, until `targetBytes` are copied. */
function fillWith(dest: string, roots: string[], targetBytes: number, maxFileBytes = 64 << 20): number {
  let copied = 0;
  for (let round = 0; copied < targetBytes; round++) {
    const before = copied;
    for (const root of roots) {
      for (const f of walkFiles(root)) {
        let size: number;
        try {
          size = statSync(f).size;
        } catch {
          continue;
        }
        if (size > maxFileBytes) continue;
        const to = join(dest, `r${round}`, relative('/', f));
        mkdirSync(dirname(to), { recursive: true });
        try {
          copyFileSync(f, to);
        } catch {
          continue; // unreadable (sockets, races): skip
        }
        copied += size;
        if (copied >= targetBytes) return copied;
      }
    }
    if (copied === before) throw new Error(`nothing to copy from ${roots.join(', ')}`);
  }
  return copied;
}

/** The cached source disk (built on first use): MBR, p1 ext4 ~75 % full of /usr files, p2 FAT32 with some libraries. */
async function sourceDisk(): Promise<string> {
  mkdirSync(CACHE, { recursive: true });
  const file = join(CACHE, `source-${SIZE_GIB}g.img`);
  const ok = `${file}.ok`;
  if (existsSync(file) && existsSync(ok)) return file;
  rmSync(file, { force: true });
  log(`building the source disk ${file} (once; cached)`);
  const sizeMiB = Math.round(SIZE_GIB * 1024);
  const fatMiB = Math.max(64, Math.round(sizeMiB * 0.05));
  await sh('truncate', ['-s', `${sizeMiB}M`, file]);
  const dev = (await sh('losetup', ['-f', '-P', '--show', file])).trim();
  const mnt = mkdtempSync(join(tmpdir(), 'fb-bench-src-'));
  let mounted = false;
  try {
    await sh('sfdisk', ['-q', dev], `label: dos\nlabel-id: 0x0fb0b0b0\nstart=2048, size=${sizeMiB - fatMiB - 2}MiB, type=83, bootable\ntype=c\n`);
    await sh('partx', ['-u', dev]).catch(() => '');
    await waitPath(`${dev}p2`);
    await sh('mkfs.ext4', ['-q', '-F', '-L', 'fbroot', `${dev}p1`]);
    await sh('mkfs.vfat', ['-F', '32', '-n', 'FBBOOT', `${dev}p2`]);
    await sh('mount', [`${dev}p1`, mnt]);
    mounted = true;
    const target = Math.round(sizeMiB * 0.75) * 1024 * 1024;
    const copied = fillWith(mnt, ['/usr/bin', '/usr/sbin', '/usr/lib', '/usr/share', '/usr/include', '/usr/libexec'], target);
    log(`ext4: ${(copied / 2 ** 20).toFixed(0)} MiB of files copied`);
    await sh('sync', []);
    await sh('umount', [mnt]);
    mounted = false;
    // FAT (no vfat in this kernel: mtools): a boot-partition-like mix of libraries.
    const fatDir = mkdtempSync(join(tmpdir(), 'fb-bench-fat-'));
    try {
      fillWith(fatDir, ['/usr/lib/x86_64-linux-gnu'], Math.round(fatMiB * 0.6) * 1024 * 1024, 8 << 20);
      await sh('mcopy', ['-s', '-Q', '-i', `${dev}p2`, ...readdirSync(fatDir).map((e) => join(fatDir, e)), '::/']);
    } finally {
      rmSync(fatDir, { recursive: true, force: true });
    }
  } finally {
    if (mounted) await sh('umount', [mnt]).catch(() => sh('umount', ['-l', mnt]).catch(() => ''));
    rmSync(mnt, { recursive: true, force: true });
    await sh('losetup', ['-d', dev]).catch(() => '');
  }
  writeFileSync(ok, new Date().toISOString());
  return file;
}

// ---- process measurements ----

function procCpuS(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime
  } catch {
    return 0;
  }
}

function procKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+)\\s+kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

interface ClientRun {
  stdout: string;
  stderr: string;
  wallS: number;
  /** CPU time (user+sys) of the command and all its children. */
  cpuS: number;
}

/**
 * Run argv in the client namespace, pinned to CPU 1, through a shell that
 * prints its children's CPU time (cutime + cstime) when the command is done.
 */
function clientRun(lab: Lab, argv: Argv): Promise<ClientRun> {
  const script = '"$@"; rc=$?; set -- $(cat /proc/$$/stat); echo "@@cpu ${16} ${17}" >&2; exit $rc';
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(program('ip'), ['netns', 'exec', lab.host('cli').netns, program('taskset'), '-c', '1', program('sh'), '-c', script, 'sh', ...resolveArgv(argv)], { stdio: ['ignore', 'pipe', 'pipe'], cwd: repo });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const wallS = (performance.now() - t0) / 1000;
      const m = /@@cpu (\d+) (\d+)/.exec(stderr);
      const cpuS = m ? (Number(m[1]) + Number(m[2])) / CLK_TCK : 0;
      stderr = stderr.replace(/@@cpu .*\n?/, '');
      if (code !== 0) reject(new Error(`${argv.join(' ')} exited with ${code}:\n${stderr.slice(-3000)}\n${stdout.slice(-2000)}`));
      else resolve({ stdout, stderr, wallS, cpuS });
    });
  });
}

/** Wait (up to 15 s) for the 1-minute load average to drop under 1.5; returns the load seen at the start of the measurement. */
async function quiet(): Promise<number> {
  await sh('sync', []);
  const deadline = Date.now() + 15_000;
  while (loadavg()[0] as number > 1.5 && Date.now() < deadline) await sleep(5000);
  return loadavg()[0] as number;
}

interface Sample {
  /** The agent's job time (deploy/capture), or curl's wall time. */
  seconds: number;
  wallS: number;
  clientCpuS: number;
  serverCpuS: number;
  load1: number;
}

interface ImageFacts {
  streamBytes: number;
  dataBytes: number;
  files: string[];
}

async function main(): Promise<void> {
  if (!(await labAvailable())) throw new Error('the benchmark needs root and ip netns (a lab)');
  const tools: ProgramName[] = ['nginx', 'curl', 'partclone.extfs', 'partclone.fat', 'zstd', 'mcopy', 'taskset'];
  for (const tool of tools) {
    await sh('sh', ['-c', `command -v ${tool}`]).catch(() => {
      throw new Error(`${tool} is missing: run bash scripts/install-deps.sh --with-test`);
    });
  }
  const loadAtStart = loadavg();
  const startedAt = new Date();
  const srcFile = await sourceDisk();

  const work = mkdtempSync(join(tmpdir(), 'fb-imaging-bench-'));
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  const freeGiB = (statfsSync(work).bavail * statfsSync(work).bsize) / 2 ** 30;
  const needGiB = SIZE_GIB * (CONCURRENT + 3);
  if (freeGiB < needGiB) throw new Error(`${work}: ${freeGiB.toFixed(0)} GiB free, the run needs about ${needGiB.toFixed(0)} GiB`);

  // The agent, bundled as the boot environment carries it.
  const agent = join(work, 'agent.mjs');
  await build({ entryPoints: [join(repo, 'src/agent/main.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning', outfile: agent });

  const srcDev = await attachLoop(srcFile, { readOnly: true });
  const targets: string[] = [];
  for (let i = 0; i < CONCURRENT; i++) {
    const f = join(work, `target${i}.img`);
    await sh('truncate', ['-s', `${Math.round(SIZE_GIB * 1024)}M`, f]);
    targets.push(await attachLoop(f));
  }
  const target0 = targets[0] as string;
  // Give back the space a deployed target took (loop discard punches holes in the file).
  const blank = async (dev: string): Promise<void> => {
    await sh('blkdiscard', [dev]).catch(() => sh('wipefs', ['-a', dev]));
  };

  const lab = await Lab.create({ subnet: SUBNET });
  cleanups.push(() => lab.destroy());
  const srv = await lab.addHost('srv', SERVER_IP);
  await lab.addHost('cli', CLIENT_IP);

  // Fleetboot, pinned to CPU 0; a stand-in boot environment so boot decisions hand out task tokens.
  const dataDir = join(work, 'data');
  mkdirSync(join(dataDir, 'bootenv'), { recursive: true });
  writeFileSync(join(dataDir, 'bootenv', 'vmlinuz'), 'kernel');
  writeFileSync(join(dataDir, 'bootenv', 'initrd.img'), 'initrd');
  const cfg = join(work, 'fleetboot.json');
  writeFileSync(cfg, JSON.stringify({ imaging: { maxTransfers: Math.max(10, CONCURRENT) } }));
  const fbArgv: Argv = ['taskset', '-c', '0', process.execPath, '--import', 'tsx', join(repo, 'src/cli/main.ts'), 'serve', '--allow-root', '--config', cfg,
    '--data-dir', dataDir, '--interface', 'eth0', '--server-ip', SERVER_IP, '--http-port', String(FB_PORT), '--dhcp', 'off', '--no-tftp', '--log-level', 'warn'];
  const fb = new ProcessLog('fleetboot', lab.spawnIn(srv.netns, fbArgv, { cwd: repo }));
  const baseUrl = `http://${SERVER_IP}:${FB_PORT}`;
  for (let i = 0; ; i++) {
    if (!fb.running) throw new Error(`fleetboot serve exited during start:\n${fb.tail()}`);
    const code = await lab.exec('cli', ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', `${baseUrl}/`]).catch(() => '000');
    if (code.trim() !== '000' && existsSync(join(dataDir, 'server.json'))) break;
    if (i > 100) throw new Error(`fleetboot serve did not start:\n${fb.tail()}`);
    await sleep(300);
  }
  // ip -> taskset -> node each exec: the spawned pid is the server's node process.
  const fbPid = fb.child.pid as number;
  const comm = readFileSync(`/proc/${fbPid}/comm`, 'utf8').trim();
  if (comm !== 'node') throw new Error(`pid ${fbPid} is ${comm}, not the server's node process`);

  // Server memory, sampled all along.
  let peakRssKiB = 0;
  let peakRssConcKiB = 0;
  let inConcurrent = false;
  const sampler = setInterval(() => {
    const rss = procKiB(fbPid, 'VmRSS');
    peakRssKiB = Math.max(peakRssKiB, rss);
    if (inConcurrent) peakRssConcKiB = Math.max(peakRssConcKiB, rss);
  }, 100);
  cleanups.push(() => clearInterval(sampler));
  const rssAfterStartKiB = procKiB(fbPid, 'VmRSS');

  const cli = (args: string[]): Promise<string> =>
    lab.nsExec(srv.netns, ['env', '-C', repo, process.execPath, '--import', 'tsx', join(repo, 'src/cli/main.ts'), ...args, '--data-dir', dataDir]);
  const token = async (mac: string): Promise<{ task: string; token: string }> => {
    const script = await lab.exec('cli', ['curl', '-s', '--max-time', '10', `${baseUrl}/boot/decide?mac=${mac.replace(/:/g, '-')}&platform=pcbios`]);
    const task = /fleetboot\.task=(\d+)/.exec(script)?.[1];
    const tok = /fleetboot\.token=([0-9a-f]+)/.exec(script)?.[1];
    if (!task || !tok) throw new Error(`no task in the boot decision for ${mac}:\n${script}`);
    return { task, token: tok };
  };
  const taskState = async (id: string): Promise<{ state: string; error: string | null }> => JSON.parse(await cli(['task', 'show', id, '--json'])) as { state: string; error: string | null };
  const macs = Array.from({ length: CONCURRENT + 1 }, (_, i) => `52:54:00:be:00:${(i + 1).toString(16).padStart(2, '0')}`);
  for (const [i, mac] of macs.entries()) await cli(['host', 'add', mac, '--name', i === 0 ? 'bench-ref' : `bench-${i}`]);
  const refMac = macs[0] as string;

  /** An agent job's own time from its output ("task N done in X s" or the local summary). */
  const agentSeconds = (out: string): number => {
    const m = /task \d+ done in ([\d.]+) s/.exec(out);
    if (m) return Number(m[1]);
    const line = out.split('\n').find((l) => l.startsWith('{"ok":true'));
    if (!line) throw new Error(`no summary from the agent:\n${out.slice(-2000)}`);
    return Number((JSON.parse(line) as { seconds: number }).seconds);
  };
  const measure = async (fn: () => Promise<ClientRun>, seconds: (r: ClientRun) => number): Promise<Sample> => {
    const load1 = await quiet();
    const s0 = procCpuS(fbPid);
    const r = await fn();
    return { seconds: seconds(r), wallS: r.wallS, clientCpuS: r.cpuS, serverCpuS: procCpuS(fbPid) - s0, load1 };
  };
  const samples = new Map<string, Sample[]>();
  const record = (key: string, s: Sample, bytes: number): void => {
    samples.set(key, [...(samples.get(key) ?? []), s]);
    log(`${key}: ${s.seconds.toFixed(2)} s (wall ${s.wallS.toFixed(2)} s), ${(bytes / 1e6 / s.seconds).toFixed(1)} MB/s compressed, client CPU ${s.clientCpuS.toFixed(1)} s, server CPU ${s.serverCpuS.toFixed(1)} s, load ${s.load1.toFixed(2)}`);
  };

  // ---- nginx: serves the image directory (set after the first capture) and takes PUTs ----
  const ngx = join(work, 'nginx');
  mkdirSync(join(ngx, 'up'), { recursive: true });
  const startNginx = async (root: string): Promise<ProcessLog> => {
    const conf = join(ngx, 'nginx.conf');
    writeFileSync(conf, [
      'daemon off;', 'master_process on;', 'worker_processes 1;', 'user root root;',
      `pid ${join(ngx, 'nginx.pid')};`, `error_log ${join(ngx, 'error.log')} warn;`,
      'events { worker_connections 256; }',
      'http {',
      '  access_log off; sendfile on; tcp_nopush on; keepalive_timeout 30;',
      '  client_max_body_size 0;',
      `  client_body_temp_path ${join(ngx, 'body')};`,
      `  proxy_temp_path ${join(ngx, 'proxy')}; fastcgi_temp_path ${join(ngx, 'fcgi')}; uwsgi_temp_path ${join(ngx, 'uwsgi')}; scgi_temp_path ${join(ngx, 'scgi')};`,
      `  server { listen ${SERVER_IP}:${NGINX_PORT}; root ${root};`,
      `    location /up/ { alias ${join(ngx, 'up')}/; dav_methods PUT; }`,
      '  }',
      '}',
    ].join('\n'));
    const p = new ProcessLog('nginx', lab.spawnIn(srv.netns, ['taskset', '-c', '0', 'nginx', '-c', conf, '-p', ngx], { cwd: ngx }));
    for (let i = 0; ; i++) {
      const code = await lab.exec('cli', ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', `http://${SERVER_IP}:${NGINX_PORT}/`]).catch(() => '000');
      if (code.trim() !== '000') return p;
      if (!p.running || i > 50) throw new Error(`nginx did not start:\n${p.tail()}\n${existsSync(join(ngx, 'error.log')) ? readFileSync(join(ngx, 'error.log'), 'utf8') : ''}`);
      await sleep(200);
    }
  };

  // ---- capture ----
  const localImage = join(work, 'local-image');
  let nginx = null as ProcessLog | null;
  const factsOf = (dir: string): ImageFacts => {
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { partitions: Array<{ file: string; streamBytes: number; usedBytes: number | null; sizeBytes: number }> };
    return {
      streamBytes: m.partitions.reduce((s, p) => s + p.streamBytes, 0),
      dataBytes: m.partitions.reduce((s, p) => s + (p.usedBytes ?? p.sizeBytes), 0),
      files: m.partitions.map((p) => p.file),
    };
  };
  const storeImageDir = (): string => {
    const d = readdirSync(join(dataDir, 'images'), { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.startsWith('.'));
    if (d.length !== 1) throw new Error(`expected one image directory in the store, found ${d.length}`);
    return join(dataDir, 'images', (d[0] as { name: string }).name);
  };
  const putLocalStreams = async (): Promise<Sample> => {
    const f = factsOf(localImage);
    const args = f.files.flatMap((file) => ['-T', join(localImage, file), `http://${SERVER_IP}:${NGINX_PORT}/up/${file}`]);
    nginx ??= await startNginx(ngx); // serving the image directory comes after the captures
    const s = await measure(() => clientRun(lab, ['curl', '-s', '-S', '--fail', ...args]), (r) => r.wallS);
    for (const file of f.files) rmSync(join(ngx, 'up', file), { force: true });
    return s;
  };
  const captureOrder = ['local', 'fleetboot'] as const;
  for (let rep = 0; rep < REPS; rep++) {
    for (let k = 0; k < captureOrder.length; k++) {
      const what = captureOrder[(k + rep) % captureOrder.length] as (typeof captureOrder)[number];
      if (what === 'local') {
        rmSync(localImage, { recursive: true, force: true });
        const s = await measure(() => clientRun(lab, ['node', agent, 'capture', '--disk', srcDev, '--out', localImage]), (r) => agentSeconds(r.stdout));
        record('capture/local', s, factsOf(localImage).streamBytes);
      } else {
        const t = JSON.parse(await cli(['task', 'capture', refMac, '--image', 'bench', '--disk', srcDev, '--json'])) as { id: number };
        const tk = await token(refMac);
        if (Number(tk.task) !== t.id) throw new Error(`the boot decision gave task ${tk.task}, not ${t.id}`);
        const s = await measure(() => clientRun(lab, ['node', agent, 'run', '--url', baseUrl, '--task', tk.task, '--token', tk.token, '--disk', srcDev]), (r) => agentSeconds(r.stdout));
        const st = await taskState(tk.task);
        if (st.state !== 'done') throw new Error(`capture task ${tk.task}: ${st.state} ${st.error ?? ''}`);
        record('capture/fleetboot', s, factsOf(storeImageDir()).streamBytes);
      }
    }
    // The same compressed bytes (the local capture's stream files) uploaded by curl.
    record('capture/curl-put', await putLocalStreams(), factsOf(localImage).streamBytes);
  }
  const localFacts = factsOf(localImage);
  const imageDir = storeImageDir();
  const facts = factsOf(imageDir);
  log(`image: ${facts.files.join(', ')}; ${(facts.streamBytes / 1e6).toFixed(1)} MB compressed, ${(facts.dataBytes / 1e6).toFixed(1)} MB partition data`);
  // nginx now serves Fleetboot's stored image directory: the very bytes the deploys fetch.
  if (nginx) await nginx.stop();
  nginx = await startNginx(imageDir);
  if ((await lab.exec('cli', ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${SERVER_IP}:${NGINX_PORT}/manifest.json`])).trim() !== '200') throw new Error('nginx does not serve the image');

  // ---- deploy ----
  const deployOrder = ['curl', 'local', 'fleetboot'] as const;
  let checked = false;
  for (let rep = 0; rep < REPS; rep++) {
    for (let k = 0; k < deployOrder.length; k++) {
      const what = deployOrder[(k + rep) % deployOrder.length] as (typeof deployOrder)[number];
      await blank(target0);
      let s: Sample;
      if (what === 'curl') {
        const urls = facts.files.flatMap((file) => ['-o', '/dev/null', `http://${SERVER_IP}:${NGINX_PORT}/${file}`]);
        s = await measure(() => clientRun(lab, ['curl', '-s', '-S', '--fail', ...urls]), (r) => r.wallS);
      } else if (what === 'local') {
        s = await measure(() => clientRun(lab, ['node', agent, 'deploy', '--disk', target0, '--from', imageDir]), (r) => agentSeconds(r.stdout));
      } else {
        await cli(['task', 'deploy', macs[1] as string, '--image', 'bench', '--disk', target0, '--json']);
        const tk = await token(macs[1] as string);
        s = await measure(() => clientRun(lab, ['node', agent, 'run', '--url', baseUrl, '--task', tk.task, '--token', tk.token, '--disk', target0]), (r) => agentSeconds(r.stdout));
        const st = await taskState(tk.task);
        if (st.state !== 'done') throw new Error(`deploy task ${tk.task}: ${st.state} ${st.error ?? ''}`);
        if (!checked) {
          // Once: the deployed ext4 is consistent (the agent has already checked every stream's sha256).
          await waitPath(`${target0}p1`);
          await sh('e2fsck', ['-fn', `${target0}p1`]);
          checked = true;
        }
      }
      record(`deploy/${what}`, s, facts.streamBytes);
    }
  }

  // ---- N machines at once ----
  for (const t of targets) await blank(t);
  const tks: Array<{ task: string; token: string }> = [];
  for (let i = 0; i < CONCURRENT; i++) {
    await cli(['task', 'deploy', macs[i + 1] as string, '--image', 'bench', '--disk', targets[i] as string, '--json']);
    tks.push(await token(macs[i + 1] as string));
  }
  const concLoad = await quiet();
  const conc0 = procCpuS(fbPid);
  inConcurrent = true;
  const tc0 = performance.now();
  const concRuns = await Promise.all(tks.map((tk, i) => clientRun(lab, ['node', agent, 'run', '--url', baseUrl, '--task', tk.task, '--token', tk.token, '--disk', targets[i] as string])));
  const concWall = (performance.now() - tc0) / 1000;
  inConcurrent = false;
  const concServerCpu = procCpuS(fbPid) - conc0;
  const concClientCpu = concRuns.reduce((s, r) => s + r.cpuS, 0);
  for (const tk of tks) {
    const st = await taskState(tk.task);
    if (st.state !== 'done') throw new Error(`concurrent deploy task ${tk.task}: ${st.state} ${st.error ?? ''}`);
  }
  const concAgentS = concRuns.map((r) => agentSeconds(r.stdout));
  log(`${CONCURRENT} at once: ${concWall.toFixed(1)} s, ${((CONCURRENT * facts.streamBytes) / 1e6 / concWall).toFixed(1)} MB/s compressed in total`);
  const hwmKiB = procKiB(fbPid, 'VmHWM');
  for (const t of targets) await blank(t);

  // ---- report ----
  const med = (key: string): { s: number; wall: number; ccpu: number; scpu: number; n: number } => {
    const l = samples.get(key) ?? [];
    return { s: median(l.map((x) => x.seconds)), wall: median(l.map((x) => x.wallS)), ccpu: median(l.map((x) => x.clientCpuS)), scpu: median(l.map((x) => x.serverCpuS)), n: l.length };
  };
  const mb = (bytes: number, s: number): string => (bytes / 1e6 / s).toFixed(1);
  const ver = async (cmd: ProgramName, args: string[]): Promise<string> => {
    try {
      const r = await execFileP(program(cmd), args);
      return (r.stdout + r.stderr).split('\n')[0]?.trim() ?? '';
    } catch (err) {
      return ((err as { stderr?: string }).stderr ?? '').split('\n')[0]?.trim() ?? '?';
    }
  };
  const pcVer = (await ver('partclone.extfs', ['-v'])).replace(/^Partclone\s*/i, '');
  const L: string[] = [];
  L.push(`## Run ${startedAt.toISOString()}`, '');
  L.push(`\`node --import tsx bench/imaging.ts --size-gib ${SIZE_GIB} --reps ${REPS} --concurrent ${CONCURRENT}\` (medians of ${REPS}; order rotated each repetition).`, '');
  L.push('### Machine', '');
  L.push(`- CPU: ${cpus()[0]?.model ?? '?'}, nproc ${cpus().length}; RAM ${(totalmem() / 2 ** 30).toFixed(1)} GiB; kernel ${release()}; Node ${process.version}`);
  L.push(`- ${await ver('nginx', ['-v'])}; ${await ver('curl', ['--version'])}`.replace(/ \(x86_64[^)]*\).*/, ''));
  L.push(`- ${await ver('zstd', ['--version'])}; partclone ${pcVer}`);
  L.push(`- Load average at the start: ${loadAtStart.map((x) => x.toFixed(2)).join(' ')}, at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}; each measurement waited (up to 15 s) for the 1-minute load to fall under 1.5 (load seen per run below)`);
  L.push('');
  L.push('### Setup', '');
  L.push(`Source disk ${SIZE_GIB} GiB (MBR; p1 ext4 with real files copied from /usr, p2 FAT32 with libraries), on a read-only loop device. ` +
    `Image: ${facts.files.join(' + ')}, ${(facts.streamBytes / 1e6).toFixed(1)} MB compressed (zstd -3), ${(facts.dataBytes / 1e6).toFixed(1)} MB partition data (partclone's used blocks); ratio ${(facts.dataBytes / facts.streamBytes).toFixed(2)}. ` +
    `Targets: ${SIZE_GIB} GiB sparse files on loop devices (discarded between runs). Lab bridge (veth, no added latency); Fleetboot (\`serve\` from the sources via tsx) and nginx (one worker, sendfile) in the server namespace pinned to CPU 0; the agent (bundled by esbuild), its zstd/partclone children and curl in the client namespace pinned to CPU 1. ` +
    'Seconds are the agent\'s own job time (task start to end: partition table, streams, verification; the same code path for local and server runs), curl\'s wall time; "wall" adds process start-up. ' +
    'MB/s of compressed bytes = stream bytes / seconds; MB/s of partition data = used bytes / seconds. Client CPU = the agent process and its children (zstd, partclone), server CPU = the Fleetboot process.', '');
  L.push('### Deploy (median)', '');
  L.push('| path | seconds | wall | MB/s compressed | MB/s partition data | client CPU (s) | Fleetboot CPU (s) |', '|---|---:|---:|---:|---:|---:|---:|');
  const names: Record<string, string> = {
    'deploy/curl': 'curl from nginx (transport limit)',
    'deploy/local': 'agent local deploy from the directory (client limit)',
    'deploy/fleetboot': '**Fleetboot deploy** (task, agent run --url)',
    'capture/curl-put': 'curl PUT to nginx dav (transport limit)',
    'capture/local': 'agent local capture to a directory (client limit)',
    'capture/fleetboot': '**Fleetboot capture** (task, agent run --url)',
  };
  for (const k of ['deploy/curl', 'deploy/local', 'deploy/fleetboot']) {
    const m = med(k);
    L.push(`| ${names[k]} | ${m.s.toFixed(2)} | ${m.wall.toFixed(2)} | ${mb(facts.streamBytes, m.s)} | ${mb(facts.dataBytes, m.s)} | ${m.ccpu.toFixed(1)} | ${k === 'deploy/fleetboot' ? m.scpu.toFixed(1) : '-'} |`);
  }
  L.push('', '### Capture (median)', '');
  L.push('| path | seconds | wall | MB/s compressed | MB/s partition data | client CPU (s) | Fleetboot CPU (s) |', '|---|---:|---:|---:|---:|---:|---:|');
  for (const k of ['capture/curl-put', 'capture/local', 'capture/fleetboot']) {
    const m = med(k);
    const b = k === 'capture/fleetboot' ? facts.streamBytes : localFacts.streamBytes;
    L.push(`| ${names[k]} | ${m.s.toFixed(2)} | ${m.wall.toFixed(2)} | ${mb(b, m.s)} | ${mb(facts.dataBytes, m.s)} | ${m.ccpu.toFixed(1)} | ${k === 'capture/fleetboot' ? m.scpu.toFixed(1) : '-'} |`);
  }
  L.push('', 'All runs (seconds @ 1-min load): ' + [...samples].map(([k, l]) => `${k} ${l.map((x) => `${x.seconds.toFixed(2)}@${x.load1.toFixed(1)}`).join(' / ')}`).join('; '), '');
  L.push(`### ${CONCURRENT} machines deploying at once`, '');
  L.push(`${CONCURRENT} agents in the client namespace (all on CPU 1), one loop device each, through Fleetboot (maxTransfers ${Math.max(10, CONCURRENT)}); load ${concLoad.toFixed(2)} at the start.`, '');
  L.push(`- All done in ${concWall.toFixed(1)} s (agents' own times ${Math.min(...concAgentS).toFixed(1)}-${Math.max(...concAgentS).toFixed(1)} s): total ${mb(CONCURRENT * facts.streamBytes, concWall)} MB/s compressed, ${mb(CONCURRENT * facts.dataBytes, concWall)} MB/s partition data`);
  L.push(`- CPU: clients ${concClientCpu.toFixed(1)} s, Fleetboot ${concServerCpu.toFixed(1)} s`);
  L.push(`- Fleetboot resident memory: ${(rssAfterStartKiB / 1024).toFixed(1)} MB after start, peak during the ${CONCURRENT} deploys ${(peakRssConcKiB / 1024).toFixed(1)} MB, peak over the whole run (VmHWM) ${(hwmKiB / 1024).toFixed(1)} MB`);
  L.push('');
  const dCurl = med('deploy/curl').s;
  const dLocal = med('deploy/local').s;
  const dFb = med('deploy/fleetboot').s;
  const dRatio = Math.max(dCurl, dLocal) / dFb;
  const cPut = med('capture/curl-put').s;
  const cLocal = med('capture/local').s;
  const cFb = med('capture/fleetboot').s;
  const cRatio = Math.max(cPut * (facts.streamBytes / localFacts.streamBytes), cLocal * (facts.streamBytes / localFacts.streamBytes)) / cFb;
  const verdict = (ok: boolean): string => (ok ? '**met**' : '**NOT met**');
  L.push('### Targets', '');
  L.push(`- Deploy ≥ 0.8× the lower of transport (curl ${mb(facts.streamBytes, dCurl)} MB/s) and client (local ${mb(facts.streamBytes, dLocal)} MB/s) limits: Fleetboot ${mb(facts.streamBytes, dFb)} MB/s = ${dRatio.toFixed(2)}× → ${verdict(dRatio >= 0.8)}`);
  L.push(`- Capture, reported the same way (no target in the issue; 0.8× shown for comparison): Fleetboot ${mb(facts.streamBytes, cFb)} MB/s vs the lower of curl PUT to nginx (${mb(localFacts.streamBytes, cPut)} MB/s) and local capture (${mb(localFacts.streamBytes, cLocal)} MB/s) = ${cRatio.toFixed(2)}× → ${cRatio >= 0.8 ? 'at or above 0.8×' : 'below 0.8×'}`);
  L.push(`- ${CONCURRENT} at once: total ${mb(CONCURRENT * facts.streamBytes, concWall)} MB/s compressed recorded; server peak RSS ${(hwmKiB / 1024).toFixed(1)} MB < 300 MB → ${verdict(hwmKiB > 0 && hwmKiB < 300 * 1024)}`);
  L.push('');
  const text = L.join('\n');
  appendResults(OUT, 'Imaging benchmark: Fleetboot deploy/capture vs nginx+curl (transport) and the agent\'s local pipeline (client)', text);
}

try {
  await main();
} finally {
  await cleanup();
}
