/**
 * The store benchmark of issue 15: the same Fleetboot on SQLite and on
 * PostgreSQL, in the same run, interleaved rounds.
 *
 *   node --import tsx bench/cluster-store.ts [--rates 250,500,1000,2000] [--seconds 5]
 *        [--reps 3] [--clients 15000] [--hosts 1000] [--concurrency 32] [--no-ab]
 *        [--pg-cpu 0] [--pg-synchronous-commit on|off] [--work DIR] [--out bench/results/cluster-store.md]
 *
 * What is measured:
 * - DHCP DORA rate: perfdhcp (relay mode, full DORA, --clients distinct MACs
 *   per target) against `serve --dhcp server` at each rate for --seconds;
 *   completed DORAs per second (ACKs) and the share of DISCOVERs without an ACK.
 * - Task hand-out rate: --hosts hosts, each with a queued inventory task,
 *   whose boot decisions (GET /boot/decide, as iPXE asks) are requested
 *   --concurrency at a time (bench/handout-client.ts); hand-outs (answers
 *   carrying a task token) per second. Every request must get its token.
 * Targets, in turn within each round (order rotated each round):
 *   sqlite  one server on SQLite (its data directory)
 *   pg      one server (node bench-a) on PostgreSQL
 *   pg-ab   two servers (bench-a, bench-b) on the same PostgreSQL and pool:
 *           perfdhcp against each at the full rate at once (aggregate), and
 *           the hand-out MACs dealt to both (--no-ab leaves this out)
 *
 * Lab (lab bridge 10.218.0.0/24):
 *   pg .5    PostgreSQL 15 (src/store/test-postgres.ts), data on --work's disk
 *   sq .1    fleetboot serve --dhcp server (SQLite)
 *   pa .2    the same with --database postgres://…@10.218.0.5/fleetboot --node-name bench-a
 *   pb .3    the same, --node-name bench-b
 *   c1 .101, c2 .102   perfdhcp, relay mode (giaddr = its address)
 *   rt .254  a router to 10.219.0.0/24, where hc .2 runs the hand-out client:
 *            routed, so its address is not in the servers' neighbour tables
 *            and outside the DHCP pool (the boot decision compares the MAC
 *            the network knows for a client's address with the MAC asked for)
 * Servers and PostgreSQL are pinned to CPU 0 (--pg-cpu moves PostgreSQL),
 * perfdhcp and the hand-out client to CPU 1. Pool 10.218.1.1-10.218.255.254
 * (/16), one-hour leases, log level warn.
 * Durability, as each is run: SQLite as Fleetboot opens it (WAL,
 * synchronous=NORMAL: a commit is not fsynced, it survives the process's
 * crash, not the machine's), PostgreSQL with fsync, synchronous_commit and
 * full_page_writes on (every commit waits for its WAL flush);
 * --pg-synchronous-commit off shows PostgreSQL at SQLite's durability. The hosts and tasks are written
 * into both stores before the servers start; the servers keep running
 * across the rounds (later rounds meet the leases of earlier ones).
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Argv } from '../src/lib/programs.js';
import { openStore, type Store } from '../src/store/db.js';
import { createHost, createTask } from '../src/store/index.js';
import { Lab, labAvailable } from '../test/lab/lab.js';
import { arg, cpuSeconds, labPostgres, log, machine, repo, startNode, version, type NodeProcess } from './cluster.js';
import { appendResults, cleanupStack, median, perfdhcpStats, runCapture, sleep } from './lib.js';

const RATES = arg('rates', '250,500,1000,2000').split(',').map(Number);
const SECONDS = Number(arg('seconds', '5'));
const REPS = Number(arg('reps', '3'));
const CLIENTS = Number(arg('clients', '15000'));
const HOSTS = Number(arg('hosts', '1000'));
const CONCURRENCY = Number(arg('concurrency', '32'));
const AB = !process.argv.includes('--no-ab');
const PG_CPU = arg('pg-cpu', '0');
const PG_SYNC = arg('pg-synchronous-commit', 'on');
const WORK_PARENT = arg('work', tmpdir());
const OUT = arg('out', join(repo, 'bench/results/cluster-store.md'));
if (!RATES.every((r) => Number.isInteger(r) && r > 0)) throw new RangeError(`--rates must be positive integers: ${RATES.join(',')}`);
if (!(SECONDS >= 1)) throw new RangeError(`--seconds must be at least 1: ${SECONDS}`);
if (!(Number.isInteger(REPS) && REPS >= 1)) throw new RangeError(`--reps must be a positive integer: ${REPS}`);
if (!(Number.isInteger(HOSTS) && HOSTS >= 1 && HOSTS <= 65535)) throw new RangeError(`--hosts must be 1-65535: ${HOSTS}`);
if (!(Number.isInteger(CLIENTS) && CLIENTS >= 1 && CLIENTS <= 20000)) throw new RangeError(`--clients must be 1-20000 (three targets share the pool of 65,278 addresses on PostgreSQL): ${CLIENTS}`);
if (PG_SYNC !== 'on' && PG_SYNC !== 'off') throw new RangeError(`--pg-synchronous-commit must be on or off: ${PG_SYNC}`);
if (!/^\d+$/.test(PG_CPU)) throw new RangeError(`--pg-cpu must be a CPU number: ${PG_CPU}`);

const NET = '10.218.0';
const CLIENT_NET = '10.219.0';
const IP = { pg: `${NET}.5`, sq: `${NET}.1`, pa: `${NET}.2`, pb: `${NET}.3`, c1: `${NET}.101`, c2: `${NET}.102`, rt: `${NET}.254`, rt2: `${CLIENT_NET}.254`, hc: `${CLIENT_NET}.2` };
const RANGE = '10.218.1.1,10.218.255.254,255.255.0.0,3600';

type Target = 'sqlite' | 'pg' | 'pg-ab';
const TARGETS: Target[] = AB ? ['sqlite', 'pg', 'pg-ab'] : ['sqlite', 'pg'];
const TARGET_NO: Record<Target, number> = { sqlite: 1, pg: 2, 'pg-ab': 3 };

/** The MAC of hand-out host `i` of `target` in round `round` (0: the warm-up). */
function handoutMac(target: Target, round: number, i: number): string {
  const h = (n: number): string => n.toString(16).padStart(2, '0');
  return `52:54:${h(TARGET_NO[target])}:${h(round)}:${h(i >> 8)}:${h(i & 255)}`;
}

