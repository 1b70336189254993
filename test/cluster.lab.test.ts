/**
 * Two Fleetboot servers on one PostgreSQL, on two subnets, serving a third
 * subnet through a relay (issue 15's acceptance, the parts built so far):
 *
 *   A's subnet 10.215.0.0/24                        B's subnet 10.215.1.0/24
 *     ├── fa  .1   fleetboot serve --dhcp server        ├── fb  .2   the same (node pxe-b),
 *     │            --database postgres://…@10.215.0.5/… │            the same pool
 *     │            (node pxe-a), the machines' pool     │
 *     ├── pg  .5   PostgreSQL 15 (its own namespace),   │
 *     │            trusting 10.215.0.0/16               │
 *     └── eth0 .254 ──────────────── router ─────────── eth1 .254
 *                  ip_forward; dhcrelay -a -c 1 -iu eth0 -iu eth1 -id eth2, to A and B
 *                                       │ eth2 .1
 *   the machines' subnet 10.215.64.0/24 ┘ (its pool 10.215.65.1-10.215.127.254, mask /18:
 *   10.215.64.0/18 holds the relay agents' giaddrs; A and B share it)
 *     ├── c1  .101  perfdhcp -u to A as a relay agent (giaddr .101), clients 00:0c:01:…
 *     ├── c2  .102  perfdhcp -u to B as a relay agent (giaddr .102), clients 00:0c:02:…
 *     ├── m1  .103  the machine whose task is handed out (d), MAC 52:54:00:15:00:01
 *     └── cl        a DHCP client (udhcpc, no address): its broadcasts reach B through dhcrelay (e)
 *
 * Every host's default route is the router. Neither server sets node.subnets,
 * so each serves its pools' subnet (src/nodes/service.ts servedSubnets): both
 * serve the machines' subnet with the same prefix, neither sends a machine on
 * to the other (`via=`, src/http/routes/boot.ts), and the race in (d) is real.
 *
 * perfdhcp plays the relay itself (relay mode: -l ADDR sets giaddr and takes
 * the answers on ADDR:67) rather than going through dhcrelay: dhcrelay sends
 * every broadcast to both servers, so a run could not be "against A" or
 * "against B", and each DISCOVER would get two OFFERs, which perfdhcp's
 * one-exchange-per-transaction counting does not expect. The real dhcrelay
 * path is what the DHCP client in (e) takes. dhcrelay runs with -c 1: it reads
 * every frame to port 67 on eth2, so without it it relays perfdhcp's unicasts
 * passing through the router to both servers as well (seen: "Forwarded
 * BOOTREQUEST for 00:0c:01:… to 10.215.1.2", and perfdhcp counting hundreds
 * of orphan and non-unique OFFERs); those carry hops 1 and are left to the
 * kernel's forwarding.
 *
 * (a) A and B start at the same moment on an empty database: both run, and
 *     each migration is recorded once;
 * (b) a host added through A is seen by B; both list both nodes;
 * (c) perfdhcp against A and against B at once, from the machines' subnet,
 *     sharing its pool: each run's own -u check, each server answers only its
 *     own run, and the union of both servers' ACKs (from their logs) never
 *     gives one address to two clients;
 * (d) an inventory task runs once when the machine's boot request reaches
 *     both servers at the same moment: neither sends it on to the other, the
 *     one that loses the race is told to wait, or, when it comes a moment
 *     later, it counts as a reboot and replaces the token (as on one server):
 *     exactly one token is live;
 * (e) A stops: B keeps answering boot requests from the machines' subnet and
 *     DHCP through the relay, with all the state.
 * Needs root, `scripts/install-deps.sh --with-test` (postgresql-15, perfdhcp, isc-dhcp-relay).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { Lab } from './lab/lab.js';
import { fleetbootCli, logEvents, macHex, startFleetboot, type Fleetboot, type ProcessLog } from './lab/bootenv/services.js';
import { startLabPostgres, type LabPostgres } from './lab/postgres.js';
import { addRouter, routeVia, startDhcrelay } from './lab/relay.js';
import { perfdhcpStats, runCapture } from '../bench/lib.js';

/** A's subnet (and PostgreSQL's), B's, and the machines' (behind the relay). */
const NET_A = '10.215.0';
const NET_B = '10.215.1';
const NET_M = '10.215.64';
const A_IP = `${NET_A}.1`;
const B_IP = `${NET_B}.2`;
const PG_IP = `${NET_A}.5`;
const ROUTER_A = `${NET_A}.254`;
const ROUTER_B = `${NET_B}.254`;
/** The router's address on the machines' subnet: the giaddr dhcrelay sets. */
const ROUTER_M = `${NET_M}.1`;
/** The machines' pool, shared by A and B: a /18 (10.215.64.0/18) that holds the relays' giaddrs, above the bridge's static addresses. */
const RANGE = '10.215.65.1,10.215.127.254,255.255.192.0,3600';
const PERF_RATE = 60;
const PERF_SECONDS = 8;
/** perfdhcp picks each DISCOVER's client among this many MACs: enough that no client comes twice (its -u would count that). */
const PERF_CLIENTS = 1_000_000;
/** The machine whose task is handed out (d): its namespace has the task's MAC (the boot decision checks the requester's MAC). */
const TASK_MAC = '52:54:00:15:00:01';
/** The DHCP client of (e), on the machines' subnet. */
const CLIENT_MAC = '52:54:00:15:00:03';

