/**
 * Two Fleetboot servers on one PostgreSQL, in a lab (issue 15's acceptance,
 * the parts built so far):
 *
 *   lab 10.215.0.0/24 (one bridge)
 *     ├── pg   .5    PostgreSQL 15 (src/store/test-postgres.ts), TCP for the lab
 *     ├── fa   .1    fleetboot serve --dhcp server --database postgres://…@10.215.0.5/… (node pxe-a)
 *     ├── fb   .2    the same (node pxe-b), the same pool
 *     ├── c1   .101  perfdhcp -u to A (relay mode: giaddr .101), clients 00:0c:01:…
 *     └── c2   .102  perfdhcp -u to B, clients 00:0c:02:…
 *
 * (a) A and B start at the same moment on an empty database: both run, and
 *     each migration is recorded once;
 * (b) a host added through A is seen by B; both list both nodes;
 * (c) perfdhcp against A and against B at once, sharing the pool: each run's
 *     own -u check, and the union of both servers' ACKs (from their logs)
 *     never gives one address to two clients;
 * (d) an inventory task runs once when the machine's boot request reaches
 *     both servers at the same moment: the one that loses the race is told
 *     to wait, or, when it comes a moment later, it counts as a reboot and
 *     replaces the token (as on one server): exactly one token is live;
 * (e) A stops: B keeps answering boot requests and DHCP, with all the state.
 * Needs root, `scripts/install-deps.sh --with-test` (postgresql-15, perfdhcp).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { Lab } from './lab/lab.js';
import { fleetbootCli, logEvents, startFleetboot, type Fleetboot } from './lab/bootenv/services.js';
import { startLabPostgres, type LabPostgres } from './lab/postgres.js';
import { perfdhcpStats, runCapture } from '../bench/lib.js';

const NET = '10.215.0';
const A_IP = `${NET}.1`;
const B_IP = `${NET}.2`;
const PG_IP = `${NET}.5`;
const RANGE = '10.215.1.1,10.215.63.254,255.255.0.0,3600';
const PERF_RATE = 60;
const PERF_SECONDS = 8;
/** perfdhcp picks each DISCOVER's client among this many MACs: enough that no client comes twice (its -u would count that). */
const PERF_CLIENTS = 1_000_000;
/** The machine whose task is handed out (d): its namespace has the task's MAC (the boot decision checks the requester's MAC). */
const TASK_MAC = '52:54:00:15:00:01';

let lab: Lab | null = null;
let work = '';
let postgres: LabPostgres | null = null;
let url = '';
let a: Fleetboot | null = null;
let b: Fleetboot | null = null;

function need<T>(v: T | null, what: string): T {
  if (v === null) throw new Error(`${what} was not set up (see the before() hook's error)`);
  return v;
}

function sql<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
  return need(postgres, 'PostgreSQL').sql<T>(text, values);
}

function serverDir(name: string): string {
  const d = join(work, name);
  // A boot environment (the task's kernel and initrd; the test never boots them).
  mkdirSync(join(d, 'bootenv'), { recursive: true, mode: 0o700 });
  writeFileSync(join(d, 'bootenv', 'vmlinuz'), Buffer.alloc(4096, 1));
  writeFileSync(join(d, 'bootenv', 'initrd.img'), 'initrd');
  return d;
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'fleetboot-cluster-'));
  lab = await Lab.create({ subnet: NET });
  await lab.addHost('pg', PG_IP);
  await lab.addHost('fa', A_IP);
  await lab.addHost('fb', B_IP);
  await lab.addHost('c1', `${NET}.101`);
  await lab.addHost('c2', `${NET}.102`);
  await lab.addHost('m1', `${NET}.103`, { mac: TASK_MAC });
  postgres = await startLabPostgres(lab, 'pg');
  url = postgres.url;
});

