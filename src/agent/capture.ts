/**
 * Capture: every partition of the disk, one stream each, straight from the
 * disk to the transport (no temporary copy):
 *
 *   partclone.<fs> -c -s PART -o -  |  zstd -c -T0 -3  ->  sha256/count  ->  transport.putStream
 *   (raw: the partition device opened here and handed to zstd as its stdin)
 *
 * then the manifest. The children are joined by an OS pipe (partclone's
 * stdout is zstd's stdin); only the compressed bytes pass through Node.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { Transform } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { BOOT_CODE_BYTES, MANIFEST_FORMAT, MANIFEST_VERSION, parseManifest, type Manifest, type ManifestPartition } from '../model/manifest.js';
import { filesystemOf, partitionDevice, readTable, refreshPartitions, type DiskInfo } from './disk.js';
import { AgentError, CancelledError, TransportError, errorMessage } from './errors.js';
import { Watched } from './exec.js';
import { toError, type Progress } from './progress.js';
import type { ProgramName } from '../lib/programs.js';
import { isExtendedType } from './table.js';
import { parsePartcloneUsed, resolveTool, toolFor } from './tools.js';
import type { Transport } from './transport.js';

export const ZSTD_CAPTURE_ARGS = ['-c', '-T0', '-3', '-q'];

export interface CaptureOptions {
  transport: Transport;
  disk: DiskInfo;
  progress: Progress;
  signal: AbortSignal;
  /** Image name for the manifest ('' when none: the server sets it). */
  name: string;
  source: { mac: string | null; taskId: number | null };
  /** How long a partition's upload is restarted after retryable transport failures. */
  retrySeconds: number;
  log: (msg: string) => void;
}

interface StreamResult {
  bytes: number;
  sha256: string;
  usedBytes: number | null;
}

/** Stream one partition to the transport. */
async function streamPartition(o: CaptureOptions, number: number, node: string, program: ProgramName | null, file: string): Promise<StreamResult> {
  const children: Watched[] = [];
  let killedByUs = false;
  const killAll = (): void => {
    killedByUs = true;
    for (const c of children) c.kill();
  };
  let pc: Watched | null = null;
  let zstd: Watched;
  if (program === null) {
    const fd = openSync(node, 'r');
    try {
      zstd = new Watched('zstd', ZSTD_CAPTURE_ARGS, [fd, 'pipe', 'pipe']);
    } finally {
      closeSync(fd);
    }
  } else {
    // -L: partclone logs to /var/log/partclone.log by default, which the boot environment lacks.
    pc = new Watched(program, ['-c', '-s', node, '-o', '-', '-L', '/dev/null'], ['ignore', 'pipe', 'pipe'], { keepStderr: true });
    children.push(pc);
    const pcOut = pc.child.stdout;
    if (!pcOut) throw new AgentError(`${program}: no stdout pipe`);
    zstd = new Watched('zstd', ZSTD_CAPTURE_ARGS, [pcOut, 'pipe', 'pipe']);
    // zstd holds its own copy of the pipe; ours would keep partclone writing into nowhere if zstd died.
    pcOut.destroy();
  }
  children.push(zstd);
  const zOut = zstd.child.stdout;
  if (!zOut) throw new AgentError('zstd: no stdout pipe');

  const hash = createHash('sha256');
  let bytes = 0;
  const progress = o.progress;
  const counter = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      progress.add(chunk.length);
      cb(null, chunk);
    },
  });
  zOut.on('error', (e) => counter.destroy(e));
  zOut.pipe(counter);

  // A child that fails aborts the upload, so the other end never holds a truncated stream as complete.
  let childFailure: string | null = null;
  for (const c of children) {
    void c.failure().then((f) => {
      if (f && !killedByUs && childFailure === null) {
        childFailure = f;
        counter.destroy(new AgentError(f));
      }
    });
  }
  const onAbort = (): void => {
    killAll();
    counter.destroy(toError(o.signal.reason));
  };
  o.signal.addEventListener('abort', onAbort, { once: true });
  try {
    let receipt;
    try {
      receipt = await o.transport.putStream(file, counter, o.signal);
    } catch (e) {
      killAll();
      await Promise.all(children.map((c) => c.exited));
      if (o.signal.aborted) throw toError(o.signal.reason);
      if (childFailure) throw new AgentError(`partition ${number} (${node}): ${childFailure}`);
      throw e;
    }
    const failures = (await Promise.all(children.map((c) => c.failure()))).filter((f): f is string => f !== null);
    if (o.signal.aborted) throw toError(o.signal.reason);
    if (failures.length) throw new AgentError(`partition ${number} (${node}): ${failures.join('; ')}`);
    const sha256 = hash.digest('hex');
    if (receipt.bytes !== bytes || receipt.sha256 !== sha256) {
      throw new AgentError(`partition ${number} (${file}): the receiver stored ${receipt.bytes} bytes with sha256 ${receipt.sha256}, the agent sent ${bytes} bytes with sha256 ${sha256}`);
    }
    return { bytes, sha256, usedBytes: pc ? parsePartcloneUsed(pc.stderrText) : null };
  } finally {
    o.signal.removeEventListener('abort', onAbort);
    killAll();
  }
}

