/**
 * Deploy: the image's partition table, then every partition's stream from
 * the transport straight onto the disk:
 *
 *   transport.getStream -> sha256/count -> zstd -d -c -> partclone.<fs> -r -s - -o PART
 *   (raw: zstd writes to the partition device, opened here, with --no-sparse)
 *
 * The size check comes before anything is written. When the table keeps
 * its type, the source disk's BIOS boot code (manifest.table.bootCode, the
 * first 440 bytes of sector 0) is written back after the table, so a BIOS
 * machine boots the deployed disk when its boot loader lives in the MBR and
 * its partitions (syslinux/extlinux, Windows). Not carried: the gap between
 * the MBR and the first partition, where GRUB for BIOS on an MBR disk keeps
 * its core.img (on GPT it has a BIOS boot partition, which is captured). The stream's sha256 and
 * length are checked against the manifest after it has passed; a mismatch
 * (or zstd/partclone failing on corrupt input: the rest of the stream is
 * then read through the hash to tell which) fails the task naming the
 * partition, and the task is never reported done.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { BOOT_CODE_BYTES, type Manifest, type ManifestPartition } from '../model/manifest.js';
import type { ProgramName } from '../lib/programs.js';
import { partitionDevice, refreshPartitions, type DiskInfo } from './disk.js';
import { AgentError } from './errors.js';
import { runOk, Watched } from './exec.js';
import { toError, type Progress } from './progress.js';
import { checkDiskFits, planTable, type TableChoice } from './table.js';
import { resolveTool } from './tools.js';
import type { Transport } from './transport.js';

export interface DeployOptions {
  transport: Transport;
  disk: DiskInfo;
  manifest: Manifest;
  table: TableChoice;
  progress: Progress;
  signal: AbortSignal;
  log: (msg: string) => void;
}

/** Write `chunk`; resolves false when the sink is gone (the child exited or failed). */
function writeTo(sink: Writable, chunk: Buffer): Promise<boolean> {
  if (sink.destroyed || sink.writableEnded) return Promise.resolve(false);
  if (sink.write(chunk)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      sink.off('drain', onDrain);
      sink.off('close', onClose);
      sink.off('error', onClose);
      resolve(ok);
    };
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    sink.on('drain', onDrain);
    sink.on('close', onClose);
    sink.on('error', onClose);
  });
}

async function writePartition(o: DeployOptions, p: ManifestPartition): Promise<void> {
  const node = partitionDevice(o.disk.path, p.number);
  const raw = p.tool === 'raw';
  const program = raw ? null : resolveTool(p.tool);
  if (!raw && program === null) throw new AgentError(`partition ${p.number}: ${p.tool} is not installed`);
  const children: Watched[] = [];
  let rawFd: number | null = null;
  let zstd: Watched;
  if (raw) {
    rawFd = openSync(node, 'r+');
    // --no-sparse: zstd would otherwise seek over zero blocks, leaving the old bytes on a device.
    zstd = new Watched('zstd', ['-d', '-c', '-q', '--no-sparse'], ['pipe', rawFd, 'pipe']);
  } else {
    zstd = new Watched('zstd', ['-d', '-c', '-q'], ['pipe', 'pipe', 'pipe']);
    const zOut = zstd.child.stdout;
    if (!zOut) throw new AgentError('zstd: no stdout pipe');
    children.push(new Watched(program as ProgramName, ['-r', '-s', '-', '-o', node, '-L', '/dev/null'], [zOut, 'ignore', 'pipe']));
    zOut.destroy();
  }
  children.unshift(zstd);
  const killAll = (): void => {
    for (const c of children) c.kill();
  };
  const stdin = zstd.child.stdin;
  if (!stdin) throw new AgentError('zstd: no stdin pipe');
  stdin.on('error', () => undefined); // EPIPE when zstd gives up on corrupt input: the hash decides
  const onAbort = (): void => killAll();
  o.signal.addEventListener('abort', onAbort, { once: true });
  const hash = createHash('sha256');
  let bytes = 0;
  let sinkOpen = true;
  try {
    const src = await o.transport.getStream(p.file, 0, o.signal);
    try {
      for await (const c of src) {
        const chunk = c as Buffer;
        hash.update(chunk);
        bytes += chunk.length;
        o.progress.add(chunk.length);
        if (sinkOpen) sinkOpen = await writeTo(stdin, chunk);
      }
    } catch (e) {
      killAll();
      throw o.signal.aborted ? toError(o.signal.reason) : new AgentError(`partition ${p.number} (${p.file}): download failed: ${(e as Error).message}`);
    }
    stdin.end();
    const failures = (await Promise.all(children.map((c) => c.failure()))).filter((f): f is string => f !== null);
    if (o.signal.aborted) throw toError(o.signal.reason);
    const sha256 = hash.digest('hex');
    if (sha256 !== p.sha256 || bytes !== p.streamBytes) {
      const count = bytes !== p.streamBytes ? ` (${bytes} bytes, expected ${p.streamBytes})` : '';
      throw new AgentError(`partition ${p.number} (${p.file}): checksum mismatch: expected ${p.sha256}, got ${sha256}${count}`);
    }
    if (failures.length) throw new AgentError(`partition ${p.number} (${node}): ${failures.join('; ')}`);
    if (rawFd !== null) fsyncSync(rawFd);
  } finally {
    o.signal.removeEventListener('abort', onAbort);
    killAll();
    if (rawFd !== null) closeSync(rawFd);
  }
}

/** Write the image onto the disk. The caller has waited for a transfer slot. */
export async function deploy(o: DeployOptions): Promise<void> {
  const { disk, manifest: m } = o;
  checkDiskFits(m, o.table, disk);
  const plan = planTable(m, o.table, disk.path, Math.floor(disk.sizeBytes / disk.sectorSize));
  await o.progress.enter('partition-table', null, `${plan.type} table on ${disk.path}`);
  o.log(`writing a ${plan.type} partition table on ${disk.path}`);
  await runOk('wipefs', ['-a', '-q', disk.path]);
  await runOk('sfdisk', ['-q', '--wipe', 'always', '--wipe-partitions', 'always', disk.path], { input: plan.script });
  await refreshPartitions(disk, plan.expected, { removeOthers: true, ignore: plan.others });
  if (m.table.bootCode && plan.type === m.table.type) {
    // Bytes 0..439 only: the disk id (440) and the table (446..511) are sfdisk's.
    const code = Buffer.from(m.table.bootCode, 'base64');
    if (code.length !== BOOT_CODE_BYTES) throw new AgentError(`the image's boot code is ${code.length} bytes, not ${BOOT_CODE_BYTES}`);
    const fd = openSync(disk.path, 'r+');
    try {
      if (writeSync(fd, code, 0, BOOT_CODE_BYTES, 0) !== BOOT_CODE_BYTES) throw new AgentError(`${disk.path}: the boot code could not be written`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    o.log(`BIOS boot code (${BOOT_CODE_BYTES} bytes) written to ${disk.path}`);
  }
  o.progress.bytesTotal = m.partitions.reduce((s, p) => s + p.streamBytes, 0);
  await o.progress.enter('transfer', null);
  o.progress.start();
  for (const p of [...m.partitions].sort((a, b) => a.start - b.start)) {
    o.progress.partition = p.number;
    o.log(`partition ${p.number}: ${p.file} (${p.tool}) -> ${partitionDevice(disk.path, p.number)}`);
    await writePartition(o, p);
  }
  await o.progress.enter('verify', null);
  await runOk('blockdev', ['--flushbufs', disk.path]); // a failed flush is a failed deploy
}
