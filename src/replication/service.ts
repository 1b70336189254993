/**
 * Verified image replication (issue 15): this node pulls the image
 * revisions assigned to it from other nodes holding verified copies, and
 * re-verifies its own copies on a schedule.
 *
 * - What is pulled: the ready revisions (pending ones wait for approval) of
 *   the images assigned to this node: images.nodes is 'all' (the default)
 *   or a list of node names and groups (`fleetboot image set NAME --nodes
 *   a,group:b`, src/store/images.ts setImageNodes) that names this node or
 *   one of the groups its row publishes (node.groups; src/model/image-nodes.ts
 *   isAssigned). A node no longer assigned keeps what it holds and serves
 *   it; it pulls nothing new of that image.
 * - Revisions made before copies were recorded (no revision_copies row at
 *   all): at the first round after start (`adoptOnce`) a node that has such
 *   a revision's files in its images root hashes them against the manifest
 *   and records its copy verified (or corrupt, saying what differs), so the
 *   others can pull it. Until some node does, nobody is known to hold it.
 *   Not on SQLite (one server, serving them as it always did).
 * - From whom: any live node (src/store/nodes.ts `liveNodes`) holding a
 *   verified copy, tried in name order, over its HTTPS with its published
 *   certificate pinned, or over plain HTTP only when HTTPS is off there and
 *   replication.allowPlainHttp allows it (./peer.ts says how and why), at
 *   GET /node/v1/images/... (src/http/routes/node-images.ts) with
 *   `Authorization: Node NAME:SECRET`. Integrity does not depend on the
 *   transport: every stream's sha256 and the manifest's sha256 come from the
 *   shared store (image_revisions.manifest, .manifest_sha256) and every byte
 *   is checked against them, so a peer can make a pull fail, never make a
 *   wrong copy verified.
 * - How: into <images>/.replicating/<dir>/ (kept across interruptions and
 *   restarts); a stream that is partly there resumes with `Range: bytes=N-`
 *   (its first N bytes are hashed from the disk, the rest as it arrives:
 *   each byte is read once). The body (./peer.ts: the socket itself) is
 *   piped into a FileSink that counts and hashes each chunk as it takes it
 *   (src/lib/file-sink.ts: written around the page cache with O_DIRECT
 *   where the file system allows it, so a GiB copy neither costs the page
 *   cache's CPU nor pushes the boot files out of it, and the fsync at the
 *   end has nothing left); progress (state and bytes_done) is written at
 *   most once a second, never awaited per chunk. When every
 *   stream has its size and sha256, the manifest is fetched and its sha256
 *   compared; only when all match is the directory renamed to <images>/<dir>
 *   (the same directory name as on every node) and the copy marked
 *   verified. A mismatch deletes the bad file, marks the copy corrupt (error
 *   says which) and the next round pulls it again. One pull at a time.
 * - Pruned revisions: at each round (`pruneOnce`), the directories of
 *   revisions that this node saw in the store and that are gone now (pruned
 *   or deleted through another node) are removed, with their partial pulls.
 *   Only names of the form of a revision directory (a UUID) directly in the
 *   images root or its .replicating are ever removed; a directory never seen
 *   in the store (a capture being committed here) is left to
 *   cleanupOrphans at the next start.
 * - Re-verification (`verifyOnce`, every replication.verifyIntervalHours):
 *   every verified copy on this node is re-hashed; a mismatch marks it
 *   corrupt (so it is no longer served, src/imaging/image-store.ts
 *   imageStreamPath) and deletes the bad file; the next pull fetches only
 *   what is missing (the good streams are reused and re-hashed).
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createHash, type Hash } from 'node:crypto';
import type { Logger } from 'pino';
import { errorMessage } from '../lib/errors.js';
import { openFileSink, type FileSink } from '../lib/file-sink.js';
import type { Store } from '../store/db.js';
import { copiesOnNode, deleteCopy, getCopy, setCopy, setCopyProgress, verifiedHolders, type CopyState } from '../store/copies.js';
import { isAssigned } from '../model/image-nodes.js';
import { getRevision, imageNodesOf, type RevisionRecord } from '../store/images.js';
import { getNode, liveNodes } from '../store/nodes.js';
import { hashFile, imagesRoot, MANIFEST_FILE, REPLICA_DIR } from '../imaging/image-store.js';
import { PeerRefused, peerGet as defaultPeerGet, peerTarget, readBody, type PeerGet, type PeerResponse, type PeerTarget } from './peer.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PROGRESS_EVERY_MS = 1000;
/** A poke (a capture finished, a revision approved, a copy verified elsewhere) waits this long, so a burst makes one round. */
const POKE_DELAY_MS = 100;
/** A manifest is a few KiB; more is not one. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Large reads of a partial file when resuming. */
const READ_HWM = 1024 * 1024;