let labA: Lab | null = null;
let labB: Lab | null = null;
let labM: Lab | null = null;
let work = '';
let postgres: LabPostgres | null = null;
let relay: ProcessLog | null = null;
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

/** perfdhcp -u against `server` from `host` on the machines' subnet, as a relay agent (giaddr: the host's address). */
function perfdhcp(host: string, server: string, o: { rate: number; clients: number; seconds: number; macBase: string }): Promise<string> {
  const h = need(labM, "the machines' subnet").host(host);
  return runCapture(['ip', 'netns', 'exec', h.netns, 'perfdhcp', '-4', '-l', h.ip, '-r', String(o.rate), '-R', String(o.clients), '-p', String(o.seconds), '-b', `mac=${o.macBase}`, '-u', server], (o.seconds + 30) * 1000);
}

/** The boot decision for `mac` from the machine m1 (on the machines' subnet) at `server`. */
function decide(server: string, mac: string, platform: string): Promise<string> {
  return need(labM, "the machines' subnet").exec('m1', ['curl', '-s', '--max-time', '10', `http://${server}:8080/boot/decide?mac=${mac.replace(/:/g, '-')}&platform=${platform}`]);
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'fleetboot-cluster-'));
  labA = await Lab.create({ subnet: NET_A });
  labB = await Lab.create({ subnet: NET_B });
  labM = await Lab.create({ subnet: NET_M });
  await labA.addHost('pg', PG_IP);
  await labA.addHost('fa', A_IP);
  await labB.addHost('fb', B_IP);
  await labM.addHost('c1', `${NET_M}.101`);
  await labM.addHost('c2', `${NET_M}.102`);
  await labM.addHost('m1', `${NET_M}.103`, { mac: TASK_MAC });
  await labM.addHost('cl', null, { mac: CLIENT_MAC });
  const router = await addRouter(labA, 'router', ROUTER_A, [{ lab: labB, ip: ROUTER_B }, { lab: labM, ip: ROUTER_M }]);
  await routeVia(labA, ['pg', 'fa'], 'default', ROUTER_A);
  await routeVia(labB, ['fb'], 'default', ROUTER_B);
  await routeVia(labM, ['c1', 'c2', 'm1'], 'default', ROUTER_M);
  relay = await startDhcrelay(labA, router, { upstream: ['eth0', 'eth1'], downstream: ['eth2'], servers: [A_IP, B_IP], maxHops: 1, pidFile: join(work, 'dhcrelay.pid') });
  postgres = await startLabPostgres(labA, 'pg', { allowFrom: '10.215.0.0/16' });
  url = postgres.url;
});

