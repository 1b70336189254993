/**
 * Nearest node (issue 15) with two servers on one PostgreSQL (the test
 * command's PostgreSQL pass; skipped on SQLite, where there is one server):
 * A (127.0.0.1, proxyDHCP) and B (127.0.0.2, serving 127.0.0.0/24 by
 * node.subnets). A machine at 127.0.0.3 is on B's subnet:
 * - A's proxyDHCP answer (a 4011 request with ciaddr) names B as
 *   next-server and B's /boot.ipxe;
 * - A's /boot.ipxe chains to B's /boot/decide marked via=node-a; A's
 *   /boot/decide sends it to B's /boot.ipxe?via=node-a without handing out
 *   its task; B, asked with via, decides and hands the boot environment
 *   out once, with B's URLs (kernel, initrd, fleetboot.url);
 * - B never sends it back (B serves that subnet), and a request marked
 *   via is never sent on;
 * - B stops: A serves the machine itself again (the stop's cluster signal
 *   refreshes A's directory).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.js';
import { silentLogger } from '../src/lib/log.js';
import { startFleetboot, type RunningFleetboot } from '../src/server.js';
import { testDatabaseUrl, testStoreDialect } from '../src/store/temp-store.js';
import { createPacket, cString, encodePacket } from '../src/protocol/dhcp/packet.js';
import { bootfileName, Opt } from '../src/protocol/dhcp/options.js';
import { exchangeDhcp, freeUdpPortPair } from './dhcp-helpers.js';

const pgOnly = testStoreDialect() === 'postgres' ? {} : { skip: 'PostgreSQL only (the test command runs this file again on PostgreSQL)' };
const MACHINE = '127.0.0.3';
const MAC = '52:54:00:15:04:01';

async function startNode(dir: string, url: string | null, o: { name: string; ip: string; subnets: string[]; proxyPort?: number }): Promise<RunningFleetboot> {
  mkdirSync(join(dir, 'bootenv'), { recursive: true });
  writeFileSync(join(dir, 'bootenv', 'vmlinuz'), 'kernel');
  writeFileSync(join(dir, 'bootenv', 'initrd.img'), 'initrd');
  const file = join(dir, 'config.json');
  const dhcp = o.proxyPort ? { mode: 'proxy', bindAddress: '127.0.0.1', port: o.proxyPort, pxePort: o.proxyPort + 1, probeAtStart: false } : { mode: 'off' };
  writeFileSync(file, JSON.stringify({ dhcp, node: { name: o.name, subnets: o.subnets } }));
  const config = loadConfig({
    cwd: dir,
    file,
    overrides: { ...(url ? { store: { url } } : {}), dataDir: dir, serverIp: o.ip, http: { host: o.ip, port: 0 }, https: { enabled: false }, tftp: { enabled: false } },
  });
  return startFleetboot(config, { logger: silentLogger, ipxeDir: join(dir, 'no-ipxe') });
}

/** GET `url` from the machine's address. */
function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { localAddress: MACHINE }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function api(fb: RunningFleetboot, method: string, path: string, body?: object): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${fb.url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${fb.token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

async function eventually<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, ms = 3000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > until) assert.fail(`${what}: still ${JSON.stringify(v)} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** iPXE at MACHINE asking the proxy's 4011 port for its boot file (a unicast answer comes back). */
async function askProxy(sock: Socket, pxePort: number, xid: number): Promise<{ siaddr: string; file: string }> {
  const chaddr = Buffer.alloc(16);
  Buffer.from(MAC.split(':').map((h) => parseInt(h, 16))).copy(chaddr);
  const p = createPacket({
    xid,
    chaddr,
    ciaddr: MACHINE,
    options: [
      { code: Opt.MESSAGE_TYPE, data: Buffer.from([3]) },
      { code: Opt.VENDOR_CLASS_ID, data: Buffer.from('PXEClient:Arch:00007:UNDI:003016') },
      { code: Opt.CLIENT_ARCH, data: Buffer.from([0, 7]) },
      { code: Opt.USER_CLASS, data: Buffer.from('iPXE') },
    ],
  });
  const r = await exchangeDhcp(sock, sock, encodePacket(p), pxePort, { xid });
  assert.ok(r, 'the proxy answers on 4011');
  return { siaddr: r.siaddr, file: bootfileName(r) ?? cString(r.file) };
}

test('nearest node: A points a machine on B\'s subnet at B (DHCP, /boot.ipxe, /boot/decide; one hand-out, B\'s URLs); with B stopped A serves it', pgOnly, async () => {
  const dirA = mkdtempSync(join(tmpdir(), 'fleetboot-nearest-a-'));
  const dirB = mkdtempSync(join(tmpdir(), 'fleetboot-nearest-b-'));
  // One database for both (a new one per file run on PostgreSQL).
  const url = await testDatabaseUrl(dirA);
  const port = await freeUdpPortPair();
  const a = await startNode(dirA, url, { name: 'node-a', ip: '127.0.0.1', subnets: [], proxyPort: port });
  let b: RunningFleetboot | null = await startNode(dirB, url, { name: 'node-b', ip: '127.0.0.2', subnets: ['127.0.0.0/24'] });
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, MACHINE, () => r()));
  try {
    const B = b.baseUrl;
    assert.equal(B, `http://127.0.0.2:${b.httpPort}`);
    // B's start reaches A's directory through the cluster signal.
    const entry = await eventually('A\'s /boot.ipxe sends the machine to B', () => get(`${a.baseUrl}/boot.ipxe`), (r) => r.body.includes(`${B}/boot/decide?via=node-a&`));
    assert.equal(entry.status, 200);

    const dhcp = await askProxy(sock, port + 1, 0x15a1);
    assert.deepEqual(dhcp, { siaddr: '127.0.0.2', file: `${B}/boot.ipxe` });

    // A task for the machine, created through A.
    assert.equal((await api(a, 'POST', '/hosts', { mac: MAC, name: 'near1' })).status, 201);
    const created = await api(a, 'POST', '/tasks', { type: 'inventory', mac: MAC });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = Number(created.body['id']);
    const q = `mac=${MAC.replaceAll(':', '-')}&platform=efi&buildarch=x86_64`;

    // A's decide sends it on, and hands nothing out.
    const onA = await get(`${a.baseUrl}/boot/decide?${q}`);
    assert.match(onA.body, new RegExp(`^chain --replace --autofree ${B.replaceAll('.', '\\.')}/boot\\.ipxe\\?via=node-a `, 'm'));
    assert.doesNotMatch(onA.body, /fleetboot\.token/);
    assert.equal((await api(a, 'GET', `/tasks/${id}`)).body['attempts'], 0, 'nothing handed out by A');

    // B, asked with via, keeps the machine: its entry script chains to its own decide, still marked.
    const entryB = await get(`${B}/boot.ipxe?via=node-a`);
    assert.match(entryB.body, new RegExp(`${B.replaceAll('.', '\\.')}/boot/decide\\?via=node-a&`));
    // B without via keeps it too (it serves the subnet): never sent back to A.
    assert.doesNotMatch((await get(`${B}/boot.ipxe`)).body, /via=/);
    assert.match((await get(`${B}/boot.ipxe`)).body, new RegExp(`${B.replaceAll('.', '\\.')}/boot/decide\\?mac=`));

    const onB = await get(`${B}/boot/decide?via=node-a&${q}`);
    assert.match(onB.body, new RegExp(`^kernel ${B.replaceAll('.', '\\.')}/boot/env/vmlinuz .*fleetboot\\.url=${B.replaceAll('.', '\\.')} fleetboot\\.task=${id} fleetboot\\.token=[0-9a-f]+`, 'm'));
    assert.match(onB.body, new RegExp(`^initrd ${B.replaceAll('.', '\\.')}/boot/env/initrd\\.img`, 'm'));
    const task = (await api(b, 'GET', `/tasks/${id}`)).body;
    assert.equal(task['attempts'], 1, 'handed out once, by B');
    assert.equal(task['tokenIp'], MACHINE);
    // A request marked via is never sent on, even to A from A (a stale snapshot cannot loop).
    assert.doesNotMatch((await get(`${a.baseUrl}/boot/decide?via=node-b&${q}`)).body, /boot\.ipxe\?via=/);

    // B stops: A serves the machine again.
    await b.close();
    b = null;
    await eventually('A\'s /boot.ipxe keeps the machine once B is down', () => get(`${a.baseUrl}/boot.ipxe`), (r) => r.body.includes(`${a.baseUrl}/boot/decide?mac=`));
    assert.deepEqual(await askProxy(sock, port + 1, 0x15a2), { siaddr: '127.0.0.1', file: `${a.baseUrl}/boot.ipxe` });
    assert.doesNotMatch((await get(`${a.baseUrl}/boot/decide?${q}`)).body, /via=/);
  } finally {
    sock.close();
    await b?.close();
    await a.close();
    rmSync(dirA, { recursive: true, force: true });
    rmSync(dirB, { recursive: true, force: true });
  }
});