export interface ReplicationDeps {
  store: Store;
  log: Logger;
  /** This node's name. */
  nodeName: string;
  /** `Node NAME:SECRET` (src/nodes/service.ts). */
  authorization: () => string;
  /** Seconds between pull rounds; 0: no timer (tests call pullOnce). */
  pullIntervalSeconds: number;
  /** Hours between re-verifications; 0: never (tests call verifyOnce). */
  verifyIntervalHours: number;
  /** Pull from a peer with HTTPS off over its plain http_url (replication.allowPlainHttp; default false). */
  allowPlainHttp?: boolean;
  /** Called after this node's copy of a revision was verified (the server tells the other nodes). */
  onVerified?: (image: string, revision: number) => void;
  /** Injected for tests (cutting a transfer); ./peer.ts peerGet otherwise. */
  peerGet?: PeerGet;
}

export interface PullResult {
  image: string;
  revision: number;
  from: string | null;
  /** refused: every holder was refused (no allowed transport, or a certificate that is not the published one). */
  outcome: 'verified' | 'corrupt' | 'failed' | 'refused' | 'no-holder';
  error?: string;
}

export interface VerifyResult {
  image: string;
  revision: number;
  outcome: 'verified' | 'corrupt';
  error?: string;
}

export interface AdoptResult {
  image: string;
  revision: number;
  outcome: 'verified' | 'corrupt';
  error?: string;
}

export interface ReplicationService {
  start(): void;
  /** One round: adopt local copies of unrecorded revisions (first round only), prune, then pull every assigned ready revision this node lacks. */
  pullOnce(): Promise<PullResult[]>;
  /** Record this node's local copies of revisions that have no copy rows (see the header). */
  adoptOnce(): Promise<AdoptResult[]>;
  /** Remove the local directories of revisions gone from the store (see the header); the names removed. */
  pruneOnce(): Promise<string[]>;
  /** Re-hash every verified copy on this node (of `image` only, when given). */
  verifyOnce(opts?: { image?: string }): Promise<VerifyResult[]>;
  /**
   * Pull soon, without waiting for the next round (replication.pullIntervalSeconds):
   * the server calls it when a capture finishes on any node (its task's state
   * event, relayed between nodes), when a revision is approved or an image's
   * nodes change, and when another node verified a copy (the fleetboot_images
   * cluster signal). Nothing when replication is off.
   */
  poke(): void;
  close(): Promise<void>;
}

class Mismatch extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Mismatch';
  }
}

/** Hash a file's first `bytes` bytes into `hash`. */
async function hashPrefix(path: string, bytes: number, hash: Hash): Promise<void> {
  if (bytes <= 0) return;
  for await (const chunk of createReadStream(path, { start: 0, end: bytes - 1, highWaterMark: READ_HWM })) hash.update(chunk as Buffer);
}