/** The disk's BIOS boot code (the first BOOT_CODE_BYTES bytes) as base64, or null when they are all zero. */
export function readBootCode(dev: string): string | null {
  const b = Buffer.alloc(BOOT_CODE_BYTES);
  const fd = openSync(dev, 'r');
  try {
    if (readSync(fd, b, 0, BOOT_CODE_BYTES, 0) !== BOOT_CODE_BYTES) return null;
  } finally {
    closeSync(fd);
  }
  return b.every((x) => x === 0) ? null : b.toString('base64');
}

/** Capture the disk through the transport; returns the manifest (the caller completes the task with it). */
export async function capture(o: CaptureOptions): Promise<Manifest> {
  const { disk } = o;
  const { table, dump } = await readTable(disk.path);
  const parts = table.partitions.filter((p) => !(table.type === 'dos' && isExtendedType(p.type)));
  if (parts.length === 0) throw new AgentError(`${disk.path} has a ${table.type} partition table without partitions: nothing to capture`);
  if (table.sectorSize !== disk.sectorSize) o.log(`note: sfdisk reports ${table.sectorSize}-byte sectors, sysfs ${disk.sectorSize}`);
  const f = table.sectorSize / 512;
  await refreshPartitions(disk, parts.map((p) => ({ number: p.number, start512: p.start * f, size512: p.sectors * f })), { ignore: table.partitions.filter((p) => !parts.includes(p)).map((p) => p.number) });

  const out: ManifestPartition[] = [];
  await o.progress.enter('transfer', null);
  o.progress.start();
  for (const p of parts) {
    const node = partitionDevice(disk.path, p.number);
    const fs = await filesystemOf(node);
    let tool = toolFor(fs.type);
    let program: ProgramName | null = null;
    if (tool !== 'raw') {
      program = resolveTool(tool);
      if (program === null) {
        o.log(`partition ${p.number}: ${tool} is not installed; capturing it raw`);
        tool = 'raw';
      }
    }
    const file = `p${p.number}.${tool === 'raw' ? 'raw' : 'pcl'}.zst`;
    o.progress.partition = p.number;
    o.log(`partition ${p.number} (${node}): ${fs.type ?? 'no filesystem'}, ${tool} -> ${file}`);
    const retryUntil = Date.now() + o.retrySeconds * 1000;
    let result: StreamResult;
    for (let attempt = 0; ; attempt++) {
      const before = o.progress.bytesDone;
      try {
        result = await streamPartition(o, p.number, node, program, file);
        break;
      } catch (e) {
        if (e instanceof CancelledError || o.signal.aborted) throw o.signal.aborted ? toError(o.signal.reason) : e;
        if (!(e instanceof TransportError && e.retryable) || Date.now() >= retryUntil) throw e;
        // The stream came from a pipe and cannot be rewound: start this partition again.
        o.progress.bytesDone = before;
        const delay = Math.min(15_000, 1000 * 2 ** attempt, Math.max(0, retryUntil - Date.now()));
        o.log(`partition ${p.number}: upload failed (${errorMessage(e)}); restarting its stream in ${(delay / 1000).toFixed(0)} s`);
        await sleep(delay, undefined, { signal: o.signal }).catch(() => undefined);
        if (o.signal.aborted) throw toError(o.signal.reason);
      }
    }
    out.push({
      number: p.number,
      start: p.start,
      sectors: p.sectors,
      type: p.type,
      uuid: p.uuid,
      name: p.name,
      bootable: p.bootable,
      filesystem: fs.type,
      tool,
      compression: 'zstd',
      file,
      sizeBytes: p.sectors * table.sectorSize,
      usedBytes: result.usedBytes,
      streamBytes: result.bytes,
      sha256: result.sha256,
    });
  }
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    name: /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(o.name) ? o.name : '',
    createdAt: new Date().toISOString(),
    source: { mac: o.source.mac, taskId: o.source.taskId, disk: disk.path, diskModel: disk.model },
    diskBytes: disk.sizeBytes,
    table: { type: table.type, sectorSize: table.sectorSize, id: table.id, sfdisk: dump },
    partitions: out,
  };
  const bootCode = readBootCode(disk.path);
  if (bootCode !== null) manifest.table.bootCode = bootCode;
  // Our own output must pass the validator the server applies.
  return parseManifest(JSON.parse(JSON.stringify(manifest)) as unknown);
}
