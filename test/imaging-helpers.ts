/**
 * Test helpers for the imaging API, CLI and server tests: an image committed
 * through the real image store (streams received and committed as a
 * capture's are), an inventory, and a real server on 127.0.0.1 with fetch
 * playing the booting machine and its agent.
 */
import { openTestStore, testStoreOverrides } from '../src/store/temp-store.js';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { loadConfig, type ConfigOverrides } from '../src/config/config.js';
import { createLogger, silentLogger, type Logger } from '../src/lib/log.js';
import { startFleetboot, type RunningFleetboot } from '../src/server.js';
import { openStore } from '../src/store/index.js';
import { commitCapture, receiveStream } from '../src/imaging/image-store.js';
import type { HardwareIdentity } from '../src/model/identity.js';
import type { Inventory, Manifest } from '../src/model/manifest.js';
import { createTask, finishTask, type Store } from '../src/store/index.js';
import type { ImageInfo } from '../src/store/images.js';


/**
 * Commit image `name` captured from host `mac` (which must exist and have no
 * active task): a capture task, two uploaded streams, the commit, the task done.
 */
export async function makeImage(
  store: Store,
  name: string,
  mac: string,
  opts: { approval?: boolean; keepRevisions?: number; fill?: number } = {},
): Promise<{ info: ImageInfo; taskId: number; streams: Buffer[]; revision: number; manifestSha256: string }> {
  const task = await createTask(store.db, { type: 'capture', mac, image: name });
  const p1 = Buffer.alloc(300_000, opts.fill ?? 1);
  const p2 = Buffer.from('a small fat partition stream');
  // As the agent's uploads arrive (PUT /agent/v1/task/streams/:file), counted and hashed by the server.
  await receiveStream(store, task.id, 'p1.pcl.zst', Readable.from([p1]), { maxBytes: 1024 ** 3 });
  await receiveStream(store, task.id, 'p2.raw.zst', Readable.from([p2]), { maxBytes: 1024 ** 3 });
  const manifest: Manifest = {
    format: 'fleetboot-image',
    version: 1,
    name: '',
    createdAt: new Date().toISOString(),
    source: { mac: null, taskId: null, disk: '/dev/sda', diskModel: 'QEMU HARDDISK' },
    diskBytes: 2 * 1024 ** 3,
    table: { type: 'dos', sectorSize: 512, id: '0x1234abcd', sfdisk: 'label: dos\n' },
    partitions: [
      {
        number: 1,
        start: 2048,
        sectors: 2_097_152,
        type: '83',
        uuid: null,
        name: null,
        bootable: true,
        filesystem: 'ext4',
        tool: 'partclone.ext4',
        compression: 'zstd',
        file: 'p1.pcl.zst',
        sizeBytes: 2_097_152 * 512,
        usedBytes: 123_456_789,
        streamBytes: p1.length,
        sha256: sha(p1),
      },
      {
        number: 2,
        start: 2_099_200,
        sectors: 204_800,
        type: 'c',
        uuid: null,
        name: null,
        bootable: false,
        filesystem: null,
        tool: 'raw',
        compression: 'zstd',
        file: 'p2.raw.zst',
        sizeBytes: 204_800 * 512,
        usedBytes: null,
        streamBytes: p2.length,
        sha256: sha(p2),
      },
    ],
  };
  const c = await commitCapture(store, task.id, name, manifest, { mac: task.mac, maxBytes: 1024 ** 3, approval: opts.approval ?? false, keepRevisions: opts.keepRevisions ?? 3 });
  await finishTask(store.db, task.id, 'done');
  if (c.info === null) throw new Error(`image ${name} has no current revision after the commit`);
  return { info: c.info, taskId: task.id, streams: [p1, p2], revision: c.revision, manifestSha256: c.manifestSha256 };
}

