/**
 * The agent's state directory (default /var/lib/fleetboot-agent, 0700):
 *
 *   key.pem      the agent's Ed25519 private key (PKCS#8 PEM, 0600)
 *   ca.pem       the pinned Fleetboot CA certificate
 *   agent.json   { server, agentId, identity (at enrolment), packageKey, state, enrolledAt }
 *   enrol.json   { server, caSha256, token }: written by the imaging deploy
 *                into a fresh machine; `run` enrols with it, then deletes it
 *   runs/<id>.json   a work item being done or reported (work.ts)
 *   runs/<id>.d/     a package run's private working directory
 *
 * Every write is atomic (a temporary file in the same directory, fsync,
 * rename, fsync of the directory). The directory and the key must be the
 * current user's and closed to other users: the agent refuses them
 * otherwise and says which chmod/chown fixes it (it does not loosen or
 * tighten them itself: a loose mode may mean someone already read the key).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeSync, constants } from 'node:fs';
import { join } from 'node:path';
import { EndpointProtocolError, parseAgentIdentity, parseWorkResult, parseWorkItem, type AgentIdentity, type AgentState, type WorkItem, type WorkResult } from '../model/endpoint.js';
import { AgentError } from './errors.js';

export const DEFAULT_STATE_DIR = '/var/lib/fleetboot-agent';

export interface AgentRecord {
  server: string;
  agentId: string;
  /** Who the machine was when it enrolled (sameMachine() compares it with now). */
  identity: AgentIdentity;
  packageKey: string;
  state: AgentState;
  enrolledAt: string;
}

export interface EnrolFile {
  server: string;
  caSha256: string;
  token: string | null;
}

/** A work item the agent holds: being done (result null) or done and not yet acknowledged by the server. */
export interface RunMarker {
  workId: number;
  item: WorkItem;
  startedAt: string;
  result: WorkResult | null;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** Write `data` to `path` atomically with `mode`. */
export function atomicWrite(path: string, data: string | Buffer, mode = 0o600): void {
  const dir = path.slice(0, path.lastIndexOf('/')) || '/';
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < b.length) off += writeSync(fd, b, off, b.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
  syncDir(dir);
}

function syncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    fsyncSync(fd);
  } catch {
    // some filesystems refuse fsync on a directory: the rename stands
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

function readJson(path: string): unknown | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new AgentError('STATE', `${path} is not JSON (${(err as Error).message}): move it away to start afresh`);
  }
}

export function parseAgentRecord(input: unknown, where: string): AgentRecord {
  if (!isObj(input)) throw new AgentError('STATE', `${where} must hold a JSON object`);
  const s = (k: string): string => {
    const v = input[k];
    if (typeof v !== 'string' || v === '') throw new AgentError('STATE', `${where}: ${k} must be text: current value is ${JSON.stringify(v)}`);
    return v;
  };
  const state = input['state'];
  if (state !== 'active' && state !== 'pending' && state !== 'revoked') throw new AgentError('STATE', `${where}: state must be active, pending or revoked: current value is ${JSON.stringify(state)}`);
  let identity: AgentIdentity;
  try {
    identity = parseAgentIdentity(input['identity'], 'identity');
  } catch (err) {
    throw new AgentError('STATE', `${where}: ${(err as Error).message}`);
  }
  return { server: s('server'), agentId: s('agentId'), identity, packageKey: s('packageKey'), state, enrolledAt: s('enrolledAt') };
}

export function parseEnrolFile(input: unknown, where: string): EnrolFile {
  if (!isObj(input)) throw new AgentError('STATE', `${where} must hold a JSON object { server, caSha256, token }`);
  const { server, caSha256, token } = input;
  if (typeof server !== 'string' || typeof caSha256 !== 'string') throw new AgentError('STATE', `${where} must have server and caSha256 (text): it has ${JSON.stringify(server)}, ${JSON.stringify(caSha256)}`);
  if (token !== null && token !== undefined && typeof token !== 'string') throw new AgentError('STATE', `${where}: token must be text or null`);
  return { server, caSha256, token: typeof token === 'string' && token !== '' ? token : null };
}

function parseMarker(input: unknown, where: string): RunMarker {
  if (!isObj(input)) throw new AgentError('STATE', `${where} must hold a JSON object`);
  try {
    const item = parseWorkItem(input['item'], 'item');
    const result = input['result'] === null || input['result'] === undefined ? null : parseWorkResult(input['result']);
    const startedAt = typeof input['startedAt'] === 'string' ? input['startedAt'] : new Date(0).toISOString();
    return { workId: item.id, item, startedAt, result };
  } catch (err) {
    if (err instanceof EndpointProtocolError) throw new AgentError('STATE', `${where}: ${err.message}`);
    throw err;
  }
}

