/**
 * Verified image replication (issue 15): this node pulls the image
 * revisions it lacks from other nodes holding verified copies, and
 * re-verifies its own copies on a schedule.
 *
 * - What is pulled: every ready revision of every image (pending ones wait
 *   for approval; per-image or per-group assignment is not there yet).
 *   Revisions made before copies were recorded (no revision_copies rows)
 *   have no known holder and are left alone.
 * - From whom: any live node (src/store/nodes.ts `liveNodes`) holding a
 *   verified copy, tried in name order; over the peer's plain-HTTP URL
 *   (nodes.http_url), at GET /node/v1/images/... (src/http/routes/node-images.ts).
 *   Why not HTTPS: the nodes of one cluster may each have their own CA
 *   today, and none is published in the shared store for the others to
 *   pin. Integrity does not depend on the transport: every stream's sha256
 *   and the manifest's sha256 come from the shared store
 *   (image_revisions.manifest, .manifest_sha256) and every byte is checked
 *   against them, so a peer or a network in between can make a pull fail,
 *   never make a wrong copy verified. Authenticity of the request comes
 *   from the node credential (`Authorization: Node NAME:SECRET`), which on
 *   plain HTTP can be read by whoever sees the internal network: keep node
 *   traffic on a trusted segment (or pin peers' certificates, a next step).
 * - How: into <images>/.replicating/<dir>/ (kept across interruptions and
 *   restarts); a stream that is partly there resumes with `Range: bytes=N-`;
 *   when every stream has its full size each is hashed and compared, then
 *   the manifest is fetched and its sha256 compared; only when all match is
 *   the directory renamed to <images>/<dir> (the same directory name as on
 *   every node) and the copy marked verified. A mismatch deletes the bad
 *   file, marks the copy corrupt (error says which) and the next round
 *   pulls it again. The copy's state and bytes_done are written as it goes,
 *   at most once a second.
 * - Re-verification (`verifyOnce`, every replication.verifyIntervalHours):
 *   every verified copy on this node is re-hashed; a mismatch marks it
 *   corrupt (so it is no longer served, src/imaging/image-store.ts
 *   imageStreamPath) and deletes the bad file; the next pull fetches only
 *   what is missing (the good streams are reused and re-hashed).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Logger } from 'pino';
import { errorMessage } from '../lib/errors.js';
import type { Store } from '../store/db.js';
import { copiesOnNode, getCopy, setCopy, setCopyProgress, verifiedHolders } from '../store/copies.js';
import { getRevision, type RevisionRecord } from '../store/images.js';
import { liveNodes } from '../store/nodes.js';
import { hashFile, imagesRoot, MANIFEST_FILE, REPLICA_DIR } from '../imaging/image-store.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PROGRESS_EVERY_MS = 1000;

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
  /** Injected for tests (cutting a transfer); the global fetch otherwise. */
  fetch?: typeof fetch;
}

export interface PullResult {
  image: string;
  revision: number;
  from: string | null;
  outcome: 'verified' | 'corrupt' | 'failed' | 'no-holder';
  error?: string;
}

export interface VerifyResult {
  image: string;
  revision: number;
  outcome: 'verified' | 'corrupt';
  error?: string;
}

export interface ReplicationService {
  start(): void;
  /** One round: pull every ready revision this node lacks. */
  pullOnce(): Promise<PullResult[]>;
  /** Re-hash every verified copy on this node (of `image` only, when given). */
  verifyOnce(opts?: { image?: string }): Promise<VerifyResult[]>;
  close(): Promise<void>;
}

class Mismatch extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Mismatch';
  }
}

