/**
 * The local directory transport: capture into / deploy from an image
 * directory on local storage (Clonezilla's local mode; the host tests use it).
 *
 * A capture writes into a sibling staging directory `<DIR>.incoming-<rand>`
 * and only complete() makes it DIR: manifest.json is written (temp file +
 * rename, fsynced), then the staging directory is renamed over; an earlier
 * image in DIR is moved aside first and deleted afterwards. A failed or
 * interrupted capture leaves DIR as it was (fail() removes the staging
 * directory; one left by a crash is named .incoming- and can be deleted).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, fsyncSync, closeSync, openSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { STREAM_FILE_PATTERN, type CompleteBody, type FailBody, type HardwareIdentity, type ProgressReport, type SlotAnswer, type StreamReceipt, type TaskState } from '../imaging/protocol.js';
import { AgentError } from './errors.js';
import type { Transport } from './transport.js';

const STREAM_RE = new RegExp(STREAM_FILE_PATTERN);

function checkName(file: string): void {
  if (!STREAM_RE.test(file)) throw new AgentError(`stream file name ${JSON.stringify(file)} is not allowed`);
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export class DirTransport implements Transport {
  readonly dir: string;
  private staging: string | null = null;
  private readonly receipts = new Map<string, StreamReceipt>();
  private readonly onProgress: ((r: ProgressReport) => void) | undefined;

  constructor(dir: string, opts: { onProgress?: (r: ProgressReport) => void } = {}) {
    this.dir = resolve(dir);
    this.onProgress = opts.onProgress;
  }

  private async stagingDir(): Promise<string> {
    if (!this.staging) {
      const s = join(dirname(this.dir), `${basename(this.dir)}.incoming-${randomBytes(4).toString('hex')}`);
      await mkdir(s, { recursive: false, mode: 0o755 }).catch(async (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') throw new AgentError(`cannot create the image directory: ${dirname(this.dir)} does not exist`);
        throw e;
      });
      this.staging = s;
    }
    return this.staging;
  }

  async putStream(file: string, body: Readable, signal: AbortSignal): Promise<StreamReceipt> {
    checkName(file);
    const path = join(await this.stagingDir(), file);
    const hash = createHash('sha256');
    let bytes = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        bytes += chunk.length;
        cb(null, chunk);
      },
    });
    const out = createWriteStream(path, { flags: 'w' });
    await pipeline(body, count, out, { signal });
    fsyncPath(path);
    const receipt = { file, bytes, sha256: hash.digest('hex') };
    this.receipts.set(file, receipt);
    return receipt;
  }

  async getStream(file: string, offset: number): Promise<Readable> {
    checkName(file);
    const path = join(this.dir, file);
    if (!existsSync(path)) throw new AgentError(`${path} does not exist`);
    return createReadStream(path, { start: offset, highWaterMark: 1 << 20 });
  }

  progress(report: ProgressReport): Promise<TaskState> {
    this.onProgress?.(report);
    return Promise.resolve('running');
  }

  slot(): Promise<SlotAnswer> {
    return Promise.resolve({ granted: true });
  }

  async complete(body: CompleteBody): Promise<void> {
    if (body.type !== 'capture') return;
    const staging = await this.stagingDir();
    for (const p of body.manifest.partitions) {
      const r = this.receipts.get(p.file);
      if (!r || r.bytes !== p.streamBytes || r.sha256 !== p.sha256) throw new AgentError(`${p.file}: the stored stream does not match the manifest`);
    }
    const tmp = join(staging, 'manifest.json.tmp');
    await writeFile(tmp, JSON.stringify(body.manifest, null, 2) + '\n');
    fsyncPath(tmp);
    await rename(tmp, join(staging, 'manifest.json'));
    fsyncPath(staging);
    let old: string | null = null;
    if (existsSync(this.dir)) {
      old = join(dirname(this.dir), `${basename(this.dir)}.old-${randomBytes(4).toString('hex')}`);
      await rename(this.dir, old);
    }
    await rename(staging, this.dir);
    fsyncPath(dirname(this.dir));
    this.staging = null;
    if (old) await rm(old, { recursive: true, force: true });
  }

  /** A local image directory has no inventory of record to compare with. */
  async identify(_identity: HardwareIdentity): Promise<void> {}

  async fail(_body: FailBody): Promise<void> {
    if (this.staging) await rm(this.staging, { recursive: true, force: true });
    this.staging = null;
  }
}