/** A time stamp for names: 20261201T101500Z. */
export function stamp(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

export class StateDir {
  readonly dir: string;
  readonly runsDir: string;
  private readonly uid: number | null;

  constructor(dir: string) {
    this.dir = dir;
    this.runsDir = join(dir, 'runs');
    this.uid = typeof process.getuid === 'function' ? process.getuid() : null;
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  /** Create the directory (0700) and runs/ when missing, and check both are private. */
  ensure(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.checkPrivate(this.dir, 'directory');
    mkdirSync(this.runsDir, { mode: 0o700, recursive: true });
    this.checkPrivate(this.runsDir, 'directory');
  }

  /** Whether the directory exists (it is not created). */
  exists(): boolean {
    try {
      return statSync(this.dir).isDirectory();
    } catch {
      return false;
    }
  }

  /** Refuse a file or directory other users can read or write, or that another user owns. */
  checkPrivate(path: string, what: 'directory' | 'file'): void {
    const st = statSync(path);
    if (this.uid !== null && st.uid !== this.uid) {
      throw new AgentError('STATE', `${path} belongs to uid ${st.uid}, not to this agent (uid ${this.uid}): fix it with chown ${this.uid} ${path}, or use another --state-dir`);
    }
    if ((st.mode & 0o077) !== 0) {
      const want = what === 'directory' ? '700' : '600';
      throw new AgentError('STATE', `${path} is open to other users (mode ${octal(st.mode)}): fix it with chmod ${want} ${path}${what === 'file' ? ' (and consider the key exposed: re-enrol)' : ''}`);
    }
  }

  readAgent(): AgentRecord | null {
    const p = this.path('agent.json');
    const v = readJson(p);
    return v === undefined ? null : parseAgentRecord(v, p);
  }

  writeAgent(rec: AgentRecord): void {
    atomicWrite(this.path('agent.json'), `${JSON.stringify(rec, null, 2)}\n`, 0o600);
  }

  readCa(): string | null {
    try {
      return readFileSync(this.path('ca.pem'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  writeCa(pem: string): void {
    atomicWrite(this.path('ca.pem'), pem, 0o644);
  }

  /** The private key, or null when there is none; refuses a key file open to others. */
  readKey(): KeyObject | null {
    const p = this.path('key.pem');
    let pem: string;
    try {
      pem = readFileSync(p, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    this.checkPrivate(p, 'file');
    let key: KeyObject;
    try {
      key = createPrivateKey(pem);
    } catch (err) {
      throw new AgentError('STATE', `${p} is not a private key (${(err as Error).message}): re-enrol (fleetboot-agent enroll)`);
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new AgentError('STATE', `${p} must be an Ed25519 key: it is ${key.asymmetricKeyType ?? 'unknown'}`);
    return key;
  }

  /** Make a new Ed25519 key, write it (0600) and return it. */
  newKey(): KeyObject {
    const { privateKey } = generateKeyPairSync('ed25519');
    atomicWrite(this.path('key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }), 0o600);
    return privateKey;
  }

  readEnrolFile(): EnrolFile | null {
    const p = this.path('enrol.json');
    const v = readJson(p);
    return v === undefined ? null : parseEnrolFile(v, p);
  }

  removeEnrolFile(): void {
    rmSync(this.path('enrol.json'), { force: true });
    syncDir(this.dir);
  }

  /**
   * Move the identity aside (agent.json, key.pem and runs/ renamed with a
   * time-stamp suffix), keeping ca.pem and enrol.json: the machine enrols
   * afresh with the same server. Returns the new names.
   */
  moveAside(now: Date): string[] {
    const suffix = stamp(now);
    const moved: string[] = [];
    for (const name of ['agent.json', 'key.pem', 'runs']) {
      const from = this.path(name);
      try {
        statSync(from);
      } catch {
        continue;
      }
      let to = `${from}.${suffix}`;
      for (let i = 1; existsSafe(to); i++) to = `${from}.${suffix}-${i}`;
      renameSync(from, to);
      moved.push(to);
    }
    syncDir(this.dir);
    mkdirSync(this.runsDir, { mode: 0o700, recursive: true });
    return moved;
  }

  // ---------------------------------------------------------------- runs

  markerPath(workId: number): string {
    return join(this.runsDir, `${workId}.json`);
  }

  runDirOf(workId: number): string {
    return join(this.runsDir, `${workId}.d`);
  }

  writeMarker(m: RunMarker): void {
    atomicWrite(this.markerPath(m.workId), `${JSON.stringify(m)}\n`, 0o600);
  }

  /** Remove the marker and the run directory of a work item. */
  removeRun(workId: number): void {
    rmSync(this.runDirOf(workId), { recursive: true, force: true });
    rmSync(this.markerPath(workId), { force: true });
    syncDir(this.runsDir);
  }

  /**
   * The markers in runs/, oldest id first. Run directories without a marker
   * (a download the agent did not finish: nothing ran) are removed, and so
   * is a marker that cannot be read (logged by the caller through `bad`).
   */
  markers(bad: (path: string, message: string) => void = () => {}): RunMarker[] {
    let names: string[];
    try {
      names = readdirSync(this.runsDir);
    } catch {
      return [];
    }
    const out: RunMarker[] = [];
    const ids = new Set<number>();
    for (const n of names) {
      const m = /^(\d{1,16})\.json$/.exec(n);
      if (!m) continue;
      const p = join(this.runsDir, n);
      try {
        const marker = parseMarker(readJson(p), p);
        out.push(marker);
        ids.add(marker.workId);
      } catch (err) {
        bad(p, (err as Error).message);
        unlinkSync(p);
      }
    }
    for (const n of names) {
      const m = /^(\d{1,16})\.d$/.exec(n);
      if (m && !ids.has(Number(m[1]))) rmSync(join(this.runsDir, n), { recursive: true, force: true });
      if (/\.tmp-\d+-[0-9a-f]+$/.test(n)) rmSync(join(this.runsDir, n), { force: true });
    }
    return out.sort((a, b) => a.workId - b.workId);
  }
}

function existsSafe(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** The public key (SPKI DER, base64) of a private key. */
export function publicKeyB64(key: KeyObject): string {
  return createPublicKey(key).export({ type: 'spki', format: 'der' }).toString('base64');
}
