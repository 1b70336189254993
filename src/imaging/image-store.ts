/**
 * Images on disk: <dataDir>/images/<uuid>/ holds manifest.json and one stream
 * file per partition; the `images` table maps each name to its directory.
 *
 * Every capture adds a revision (its own directory); see commitCapture.
 * A capture writes into <dataDir>/images/.incoming/task-<id>-<rand>/: each
 * stream goes to a temporary file as it arrives (the server counts its bytes
 * and sha256), then is renamed to its name with a small receipt beside it
 * (`.<file>.receipt`), so an agent's retry of the same file replaces a cut-off
 * one. The commit verifies every stream of the manifest against what the
 * server counted, writes manifest.json (temp + fsync + rename), renames the
 * directory to images/<uuid>, adds the revision row in one transaction with
 * the task's end, and only then removes revisions beyond keepRevisions.
 * Whatever fails before the row is added leaves the image as it was.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, fdatasync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { FleetbootError, errorMessage } from '../lib/errors.js';
import type { Store } from '../store/db.js';
import { addRevision, deleteImageRows, getImage, getRevision, imageDirs, pruneRevisions, type ImageInfo, type RevisionState } from '../store/images.js';
import { isValidName } from '../model/validate.js';
import { getCopy, servableOn, setCopy } from '../store/copies.js';
import { ACTIVE_TASK_STATES, STREAM_FILE_PATTERN, type StreamReceipt } from './protocol.js';
import { parseManifest, type Manifest } from '../model/manifest.js';

export const IMAGES_DIR = 'images';
export const INCOMING_DIR = '.incoming';
export const MANIFEST_FILE = 'manifest.json';
/** Copies being pulled from other nodes (src/replication/service.ts); kept across restarts to resume. */
export const REPLICA_DIR = '.replicating';
const STREAM_RE = new RegExp(STREAM_FILE_PATTERN);
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A stream larger than the limit (the route answers 413). */
export class StreamTooLargeError extends FleetbootError {
  constructor(message: string) {
    super('INVALID_INPUT', message);
    this.name = 'StreamTooLargeError';
  }
}

export function imagesRoot(store: Store): string {
  return join(store.dataDir, IMAGES_DIR);
}

function incomingRoot(store: Store): string {
  return join(imagesRoot(store), INCOMING_DIR);
}

export function isStreamFile(file: string): boolean {
  return STREAM_RE.test(file);
}

function receiptName(file: string): string {
  return `.${file}.receipt`;
}

/** The incoming directory of a capture task, or null. */
async function findIncoming(store: Store, taskId: number): Promise<string | null> {
  let names: string[];
  try {
    names = await readdir(incomingRoot(store));
  } catch {
    return null;
  }
  const found = names.find((n) => n.startsWith(`task-${taskId}-`));
  return found === undefined ? null : join(incomingRoot(store), found);
}