export function sampleInventory(mac: string): Inventory {
  return {
    collectedAt: '2026-01-02T03:04:05.000Z',
    cpu: { model: 'QEMU Virtual CPU version 2.5+', sockets: 1, cores: 2, threads: 2 },
    memoryBytes: 2 * 1024 ** 3,
    disks: [
      { name: 'sda', sizeBytes: 8 * 1024 ** 3, model: 'QEMU HARDDISK', serial: 'QM00001', rotational: true },
      { name: 'nvme0n1', sizeBytes: 512 * 1024 ** 3, model: 'NVMe disk', serial: null, rotational: false },
    ],
    nics: [{ name: 'eth0', mac, driver: 'e1000', speedMbps: 1000 }],
    smbios: { manufacturer: 'QEMU', product: 'Standard PC (i440FX + PIIX, 1996)', serial: 'SN-123', uuid: '8d2a1b3c-0000-4000-8000-000000000001', biosVendor: 'SeaBIOS', biosVersion: '1.16.2' },
    firmware: 'bios',
  };
}

// ------------------------------------------------------- a real server --

export const MAC_A = '52:54:00:aa:00:01';
export const MAC_B = '52:54:00:aa:00:02';

export interface Env {
  dir: string;
  fb: RunningFleetboot;
  store: Store;
  logs: Array<Record<string, unknown>>;
}

export async function start(dir: string, imaging: ConfigOverrides['imaging'] = {}, logs?: Array<Record<string, unknown>>): Promise<RunningFleetboot> {
  const config = loadConfig({
    overrides: { ...(await testStoreOverrides(dir)), dataDir: dir, serverIp: '127.0.0.1', http: { host: '127.0.0.1', port: 0 }, https: { host: '127.0.0.1', port: 0 }, tftp: { enabled: false }, dhcp: { mode: 'off' }, imaging },
  });
  let logger: Logger = silentLogger;
  if (logs) {
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    });
    logger = createLogger('info', sink);
  }
  return startFleetboot(config, { logger, ipxeDir: join(dir, 'no-ipxe') });
}

export async function withServer(fn: (env: Env) => Promise<void>, imaging: ConfigOverrides['imaging'] = {}, opts: { bootEnv?: boolean } = {}): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetboot-imaging-'));
  if (opts.bootEnv !== false) {
    mkdirSync(join(dir, 'bootenv'), { recursive: true });
    writeFileSync(join(dir, 'bootenv', 'vmlinuz'), Buffer.from(Array.from({ length: 4000 }, (_, i) => i % 256)));
    writeFileSync(join(dir, 'bootenv', 'initrd.img'), 'initrd');
  }
  const logs: Array<Record<string, unknown>> = [];
  const fb = await start(dir, imaging, logs);
  const store = await openTestStore(dir);
  try {
    await fn({ dir, fb, store, logs });
  } finally {
    await store.close();
    await fb.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** PXE-boot the machine: the decision script, and the task id and token when it boots the environment. */
export async function pxe(fb: Pick<RunningFleetboot, 'url'>, mac: string): Promise<{ script: string; task: number | null; token: string | null }> {
  const res = await fetch(`${fb.url}/boot/decide?mac=${mac.replace(/:/g, '-')}&platform=pcbios`);
  assert.equal(res.status, 200);
  const script = await res.text();
  const task = /fleetboot\.task=(\d+)/.exec(script)?.[1];
  const token = /fleetboot\.token=([0-9a-f]+)/.exec(script)?.[1];
  return { script, task: task ? Number(task) : null, token: token ?? null };
}

/** What the test agent reports as its hardware identity (the inventory below has no SMBIOS UUID or serial, and disk vda). */
export const IDENTITY: HardwareIdentity = { smbiosUuid: null, smbiosSerial: null, disk: { name: 'vda', model: null, sizeBytes: 8 * 1024 ** 3 } };

/**
 * An agent speaking the protocol by hand. Like the real agent, it reports
 * its hardware identity right after it fetched its task (GET /task), unless
 * `identity` is false.
 */
export function agent(fb: Pick<RunningFleetboot, 'url'>, token: string, opts: { identity?: false | HardwareIdentity } = {}) {
  const h = { authorization: `Bearer ${token}` };
  const url = (p: string): string => `${fb.url}/agent/v1${p}`;
  const identity = opts.identity ?? IDENTITY;
  return {
    get: async (p: string, extra: Record<string, string> = {}) => {
      const res = await fetch(url(p), { headers: { ...h, ...extra } });
      if (p === '/task' && res.status === 200 && identity !== false) {
        const id = await fetch(url('/task/identity'), { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body: JSON.stringify(identity) });
        assert.equal(id.status, 200, await id.clone().text());
      }
      return res;
    },
    post: (p: string, body?: unknown) =>
      fetch(url(p), body === undefined ? { method: 'POST', headers: h } : { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    /** PUT a stream in chunks; `abortAfter` chunks cuts the request off. */
    put: async (file: string, data: Buffer, opts: { chunk?: number; abortAfter?: number } = {}) => {
      const size = opts.chunk ?? 64 * 1024;
      const ctrl = new AbortController();
      let sent = 0;
      let offset = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          if (opts.abortAfter !== undefined && sent >= opts.abortAfter) {
            await new Promise((r) => setTimeout(r, 100));
            ctrl.abort();
            return;
          }
          if (offset >= data.length) {
            c.close();
            return;
          }
          c.enqueue(new Uint8Array(data.subarray(offset, offset + size)));
          offset += size;
          sent++;
        },
      });
      return fetch(url(`/task/streams/${file}`), { method: 'PUT', headers: { ...h, 'content-type': 'application/octet-stream' }, body, duplex: 'half', signal: ctrl.signal } as RequestInit);
    },
  };
}