/** Check the streams and manifest in `dir` against `rec`: null when all match, else what differs (and the bad file is deleted when `deleteBad`). */
async function checkDir(dir: string, rec: RevisionRecord, deleteBad: boolean): Promise<string | null> {
  for (const p of rec.manifest.partitions) {
    const h = await hashFile(join(dir, p.file)).catch((err: unknown) => ({ bytes: -1, sha256: errorMessage(err) }));
    if (h.bytes !== p.streamBytes || h.sha256 !== p.sha256) {
      if (h.bytes < 0) return `stream ${p.file} cannot be read: ${h.sha256}`;
      if (deleteBad) await rm(join(dir, p.file), { force: true });
      return `stream ${p.file} has ${h.bytes} bytes and sha256 ${h.sha256}, the shared store records ${p.streamBytes} bytes and ${p.sha256}${deleteBad ? '; the file was deleted' : ''}`;
    }
  }
  const m = await readFile(join(dir, MANIFEST_FILE)).catch(() => null);
  const sha = m ? createHash('sha256').update(m).digest('hex') : null;
  if (sha !== rec.revision.manifestSha256) {
    if (deleteBad) await rm(join(dir, MANIFEST_FILE), { force: true });
    return m ? `the manifest has sha256 ${sha}, the shared store records ${rec.revision.manifestSha256}` : 'the manifest is missing';
  }
  return null;
}

