/**
 * DHCP server benchmark: perfdhcp (relay mode, full DORA, 50,000 distinct
 * clients) against Fleetboot (`serve --dhcp server`), dnsmasq (--no-ping) and
 * Kea (kea-dhcp4, memfile, single-threaded) in the same run; then a
 * uniqueness run (perfdhcp -u) against Fleetboot with a kill -9 and restart
 * in the middle.
 *
 *   node --import tsx bench/dhcp-server.ts [--rates 1000,2000,4000,8000] [--seconds 5] [--out bench/results/dhcp-server.md]
 *
 * Lab: one bridge, namespaces fb (10.214.0.1), dq (10.214.0.3), kea
 * (10.214.0.4) and cli (10.214.0.2, perfdhcp acting as a relay: giaddr =
 * 10.214.0.2, answers come back unicast to port 67). Every server has the
 * same pool, 10.214.1.1-10.214.255.254 in 10.214.0.0/16 (65,278 addresses),
 * one-hour leases, and persists its leases (Fleetboot: SQLite in its data
 * directory; dnsmasq: its lease file; Kea: memfile CSV). Per-lease logging
 * is off for all three (Fleetboot --log-level warn, dnsmasq --quiet-dhcp,
 * Kea severity WARN). Servers on CPU 0, perfdhcp on CPU 1 (NOTES.md).
 * The servers keep running across the rates, so later rates meet a lease
 * table already holding the clients of the earlier ones, as a real server does.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Argv } from '../src/lib/programs.js';
import { Lab, labAvailable } from '../test/lab/lab.js';
import { perfdhcpStats, runCapture, sleep, vmHwmMiB, waitForText } from './lib.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SUBNET = '10.214.0';
const FB_IP = `${SUBNET}.1`;
const CLIENT_IP = `${SUBNET}.2`;
const DQ_IP = `${SUBNET}.3`;
const KEA_IP = `${SUBNET}.4`;
const DQRO_IP = `${SUBNET}.5`;
const POOL = { start: '10.214.1.1', end: '10.214.255.254', mask: '255.255.0.0' };
const CLIENTS = 50000;

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : def;
}
const RATES = arg('rates', '500,1000,2000,4000,8000').split(',').map(Number);
const SECONDS = Number(arg('seconds', '5'));
const OUT = arg('out', join(root, 'bench/results/dhcp-server.md'));
const UNIQUE_SECONDS = Number(arg('unique-seconds', '12'));
const UNIQUE_RATE = Number(arg('unique-rate', '500'));

interface Result {
  server: string;
  rate: number;
  sent: number;
  received: number;
  /** DORA exchanges: DISCOVERs sent and ACKs received (perfdhcp's two exchanges). */
  discovers: number;
  offers: number;
  requests: number;
  acks: number;
  dropPct: number;
  avgMs: number;
  achieved: number;
}

function perfArgs(lab: Lab, rate: number, seconds: number, server: string, extra: string[] = []): Argv {
  return [
    'ip', 'netns', 'exec', lab.host('cli').netns, 'taskset', '-c', '1',
    'perfdhcp', '-4', '-l', CLIENT_IP, '-r', String(rate), '-R', String(CLIENTS), '-p', String(seconds), '-W', '1000000', ...extra, server,
  ];
}

async function perfdhcp(lab: Lab, name: string, ip: string, rate: number): Promise<Result> {
  const out = await runCapture(perfArgs(lab, rate, SECONDS, ip), (SECONDS + 20) * 1000);
  const d = perfdhcpStats(out, 'DISCOVER-OFFER');
  const r = perfdhcpStats(out, 'REQUEST-ACK');
  if (!Number.isFinite(d.sent)) throw new Error(`perfdhcp output not understood:\n${out}`);
  // A DORA is complete when its ACK arrives; drops are DISCOVERs without an ACK at the end.
  const dropPct = d.sent > 0 ? (100 * (d.sent - r.received)) / d.sent : 100;
  const res: Result = {
    server: name,
    rate,
    sent: d.sent,
    received: r.received,
    discovers: d.sent,
    offers: d.received,
    requests: r.sent,
    acks: r.received,
    dropPct,
    avgMs: (d.avgMs || 0) + (r.avgMs || 0),
    achieved: r.received / SECONDS,
  };
  console.log(`${name.padEnd(9)} rate ${String(rate).padStart(5)}/s: DISCOVER ${d.sent}, OFFER ${d.received}, REQUEST ${r.sent}, ACK ${r.received} (${dropPct.toFixed(2)}% without ACK), avg D-O ${d.avgMs} ms + R-A ${r.avgMs} ms`);
  return res;
}