after(async () => {
  for (const l of [labM, labB, labA]) await l?.destroy();
  await postgres?.server.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('(a) two servers on two subnets start at the same moment on an empty PostgreSQL: both run, each migration is recorded once', async () => {
  const common = ['--dhcp', 'server', '--dhcp-range', RANGE, '--no-tftp', '--no-https', '--log-format', 'json', '--database', url];
  [a, b] = await Promise.all([
    startFleetboot(need(labA, "A's subnet"), 'fa', { dataDir: serverDir('a'), serverIp: A_IP, extra: [...common, '--node-name', 'pxe-a'] }),
    startFleetboot(need(labB, "B's subnet"), 'fb', { dataDir: serverDir('b'), serverIp: B_IP, extra: [...common, '--node-name', 'pxe-b'] }),
  ]);
  const rows = await sql<{ name: string; n: number }>('select name, count(*)::int as n from fleetboot_migrations group by name');
  assert.ok(rows.length >= 16, `${rows.length} migrations`);
  assert.deepEqual(rows.filter((r) => r.n !== 1), [], 'each migration once');
  const apps = await sql<{ application_name: string; client: string }>("select distinct application_name, host(client_addr) as client from pg_stat_activity where datname = 'fleetboot' and client_addr is not null");
  const names = apps.map((r) => `${r.application_name}@${r.client}`);
  assert.ok(names.includes(`pxe-a@${A_IP}`) && names.includes(`pxe-b@${B_IP}`), `connections: ${names.join(', ')}`);
});

test('(b) a host added through A is seen by B; both servers list both nodes', async () => {
  const la = need(labA, "A's subnet");
  const lb = need(labB, "B's subnet");
  const sa = need(a, 'server A');
  const sb = need(b, 'server B');
  await fleetbootCli(la, 'fa', sa.dataDir, ['host', 'add', TASK_MAC, '--name', 'lab-pc1']);
  const seen = JSON.parse(await fleetbootCli(lb, 'fb', sb.dataDir, ['--json', 'host', 'show', TASK_MAC])) as { name?: string; host?: { name?: string } };
  assert.equal(seen.name ?? seen.host?.name, 'lab-pc1');
  for (const [l, host, s] of [[la, 'fa', sa], [lb, 'fb', sb]] as const) {
    const list = JSON.parse(await fleetbootCli(l, host, s.dataDir, ['--json', 'node', 'list'])) as { nodes: Array<{ name: string; state: string }> };
    assert.deepEqual(list.nodes.map((n) => `${n.name}:${n.state}`).sort(), ['pxe-a:up', 'pxe-b:up']);
  }
});

test("(c) perfdhcp against A and B at once from the machines' subnet, one shared pool: no address is given to two clients", async () => {
  const sa = need(a, 'server A');
  const sb = need(b, 'server B');
  const run = { rate: PERF_RATE, clients: PERF_CLIENTS, seconds: PERF_SECONDS };
  const [outA, outB] = await Promise.all([perfdhcp('c1', A_IP, { ...run, macBase: '00:0c:01:00:00:00' }), perfdhcp('c2', B_IP, { ...run, macBase: '00:0c:02:00:00:00' })]);
  for (const [name, out] of [['A', outA], ['B', outB]] as const) {
    const r = perfdhcpStats(out, 'REQUEST-ACK');
    assert.ok(r.received > PERF_RATE, `perfdhcp against ${name}: ${r.received} ACKs\n${out}`);
    for (const m of out.matchAll(/non unique addresses:\s*(\d+)/g)) assert.equal(Number(m[1]), 0, `perfdhcp -u against ${name}:\n${out}`);
  }
  // The union: every ACK either server sent, by address. Each server answered its own run only
  // (through its relay agent's giaddr), so the two runs met only in the shared pool.
  const owner = new Map<string, string>();
  const clash: string[] = [];
  let acks = 0;
  for (const [s, own, giaddr] of [[sa, '000c01', `${NET_M}.101`], [sb, '000c02', `${NET_M}.102`]] as const) {
    const stray: string[] = [];
    for (const e of logEvents(s)) {
      if (e['step'] !== 'REQUEST -> ACK' || typeof e['ip'] !== 'string' || typeof e['mac'] !== 'string') continue;
      if (!macHex(e['mac']).startsWith(own) || e['giaddr'] !== giaddr) stray.push(`${e['mac']} via ${String(e['giaddr'])}`);
      acks++;
      const prev = owner.get(e['ip']);
      if (prev !== undefined && prev !== e['mac']) clash.push(`${e['ip']}: ${prev} and ${e['mac']}`);
      owner.set(e['ip'], e['mac']);
    }
    assert.deepEqual(stray.slice(0, 10), [], `${stray.length} ACKs for another run's clients or relay`);
  }
  assert.ok(acks > 2 * PERF_RATE, `${acks} ACKs in the logs`);
  assert.deepEqual(clash.slice(0, 10), [], `${clash.length} addresses ACKed to two clients`);
  const both = await sql<{ n: number }>("select count(*)::int as n from dhcp_leases where state = 'bound' and (mac like '00:0c:01:%' or mac like '00:0c:02:%')");
  assert.ok((both[0]?.n ?? 0) > 2 * PERF_RATE, JSON.stringify(both));
});

test("(d) a task is handed out once when the machine's boot request reaches both servers at once", async () => {
  const lm = need(labM, "the machines' subnet");
  const sa = need(a, 'server A');
  const mac = TASK_MAC;
  await fleetbootCli(need(labA, "A's subnet"), 'fa', sa.dataDir, ['task', 'inventory', mac]);
  // One boot request reaching both servers (each further request would be another boot of the machine).
  const scripts = await Promise.all([decide(A_IP, mac, 'pcbios'), decide(B_IP, mac, 'pcbios')]);
  // Both serve the machines' subnet: neither sends the machine on to the other (which would hand nothing out).
  for (const s of scripts) assert.doesNotMatch(s, /via=/, `a server sent the machine on instead of deciding:\n${s}`);
  const tokens = scripts.map((s) => /fleetboot\.token=([0-9a-f]+)/.exec(s)?.[1]).filter((t): t is string => t !== undefined);
  assert.ok(tokens.length >= 1, `a token among the answers:\n${scripts.join('\n----\n')}`);
  // Requests that lost the race were told to wait; one that came after a hand-out counts as a
  // reboot of the machine and replaced the token (as on one server). Either way one token is live:
  // the agent can fetch its task with exactly one of them, from either server.
  const live: string[] = [];
  for (const t of tokens) {
    for (const server of [A_IP, B_IP]) {
      const code = await lm.exec('m1', ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', '-H', `authorization: Bearer ${t}`, `http://${server}:8080/agent/v1/task`]);
      if (code.trim() === '200') live.push(`${t.slice(0, 8)}@${server}`);
    }
  }
  assert.equal(new Set(live.map((x) => x.split('@')[0])).size, 1, `one live token of ${tokens.length} handed out: ${live.join(', ')}\n${scripts.join('\n----\n')}`);
  const rows = await sql<{ attempts: number }>('select attempts from tasks where mac = $1', [TASK_MAC]);
  assert.equal(rows[0]?.attempts, tokens.length, 'one attempt per token handed out');
});

test("(e) A stops: B keeps answering boot requests and DHCP through the relay, with all the state", async () => {
  const la = need(labA, "A's subnet");
  const lb = need(labB, "B's subnet");
  const lm = need(labM, "the machines' subnet");
  const sa = need(a, 'server A');
  const sb = need(b, 'server B');
  await fleetbootCli(la, 'fa', sa.dataDir, ['host', 'add', '52:54:00:15:00:02', '--name', 'lab-pc2']);
  sa.log.child.kill('SIGTERM');
  for (let i = 0; i < 50 && sa.log.running; i++) await new Promise((r) => setTimeout(r, 200));
  assert.equal(sa.log.running, false, 'A stopped');
  const script = await decide(B_IP, '52:54:00:15:00:02', 'efi64');
  assert.match(script, /^#!ipxe/, script);
  const host = JSON.parse(await fleetbootCli(lb, 'fb', sb.dataDir, ['--json', 'host', 'show', '52:54:00:15:00:02'])) as { name?: string; host?: { name?: string } };
  assert.equal(host.name ?? host.host?.name, 'lab-pc2', 'B knows the host added through A');
  // A real client's broadcast, relayed by dhcrelay to A (gone) and B: B leases it an address of the shared pool.
  const mark = sb.log.mark();
  await lm.exec('cl', ['busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-t', '5', '-T', '1', '-s', '/bin/true']).catch((err: unknown) => {
    assert.fail(`no lease through the relay with A stopped: ${String(err)}\n--- dhcrelay\n${need(relay, 'dhcrelay').tail(20)}\n--- B\n${sb.log.tail(20)}`);
  });
  await sb.log.waitFor(/"step":"REQUEST -> ACK"/, 5000, mark);
  const acked = logEvents(sb).find((e) => e['step'] === 'REQUEST -> ACK' && macHex(e['mac']) === macHex(CLIENT_MAC));
  assert.equal(acked?.['giaddr'], ROUTER_M, `B's ACK to the client came through the relay (giaddr ${ROUTER_M}):\n${sb.log.tail(20)}`);
  const out = await perfdhcp('c2', B_IP, { rate: 50, clients: 100, seconds: 3, macBase: '00:0c:03:00:00:00' });
  assert.ok(perfdhcpStats(out, 'REQUEST-ACK').received > 50, out);
  const nodes = JSON.parse(await fleetbootCli(lb, 'fb', sb.dataDir, ['--json', 'node', 'list'])) as { nodes: Array<{ name: string; state: string }> };
  assert.deepEqual(nodes.nodes.map((n) => `${n.name}:${n.state}`).sort(), ['pxe-a:down', 'pxe-b:up']);
});