const cleanups = cleanupStack();

async function seed(store: Store, targets: Target[]): Promise<void> {
  const macs = targets.flatMap((t) => Array.from({ length: REPS + 1 }, (_, r) => Array.from({ length: HOSTS }, (_, i) => handoutMac(t, r, i))).flat());
  // PostgreSQL: a few at a time (its pool); SQLite: one after the other (one writer).
  const width = store.dialect === 'postgres' ? 8 : 1;
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      for (let i = next++; i < macs.length; i = next++) {
        const mac = macs[i] as string;
        await createHost(store.db, { mac });
        await createTask(store.db, { type: 'inventory', mac });
      }
    }),
  );
}

interface Dora {
  target: Target;
  rate: number;
  round: number;
  discovers: number;
  acks: number;
  dropPct: number;
  achieved: number;
  avgMs: number;
  serverCpuS: number;
}

interface Handout {
  target: Target;
  round: number;
  requests: number;
  tokens: number;
  others: number;
  errors: number;
  seconds: number;
  rate: number;
  serverCpuS: number;
  samples: string[];
}

async function main(): Promise<void> {
  if (!(await labAvailable())) throw new Error('the benchmark needs root and ip netns (a lab)');
  const loadAtStart = loadavg();
  const startedAt = new Date();
  const work = mkdtempSync(join(WORK_PARENT, 'fb-bench-store-'));
  // PostgreSQL's directory is made in here and it runs as the postgres user: that user may pass through.
  chmodSync(work, 0o711);
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));

  const lab = await Lab.create({ subnet: NET });
  cleanups.push(() => lab.destroy());
  const clientLab = await Lab.create({ subnet: CLIENT_NET });
  cleanups.push(() => clientLab.destroy());
  await lab.addHost('pg', IP.pg);
  await lab.addHost('sq', IP.sq);
  await lab.addHost('pa', IP.pa);
  if (AB) await lab.addHost('pb', IP.pb);
  await lab.addHost('c1', IP.c1);
  await lab.addHost('c2', IP.c2);
  const rt = await lab.addHost('rt', IP.rt);
  await clientLab.attach(rt, 'eth1', IP.rt2);
  await lab.exec('rt', ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
  await clientLab.addHost('hc', IP.hc);
  await clientLab.exec('hc', ['ip', 'route', 'add', 'default', 'via', IP.rt2]);
  for (const h of AB ? ['sq', 'pa', 'pb'] : ['sq', 'pa']) await lab.exec(h, ['ip', 'route', 'add', `${CLIENT_NET}.0/24`, 'via', IP.rt]);

  log(`PostgreSQL in namespace pg on CPU ${PG_CPU}`);
  const pgs = await labPostgres(lab, 'pg', { cpus: PG_CPU, parentDir: work, synchronousCommit: PG_SYNC === 'on' });
  cleanups.push(() => pgs.server.stop());

  const dirs = { sq: join(work, 'sq'), pa: join(work, 'pa'), pb: join(work, 'pb') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true, mode: 0o700 });
  log(`writing ${HOSTS} hosts with a queued task per target and round (${REPS} + a warm-up) into both stores`);
  const t0 = Date.now();
  const sqStore = await openStore(dirs.sq);
  await seed(sqStore, ['sqlite']);
  await sqStore.close();
  const pgStore = await openStore(dirs.pa, { url: pgs.localUrl });
  await seed(pgStore, AB ? ['pg', 'pg-ab'] : ['pg']);
  await pgStore.close();
  log(`written in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const config = { dhcp: { probeAtStart: false }, imaging: { agentTimeoutSeconds: 86_400 } };
  const common = { cpu: '0', config, extra: ['--dhcp', 'server', '--dhcp-range', RANGE], httpsPort: null };
  const sq = await startNode(lab, 'sq', { ...common, dataDir: dirs.sq, ip: IP.sq });
  const [pa, pb] = await Promise.all([
    startNode(lab, 'pa', { ...common, dataDir: dirs.pa, ip: IP.pa, database: pgs.url, nodeName: 'bench-a' }),
    AB ? startNode(lab, 'pb', { ...common, dataDir: dirs.pb, ip: IP.pb, database: pgs.url, nodeName: 'bench-b' }) : Promise.resolve(null),
  ]);
  const serversOf = (t: Target): NodeProcess[] => (t === 'sqlite' ? [sq] : t === 'pg' ? [pa] : [pa, pb].filter((s): s is NodeProcess => s !== null));
  const cpuOf = (t: Target): number => serversOf(t).reduce((s, n) => s + cpuSeconds(n.pid), 0);

  // ---- DORA ----
  const perf = (client: 'c1' | 'c2', server: string, rate: number, seconds: number, base: string): Promise<string> =>
    runCapture(['ip', 'netns', 'exec', lab.host(client).netns, 'taskset', '-c', '1', 'perfdhcp', '-4', '-l', IP[client], '-r', String(rate), '-R', String(CLIENTS), '-p', String(seconds), '-W', '1000000', '-b', `mac=${base}`, server] as Argv, (seconds + 30) * 1000);
  const macBase = (t: Target, side: number): string => `00:0c:${TARGET_NO[t].toString(16).padStart(2, '0')}:${side.toString(16).padStart(2, '0')}:00:00`;
  const dora = async (t: Target, rate: number, round: number, seconds: number): Promise<Dora> => {
    const c0 = cpuOf(t);
    const outs = t === 'pg-ab'
      ? await Promise.all([perf('c1', IP.pa, rate, seconds, macBase(t, 1)), perf('c2', IP.pb, rate, seconds, macBase(t, 2))])
      : [await perf('c1', t === 'sqlite' ? IP.sq : IP.pa, rate, seconds, macBase(t, 1))];
    let discovers = 0;
    let acks = 0;
    const avg: number[] = [];
    for (const out of outs) {
      const d = perfdhcpStats(out, 'DISCOVER-OFFER');
      const r = perfdhcpStats(out, 'REQUEST-ACK');
      if (!Number.isFinite(d.sent)) throw new Error(`perfdhcp output not understood:\n${out}`);
      discovers += d.sent;
      acks += Number.isFinite(r.received) ? r.received : 0;
      avg.push((d.avgMs || 0) + (r.avgMs || 0));
    }
    const res: Dora = { target: t, rate, round, discovers, acks, dropPct: discovers > 0 ? (100 * (discovers - acks)) / discovers : 100, achieved: acks / seconds, avgMs: avg.reduce((a, b) => a + b, 0) / avg.length, serverCpuS: cpuOf(t) - c0 };
    log(`DORA ${t.padEnd(6)} ${round === 0 ? 'warm-up' : `round ${round}`} rate ${rate}/s${t === 'pg-ab' ? ' per server' : ''}: DISCOVER ${discovers}, ACK ${acks} (${res.dropPct.toFixed(2)} % without ACK), ${res.achieved.toFixed(0)} DORA/s, avg D-O + R-A ${res.avgMs.toFixed(2)} ms, server CPU ${res.serverCpuS.toFixed(1)} s`);
    return res;
  };

  // ---- hand-out ----
  const handout = async (t: Target, round: number): Promise<Handout> => {
    const file = join(work, `macs-${t}-${round}.txt`);
    writeFileSync(file, Array.from({ length: HOSTS }, (_, i) => handoutMac(t, round, i)).join('\n') + '\n');
    const urls = serversOf(t).map((s) => `http://${s.ip}:${s.httpPort}`).join(',');
    const c0 = cpuOf(t);
    const out = await runCapture(['ip', 'netns', 'exec', clientLab.host('hc').netns, 'taskset', '-c', '1', 'env', '-C', repo, process.execPath, '--import', 'tsx', join(repo, 'bench/handout-client.ts'), '--macs', file, '--servers', urls, '--concurrency', String(CONCURRENCY)] as Argv, 600_000);
    const line = out.split('\n').find((l) => l.startsWith('{"requests"'));
    if (!line) throw new Error(`the hand-out client printed no result:\n${out.slice(-3000)}`);
    const j = JSON.parse(line) as { requests: number; tokens: number; others: number; errors: number; seconds: number; otherSamples: string[]; errorSamples: string[] };
    const res: Handout = { target: t, round, requests: j.requests, tokens: j.tokens, others: j.others, errors: j.errors, seconds: j.seconds, rate: j.tokens / j.seconds, serverCpuS: cpuOf(t) - c0, samples: [...j.otherSamples, ...j.errorSamples] };
    log(`hand-out ${t.padEnd(6)} ${round === 0 ? 'warm-up' : `round ${round}`}: ${j.tokens} tokens of ${j.requests} requests (${j.others} other answers, ${j.errors} errors) in ${j.seconds.toFixed(2)} s = ${res.rate.toFixed(0)}/s, server CPU ${res.serverCpuS.toFixed(1)} s`);
    for (const s of res.samples) log(`  ${s}`);
    return res;
  };

  // Warm-up (JIT, first leases, first hand-outs), not recorded.
  for (const t of TARGETS) await dora(t, Math.min(...RATES), 0, 2);
  for (const t of TARGETS) await handout(t, 0);

  const doras: Dora[] = [];
  const handouts: Handout[] = [];
  for (let round = 1; round <= REPS; round++) {
    const order = TARGETS.map((_, k) => TARGETS[(k + round) % TARGETS.length] as Target);
    for (const rate of RATES) {
      for (const t of order) {
        doras.push(await dora(t, rate, round, SECONDS));
        await sleep(500);
      }
    }
    for (const t of order) {
      handouts.push(await handout(t, round));
      await sleep(500);
    }
  }

  // ---- report ----
  const L: string[] = [];
  L.push(`## Run ${startedAt.toISOString()}`, '');
  L.push(`\`node --import tsx bench/cluster-store.ts --rates ${RATES.join(',')} --seconds ${SECONDS} --reps ${REPS} --clients ${CLIENTS} --hosts ${HOSTS} --concurrency ${CONCURRENCY}${AB ? '' : ' --no-ab'} --pg-cpu ${PG_CPU} --pg-synchronous-commit ${PG_SYNC}\` (medians of ${REPS} rounds; targets in turn within a round, order rotated each round).`, '');
  L.push('### Machine', '');
  L.push(...(await machine(work, loadAtStart)));
  L.push(`- perfdhcp ${(await version('perfdhcp', ['-v'])).replace(/^VERSION:\s*/, '')}; PostgreSQL ${(await version('psql', ['--version'])).replace(/^psql \(PostgreSQL\)\s*/, '')}`);
  L.push('');
  L.push('### Setup', '');
  L.push(
    `Fleetboot \`serve --dhcp server --no-tftp --no-https --log-level warn\` from the sources (tsx): one on SQLite (its data directory), one${AB ? ' or two (nodes bench-a, bench-b)' : ''} on one PostgreSQL 15 (in its own namespace, over TCP on the lab bridge; shared_buffers 64MB). ` +
      `Durability as each is run: SQLite as Fleetboot opens it (WAL, synchronous=NORMAL: commits are not fsynced), PostgreSQL with fsync and full_page_writes on and synchronous_commit ${PG_SYNC}${PG_SYNC === 'on' ? ' (every commit waits for its WAL flush)' : ' (SQLite\'s durability)'}. ` +
      `Servers pinned to CPU 0, PostgreSQL to CPU ${PG_CPU}, perfdhcp and the hand-out client to CPU 1. Pool 10.218.1.1-10.218.255.254/16, 1 h leases, perfdhcp in relay mode (giaddr = the client namespace's address), -R ${CLIENTS} MACs per target${AB ? ' (and per server for pg-ab)' : ''}. ` +
      `Hand-out: ${HOSTS} hosts per target and round, each with a queued inventory task; the client (bench/handout-client.ts, in a routed namespace) asks GET /boot/decide?mac=…&platform=pcbios once per MAC, ${CONCURRENCY} at a time over keep-alive connections; a hand-out is an answer carrying the task's token (the task goes queued -> booting with its token bound to the client's address). ` +
      `${AB ? 'pg-ab: perfdhcp against both servers at once, each at the full rate (the aggregate is shown); the hand-out MACs alternate between the two servers. ' : ''}Server CPU = the Fleetboot node process(es), not PostgreSQL.`,
    '',
  );
  L.push('### DHCP DORA (median over rounds)', '');
  L.push(`| rate (/s${AB ? ', per server for pg-ab' : ''}) | target | DORA/s completed | without ACK | avg D-O + R-A (ms) | Fleetboot CPU (s) |`, '|---:|---|---:|---:|---:|---:|');
  for (const rate of RATES) {
    for (const t of TARGETS) {
      const rs = doras.filter((d) => d.rate === rate && d.target === t);
      L.push(`| ${rate} | ${t} | ${median(rs.map((d) => d.achieved)).toFixed(0)} | ${median(rs.map((d) => d.dropPct)).toFixed(2)} % | ${median(rs.map((d) => d.avgMs)).toFixed(2)} | ${median(rs.map((d) => d.serverCpuS)).toFixed(1)} |`);
    }
  }
  L.push('');
  const best = (t: Target): string => {
    const ok = RATES.filter((rate) => median(doras.filter((d) => d.rate === rate && d.target === t).map((d) => d.dropPct)) < 1);
    if (!ok.length) return 'none of the rates tried';
    const top = Math.max(...ok);
    return `${top}/s${t === 'pg-ab' ? ' per server' : ''} (${median(doras.filter((d) => d.rate === top && d.target === t).map((d) => d.achieved)).toFixed(0)} DORA/s completed)`;
  };
  L.push('Highest rate with under 1 % of DISCOVERs without an ACK (median):', '');
  for (const t of TARGETS) L.push(`- ${t}: ${best(t)}`);
  L.push('');
  L.push('### Task hand-out (median over rounds)', '');
  L.push('| target | hand-outs/s | tokens / requests (all rounds) | other answers | errors | Fleetboot CPU per hand-out (ms) |', '|---|---:|---:|---:|---:|---:|');
  for (const t of TARGETS) {
    const rs = handouts.filter((h) => h.target === t);
    const sum = (f: (h: Handout) => number): number => rs.reduce((s, h) => s + f(h), 0);
    L.push(`| ${t} | ${median(rs.map((h) => h.rate)).toFixed(0)} | ${sum((h) => h.tokens)} / ${sum((h) => h.requests)} | ${sum((h) => h.others)} | ${sum((h) => h.errors)} | ${((1000 * sum((h) => h.serverCpuS)) / Math.max(1, sum((h) => h.tokens))).toFixed(2)} |`);
  }
  const sqRate = median(handouts.filter((h) => h.target === 'sqlite').map((h) => h.rate));
  const pgRate = median(handouts.filter((h) => h.target === 'pg').map((h) => h.rate));
  L.push('', `PostgreSQL / SQLite hand-out rate: ${(pgRate / sqRate).toFixed(2)}×.`, '');
  const samples = handouts.flatMap((h) => h.samples.map((s) => `${h.target} round ${h.round}: ${s}`));
  if (samples.length) L.push('Answers without a token (samples):', '', ...samples.slice(0, 6).map((s) => `- ${s.replace(/\n/g, ' ')}`), '');
  L.push('All runs: ' + [...doras.map((d) => `DORA ${d.target}@${d.rate} r${d.round} ${d.achieved.toFixed(0)}/s ${d.dropPct.toFixed(1)}%`), ...handouts.map((h) => `hand-out ${h.target} r${h.round} ${h.rate.toFixed(0)}/s`)].join('; '), '');
  const text = L.join('\n');
  appendResults(OUT, 'Store benchmark: DHCP DORA and task hand-out rates, SQLite vs PostgreSQL (issue 15)', text);
}

try {
  await main();
} finally {
  await cleanups.run();
}