function sh(argv: Argv): Promise<string> {
  return runCapture(argv, 5000).then((s) => s.trim());
}

function startFleetboot(lab: Lab, work: string, tag: string): { proc: ChildProcess; log: string } {
  const log = join(work, `fleetboot-${tag}.log`);
  const fd = openSync(log, 'w');
  const cfg = join(work, 'fleetboot.json');
  writeFileSync(cfg, JSON.stringify({ dhcp: { probeAtStart: false } }));
  const proc = lab.spawnIn(
    lab.host('fb').netns,
    [
      'taskset', '-c', '0', process.execPath, '--import', 'tsx', join(root, 'src/cli/main.ts'), 'serve', '--allow-root', '--config', cfg, '--data-dir', join(work, 'fbdata'),
      '--server-ip', FB_IP, '--dhcp', 'server', '--dhcp-range', `${POOL.start},${POOL.end},${POOL.mask},3600`, '--no-tftp', '--http-port', '8080', '--log-level', 'warn',
    ],
    { stdio: ['ignore', fd, fd], cwd: root },
  );
  closeSync(fd);
  return { proc, log };
}

/** Wait until Fleetboot answers: its log at warn is silent, so ask the HTTP port from inside the namespace. */
async function waitFleetboot(lab: Lab, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const out = await runCapture(['ip', 'netns', 'exec', lab.host('fb').netns, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${FB_IP}:8080/boot.ipxe`], 3000);
    if (/^\d{3}$/.test(out.trim()) && out.trim() !== '000') return;
    await sleep(200);
  }
  throw new Error('Fleetboot did not start');
}

function keaConfig(work: string): string {
  const file = join(work, 'kea-dhcp4.conf');
  writeFileSync(
    file,
    JSON.stringify(
      {
        Dhcp4: {
          'interfaces-config': { interfaces: ['eth0'], 'dhcp-socket-type': 'udp' },
          'lease-database': { type: 'memfile', persist: true, name: join(work, 'kea-leases4.csv'), 'lfc-interval': 0 },
          'multi-threading': { 'enable-multi-threading': false },
          'valid-lifetime': 3600,
          'subnet4': [{ id: 1, subnet: '10.214.0.0/16', pools: [{ pool: `${POOL.start} - ${POOL.end}` }] }],
          loggers: [{ name: 'kea-dhcp4', severity: 'WARN', output_options: [{ output: join(work, 'kea.log') }] }],
        },
      },
      null,
      2,
    ),
  );
  return file;
}

interface UniqueResult {
  output: string;
  killedAtS: number;
  restartedInMs: number;
  discovers: number;
  acks: number;
  perfdhcpNonUnique: string;
  dbDuplicates: number;
  dbLeases: number;
}

/** -u run against Fleetboot with kill -9 + restart at about a third of the run. */
async function uniquenessRun(lab: Lab, work: string, first: ChildProcess): Promise<UniqueResult> {
  const perf = runCapture(perfArgs(lab, UNIQUE_RATE, UNIQUE_SECONDS, FB_IP, ['-u']), (UNIQUE_SECONDS + 30) * 1000);
  const killAt = Math.round((UNIQUE_SECONDS * 1000) / 3);
  await sleep(killAt);
  first.kill('SIGKILL');
  await new Promise((r) => first.once('exit', r));
  const t0 = Date.now();
  const second = startFleetboot(lab, work, 'restarted');
  await waitFleetboot(lab, 20000);
  const restartedInMs = Date.now() - t0;
  const out = await perf;
  second.proc.kill('SIGKILL');
  await sleep(300);
  const d = perfdhcpStats(out, 'DISCOVER-OFFER');
  const r = perfdhcpStats(out, 'REQUEST-ACK');
  const counts = [...out.matchAll(/non unique addresses:\s*(\d+)/g)].map((m) => Number(m[1]));
  const nonUnique = counts.length ? `non unique addresses: ${counts.join(' (DISCOVER-OFFER), ')} (REQUEST-ACK)` : 'no uniqueness line printed';
  // Fleetboot's own store after the run (ip is its primary key: one row per address).
  const dbOut = await sh(['node', '-e', `
    const D = require(${JSON.stringify(join(root, 'node_modules/better-sqlite3'))});
    const d = new D(${JSON.stringify(join(work, 'fbdata', 'fleetboot.db'))}, { readonly: true });
    console.log(JSON.stringify(d.prepare("select count(*) n, sum(state = 'bound') bound, count(distinct mac) macs from dhcp_leases").get()));
  `]);
  let dbLeases = NaN;
  let dbDuplicates = NaN;
  try {
    const j = JSON.parse(dbOut) as { n: number; bound: number; macs: number };
    dbLeases = j.n;
    // A client holding two rows is fine (an old offer); this counts nothing by itself, see perfdhcp -u.
    dbDuplicates = j.bound;
  } catch {
    console.log(`lease table check failed: ${dbOut}`);
  }
  console.log(`uniqueness: ${nonUnique}; DB ${dbOut}`);
  return { output: out, killedAtS: killAt / 1000, restartedInMs, discovers: d.sent, acks: r.received, perfdhcpNonUnique: nonUnique, dbDuplicates, dbLeases };
}

async function main(): Promise<void> {
  if (!(await labAvailable())) throw new Error('the benchmark needs root and ip netns (a lab)');
  const work = mkdtempSync(join(tmpdir(), 'fb-bench-dhcpd-'));
  const lab = await Lab.create({ subnet: SUBNET });
  const results: Result[] = [];
  const loadBefore = loadavg().map((l) => l.toFixed(2)).join(' ');
  const memory: Record<string, number> = {};
  let unique: UniqueResult | null = null;
  try {
    await lab.addHost('fb', FB_IP);
    const dq = await lab.addHost('dq', DQ_IP);
    const kea = await lab.addHost('kea', KEA_IP);
    const dqro = await lab.addHost('dqro', DQRO_IP);
    await lab.addHost('cli', CLIENT_IP);

    const fb = startFleetboot(lab, work, 'main');
    const dqLog = join(work, 'dnsmasq.log');
    const dqProc = lab.spawnIn(dq.netns, [
      'taskset', '-c', '0', 'dnsmasq', '-k', '--conf-file=/dev/null', '--port=0', '--user=root', '--pid-file', '--no-ping', '--quiet-dhcp',
      `--dhcp-range=${POOL.start},${POOL.end},${POOL.mask},1h`, '--dhcp-lease-max=100000', `--dhcp-leasefile=${join(work, 'dnsmasq.leases')}`, '--dhcp-authoritative',
      `--log-facility=${dqLog}`,
    ]);
    // The same dnsmasq without a lease file (--leasefile-ro): dnsmasq rewrites its whole
    // lease file on every change, so this shows what that costs it at tens of thousands of leases.
    const dqroLog = join(work, 'dnsmasq-ro.log');
    const dqroProc = lab.spawnIn(dqro.netns, [
      'taskset', '-c', '0', 'dnsmasq', '-k', '--conf-file=/dev/null', '--port=0', '--user=root', '--pid-file', '--no-ping', '--quiet-dhcp',
      `--dhcp-range=${POOL.start},${POOL.end},${POOL.mask},1h`, '--dhcp-lease-max=100000', '--leasefile-ro', '--dhcp-authoritative',
      `--log-facility=${dqroLog}`,
    ]);
    const keaProc = lab.spawnIn(kea.netns, ['taskset', '-c', '0', 'kea-dhcp4', '-c', keaConfig(work)], {
      env: { ...process.env, KEA_PIDFILE_DIR: work, KEA_LOCKFILE_DIR: work },
    });
    let keaOut = '';
    keaProc.stdout?.on('data', (b: Buffer) => (keaOut += b.toString()));
    keaProc.stderr?.on('data', (b: Buffer) => (keaOut += b.toString()));
    await waitForText(dqLog, /DHCP, IP range/, 10000);
    await waitForText(dqroLog, /DHCP, IP range/, 10000);
    await waitFleetboot(lab, 30000);
    await sleep(1000);
    if (keaProc.exitCode !== null) throw new Error(`kea-dhcp4 exited: ${keaOut}`);

    // warm-up (JIT, table creation), not recorded
    const servers: Array<[string, string]> = [['fleetboot', FB_IP], ['dnsmasq', DQ_IP], ['dnsmasq-ro', DQRO_IP], ['kea', KEA_IP]];
    for (const [name, ip] of servers) await perfdhcp(lab, `warm-${name}`, ip, 500);
    for (const [i, rate] of RATES.entries()) {
      const order = servers.map((_, k) => servers[(k + i) % servers.length] as [string, string]);
      for (const [name, ip] of order) {
        results.push(await perfdhcp(lab, name, ip, rate));
        await sleep(500);
      }
    }
    memory.fleetboot = vmHwmMiB(fb.proc.pid);
    memory.dnsmasq = vmHwmMiB(dqProc.pid);
    memory['dnsmasq-ro'] = vmHwmMiB(dqroProc.pid);
    memory.kea = vmHwmMiB(keaProc.pid);
    dqroProc.kill('SIGKILL');
    dqProc.kill('SIGKILL');
    keaProc.kill('SIGKILL');
    unique = await uniquenessRun(lab, work, fb.proc);
  } finally {
    await lab.destroy();
  }

  const loadAfter = loadavg().map((l) => l.toFixed(2)).join(' ');
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const machine = `nproc ${(await sh(['nproc'])) || '?'}, ${cpu}, Linux ${release()}, Node ${process.version}, perfdhcp ${(await sh(['perfdhcp', '-v'])).split('\n')[0]}, ${(await sh(['dnsmasq', '--version'])).split('\n')[0]}, kea-dhcp4 ${(await sh(['kea-dhcp4', '-v'])).split('\n')[0]}`;
  const best = (server: string) => {
    const ok = results.filter((r) => r.server === server && r.dropPct < 1);
    if (!ok.length) return 'none of the tested rates';
    const top = ok.reduce((a, b) => (b.rate > a.rate ? b : a));
    return `${top.rate}/s (${top.achieved.toFixed(0)} DORA/s completed, avg D-O + R-A ${top.avgMs.toFixed(2)} ms); all passing: ${ok.map((r) => r.rate).join(', ')}`;
  };
  const rows = results.map((r) => `| ${r.rate} | ${r.server} | ${r.discovers} | ${r.offers} | ${r.requests} | ${r.acks} | ${r.dropPct.toFixed(2)} % | ${r.avgMs.toFixed(2)} |`);
  const md = [
    '# DHCP server benchmark (full DORA)',
    '',
    `Run: ${new Date().toISOString()} with \`node --import tsx bench/dhcp-server.ts --rates ${RATES.join(',')} --seconds ${SECONDS}\``,
    '',
    `Machine: ${machine}. Shared with other jobs: load average (1/5/15 min) ${loadBefore} at the start, ${loadAfter} at the end.`,
    '',
    `perfdhcp -4 -l ${CLIENT_IP} (relay mode: giaddr = ${CLIENT_IP}, server answers to port 67) -R ${CLIENTS} distinct clients, full DORA (DISCOVER-OFFER then REQUEST-ACK), ${SECONDS} s per rate; servers in turn at each rate (rotated order), pinned to CPU 0, perfdhcp to CPU 1. Same pool everywhere: ${POOL.start}-${POOL.end}/${POOL.mask}, 1 h leases, leases persisted (Fleetboot SQLite, dnsmasq lease file, Kea memfile CSV). Per-lease logging off (Fleetboot warn, dnsmasq --quiet-dhcp, Kea WARN). dnsmasq --no-ping --dhcp-lease-max=100000 (dnsmasq-ro: the same with --leasefile-ro, no lease file, for comparison: dnsmasq rewrites its whole lease file on every change); Kea single-threaded (multi-threading disabled), udp sockets. The servers keep running across rates. "dropped" = DISCOVERs that did not end in an ACK.`,
    '',
    '## Highest rate with < 1 % dropped DORAs',
    '',
    ...['fleetboot', 'dnsmasq', 'dnsmasq-ro', 'kea'].map((s) => `- ${s}: ${best(s)}`),
    '',
    '## Peak resident memory (VmHWM after the rate runs)',
    '',
    ...Object.entries(memory).map(([k, v]) => `- ${k}: ${v.toFixed(1)} MiB`),
    '',
    '## All runs',
    '',
    '| rate (/s) | server | DISCOVER | OFFER | REQUEST | ACK | dropped | avg D-O + R-A (ms) |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    '## Uniqueness across kill -9 (Fleetboot)',
    '',
    unique
      ? [
          `perfdhcp -u (address uniqueness check) at ${UNIQUE_RATE}/s for ${UNIQUE_SECONDS} s, -R ${CLIENTS}; Fleetboot killed with SIGKILL at ${unique.killedAtS} s and started again on the same data directory (answering again after ${unique.restartedInMs} ms).`,
          `DISCOVERs ${unique.discovers}, ACKs ${unique.acks}. perfdhcp: \`${unique.perfdhcpNonUnique}\`. Fleetboot's lease table afterwards: ${unique.dbLeases} rows, ${unique.dbDuplicates} bound.`,
          '',
          '```',
          unique.output.trim(),
          '```',
        ].join('\n')
      : 'not run',
    '',
  ].join('\n');
  writeFileSync(OUT, md);
  console.log(`\n${md}\nwritten to ${OUT}`);
}

await main();