export function createReplicationService(deps: ReplicationDeps): ReplicationService {
  const { store, nodeName: self } = deps;
  const db = store.db;
  const log = deps.log.child({ subsystem: 'replication' });
  const get = deps.peerGet ?? defaultPeerGet;
  const allowPlainHttp = deps.allowPlainHttp ?? false;
  const abort = new AbortController();
  const timers: NodeJS.Timeout[] = [];
  let busy: Promise<unknown> = Promise.resolve();
  let closed = false;
  let adopted = false;
  /** Revision directories seen in the store by this service: only these are pruned when they go (see the header). */
  const known = new Set<string>();

  /** One round at a time (a pull and a verification never overlap either). */
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = busy.then(fn, fn);
    busy = run.catch(() => undefined);
    return run;
  }

  async function wanted(): Promise<RevisionRecord[]> {
    const rows = await db.selectFrom('image_revisions').select(['image', 'number']).where('state', '=', 'ready').orderBy('image').orderBy('number').execute();
    // Its groups as its row publishes them (what setImageNodes and the doctor's lag see too); no row (removed, registering again): none.
    const me = { name: self, groups: (await getNode(db, self))?.groups ?? [] };
    const assigned = new Map((await db.selectFrom('images').select(['name', 'nodes']).execute()).map((i) => [i.name, isAssigned(imageNodesOf(i.nodes), me)]));
    const mine = new Map((await copiesOnNode(db, self)).map((c) => [`${c.image}/${c.number}`, c.state]));
    // Revisions with copy rows at all (without any, no node is known to hold them: see adoptOnce; and a row
    // for this node would stop the node that does hold one from serving it, see copies.ts servableOn).
    const recorded = new Set((await db.selectFrom('revision_copies').select(['image', 'number']).distinct().execute()).map((c) => `${c.image}/${c.number}`));
    const out: RevisionRecord[] = [];
    for (const r of rows) {
      if (assigned.get(r.image) !== true) continue;
      if (!recorded.has(`${r.image}/${r.number}`)) continue;
      if (mine.get(`${r.image}/${r.number}`) === 'verified') continue;
      const rec = await getRevision(db, r.image, r.number);
      if (rec && UUID_RE.test(rec.dir)) out.push(rec);
    }
    return out;
  }

  async function open2xx(peer: PeerTarget, path: string, range: number | null): Promise<PeerResponse> {
    const headers: Record<string, string> = { authorization: deps.authorization() };
    if (range !== null && range > 0) headers['range'] = `bytes=${range}-`;
    const res = await get(peer, path, headers, abort.signal);
    if (res.status !== 200 && res.status !== 206) {
      const text = await readBody(res.body, 4096).catch(() => Buffer.alloc(0));
      throw new Error(`GET ${path} from node '${peer.name}': HTTP ${res.status} ${text.toString('utf8').slice(0, 300)}`);
    }
    return res;
  }

  /** Pull revision `rec` from `peer` into the temp directory, then into place; throws Mismatch, PeerRefused or an I/O error. */
  async function pullFrom(rec: RevisionRecord, peer: PeerTarget): Promise<void> {
    const { image, number } = rec.revision;
    const root = imagesRoot(store);
    const tmp = join(root, REPLICA_DIR, rec.dir);
    const final = join(root, rec.dir);
    await mkdir(tmp, { recursive: true, mode: 0o700 });
    const parts = rec.manifest.partitions;
    const total = parts.reduce((s, p) => s + p.streamBytes, 0);
    // Streams already here (a corrupt copy's good streams): reuse them; they are hashed below like any other.
    for (const p of parts) {
      const have = await stat(join(tmp, p.file)).catch(() => null);
      const old = await stat(join(final, p.file)).catch(() => null);
      if (!have && old?.isFile() && old.size === p.streamBytes) await rename(join(final, p.file), join(tmp, p.file));
    }
    let done = await bytesOnDisk(tmp, parts);
    // The state moves to copying once the peer answers (a refused peer leaves it as it was).
    if (!(await getCopy(db, image, number, self))) await setCopy(db, image, number, self, { state: 'missing', bytesDone: done, bytesTotal: total });
    let copying = false;
    let lastWrite = Date.now();
    const revPath = `/node/v1/images/${encodeURIComponent(image)}/${number}`;

    for (const p of parts) {
      const path = join(tmp, p.file);
      let have = (await stat(path).catch(() => null))?.size ?? 0;
      if (have > p.streamBytes) {
        await rm(path, { force: true });
        done -= p.streamBytes;
        have = 0;
      }
      if (have === p.streamBytes) {
        // Complete from an earlier round (or reused): hashed on its own.
        const h = await hashFile(path);
        if (h.bytes === p.streamBytes && h.sha256 === p.sha256) continue;
        await rm(path, { force: true });
        done -= have;
        have = 0;
      }
      const res = await open2xx(peer, `${revPath}/streams/${encodeURIComponent(p.file)}`, have);
      if (have > 0 && res.status !== 206) {
        // The peer ignored the Range: start this stream over.
        done -= have;
        have = 0;
      } else if (res.status === 206 && !(res.headers['content-range'] ?? '').startsWith(`bytes ${have}-`)) {
        res.body.destroy();
        throw new Error(`stream ${p.file}: node '${peer.name}' answered the range from byte ${have} with content-range ${JSON.stringify(res.headers['content-range'] ?? null)}`);
      }
      if (!copying) {
        copying = true;
        await setCopy(db, image, number, self, { state: 'copying', bytesDone: done, bytesTotal: total, error: null });
      }
      const hash = createHash('sha256');
      let got = have;
      // Counted, checked and hashed as the sink takes it (no stream in between: a 2 GiB pull is 131,072 chunks).
      const tap = (chunk: Buffer): void => {
        got += chunk.length;
        done += chunk.length;
        if (got > p.streamBytes) throw new Mismatch(`stream ${p.file}: node '${peer.name}' sent more than the ${p.streamBytes} bytes the manifest records`);
        hash.update(chunk);
        const now = Date.now();
        if (now - lastWrite >= PROGRESS_EVERY_MS) {
          lastWrite = now;
          setCopyProgress(db, image, number, self, done).catch(() => undefined);
        }
      };
      let out: FileSink;
      try {
        await hashPrefix(path, have, hash);
        out = await openFileSink(path, { start: have, mode: 0o600, tap });
      } catch (err) {
        // The answer's socket waits (paused) for a pipeline that will not come.
        res.body.destroy();
        throw err;
      }
      log.info(
        { image, revision: number, from: peer.name, file: p.file, offset: have, pinned: peer.pin !== null, directIo: out.direct },
        `image '${image}' revision ${number}: pulling ${p.file} from node '${peer.name}'${have > 0 ? ` (resuming at byte ${have})` : ''}`,
      );
      try {
        await pipeline(res.body, out);
      } catch (err) {
        await out.settled;
        if (err instanceof Mismatch) await rm(path, { force: true });
        throw err;
      } finally {
        // What is on disk, not what passed the meter (a cut write leaves less).
        await out.settled;
        done = await bytesOnDisk(tmp, parts);
        await setCopyProgress(db, image, number, self, done).catch(() => undefined);
      }
      if (got !== p.streamBytes) throw new Error(`stream ${p.file}: node '${peer.name}' ended at byte ${got} of ${p.streamBytes}`);
      const sha = hash.digest('hex');
      if (sha !== p.sha256) {
        await rm(path, { force: true });
        throw new Mismatch(`stream ${p.file} pulled from node '${peer.name}' has ${got} bytes and sha256 ${sha}, the shared store records ${p.streamBytes} bytes and ${p.sha256}; the file was deleted`);
      }
    }
    const res = await open2xx(peer, `${revPath}/manifest`, null);
    const manifest = await readBody(res.body, MAX_MANIFEST_BYTES);
    const sha = createHash('sha256').update(manifest).digest('hex');
    if (sha !== rec.revision.manifestSha256) throw new Mismatch(`the manifest pulled from node '${peer.name}' has sha256 ${sha}, the shared store records ${rec.revision.manifestSha256}`);
    await writeFile(join(tmp, MANIFEST_FILE), manifest, { mode: 0o600 });
    for (const f of [...parts.map((p) => p.file), MANIFEST_FILE]) await fsync(join(tmp, f));
    await rm(final, { recursive: true, force: true });
    await rename(tmp, final);
    await fsync(root);
    await setCopy(db, image, number, self, { state: 'verified', bytesDone: total, bytesTotal: total });
  }

  async function pullRevision(rec: RevisionRecord): Promise<PullResult> {
    const { image, number } = rec.revision;
    const total = rec.manifest.partitions.reduce((s, p) => s + p.streamBytes, 0);
    const holders = new Set((await verifiedHolders(db, image, number)).filter((n) => n !== self));
    const peers = (await liveNodes(db)).filter((n) => holders.has(n.name));
    /** Keep the copy's state (missing when there is none), with `error`. */
    const note = async (error: string): Promise<void> => {
      const c = await getCopy(db, image, number, self);
      const state: CopyState = c && c.state !== 'verified' ? c.state : 'missing';
      await setCopy(db, image, number, self, { state, bytesTotal: total, error });
    };
    if (peers.length === 0) {
      if (!(await getCopy(db, image, number, self))) await setCopy(db, image, number, self, { state: 'missing', bytesTotal: total, error: 'no live node holds a verified copy' });
      return { image, revision: number, from: null, outcome: 'no-holder' };
    }
    let last: PullResult = { image, revision: number, from: null, outcome: 'no-holder' };
    const refusals: string[] = [];
    for (const node of peers) {
      try {
        await pullFrom(rec, peerTarget(node, allowPlainHttp));
        log.info({ image, revision: number, from: node.name }, `image '${image}' revision ${number}: copy from node '${node.name}' verified`);
        deps.onVerified?.(image, number);
        return { image, revision: number, from: node.name, outcome: 'verified' };
      } catch (err) {
        const msg = errorMessage(err);
        if (err instanceof PeerRefused) {
          log.warn({ image, revision: number, from: node.name, err: msg }, `image '${image}' revision ${number}: ${msg}`);
          refusals.push(msg);
          last = { image, revision: number, from: node.name, outcome: 'refused', error: msg };
        } else if (err instanceof Mismatch) {
          log.warn({ image, revision: number, from: node.name, err: msg }, `image '${image}' revision ${number}: copy corrupt: ${msg}`);
          await setCopy(db, image, number, self, { state: 'corrupt', error: msg });
          last = { image, revision: number, from: node.name, outcome: 'corrupt', error: msg };
        } else {
          // Interrupted: the partial files stay and the next round resumes with Range.
          log.warn({ image, revision: number, from: node.name, err: msg }, `image '${image}' revision ${number}: pull from node '${node.name}' interrupted (it resumes): ${msg}`);
          await note(`interrupted: ${msg}`).catch(() => undefined);
          last = { image, revision: number, from: node.name, outcome: 'failed', error: msg };
        }
        if (closed) break;
      }
    }
    if (last.outcome === 'refused') await note(refusals.join('; ')).catch(() => undefined);
    return last;
  }

  async function adoptRound(): Promise<AdoptResult[]> {
    const out: AdoptResult[] = [];
    adopted = true;
    // SQLite: one server, which serves its revisions as it always did; hashing them all would only cost I/O.
    if (store.dialect === 'sqlite') return out;
    const recorded = new Set((await db.selectFrom('revision_copies').select(['image', 'number']).distinct().execute()).map((c) => `${c.image}/${c.number}`));
    const rows = await db.selectFrom('image_revisions').select(['image', 'number', 'dir']).orderBy('image').orderBy('number').execute();
    for (const r of rows) {
      if (closed) break;
      if (recorded.has(`${r.image}/${r.number}`) || !UUID_RE.test(r.dir)) continue;
      const dir = join(imagesRoot(store), r.dir);
      if (!(await stat(dir).catch(() => null))?.isDirectory()) continue;
      const rec = await getRevision(db, r.image, r.number);
      if (!rec) continue;
      const total = rec.manifest.partitions.reduce((s, p) => s + p.streamBytes, 0);
      const problem = await checkDir(dir, rec, false);
      if (problem === null) {
        await setCopy(db, r.image, r.number, self, { state: 'verified', bytesDone: total, bytesTotal: total });
        log.info({ image: r.image, revision: r.number }, `image '${r.image}' revision ${r.number} (stored before copies were recorded): this node's copy verified`);
        out.push({ image: r.image, revision: r.number, outcome: 'verified' });
      } else {
        await setCopy(db, r.image, r.number, self, { state: 'corrupt', bytesTotal: total, error: problem });
        log.warn({ image: r.image, revision: r.number, err: problem }, `image '${r.image}' revision ${r.number} (stored before copies were recorded): this node's copy is corrupt: ${problem}`);
        out.push({ image: r.image, revision: r.number, outcome: 'corrupt', error: problem });
      }
    }
    return out;
  }

  async function pruneRound(): Promise<string[]> {
    const root = imagesRoot(store);
    const live = new Set((await db.selectFrom('image_revisions').select('dir').execute()).map((r) => r.dir));
    const removed: string[] = [];
    for (const [base, prefix] of [
      [root, ''],
      [join(root, REPLICA_DIR), `${REPLICA_DIR}/`],
    ] as const) {
      for (const n of await readdir(base).catch(() => [] as string[])) {
        // Only revision directories (UUIDs) directly here, that this service saw in the store and that are gone;
        // partial pulls of any revision that is gone (only this service writes there).
        if (!UUID_RE.test(n) || live.has(n)) continue;
        if (prefix === '' && !known.has(n)) continue;
        await rm(join(base, n), { recursive: true, force: true });
        removed.push(prefix + n);
      }
    }
    // This node's rows of revisions that are gone (a pull that ended as its revision was pruned).
    const revs = new Set((await db.selectFrom('image_revisions').select(['image', 'number']).execute()).map((r) => `${r.image}/${r.number}`));
    for (const c of await copiesOnNode(db, self)) if (!revs.has(`${c.image}/${c.number}`)) await deleteCopy(db, c.image, c.number, self);
    for (const d of live) known.add(d);
    for (const d of [...known]) if (!live.has(d)) known.delete(d);
    if (removed.length) log.info({ removed }, `removed ${removed.length} local director${removed.length > 1 ? 'ies' : 'y'} of revisions gone from the store: ${removed.join(', ')}`);
    return removed;
  }

  async function pullOnce(): Promise<PullResult[]> {
    return serial(async () => {
      if (!adopted) await adoptRound();
      await pruneRound();
      const out: PullResult[] = [];
      for (const rec of await wanted()) {
        if (closed) break;
        out.push(await pullRevision(rec));
      }
      return out;
    });
  }

  async function verifyOnce(opts: { image?: string } = {}): Promise<VerifyResult[]> {
    return serial(async () => {
      const out: VerifyResult[] = [];
      for (const c of await copiesOnNode(db, self, 'verified')) {
        if (closed) break;
        if (opts.image !== undefined && c.image !== opts.image) continue;
        const rec = await getRevision(db, c.image, c.number);
        if (!rec || !UUID_RE.test(rec.dir)) continue;
        const problem = await checkDir(join(imagesRoot(store), rec.dir), rec, true);
        if (problem === null) {
          await setCopy(db, c.image, c.number, self, { state: 'verified', bytesDone: c.bytesTotal, bytesTotal: c.bytesTotal });
          out.push({ image: c.image, revision: c.number, outcome: 'verified' });
        } else {
          log.warn({ image: c.image, revision: c.number, err: problem }, `image '${c.image}' revision ${c.number}: re-verification failed, copy marked corrupt (pulled again): ${problem}`);
          await setCopy(db, c.image, c.number, self, { state: 'corrupt', bytesDone: 0, bytesTotal: c.bytesTotal, error: problem });
          out.push({ image: c.image, revision: c.number, outcome: 'corrupt', error: problem });
        }
      }
      return out;
    });
  }

  function every(ms: number, first: number, fn: () => Promise<unknown>, what: string): void {
    const tick = (): void => {
      if (closed) return;
      fn()
        .catch((err: unknown) => log.warn({ err: errorMessage(err) }, `${what} failed: ${errorMessage(err)}`))
        .finally(() => {
          if (!closed) timers.push(setTimeout(tick, ms).unref());
        });
    };
    timers.push(setTimeout(tick, first).unref());
  }

  /** A pull round soon (debounced), besides the timer's: a capture just finished somewhere. */
  let poked: NodeJS.Timeout | null = null;
  function poke(): void {
    if (closed || poked !== null || deps.pullIntervalSeconds <= 0) return;
    poked = setTimeout(() => {
      poked = null;
      pullOnce().catch((err: unknown) => log.warn({ err: errorMessage(err) }, `replication pull failed: ${errorMessage(err)}`));
    }, POKE_DELAY_MS);
    poked.unref();
  }

  return {
    poke,
    start() {
      if (deps.pullIntervalSeconds > 0) every(deps.pullIntervalSeconds * 1000, Math.min(deps.pullIntervalSeconds * 1000, 2000), pullOnce, 'replication pull');
      if (deps.verifyIntervalHours > 0) every(deps.verifyIntervalHours * 3600 * 1000, deps.verifyIntervalHours * 3600 * 1000, () => verifyOnce(), 'replication re-verification');
    },
    pullOnce,
    adoptOnce: () => serial(adoptRound),
    pruneOnce: () => serial(pruneRound),
    verifyOnce,
    async close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      if (poked !== null) clearTimeout(poked);
      abort.abort();
      await busy;
    },
  };
}

async function fsync(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function bytesOnDisk(dir: string, parts: readonly { file: string; streamBytes: number }[]): Promise<number> {
  let n = 0;
  for (const p of parts) n += Math.min((await stat(join(dir, p.file)).catch(() => null))?.size ?? 0, p.streamBytes);
  return n;
}
