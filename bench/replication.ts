/**
 * The replication benchmark of issue 15: a 2 GiB image revision replicated
 * from node A to node B (two Fleetboot servers on one PostgreSQL), against
 * curl fetching the same bytes from A in B's namespace, same run,
 * interleaved; the issue's target is replication >= 0.8x curl.
 *
 *   node --import tsx bench/replication.ts [--size-mib 2048] [--reps 5]
 *        [--scheme auto|http|https] [--work DIR] [--out bench/results/replication.md]
 *
 * Lab (bridge 10.217.0.0/24, veth pairs):
 *   pg .5  PostgreSQL 15 (src/store/test-postgres.ts), fsync on, CPU 0
 *   na .1  fleetboot serve --database … --node-name bench-a (HTTP 8080, HTTPS 8443), CPU 0: the source
 *   nb .2  the same, node bench-b, replication.pullIntervalSeconds 3600, CPU 1: the puller
 * Data directories (and PostgreSQL's) under --work (default: the system's
 * temporary directory; the results say which file system: it should be a
 * real disk, as replication writes, fsyncs and hashes what it pulls).
 *
 * The image: one stream of --size-mib random bytes (incompressible), made
 * once; each revision is written on A directly through the store (files +
 * addRevision, pending approval, + A's copy verified, as a capture on A
 * with approval on leaves it; the stream is a hard link to the one file,
 * so every revision has the same bytes and A reads them from the page
 * cache every time), then approved through A's API (POST
 * /api/v1/images/…/approve, curl from B's namespace): A tells the nodes
 * (the fleetboot_images signal) and B pulls at once. B's timer rounds are
 * an hour apart (its first 2 s after its start): only that poke starts a
 * pull.
 *
 * Per round, in rotated order (B's disk is synced and its last copy deleted
 * between measurements, untimed):
 *   replication  a new revision on A; timed from just before its approval
 *                through A's API to B's log line saying its copy is
 *                verified (end to end: the API call, the signal, B's
 *                round), and from B's first stream request
 *                to that line (the pull alone: transfer, write, sha256 of
 *                every stream and the manifest, fsync, rename, the store)
 *   curl-file    curl -o FILE on B's disk (the same file system as B's
 *                image store) of the same stream from A's node route, with
 *                B's node credential; its time_total, and with `sync FILE`
 *                after it (curl+sync: the bytes on disk, as replication
 *                leaves them)
 *   curl-null    the same to /dev/null (the transport alone)
 * curl uses the scheme replication used: a warm-up replication (not
 * recorded) watches B's TCP connections to A (its namespace's
 * /proc/PID/net/tcp) to see which of A's ports it pulls from, HTTP 8080 or
 * HTTPS 8443 (curl -k: the benchmark does not check A's certificate;
 * replication pins it or not, as the code does). --scheme sets it instead.
 * The ratio is curl's time / replication's time (>= 0.8 meets the target),
 * per round and as the geometric mean of the paired rounds with a 95 % interval.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, closeSync, linkSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Argv } from '../src/lib/programs.js';
import { openStore } from '../src/store/db.js';
import { addRevision } from '../src/store/images.js';
import { setCopy } from '../src/store/copies.js';
import { readNodeSecret } from '../src/store/node-secret.js';
import { nodeAuthorization } from '../src/nodes/auth.js';
import { sampleManifest } from '../src/store/test-fixtures.js';
import { MANIFEST_FILE } from '../src/imaging/image-store.js';
import { Lab, labAvailable } from '../test/lab/lab.js';
import { arg, cpuSeconds, labPostgres, log, machine, repo, startNode, version, type NodeProcess } from './cluster.js';
import { appendResults, cleanupStack, median, pairedRatio, runCapture, sleep } from './lib.js';

const SIZE_MIB = Number(arg('size-mib', '2048'));
const REPS = Number(arg('reps', '5'));
const SCHEME = arg('scheme', 'auto');
const WORK_PARENT = arg('work', tmpdir());
const OUT = arg('out', join(repo, 'bench/results/replication.md'));
if (!(Number.isInteger(SIZE_MIB) && SIZE_MIB >= 1 && SIZE_MIB <= 65536)) throw new RangeError(`--size-mib must be 1-65536: ${SIZE_MIB}`);
if (!(Number.isInteger(REPS) && REPS >= 1)) throw new RangeError(`--reps must be a positive integer: ${REPS}`);
if (!['auto', 'http', 'https'].includes(SCHEME)) throw new RangeError(`--scheme must be auto, http or https: ${SCHEME}`);

const NET = '10.217.0';
const A_IP = `${NET}.1`;
const B_IP = `${NET}.2`;
const PG_IP = `${NET}.5`;
const IMAGE = 'benchrepl';
const STREAM = 'p1.pcl.zst';
const SIZE = SIZE_MIB * 1024 * 1024;

const cleanups = cleanupStack();

/** Write `size` random bytes to `file` and return their sha256. */
function makePayload(file: string, size: number): string {
  const hash = createHash('sha256');
  const fd = openSync(file, 'w', 0o600);
  try {
    const chunk = 8 << 20;
    for (let done = 0; done < size; ) {
      const b = randomBytes(Math.min(chunk, size - done));
      writeSync(fd, b);
      hash.update(b);
      done += b.length;
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** The remote ports of B's established TCP connections to A (B's namespace's /proc/PID/net/tcp). */
function portsToA(bPid: number): Set<number> {
  const want = A_IP.split('.').map(Number).reverse().map((n) => n.toString(16).padStart(2, '0')).join('').toUpperCase();
  const out = new Set<number>();
  let text = '';
  try {
    text = readFileSync(`/proc/${bPid}/net/tcp`, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const [ip, port] = (f[2] ?? '').split(':');
    if (f[3] === '01' && ip === want && port) out.add(Number.parseInt(port, 16));
  }
  return out;
}

interface Sample {
  kind: 'replication' | 'curl-file' | 'curl-null';
  round: number;
  /** replication: end to end; curl: time_total. */
  seconds: number;
  /** replication: first stream request to verified; curl-file: curl + sync FILE. */
  seconds2: number;
  clientCpuS: number;
  serverCpuS: number;
}

async function main(): Promise<void> {
  if (!(await labAvailable())) throw new Error('the benchmark needs root and ip netns (a lab)');
  const loadAtStart = loadavg();
  const startedAt = new Date();
  const work = mkdtempSync(join(WORK_PARENT, 'fb-bench-repl-'));
  // PostgreSQL's directory is made in here and it runs as the postgres user: that user may pass through.
  chmodSync(work, 0o711);
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));

  const st = statfsSync(work);
  const freeMiB = (st.bavail * st.bsize) / 2 ** 20;
  // A's stream, B's copy and curl's file, plus room for PostgreSQL and the logs.
  if (freeMiB < 3 * SIZE_MIB + 1024) throw new Error(`${work}: ${freeMiB.toFixed(0)} MiB free, the run needs about ${3 * SIZE_MIB + 1024} MiB`);

  const lab = await Lab.create({ subnet: NET });
  cleanups.push(() => lab.destroy());
  await lab.addHost('pg', PG_IP);
  await lab.addHost('na', A_IP);
  await lab.addHost('nb', B_IP);
  const pgs = await labPostgres(lab, 'pg', { cpus: '0', parentDir: work });
  cleanups.push(() => pgs.server.stop());

  const dirA = join(work, 'a');
  const dirB = join(work, 'b');
  for (const d of [dirA, dirB]) mkdirSync(d, { recursive: true, mode: 0o700 });
  const common = { database: pgs.url, extra: ['--dhcp', 'off'], logLevel: 'info' };
  const a = await startNode(lab, 'na', { ...common, dataDir: dirA, ip: A_IP, cpu: '0', nodeName: 'bench-a' });
  const b = await startNode(lab, 'nb', { ...common, dataDir: dirB, ip: B_IP, cpu: '1', nodeName: 'bench-b', config: { replication: { pullIntervalSeconds: 3600 } } });

  log(`making the ${SIZE_MIB} MiB stream (random bytes) and its sha256`);
  const payload = join(dirA, 'payload.bin');
  const sha256 = makePayload(payload, SIZE);
  const store = await openStore(dirA, { url: pgs.localUrl });
  cleanups.push(() => store.close());

  const tokenA = readFileSync(join(dirA, 'api-token'), 'utf8').trim();
  /** Approve revision `n` through A's API, as an operator does (from B's namespace). */
  const approve = async (n: number): Promise<void> => {
    const apiUrl = a.httpsPort !== null ? `https://${A_IP}:${a.httpsPort}` : `http://${A_IP}:${a.httpPort}`;
    await runCapture(['ip', 'netns', 'exec', lab.host('nb').netns, 'curl', '-sS', '--fail', '-k', '-X', 'POST', '-H', `authorization: Bearer ${tokenA}`, `${apiUrl}/api/v1/images/${IMAGE}/revisions/${n}/approve`] as Argv, 30_000);
  };

  /** A new revision on A, pending (its copy verified there), then approved through A's API; returns its number and the time just before the approval. */
  const newRevision = async (): Promise<{ number: number; dir: string; t0: number }> => {
    const base = sampleManifest(IMAGE);
    const p = base.partitions[0];
    if (!p) throw new Error('sampleManifest() has no partition');
    const manifest = { ...base, createdAt: new Date().toISOString(), diskBytes: SIZE + 2 * 1024 * 1024, partitions: [{ ...p, sectors: Math.ceil(SIZE / 512), sizeBytes: SIZE, streamBytes: SIZE, sha256 }] };
    const dir = randomUUID();
    const path = join(dirA, 'images', dir);
    mkdirSync(path, { recursive: true, mode: 0o700 });
    linkSync(payload, join(path, STREAM));
    const text = JSON.stringify(manifest, null, 2) + '\n';
    writeFileSync(join(path, MANIFEST_FILE), text, { mode: 0o600 });
    const number = await addRevision(store.db, { dir, manifest, manifestSha256: createHash('sha256').update(text).digest('hex'), state: 'pending' });
    await setCopy(store.db, IMAGE, number, 'bench-a', { state: 'verified', bytesDone: SIZE, bytesTotal: SIZE });
    const t0 = Date.now();
    await approve(number);
    return { number, dir, t0 };
  };

  const events = (from: number): Array<Record<string, unknown>> =>
    b.log
      .all()
      .slice(from)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });

  /** Replicate one new revision; returns end-to-end and pull seconds, and the ports of A that B used. */
  const replicate = async (round: number): Promise<Sample & { ports: Set<number> }> => {
    const mark = b.log.mark();
    const cpuB0 = cpuSeconds(b.pid);
    const cpuA0 = cpuSeconds(a.pid);
    const rev = await newRevision();
    const ports = new Set<number>();
    const done = new RegExp(`"revision":${rev.number},[^\\n]*copy from node 'bench-a' verified`);
    const failed = new RegExp(`"revision":${rev.number},[^\\n]*(copy corrupt|interrupted)`);
    const deadline = Date.now() + 600_000 + SIZE_MIB * 1000;
    for (;;) {
      for (const p of portsToA(b.pid)) ports.add(p);
      const text = b.log.all().slice(mark);
      if (done.test(text)) break;
      const bad = failed.exec(text);
      if (bad) throw new Error(`replication of revision ${rev.number} failed: ${text.slice(Math.max(0, bad.index - 200), bad.index + 800)}`);
      if (!b.log.running) throw new Error(`node B exited:\n${b.log.tail(40)}`);
      if (Date.now() > deadline) throw new Error(`revision ${rev.number} was not verified on B in time:\n${b.log.tail(40)}`);
      await sleep(100);
    }
    const ev = events(mark).filter((e) => e['revision'] === rev.number);
    const start = ev.find((e) => typeof e['msg'] === 'string' && (e['msg'] as string).includes('pulling'));
    const end = ev.find((e) => typeof e['msg'] === 'string' && (e['msg'] as string).includes('verified'));
    const tStart = Number(start?.['time']);
    const tEnd = Number(end?.['time']);
    if (!Number.isFinite(tStart) || !Number.isFinite(tEnd)) throw new Error(`B's log has no times for revision ${rev.number}: ${JSON.stringify(ev).slice(0, 2000)}`);
    const s: Sample & { ports: Set<number> } = { kind: 'replication', round, seconds: (tEnd - rev.t0) / 1000, seconds2: (tEnd - tStart) / 1000, clientCpuS: cpuSeconds(b.pid) - cpuB0, serverCpuS: cpuSeconds(a.pid) - cpuA0, ports };
    // Untimed: B's copy goes (the next round pulls a new revision anyway), and the disk is synced.
    rmSync(join(dirB, 'images', rev.dir), { recursive: true, force: true });
    return s;
  };

  // ---- warm-up: one replication, which also tells the scheme ----
  log('warm-up replication (not recorded)');
  const warm = await replicate(0);
  log(`warm-up: ${warm.seconds.toFixed(2)} s end to end, ${warm.seconds2.toFixed(2)} s pulling; B connected to A's port(s) ${[...warm.ports].join(', ') || 'none seen'}`);
  let scheme: 'http' | 'https';
  if (SCHEME === 'http' || SCHEME === 'https') scheme = SCHEME;
  else if (a.httpsPort !== null && warm.ports.has(a.httpsPort) && !warm.ports.has(a.httpPort)) scheme = 'https';
  else if (warm.ports.has(a.httpPort) && !(a.httpsPort !== null && warm.ports.has(a.httpsPort))) scheme = 'http';
  else throw new Error(`cannot tell which scheme replication used (B's connections to A: ports ${[...warm.ports].join(', ') || 'none seen'}; A's HTTP ${a.httpPort}, HTTPS ${a.httpsPort}): pass --scheme http or https`);
  const port = scheme === 'https' ? (a.httpsPort as number) : a.httpPort;
  log(`curl uses ${scheme} (port ${port})${SCHEME === 'auto' ? ', the scheme replication used' : ', as --scheme says'}`);

  const secretB = readNodeSecret(dirB, 'bench-b');
  if (!secretB) throw new Error(`node bench-b has no secret in ${dirB}`);
  const auth = nodeAuthorization('bench-b', secretB);
  const streamUrl = `${scheme}://${A_IP}:${port}/node/v1/images/${IMAGE}/1/streams/${STREAM}`;
  const curlFile = join(dirB, 'curl.out');
  const curl = async (round: number, toFile: boolean): Promise<Sample> => {
    const cpuA0 = cpuSeconds(a.pid);
    // (A -w format that starts with @ names a file to read it from: hence no @@ marker on that line.)
    const script = 'curl -sS --fail -k -H "$1" -o "$2" -w "curl-times %{time_total} %{size_download}\\n" "$3" || exit 1; ' +
      'if [ "$2" != /dev/null ]; then s=$(date +%s%N); sync "$2"; e=$(date +%s%N); echo "@@sync $(( (e - s) / 1000 ))"; fi; ' +
      'set -- $(cat /proc/$$/stat); echo "@@cpu ${16} ${17}"';
    const out = await runCapture(['ip', 'netns', 'exec', lab.host('nb').netns, 'taskset', '-c', '1', 'sh', '-c', script, 'sh', `authorization: ${auth}`, toFile ? curlFile : '/dev/null', streamUrl] as Argv, 600_000 + SIZE_MIB * 1000);
    const m = /curl-times ([\d.]+) (\d+)/.exec(out);
    if (!m || Number(m[2]) !== SIZE) throw new Error(`curl of ${streamUrl} failed: ${out.slice(-2000)}`);
    const total = Number(m[1]);
    const syncS = toFile ? Number(/@@sync (\d+)/.exec(out)?.[1] ?? NaN) / 1e6 : 0;
    const cpu = /@@cpu (\d+) (\d+)/.exec(out);
    if (toFile) rmSync(curlFile, { force: true });
    return { kind: toFile ? 'curl-file' : 'curl-null', round, seconds: total, seconds2: total + syncS, clientCpuS: cpu ? (Number(cpu[1]) + Number(cpu[2])) / 100 : NaN, serverCpuS: cpuSeconds(a.pid) - cpuA0 };
  };
  await curl(0, false);

  const samples: Sample[] = [];
  const kinds = ['replication', 'curl-file', 'curl-null'] as const;
  const mb = (s: number): string => (SIZE / 1e6 / s).toFixed(1);
  for (let round = 1; round <= REPS; round++) {
    for (let k = 0; k < kinds.length; k++) {
      const kind = kinds[(k + round) % kinds.length] as (typeof kinds)[number];
      await runCapture(['sync'], 120_000);
      await sleep(1000);
      const s = kind === 'replication' ? await replicate(round) : await curl(round, kind === 'curl-file');
      samples.push(s);
      const second = kind === 'replication' ? `, pull ${s.seconds2.toFixed(2)} s (${mb(s.seconds2)} MB/s)` : kind === 'curl-file' ? `, with sync ${s.seconds2.toFixed(2)} s (${mb(s.seconds2)} MB/s)` : '';
      log(`round ${round} ${kind}: ${s.seconds.toFixed(2)} s (${mb(s.seconds)} MB/s)${second}; B-side CPU ${s.clientCpuS.toFixed(1)} s, A CPU ${s.serverCpuS.toFixed(1)} s`);
    }
  }

  // ---- report ----
  const of = (kind: Sample['kind']): Sample[] => samples.filter((s) => s.kind === kind);
  const byRound = (kind: Sample['kind'], f: (s: Sample) => number): Map<number, number> => new Map(of(kind).map((s) => [s.round, f(s)]));
  const repl = byRound('replication', (s) => s.seconds);
  const pull = byRound('replication', (s) => s.seconds2);
  const cFile = byRound('curl-file', (s) => s.seconds);
  const cSync = byRound('curl-file', (s) => s.seconds2);
  const cNull = byRound('curl-null', (s) => s.seconds);
  const ratio = (curlT: Map<number, number>, replT: Map<number, number>): ReturnType<typeof pairedRatio> =>
    pairedRatio([...replT].map(([r, t]) => (curlT.get(r) ?? NaN) / t));
  const fmt = (r: ReturnType<typeof pairedRatio>): string => `${r.mean.toFixed(2)}× (95 % interval ${Number.isFinite(r.low) ? `${r.low.toFixed(2)}-${r.high.toFixed(2)}` : 'n/a'}, n ${r.n})`;
  const med = (m: Map<number, number>): number => median([...m.values()]);
  const L: string[] = [];
  L.push(`## Run ${startedAt.toISOString()}`, '');
  L.push(`\`node --import tsx bench/replication.ts --size-mib ${SIZE_MIB} --reps ${REPS} --scheme ${SCHEME}\` (medians of ${REPS} rounds; order rotated each round).`, '');
  L.push('### Machine', '');
  L.push(...(await machine(work, loadAtStart)));
  L.push(`- ${(await version('curl', ['--version'])).replace(/ \(x86_64[^)]*\).*/, '')}; PostgreSQL ${(await version('psql', ['--version'])).replace(/^psql \(PostgreSQL\)\s*/, '')}`);
  L.push('');
  L.push('### Setup', '');
  L.push(
    `Two Fleetboot nodes (\`serve --dhcp off --no-tftp\`, from the sources via tsx) on one PostgreSQL 15 (fsync on), each in its namespace on a lab bridge (veth pairs, no added latency): A (source) and PostgreSQL on CPU 0, B (puller, replication.pullIntervalSeconds 3600: it pulls when poked) and curl on CPU 1. ` +
      `One revision = one stream of ${SIZE_MIB} MiB of random bytes (${SIZE} bytes), stored on A through the store (as a capture leaves it), A's file always in the page cache. ` +
      `Transport: **${scheme}** (${SCHEME === 'auto' ? 'the one replication used, seen from B\'s connections to A' : 'set by --scheme'}); curl fetches the same stream from A's node route (GET /node/v1/images/…/streams/…) with B's node credential${scheme === 'https' ? ', -k' : ''}. ` +
      'Replication end to end: from just before the revision (stored on A, pending) is approved through A\'s API to B\'s log line saying its copy is verified (the API call, the fleetboot_images signal, B\'s pull: B\'s timer rounds are an hour apart); pull: from B\'s first stream request to that line (transfer, write, sha256, manifest check, fsync, rename, store). ' +
      'curl-file: `curl -o FILE` on B\'s file system (time_total); curl+sync: the same plus `sync FILE`; curl-null: to /dev/null. Ratio = curl\'s time / replication\'s time, geometric mean of the rounds\' paired ratios.',
    '',
  );
  L.push('### Times (median)', '');
  L.push('| what | seconds | MB/s |', '|---|---:|---:|');
  L.push(`| **replication, end to end** (approved on A -> verified on B) | ${med(repl).toFixed(2)} | ${mb(med(repl))} |`);
  L.push(`| replication, the pull alone (first request -> verified) | ${med(pull).toFixed(2)} | ${mb(med(pull))} |`);
  L.push(`| curl -o FILE (same disk) | ${med(cFile).toFixed(2)} | ${mb(med(cFile))} |`);
  L.push(`| curl -o FILE + sync FILE | ${med(cSync).toFixed(2)} | ${mb(med(cSync))} |`);
  L.push(`| curl -o /dev/null | ${med(cNull).toFixed(2)} | ${mb(med(cNull))} |`);
  L.push('');
  L.push(`CPU (median, seconds): B's node during replication ${median(of('replication').map((s) => s.clientCpuS)).toFixed(1)}, curl (and sync) ${median(of('curl-file').map((s) => s.clientCpuS)).toFixed(1)}; A's node serving: replication ${median(of('replication').map((s) => s.serverCpuS)).toFixed(1)}, curl ${median(of('curl-file').map((s) => s.serverCpuS)).toFixed(1)}.`, '');
  const target = ratio(cFile, repl);
  L.push('### Ratios (curl time / replication time; >= 0.8 meets the issue\'s target)', '');
  L.push(`- end to end vs curl -o FILE (the target's comparison): **${fmt(target)}** -> ${target.mean >= 0.8 ? '**met**' : '**NOT met**'}`);
  L.push(`- end to end vs curl -o FILE + sync: ${fmt(ratio(cSync, repl))}`);
  L.push(`- end to end vs curl -o /dev/null: ${fmt(ratio(cNull, repl))}`);
  L.push(`- pull alone vs curl -o FILE: ${fmt(ratio(cFile, pull))}; vs curl + sync: ${fmt(ratio(cSync, pull))}; vs /dev/null: ${fmt(ratio(cNull, pull))}`);
  L.push('');
  L.push('All runs (seconds): ' + samples.map((s) => `r${s.round} ${s.kind} ${s.seconds.toFixed(2)}${s.kind !== 'curl-null' ? `/${s.seconds2.toFixed(2)}` : ''}`).join('; '), '');
  const text = L.join('\n');
  appendResults(OUT, 'Replication benchmark: a 2 GiB revision from node A to node B vs curl of the same bytes (issue 15)', text);
}

try {
  await main();
} finally {
  await cleanups.run();
}