export function createReplicationService(deps: ReplicationDeps): ReplicationService {
  const { store, nodeName: self } = deps;
  const db = store.db;
  const log = deps.log.child({ subsystem: 'replication' });
  const doFetch = deps.fetch ?? fetch;
  const abort = new AbortController();
  const timers: NodeJS.Timeout[] = [];
  let busy: Promise<unknown> = Promise.resolve();
  let closed = false;

  /** One round at a time (a pull and a verification never overlap either). */
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = busy.then(fn, fn);
    busy = run.catch(() => undefined);
    return run;
  }

  async function wanted(): Promise<RevisionRecord[]> {
    const rows = await db.selectFrom('image_revisions').select(['image', 'number']).where('state', '=', 'ready').orderBy('image').orderBy('number').execute();
    const mine = new Map((await copiesOnNode(db, self)).map((c) => [`${c.image}/${c.number}`, c.state]));
    // Revisions with copy rows at all (older ones have none: no node is known to hold them, and a row
    // for this node would stop the node that does hold one from serving it, see copies.ts servableOn).
    const recorded = new Set((await db.selectFrom('revision_copies').select(['image', 'number']).distinct().execute()).map((c) => `${c.image}/${c.number}`));
    const out: RevisionRecord[] = [];
    for (const r of rows) {
      if (!recorded.has(`${r.image}/${r.number}`)) continue;
      if (mine.get(`${r.image}/${r.number}`) === 'verified') continue;
      const rec = await getRevision(db, r.image, r.number);
      if (rec && UUID_RE.test(rec.dir)) out.push(rec);
    }
    return out;
  }

  async function get(url: string, range: number | null): Promise<Response> {
    const headers: Record<string, string> = { authorization: deps.authorization() };
    if (range !== null && range > 0) headers['range'] = `bytes=${range}-`;
    const res = await doFetch(url, { headers, signal: abort.signal });
    if (res.status !== 200 && res.status !== 206) {
      const text = await res.text().catch(() => '');
      throw new Error(`GET ${url}: HTTP ${res.status} ${text.slice(0, 300)}`);
    }
    return res;
  }

  /** Pull revision `rec` from `base` (a peer's http URL) into the temp directory; throws Mismatch or an I/O error. */
  async function pullFrom(rec: RevisionRecord, peer: string, base: string): Promise<void> {
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
    await setCopy(db, image, number, self, { state: 'copying', bytesDone: done, bytesTotal: total, error: null });
    let lastWrite = Date.now();
    const urlBase = `${base.replace(/\/+$/, '')}/node/v1/images/${encodeURIComponent(image)}/${number}`;

    for (const p of parts) {
      const path = join(tmp, p.file);
      let have = (await stat(path).catch(() => null))?.size ?? 0;
      if (have > p.streamBytes) {
        await rm(path, { force: true });
        done -= p.streamBytes;
        have = 0;
      }
      if (have < p.streamBytes) {
        const res = await get(`${urlBase}/streams/${encodeURIComponent(p.file)}`, have);
        if (have > 0 && res.status !== 206) {
          // The peer ignored the Range: start this stream over.
          done -= have;
          have = 0;
        }
        log.info({ image, revision: number, from: peer, file: p.file, offset: have }, `image '${image}' revision ${number}: pulling ${p.file} from node '${peer}'${have > 0 ? ` (resuming at byte ${have})` : ''}`);
        let got = have;
        const meter = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            got += chunk.length;
            done += chunk.length;
            if (got > p.streamBytes) {
              cb(new Mismatch(`stream ${p.file}: node '${peer}' sent more than the ${p.streamBytes} bytes the manifest records`));
              return;
            }
            const now = Date.now();
            if (now - lastWrite >= PROGRESS_EVERY_MS) {
              lastWrite = now;
              setCopyProgress(db, image, number, self, done).catch(() => undefined);
            }
            cb(null, chunk);
          },
        });
        if (!res.body) throw new Error(`GET ${p.file} from node '${peer}': no body`);
        const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
        try {
          await pipeline(body, meter, createWriteStream(path, { flags: have > 0 ? 'a' : 'w', mode: 0o600 }));
        } finally {
          // What is on disk, not what passed the meter (a cut write leaves less).
          done = await bytesOnDisk(tmp, parts);
          await setCopyProgress(db, image, number, self, done).catch(() => undefined);
        }
        if (got !== p.streamBytes) throw new Error(`stream ${p.file}: node '${peer}' ended at byte ${got} of ${p.streamBytes}`);
      }
    }
    // Every stream has its full size: now the hashes.
    for (const p of parts) {
      const path = join(tmp, p.file);
      const h = await hashFile(path);
      if (h.bytes !== p.streamBytes || h.sha256 !== p.sha256) {
        await rm(path, { force: true });
        throw new Mismatch(`stream ${p.file} pulled from node '${peer}' has ${h.bytes} bytes and sha256 ${h.sha256}, the shared store records ${p.streamBytes} bytes and ${p.sha256}; the file was deleted`);
      }
    }
    const res = await get(`${urlBase}/manifest`, null);
    const manifest = Buffer.from(await res.arrayBuffer());
    const sha = createHash('sha256').update(manifest).digest('hex');
    if (sha !== rec.revision.manifestSha256) throw new Mismatch(`the manifest pulled from node '${peer}' has sha256 ${sha}, the shared store records ${rec.revision.manifestSha256}`);
    await writeFile(join(tmp, MANIFEST_FILE), manifest, { mode: 0o600 });
    for (const f of [...parts.map((p) => p.file), MANIFEST_FILE]) await fsync(join(tmp, f));
    await rm(final, { recursive: true, force: true });
    await rename(tmp, final);
    await fsync(root);
    await setCopy(db, image, number, self, { state: 'verified', bytesDone: total, bytesTotal: total });
  }

  async function pullRevision(rec: RevisionRecord): Promise<PullResult> {
    const { image, number } = rec.revision;
    const holders = new Set((await verifiedHolders(db, image, number)).filter((n) => n !== self));
    const peers = (await liveNodes(db)).filter((n) => holders.has(n.name) && n.httpUrl !== null);
    if (peers.length === 0) {
      if (!(await getCopy(db, image, number, self))) await setCopy(db, image, number, self, { state: 'missing', bytesTotal: rec.manifest.partitions.reduce((s, p) => s + p.streamBytes, 0), error: 'no live node holds a verified copy' });
      return { image, revision: number, from: null, outcome: 'no-holder' };
    }
    let last: PullResult = { image, revision: number, from: null, outcome: 'no-holder' };
    for (const peer of peers) {
      try {
        await pullFrom(rec, peer.name, peer.httpUrl as string);
        log.info({ image, revision: number, from: peer.name }, `image '${image}' revision ${number}: copy from node '${peer.name}' verified`);
        return { image, revision: number, from: peer.name, outcome: 'verified' };
      } catch (err) {
        const msg = errorMessage(err);
        if (err instanceof Mismatch) {
          log.warn({ image, revision: number, from: peer.name, err: msg }, `image '${image}' revision ${number}: copy corrupt: ${msg}`);
          await setCopy(db, image, number, self, { state: 'corrupt', error: msg });
          last = { image, revision: number, from: peer.name, outcome: 'corrupt', error: msg };
        } else {
          // Interrupted: the partial files stay and the next round resumes with Range.
          log.warn({ image, revision: number, from: peer.name, err: msg }, `image '${image}' revision ${number}: pull from node '${peer.name}' interrupted (it resumes): ${msg}`);
          await setCopy(db, image, number, self, { state: 'copying', error: `interrupted: ${msg}` }).catch(() => undefined);
          last = { image, revision: number, from: peer.name, outcome: 'failed', error: msg };
        }
        if (closed) break;
      }
    }
    return last;
  }

  async function pullOnce(): Promise<PullResult[]> {
    return serial(async () => {
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
        const dir = join(imagesRoot(store), rec.dir);
        let problem: string | null = null;
        for (const p of rec.manifest.partitions) {
          const h = await hashFile(join(dir, p.file)).catch((err: unknown) => ({ bytes: -1, sha256: errorMessage(err) }));
          if (h.bytes !== p.streamBytes || h.sha256 !== p.sha256) {
            problem = h.bytes < 0 ? `stream ${p.file} cannot be read: ${h.sha256}` : `stream ${p.file} has ${h.bytes} bytes and sha256 ${h.sha256}, the shared store records ${p.streamBytes} bytes and ${p.sha256}; the file was deleted`;
            await rm(join(dir, p.file), { force: true });
            break;
          }
        }
        if (problem === null) {
          const m = await readFile(join(dir, MANIFEST_FILE)).catch(() => null);
          const sha = m ? createHash('sha256').update(m).digest('hex') : null;
          if (sha !== rec.revision.manifestSha256) {
            problem = m ? `the manifest has sha256 ${sha}, the shared store records ${rec.revision.manifestSha256}` : 'the manifest is missing';
            await rm(join(dir, MANIFEST_FILE), { force: true });
          }
        }
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

  return {
    start() {
      if (deps.pullIntervalSeconds > 0) every(deps.pullIntervalSeconds * 1000, Math.min(deps.pullIntervalSeconds * 1000, 2000), pullOnce, 'replication pull');
      if (deps.verifyIntervalHours > 0) every(deps.verifyIntervalHours * 3600 * 1000, deps.verifyIntervalHours * 3600 * 1000, verifyOnce, 'replication re-verification');
    },
    pullOnce,
    verifyOnce,
    async close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
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