after(async () => {
  await lab?.destroy();
  await postgres?.server.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('(a) two servers start at the same moment on an empty PostgreSQL: both run, each migration is recorded once', async () => {
  const l = need(lab, 'the lab');
  const common = ['--dhcp', 'server', '--dhcp-range', RANGE, '--no-tftp', '--no-https', '--log-format', 'json', '--database', url];
  [a, b] = await Promise.all([
    startFleetboot(l, 'fa', { dataDir: serverDir('a'), serverIp: A_IP, extra: [...common, '--node-name', 'pxe-a'] }),
    startFleetboot(l, 'fb', { dataDir: serverDir('b'), serverIp: B_IP, extra: [...common, '--node-name', 'pxe-b'] }),
  ]);
  const rows = await sql<{ name: string; n: number }>('select name, count(*)::int as n from fleetboot_migrations group by name');
  assert.ok(rows.length >= 16, `${rows.length} migrations`);
  assert.deepEqual(rows.filter((r) => r.n !== 1), [], 'each migration once');
  const apps = await sql<{ application_name: string }>("select distinct application_name from pg_stat_activity where datname = 'fleetboot'");
  const names = apps.map((r) => r.application_name);
  assert.ok(names.includes('pxe-a') && names.includes('pxe-b'), `connections: ${names.join(', ')}`);
});

test('(b) a host added through A is seen by B; both servers list both nodes', async () => {
  const l = need(lab, 'the lab');
  const sa = need(a, 'server A');
  const sb = need(b, 'server B');
  await fleetbootCli(l, 'fa', sa.dataDir, ['host', 'add', TASK_MAC, '--name', 'lab-pc1']);
  const seen = JSON.parse(await fleetbootCli(l, 'fb', sb.dataDir, ['--json', 'host', 'show', TASK_MAC])) as { name?: string; host?: { name?: string } };
  assert.equal(seen.name ?? seen.host?.name, 'lab-pc1');
  for (const [host, s] of [['fa', sa], ['fb', sb]] as const) {
    const list = JSON.parse(await fleetbootCli(l, host, s.dataDir, ['--json', 'node', 'list'])) as { nodes: Array<{ name: string; state: string }> };
    assert.deepEqual(list.nodes.map((n) => `${n.name}:${n.state}`).sort(), ['pxe-a:up', 'pxe-b:up']);
  }
});

test('(c) perfdhcp against A and B at once from one shared pool: no address is given to two clients', async () => {
  const l = need(lab, 'the lab');
  const sa = need(a, 'server A');
  const sb = need(b, 'server B');
  const perf = (host: string, server: string, base: string) =>
    runCapture(['ip', 'netns', 'exec', l.host(host).netns, 'perfdhcp', '-4', '-l', l.host(host).ip ?? '', '-r', String(PERF_RATE), '-R', String(PERF_CLIENTS), '-p', String(PERF_SECONDS), '-b', `mac=${base}`, '-u', server], (PERF_SECONDS + 30) * 1000);
  const [outA, outB] = await Promise.all([perf('c1', A_IP, '00:0c:01:00:00:00'), perf('c2', B_IP, '00:0c:02:00:00:00')]);
  for (const [name, out] of [['A', outA], ['B', outB]] as const) {
    const r = perfdhcpStats(out, 'REQUEST-ACK');
    assert.ok(r.received > PERF_RATE, `perfdhcp against ${name}: ${r.received} ACKs\n${out}`);
    for (const m of out.matchAll(/non unique addresses:\s*(\d+)/g)) assert.equal(Number(m[1]), 0, `perfdhcp -u against ${name}:\n${out}`);
  }
  // The union: every ACK either server sent, by address.
  const owner = new Map<string, string>();
  const clash: string[] = [];
  let acks = 0;
  for (const s of [sa, sb]) {
    for (const e of logEvents(s)) {
      if (e['step'] !== 'REQUEST -> ACK' || typeof e['ip'] !== 'string' || typeof e['mac'] !== 'string') continue;
      acks++;
      const prev = owner.get(e['ip']);
      if (prev !== undefined && prev !== e['mac']) clash.push(`${e['ip']}: ${prev} and ${e['mac']}`);
      owner.set(e['ip'], e['mac']);
    }
  }
  assert.ok(acks > 2 * PERF_RATE, `${acks} ACKs in the logs`);
  assert.deepEqual(clash.slice(0, 10), [], `${clash.length} addresses ACKed to two clients`);
  const both = await sql<{ n: number }>("select count(*)::int as n from dhcp_leases where state = 'bound' and (mac like '00:0c:01:%' or mac like '00:0c:02:%')");
  assert.ok((both[0]?.n ?? 0) > 2 * PERF_RATE, JSON.stringify(both));
});

test("(d) a task is handed out once when the machine's boot request reaches both servers at once", async () => {
  const l = need(lab, 'the lab');
  const sa = need(a, 'server A');
  const mac = TASK_MAC;
  await fleetbootCli(l, 'fa', sa.dataDir, ['task', 'inventory', mac]);
  const decide = (server: string) => l.exec('m1', ['curl', '-s', '--max-time', '10', `http://${server}:8080/boot/decide?mac=${mac.replace(/:/g, '-')}&platform=pcbios`]);
  // One boot request reaching both servers (each further request would be another boot of the machine).
  const scripts = await Promise.all([decide(A_IP), decide(B_IP)]);
  const tokens = scripts.map((s) => /fleetboot\.token=([0-9a-f]+)/.exec(s)?.[1]).filter((t): t is string => t !== undefined);
  assert.ok(tokens.length >= 1, `a token among the answers:\n${scripts.join('\n----\n')}`);
  // Requests that lost the race were told to wait; one that came after a hand-out counts as a
  // reboot of the machine and replaced the token (as on one server). Either way one token is live:
  // the agent can fetch its task with exactly one of them, from either server.
  const live: string[] = [];
  for (const t of tokens) {
    for (const server of [A_IP, B_IP]) {
      const code = await l.exec('m1', ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', '-H', `authorization: Bearer ${t}`, `http://${server}:8080/agent/v1/task`]);
      if (code.trim() === '200') live.push(`${t.slice(0, 8)}@${server}`);
    }
  }
  assert.equal(new Set(live.map((x) => x.split('@')[0])).size, 1, `one live token of ${tokens.length} handed out: ${live.join(', ')}\n${scripts.join('\n----\n')}`);
  const rows = await sql<{ attempts: number }>('select attempts from tasks where mac = $1', [TASK_MAC]);
  assert.equal(rows[0]?.attempts, tokens.length, 'one attempt per token handed out');
});

test('(e) A stops: B keeps answering boot requests and DHCP, with all the state', async () => {
  const l = need(lab, 'the lab');
  const sa = need(a, 'server A');
  const sb = need(b, 'server B');
  await fleetbootCli(l, 'fa', sa.dataDir, ['host', 'add', '52:54:00:15:00:02', '--name', 'lab-pc2']);
  sa.log.child.kill('SIGTERM');
  for (let i = 0; i < 50 && sa.log.running; i++) await new Promise((r) => setTimeout(r, 200));
  assert.equal(sa.log.running, false, 'A stopped');
  const script = await l.exec('c1', ['curl', '-s', '--max-time', '10', `http://${B_IP}:8080/boot/decide?mac=52-54-00-15-00-02&platform=efi64`]);
  assert.match(script, /^#!ipxe/, script);
  const host = JSON.parse(await fleetbootCli(l, 'fb', sb.dataDir, ['--json', 'host', 'show', '52:54:00:15:00:02'])) as { name?: string; host?: { name?: string } };
  assert.equal(host.name ?? host.host?.name, 'lab-pc2', 'B knows the host added through A');
  const out = await runCapture(['ip', 'netns', 'exec', l.host('c2').netns, 'perfdhcp', '-4', '-l', `${NET}.102`, '-r', '50', '-R', '100', '-p', '3', '-b', 'mac=00:0c:03:00:00:00', '-u', B_IP], 40_000);
  assert.ok(perfdhcpStats(out, 'REQUEST-ACK').received > 50, out);
  const nodes = JSON.parse(await fleetbootCli(l, 'fb', sb.dataDir, ['--json', 'node', 'list'])) as { nodes: Array<{ name: string; state: string }> };
  assert.deepEqual(nodes.nodes.map((n) => `${n.name}:${n.state}`).sort(), ['pxe-a:down', 'pxe-b:up']);
});