export const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export function manifestFor(streams: Record<string, Buffer>, over: Partial<Manifest> = {}): Manifest {
  const files = Object.keys(streams);
  return {
    format: 'fleetboot-image',
    version: 1,
    name: '',
    createdAt: new Date().toISOString(),
    source: { mac: null, taskId: null, disk: '/dev/vda', diskModel: 'QEMU HARDDISK' },
    diskBytes: 64 * 1024 * 1024,
    table: { type: 'dos', sectorSize: 512, id: '0x1234abcd', sfdisk: 'label: dos\n' },
    partitions: files.map((file, i) => {
      const data = streams[file] as Buffer;
      return {
        number: i + 1,
        start: 2048 + i * 40960,
        sectors: 40960,
        type: '83',
        uuid: null,
        name: null,
        bootable: i === 0,
        filesystem: file.includes('pcl') ? 'ext4' : null,
        tool: file.includes('pcl') ? 'partclone.ext4' : 'raw',
        compression: 'zstd' as const,
        file,
        sizeBytes: 40960 * 512,
        usedBytes: null,
        streamBytes: data.length,
        sha256: sha(data),
      };
    }),
    ...over,
  };
}

export const inventory: Inventory = {
  collectedAt: '2026-01-01T00:00:00.000Z',
  cpu: { model: 'QEMU Virtual CPU', sockets: 1, cores: 2, threads: 2 },
  memoryBytes: 1024 * 1024 * 1024,
  disks: [{ name: 'vda', sizeBytes: 8 * 1024 ** 3, model: null, serial: null, rotational: false }],
  nics: [{ name: 'eth0', mac: '52:54:00:aa:00:09', driver: 'e1000', speedMbps: 1000 }],
  smbios: { manufacturer: 'QEMU', product: 'Standard PC (i440FX + PIIX, 1996)', serial: null, uuid: null, biosVendor: 'SeaBIOS', biosVersion: null },
  firmware: 'bios',
};

/** A full capture of `streams` as image `name` by machine `mac`; returns the task id. */
export async function capture(env: Env, mac: string, name: string, streams: Record<string, Buffer>): Promise<number> {
  await createTask(env.store.db, { type: 'capture', mac, image: name });
  const boot = await pxe(env.fb, mac);
  assert.ok(boot.token && boot.task);
  const a = agent(env.fb, boot.token);
  assert.equal((await a.get('/task')).status, 200);
  assert.deepEqual(await (await a.post('/task/slot')).json(), { granted: true });
  for (const [file, data] of Object.entries(streams)) {
    const r = await a.put(file, data, { chunk: 10_000 });
    assert.equal(r.status, 200, await r.clone().text());
    assert.deepEqual(await r.json(), { file, bytes: data.length, sha256: sha(data) });
  }
  const done = await a.post('/task/complete', { type: 'capture', manifest: manifestFor(streams) });
  assert.equal(done.status, 200, await done.clone().text());
  return boot.task;
}


/** A plain HTTP request from a chosen local address (fetch cannot pick one): another machine on the loopback network. */
export function requestFrom(localAddress: string, method: string, url: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, localAddress }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