async function ensureIncoming(store: Store, taskId: number): Promise<string> {
  const existing = await findIncoming(store, taskId);
  if (existing) return existing;
  // One fixed name per task: two first uploads at once share it.
  const dir = join(incomingRoot(store), `task-${taskId}-incoming`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** An upload stops before the data directory's file system is this close to full (the database lives there too). */
export const MIN_FREE_BYTES = 512 * 1024 * 1024;
const FREE_CHECK_EVERY = 64 * 1024 * 1024;
const fdatasyncP = promisify(fdatasync);

export class NoSpaceError extends FleetbootError {
  constructor(message: string) {
    super('IO', message);
    this.name = 'NoSpaceError';
  }
}

async function checkFreeSpace(dir: string, file: string): Promise<void> {
  const st = await statfs(dir);
  const free = Number(st.bavail) * Number(st.bsize);
  if (free < MIN_FREE_BYTES) throw new NoSpaceError(`Stream ${file} refused: ${Math.floor(free / 1048576)} MiB left on the file system of ${dir}, the server keeps ${MIN_FREE_BYTES / 1048576} MiB free`);
}

/** Per-key queue: the steps that swap a stream and its receipt never interleave for one file. */
const fileLocks = new Map<string, Promise<unknown>>();
async function serially<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const before = fileLocks.get(key) ?? Promise.resolve();
  const run = before.then(fn, fn);
  const tail = run.catch(() => undefined);
  fileLocks.set(key, tail);
  try {
    return await run;
  } finally {
    if (fileLocks.get(key) === tail) fileLocks.delete(key);
  }
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Write a small file atomically: temp file, fsync, rename, fsync of the directory. */
export async function writeFileAtomic(dir: string, name: string, data: string): Promise<void> {
  const tmp = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, join(dir, name));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncPath(dir);
}

/**
 * Receive one stream of capture task `taskId`: written as it arrives
 * (backpressure through pipeline), counted and hashed, then renamed into
 * place. A second upload of the same file replaces the first once it is
 * complete; a cut-off upload leaves nothing but what was there before.
 */
export async function receiveStream(store: Store, taskId: number, file: string, source: Readable, opts: { maxBytes: number; onBytes?: (n: number) => void }): Promise<StreamReceipt> {
  if (!isStreamFile(file)) throw new FleetbootError('INVALID_INPUT', `Invalid stream file name ${JSON.stringify(file)}: expected p<N>.pcl.zst or p<N>.raw.zst`);
  const dir = await ensureIncoming(store, taskId);
  const tmp = join(dir, `.${file}.${randomBytes(6).toString('hex')}.part`);
  const hash = createHash('sha256');
  let bytes = 0;
  let checkedAt = 0;
  await checkFreeSpace(dir, file);
  const out = createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
  let outFd: number | null = null;
  out.once('open', (fd: number) => {
    outFd = fd;
  });
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      if (bytes > opts.maxBytes) {
        cb(new StreamTooLargeError(`Stream ${file} is larger than the limit of ${opts.maxBytes} bytes (imaging.maxImageBytes)`));
        return;
      }
      hash.update(chunk);
      opts.onBytes?.(chunk.length);
      if (bytes - checkedAt < FREE_CHECK_EVERY) {
        cb(null, chunk);
        return;
      }
      checkedAt = bytes;
      // Flush what is written so far as we go: the final fsync stays short,
      // so the agent gets its receipt in seconds even for a huge stream.
      const flushed = outFd !== null ? fdatasyncP(outFd) : Promise.resolve();
      Promise.all([flushed, checkFreeSpace(dir, file)]).then(
        () => cb(null, chunk),
        (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))),
      );
    },
  });
  try {
    await pipeline(source, meter, out);
    await fsyncPath(tmp);
    const receipt: StreamReceipt = { file, bytes, sha256: hash.digest('hex') };
    // Old receipt first: a crash between the two renames leaves a stream
    // without a receipt (recomputed at commit), never a receipt of other bytes.
    await serially(`${taskId}/${file}`, async () => {
      await rm(join(dir, receiptName(file)), { force: true });
      await rename(tmp, join(dir, file));
      await writeFileAtomic(dir, receiptName(file), JSON.stringify(receipt));
    });
    return receipt;
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export async function hashFile(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path)) {
    const b = chunk as Buffer;
    bytes += b.length;
    hash.update(b);
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** What the server counted for a stream file in `dir`: the receipt, or a fresh hash when it has none. */
async function countedStream(dir: string, file: string): Promise<{ bytes: number; sha256: string } | null> {
  let size: number;
  try {
    const st = await stat(join(dir, file));
    if (!st.isFile()) return null;
    size = st.size;
  } catch {
    return null;
  }
  try {
    const r: unknown = JSON.parse(await readFile(join(dir, receiptName(file)), 'utf8'));
    if (typeof r === 'object' && r !== null) {
      const o = r as Record<string, unknown>;
      if (o['bytes'] === size && typeof o['sha256'] === 'string') return { bytes: size, sha256: o['sha256'] };
    }
  } catch {
    // no receipt: count it now
  }
  return hashFile(join(dir, file));
}

export interface CommitOptions {
  /** The capture task's MAC (the manifest's source is forced to it). */
  mac: string;
  maxBytes: number;
  /** The new revision waits as pending (imaging.captureApproval). */
  approval: boolean;
  /** Revisions kept per image (imaging.keepRevisions). */
  keepRevisions: number;
  /** This server's node name: its copy of the new revision is recorded verified (src/store/copies.ts). */
  node?: string | null;
}

export interface CommitResult {
  info: ImageInfo | null;
  revision: number;
  state: RevisionState;
  manifestSha256: string;
  /** Revisions removed beyond keepRevisions. */
  pruned: number[];
}

/**
 * Make capture task `taskId`'s uploads revision N+1 of image `name`
 * (manifest from the agent, name and source forced here). INVALID_INPUT
 * naming the partition when a stream is missing or differs from the
 * manifest; nothing changes then. A capture never overwrites: the new
 * revision has its own directory, becomes current only when it is ready
 * (not waiting for approval), and revisions beyond `keepRevisions` go (never
 * the current one, nor one a deploy is writing).
 */
export async function commitCapture(store: Store, taskId: number, name: string, input: unknown, opts: CommitOptions): Promise<CommitResult> {
  if (!isValidName(name)) throw new FleetbootError('INVALID_INPUT', `Invalid image name ${JSON.stringify(name)}`);
  let manifest: Manifest;
  try {
    manifest = parseManifest(input);
  } catch (err) {
    throw new FleetbootError('INVALID_INPUT', `Invalid manifest: ${errorMessage(err)}`, { cause: err });
  }
  manifest = { ...manifest, name, source: { ...manifest.source, mac: opts.mac, taskId } };
  const dir = await findIncoming(store, taskId);
  if (!dir) throw new FleetbootError('INVALID_INPUT', `Task #${taskId} uploaded no streams`);
  let total = 0;
  for (const p of manifest.partitions) {
    const got = await countedStream(dir, p.file);
    if (!got) throw new FleetbootError('INVALID_INPUT', `Partition ${p.number}: stream ${p.file} was not uploaded`);
    if (got.bytes !== p.streamBytes) throw new FleetbootError('INVALID_INPUT', `Partition ${p.number}: stream ${p.file} has ${got.bytes} bytes on the server, the manifest says ${p.streamBytes}`);
    if (got.sha256 !== p.sha256) throw new FleetbootError('INVALID_INPUT', `Partition ${p.number}: stream ${p.file} has sha256 ${got.sha256} on the server, the manifest says ${p.sha256}`);
    total += got.bytes;
  }
  if (total > opts.maxBytes) throw new StreamTooLargeError(`The image is ${total} bytes, more than imaging.maxImageBytes (${opts.maxBytes})`);
  // Keep only the manifest's streams.
  const keep = new Set(manifest.partitions.map((p) => p.file));
  for (const f of await readdir(dir)) if (!keep.has(f)) await rm(join(dir, f), { recursive: true, force: true });
  const manifestText = JSON.stringify(manifest, null, 2) + '\n';
  const manifestSha256 = createHash('sha256').update(manifestText).digest('hex');
  await writeFileAtomic(dir, MANIFEST_FILE, manifestText);
  const uuid = randomUUID();
  const finalDir = join(imagesRoot(store), uuid);
  await rename(dir, finalDir);
  await fsyncPath(imagesRoot(store));
  const state: RevisionState = opts.approval ? 'pending' : 'ready';
  let revision: number;
  try {
    // What was verified is what moved (nothing removed it meanwhile).
    for (const p of manifest.partitions) {
      const st = await stat(join(finalDir, p.file)).catch(() => null);
      if (!st?.isFile() || st.size !== p.streamBytes) throw new FleetbootError('CONFLICT', `Partition ${p.number}: stream ${p.file} changed during the commit: ${p.streamBytes} bytes expected, ${st?.isFile() ? `${st.size} bytes` : 'no file'} found`);
    }
    // The new revision and the task's end are one transaction (addRevision).
    revision = await addRevision(store.db, { dir: uuid, manifest, manifestSha256, state, finishTask: taskId });
  } catch (err) {
    await rm(finalDir, { recursive: true, force: true });
    throw err;
  }
  // The streams were just checked against the manifest: this node's copy is verified (replication pulls it elsewhere).
  if (opts.node) await setCopy(store.db, name, revision, opts.node, { state: 'verified', bytesDone: total, bytesTotal: total });
  const pruned = await pruneRevisions(store.db, name, opts.keepRevisions);
  // The new revision and the pruning must survive a power loss before old files go.
  await store.durable();
  for (const p of pruned) if (UUID_RE.test(p.dir)) await rm(join(imagesRoot(store), p.dir), { recursive: true, force: true });
  const img = await getImage(store.db, name);
  return { info: img?.info ?? null, revision, state, manifestSha256, pruned: pruned.map((p) => p.number) };
}

/** Remove a capture task's incoming directory (failed, cancelled). */
export async function discardIncoming(store: Store, taskId: number): Promise<void> {
  for (;;) {
    const dir = await findIncoming(store, taskId);
    if (!dir) return;
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The path of stream `file` of revision `revision` of image `name`, or null
 * when that revision has no such stream. With `node` (this server's node
 * name) on a shared (PostgreSQL) store, NOT_FOUND when this node's copy of the revision is not verified
 * (src/store/copies.ts `servableOn`): a node never serves a copy it has
 * not verified. Revisions without any copy rows (made before they were
 * recorded) are served as before.
 */
export async function imageStreamPath(store: Store, name: string, revision: number, file: string, node: string | null = null): Promise<string | null> {
  if (!isStreamFile(file)) return null;
  const rec = await getRevision(store.db, name, revision);
  if (!rec || !rec.manifest.partitions.some((p) => p.file === file)) return null;
  // SQLite: one server, one node; its copies are what it has always served (a renamed host keeps serving).
  if (node !== null && store.dialect !== 'sqlite' && !(await servableOn(store.db, name, revision, node))) {
    const copy = await getCopy(store.db, name, revision, node);
    throw new FleetbootError('NOT_FOUND', `Image '${name}' revision ${revision} is not verified on node '${node}' (its copy is ${copy ? copy.state : 'missing'}): it is not served from here until replication verifies it`);
  }
  return join(imagesRoot(store), rec.dir, file);
}

/** Delete image `name`: NOT_FOUND; CONFLICT while an active capture or deploy task uses it. */
export async function removeImage(store: Store, name: string): Promise<void> {
  if (!isValidName(name)) throw new FleetbootError('INVALID_INPUT', `Invalid image name ${JSON.stringify(name)}`);
  const busy = await store.db
    .selectFrom('tasks')
    .select(['id', 'type', 'state'])
    .where('image', '=', name)
    .where('type', 'in', ['capture', 'deploy'])
    .where('state', 'in', [...ACTIVE_TASK_STATES])
    .executeTakeFirst();
  if (busy) throw new FleetbootError('CONFLICT', `Image '${name}' is in use by task #${busy.id} (${busy.type}, ${busy.state})`);
  const dirs = await deleteImageRows(store.db, name);
  if (dirs === null) throw new FleetbootError('NOT_FOUND', `No image named '${name}'`);
  await store.durable();
  for (const dir of dirs) if (UUID_RE.test(dir)) await rm(join(imagesRoot(store), dir), { recursive: true, force: true });
}

/**
 * At server start: remove image directories no row points at (a commit cut
 * off between rename and row switch, an old directory not yet deleted) and
 * incoming directories of tasks that are no longer active capture tasks.
 * Incoming directories of active captures stay: their agent may still be
 * retrying across the restart.
 */
export async function cleanupOrphans(store: Store): Promise<string[]> {
  const root = imagesRoot(store);
  await mkdir(join(root, INCOMING_DIR), { recursive: true, mode: 0o700 });
  const used = new Set(await imageDirs(store.db));
  const active = new Set(
    (
      await store.db
        .selectFrom('tasks')
        .select('id')
        .where('type', '=', 'capture')
        .where('state', 'in', [...ACTIVE_TASK_STATES])
        .execute()
    ).map((r) => r.id),
  );
  const removed: string[] = [];
  for (const n of await readdir(root)) {
    if (n === INCOMING_DIR || n === REPLICA_DIR || used.has(n)) continue;
    await rm(join(root, n), { recursive: true, force: true });
    removed.push(n);
  }
  // Partial pulls of revisions that are gone (pruned, deleted); the others stay to resume.
  for (const n of await readdir(join(root, REPLICA_DIR)).catch(() => [] as string[])) {
    if (used.has(n)) continue;
    await rm(join(root, REPLICA_DIR, n), { recursive: true, force: true });
    removed.push(join(REPLICA_DIR, n));
  }
  for (const n of await readdir(join(root, INCOMING_DIR))) {
    const m = /^task-(\d+)-/.exec(n);
    if (m && active.has(Number(m[1]))) continue;
    await rm(join(root, INCOMING_DIR, n), { recursive: true, force: true });
    removed.push(join(INCOMING_DIR, n));
  }
  return removed;
}
