/**
 * The server side of the endpoint agents (`fleetboot-agent` on installed
 * machines; protocol in src/model/endpoint.ts): enrolment, sessions, the
 * work queue with long-polls, results, and software packages.
 *
 * Rules:
 * - Enrolment proves possession of the agent's key (a signed single-use
 *   nonce). A valid token binds the agent to the token's host, or (a token
 *   without a host) to the host that has one of the MACs the agent reports,
 *   made when none has; the host joins the token's group. A MAC-bound
 *   token (the one a deploy with `enrol` writes into the deployed system,
 *   src/imaging/tasks.ts) enrols only an agent that reports its host's MAC,
 *   and a refusal does not spend it. That token crossed the boot
 *   environment's plain HTTP: the binding keeps a token read off the wire
 *   from enrolling some other machine by accident or as a naive attacker,
 *   but the agent reports its own MACs, so a machine that lies about its
 *   MAC is not stopped by it (as for imaging: keep that segment trusted).
 *   A new token for a task revokes the task's unused earlier ones.
 *   Without a token
 *   the agent is pending and gets no work until an admin approves it for a
 *   host: MAC or SMBIOS identity alone never grants an existing host's
 *   identity. A host has one active agent: a new enrolment for it (a
 *   reinstall, a re-imaged machine) revokes the old key.
 * - A session is opened by signing a fresh nonce; it lasts
 *   agents.sessionMinutes and every request checks the agent's state, so a
 *   revoked agent's next request gets 401 REVOKED. A session request whose
 *   identity is not the enrolled machine's (src/model/endpoint.ts
 *   sameMachine: a copied state directory, a cloned disk) gets 401
 *   IDENTITY_CHANGED and nothing else.
 * - Work for a host is handed to its active agent at most once (see
 *   src/store/agents.ts). A long poll waits until work for the host is
 *   queued (or an imaging task with `reboot` is), or the wait ends.
 * - Packages: files are stored by sha256 under <dataDir>/packages/ (0600,
 *   written atomically, their hash checked as they arrive); each revision's
 *   manifest is signed with the server's package key
 *   (<dataDir>/package-signing.key, Ed25519, 0600, made at first start). A
 *   file is served only to an agent that was handed a package naming it.
 */
import { createHash, generateKeyPairSync, randomBytes, createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { chmod, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FleetbootError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import {
  agentIdOf,
  canonicalJson,
  ed25519PublicKey,
  enrollSigningBytes,
  HOSTNAME_RE,
  packageSigningBytes,
  PACKAGE_FILE_RE,
  PACKAGE_NAME_RE,
  sameMachine,
  sessionSigningBytes,
  sha256Hex,
  verifySignature,
  type AgentIdentity,
  type Challenge,
  type EnrollAnswer,
  type EnrollRequest,
  type PackageManifest,
  type SessionAnswer,
  type SessionRequest,
  type WorkAnswer,
  type WorkItem,
  type WorkResult,
} from '../model/endpoint.js';
import { normaliseMac } from '../model/validate.js';
import type { Store } from '../store/db.js';
import { putInventory } from '../store/inventory.js';
import * as st from '../store/agents.js';
import { addAgentNonce, sweepAgentNonces, takeAgentNonce } from '../store/agent-nonces.js';
import type { ClusterSignals } from '../store/cluster.js';
import { lockFor } from '../store/locks.js';

/** Codes of the 401 answers the agent acts on (src/model/endpoint.ts). */
export type AgentAuthCode = 'SESSION_EXPIRED' | 'REVOKED' | 'UNKNOWN_AGENT' | 'IDENTITY_CHANGED' | 'BAD_SIGNATURE' | 'BAD_NONCE' | 'UNAUTHORIZED';

export class AgentAuthError extends Error {
  override name = 'AgentAuthError';
  constructor(
    readonly code: AgentAuthCode,
    message: string,
  ) {
    super(message);
  }
}

export interface EndpointSettings {
  pollSeconds: number;
  longPollSeconds: number;
  sessionMinutes: number;
}

export interface EndpointServiceOptions {
  store: Store;
  log: Logger;
  settings: Readonly<EndpointSettings>;
  /** Milliseconds since the epoch (tests pass their own). */
  now?: () => number;
  /**
   * The other servers sharing the store (src/store/cluster.ts): wake-ups of
   * long polls go to them too, and theirs wake this server's.
   */
  cluster?: ClusterSignals;
}

export interface TokenRequest {
  /** The host the agent becomes (MAC). */
  host?: string | null;
  /** The group its host joins. */
  group?: string | null;
  ttlSeconds: number;
  uses: number;
  createdBy: string;
  /** The deploy task it is made for (its unused earlier tokens are revoked). */
  taskId?: number | null;
  /** Enrol only an agent that reports the host's MAC (needs `host`). */
  macBound?: boolean;
}

export interface NewPackage {
  name: string;
  files: Array<{ name: string; sha256: string; executable: boolean }>;
  argv: string[];
  timeoutSeconds: number;
  rebootCodes: number[];
  successCodes: number[];
  createdBy: string;
}

export type AdminWorkKind = 'inventory' | 'hostname' | 'reboot';

export interface EndpointService {
  readonly packageKey: string;
  challenge(): Promise<Challenge>;
  enroll(req: EnrollRequest, ip: string | null): Promise<EnrollAnswer>;
  openSession(req: SessionRequest, ip: string | null): Promise<SessionAnswer>;
  /** The agent a session secret belongs to; AgentAuthError when none may act. */
  authenticate(secret: string, ip: string | null): Promise<st.Agent>;
  poll(agent: st.Agent, opts: { waitSeconds: number; held: ReadonlySet<number>; signal: AbortSignal }): Promise<WorkAnswer>;
  report(agent: st.Agent, workId: number, result: WorkResult): Promise<void>;
  /** The path of a package file this agent may fetch. */
  fileFor(agent: st.Agent, sha256: string): Promise<{ path: string; size: number }>;

  createToken(t: TokenRequest): Promise<{ token: string; info: st.EnrolToken }>;
  listTokens(): Promise<st.EnrolToken[]>;
  revokeToken(id: number): Promise<void>;
  listAgents(filter?: { state?: 'active' | 'pending' | 'revoked'; mac?: string }): Promise<st.Agent[]>;
  /** An agent by id, or the active agent of a host by MAC. */
  findAgent(idOrMac: string): Promise<st.Agent>;
  approve(agentId: string, mac: string | null): Promise<st.Agent>;
  revoke(idOrMac: string): Promise<st.Agent>;
  queue(macs: readonly string[], kind: AdminWorkKind, createdBy: string): Promise<st.Work[]>;
  /** Ask the agent of `viaMac` to send magic packets for `macs` on its segment. */
  wakeVia(viaMac: string, macs: readonly string[], port: number, createdBy: string): Promise<st.Work>;
  /**
   * Ask agents online on the machines' own segments (the last address known
   * of each machine, in the same /prefixLength as the agent's) to send the
   * magic packets too: for routed subnets whose directed broadcasts are
   * dropped. Returns how many agents were asked.
   */
  wakeThroughAgents(macs: readonly string[], opts: { port: number; prefixLength: number; createdBy: string }): Promise<number>;

  storeFile(body: Readable, expectedSha256: string, maxBytes: number): Promise<{ sha256: string; size: number; existed: boolean }>;
  addPackage(p: NewPackage): Promise<st.StoredPackage>;
  listPackages(): Promise<st.StoredPackage[]>;
  getPackage(name: string, revision?: number): Promise<st.StoredPackage>;
  deployPackage(name: string, macs: readonly string[], opts: { notBefore: string | null; createdBy: string }): Promise<st.Work[]>;
  listWork(filter: { mac?: string; kind?: string; limit?: number }): Promise<st.Work[]>;
  getWork(id: number): Promise<st.Work>;
  /**
   * Wake long polls of this MAC's agent (work or a rebooting task was
   * queued), on every server sharing the store; `{ localOnly: true }`: on
   * this one only (the others hear of it themselves, as for a relayed event).
   */
  notify(mac: string, o?: { localOnly?: boolean }): void;
  close(): void;
}

const NONCE_TTL_MS = 60_000;
const MAX_NONCES = 20_000;
const PACKAGE_KEY_FILE = 'package-signing.key';

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Load the package key, or make it (0600, written atomically) at first start. */
function packageKeyPair(dataDir: string): { privateKey: KeyObject; publicKeyB64: string } {
  const file = join(dataDir, PACKAGE_KEY_FILE);
  let privateKey: KeyObject;
  if (existsSync(file)) {
    privateKey = createPrivateKey(readFileSync(file));
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new FleetbootError('CONFIG', `${file} is not an Ed25519 private key (it is ${privateKey.asymmetricKeyType ?? 'unknown'}): move it away and restart to make a new one`);
  } else {
    privateKey = generateKeyPairSync('ed25519').privateKey;
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    renameSync(tmp, file);
  }
  return { privateKey, publicKeyB64: createPublicKey(privateKey).export({ type: 'spki', format: 'der' }).toString('base64') };
}

export function createEndpointService(opts: EndpointServiceOptions): EndpointService {
  const { store, log, settings } = opts;
  const db = store.db;
  const now = opts.now ?? Date.now;
  const iso = (): string => new Date(now()).toISOString();
  const { privateKey, publicKeyB64: packageKey } = packageKeyPair(store.dataDir);
  const blobDir = join(store.dataDir, 'packages');
  mkdirSync(blobDir, { recursive: true, mode: 0o700 });

  /** MAC -> the wake-ups of long polls waiting for that host's work. */
  const waiters = new Map<string, Set<() => void>>();
  const cluster = opts.cluster ?? null;

  // Nonces live in the store (src/store/agent-nonces.ts): one handed out by
  // another server sharing it is accepted here, once. The count of open
  // ones is checked (and the expired swept) at most every 10 s.
  let openNonces = 0;
  let sweptAt = -Infinity;
  const takeNonce = async (nonce: string): Promise<void> => {
    if (typeof nonce !== 'string' || nonce.length > 64 || !(await takeAgentNonce(db, nonce, iso()))) throw new AgentAuthError('BAD_NONCE', 'The nonce is unknown, used or older than 60 s: ask for a new challenge');
  };

  const wakeHere = (mac: string): void => {
    const set = waiters.get(mac);
    if (!set) return;
    waiters.delete(mac);
    for (const wake of set) wake();
  };
  // MACs to tell the other servers about, sent together at the next turn of
  // the event loop (work queued for a group is one signal, not one per host).
  const toTell = new Set<string>();
  const tell = (): void => {
    const macs = [...toTell];
    toTell.clear();
    // 400 MACs (17 bytes and a space each) stay well under NOTIFY's 8000 bytes.
    for (let i = 0; i < macs.length; i += 400) void cluster?.notify('fleetboot_agent', macs.slice(i, i + 400).join(' '));
  };
  const notify = (mac: string, o: { localOnly?: boolean } = {}): void => {
    wakeHere(mac);
    if (!cluster?.shared || o.localOnly === true) return;
    if (toTell.size === 0) setImmediate(tell);
    toTell.add(mac);
  };
  const unlisten = cluster
    ? [
        cluster.on('fleetboot_agent', (macs) => {
          for (const mac of macs.split(' ')) if (mac !== '') wakeHere(mac);
        }),
        // Wake-ups may have been missed while the connection was down: every long poll looks again.
        cluster.onResynced(() => {
          for (const mac of [...waiters.keys()]) wakeHere(mac);
        }),
      ]
    : [];

  const checkIdentity = (agent: st.Agent, identity: AgentIdentity): void => {
    if (!sameMachine(agent.identity, identity)) {
      throw new AgentAuthError(
        'IDENTITY_CHANGED',
        `This agent key was enrolled on another machine (MACs ${agent.identity.macs.join(' ') || 'none'}, SMBIOS UUID ${agent.identity.smbiosUuid ?? 'none'}); this one reports MACs ${identity.macs.join(' ') || 'none'}, UUID ${identity.smbiosUuid ?? 'none'}: enrol again with a new key`,
      );
    }
  };

  const stateOf = (a: st.Agent): 'active' | 'pending' => {
    if (a.state === 'revoked') throw new AgentAuthError('REVOKED', `Agent ${a.id} was revoked at ${a.revokedAt ?? '?'}: enrol again with a new token`);
    return a.state;
  };

  /** The work item of a stored row, as the agent gets it. */
  const itemOf = async (w: st.Work): Promise<WorkItem | null> => {
    const p = w.payload;
    switch (w.kind) {
      case 'inventory':
        return { id: w.id, kind: 'inventory' };
      case 'hostname':
        return { id: w.id, kind: 'hostname', name: String(p['name']) };
      case 'reboot':
        return { id: w.id, kind: 'reboot', reason: String(p['reason'] ?? 'asked by the server'), taskId: w.taskId };
      case 'wake':
        return { id: w.id, kind: 'wake', macs: (p['macs'] as string[]) ?? [], port: Number(p['port'] ?? 9), repeats: Number(p['repeats'] ?? 3) };
      case 'package': {
        const pkg = w.packageId === null ? null : await st.getPackageById(db, w.packageId);
        if (!pkg) return null;
        return { id: w.id, kind: 'package', package: { manifest: pkg.manifest, signature: pkg.signature } };
      }
      default:
        return null;
    }
  };

  /** Queue reboots for this host's queued imaging tasks that asked for one. */
  const queueTaskReboots = async (hostId: number, mac: string): Promise<void> => {
    for (const t of await st.rebootTasksOf(db, mac)) {
      await st.insertWork(db, { hostId, kind: 'reboot', payload: { reason: `imaging task #${t.id} (${t.type}${t.image ? ` ${t.image}` : ''}) waits for this machine's network boot` }, taskId: t.id, createdBy: `task #${t.id}`, now: iso() });
      log.info({ subsystem: 'agents', mac, task: t.id }, `reboot queued for ${mac}: imaging task #${t.id} asked for it`);
    }
  };

  /** Hand out the host's due work (at most 10 items) to this agent. */
  const handOut = async (agent: st.Agent, held: ReadonlySet<number>): Promise<WorkItem[]> => {
    const host = agent.host;
    if (!host) return [];
    const t = iso();
    const lost = await st.reclaimWork(db, agent.id, held, t);
    for (const id of lost) log.warn({ subsystem: 'agents', agent: agent.id, mac: host.mac, work: id }, `work #${id} for ${host.mac} was handed out ${st.MAX_DELIVERIES} times and never reported: given up`);
    await queueTaskReboots(host.id, host.mac);
    const items: WorkItem[] = [];
    for (const w of await st.dueWork(db, host.id, t, 10)) {
      const item = await itemOf(w);
      if (item === null) {
        await st.cancelWork(db, w.id, t);
        continue;
      }
      if (await st.markWorkSent(db, w.id, agent.id, t)) items.push(item);
    }
    if (items.length) log.info({ subsystem: 'agents', agent: agent.id, mac: host.mac, work: items.map((i) => `${i.id}:${i.kind}`) }, `work handed to the agent of ${host.mac}`);
    return items;
  };

  const macsOf = async (macs: readonly string[]): Promise<Array<{ id: number; mac: string; name: string | null }>> => {
    const norm = macs.map((m) => {
      const n = normaliseMac(m);
      if (n === null) throw new FleetbootError('INVALID_INPUT', `Invalid MAC ${JSON.stringify(m)}: expected e.g. 52:54:00:12:34:56`);
      return n;
    });
    const hosts = await st.hostsByMacs(db, norm);
    const missing = norm.filter((m) => !hosts.some((h) => h.mac === m));
    if (missing.length) throw new FleetbootError('NOT_FOUND', `No host with MAC ${missing.join(', ')}`);
    return hosts;
  };

  const service: EndpointService = {
    packageKey,

    async challenge() {
      const t = now();
      if (openNonces >= MAX_NONCES || t - sweptAt >= 10_000) {
        sweptAt = t;
        openNonces = await sweepAgentNonces(db, new Date(t).toISOString());
        if (openNonces >= MAX_NONCES) throw new FleetbootError('RATE_LIMITED', `${MAX_NONCES} challenges are open: try again in a minute`);
      }
      const nonce = randomBytes(24).toString('base64url');
      await addAgentNonce(db, nonce, new Date(t + NONCE_TTL_MS).toISOString());
      openNonces++;
      return { nonce, expiresInSeconds: NONCE_TTL_MS / 1000 };
    },

    async enroll(req, ip) {
      await takeNonce(req.nonce);
      const key = ed25519PublicKey(req.publicKey);
      if (!verifySignature(key, enrollSigningBytes(req.nonce, req.publicKey), req.signature)) throw new AgentAuthError('BAD_SIGNATURE', 'The enrolment signature does not verify with the public key sent: the agent must sign the nonce with its own key');
      const id = agentIdOf(req.publicKey);
      const t = iso();
      const result = await db.transaction().execute(async (trx) => {
        const existing = await st.getAgent(trx, id);
        if (existing?.state === 'revoked') throw new AgentAuthError('REVOKED', `This key (agent ${id}) was revoked: the agent must make a new key to enrol again`);
        if (req.token === null) {
          if (existing) return { agent: existing, how: 'again' as const };
          await st.insertAgent(trx, { id, publicKey: req.publicKey, state: 'pending', hostId: null, identity: req.identity, ip, now: t, tokenId: null });
          return { agent: (await st.getAgent(trx, id)) as st.Agent, how: 'pending' as const };
        }
        const token = await st.enrolTokenByHash(trx, hashSecret(req.token));
        if (!token) throw new FleetbootError('UNAUTHORIZED', 'Unknown enrolment token: ask the administrator for one (fleetboot agent token create)');
        if (token.revokedAt !== null) throw new FleetbootError('UNAUTHORIZED', `This enrolment token was revoked at ${token.revokedAt}`);
        if (Date.parse(token.expiresAt) <= now()) throw new FleetbootError('UNAUTHORIZED', `This enrolment token expired at ${token.expiresAt}`);
        if (token.usesLeft <= 0) throw new FleetbootError('UNAUTHORIZED', `This enrolment token was used already (${token.uses} use${token.uses === 1 ? '' : 's'} of ${token.uses}): ask for a new one`);
        if (token.macBound && (token.host === null || !req.identity.macs.includes(token.host))) {
          throw new FleetbootError(
            'UNAUTHORIZED',
            `This enrolment token${token.taskId !== null ? ` (written by deploy task #${token.taskId})` : ''} enrols only the machine with MAC ${token.host ?? '?'}; this agent reports ${req.identity.macs.join(' ') || 'no MAC'}`,
          );
        }
        if (!(await st.spendEnrolToken(trx, token.id, token.usesLeft))) throw new FleetbootError('CONFLICT', 'This enrolment token was used at the same moment by another enrolment: try again');
        let hostId: number;
        if (token.hostId !== null) {
          hostId = token.hostId;
        } else {
          const found = await st.hostsByMacs(trx, req.identity.macs);
          const first = found[0];
          const mac = req.identity.macs[0];
          if (first) hostId = first.id;
          else if (mac !== undefined) {
            const name = req.identity.hostname !== null && HOSTNAME_RE.test(req.identity.hostname.split('.')[0] ?? '') ? (req.identity.hostname.split('.')[0] ?? null) : null;
            hostId = await st.insertHostForAgent(trx, { mac, name, now: t });
          } else throw new FleetbootError('INVALID_INPUT', 'The token names no host and the agent reports no MAC: nothing to bind it to');
        }
        const host = await st.hostById(trx, hostId);
        if (!host) throw new FleetbootError('NOT_FOUND', 'The host this token was made for is gone');
        await st.approveHostById(trx, hostId, t);
        if (token.groupId !== null) await st.addHostToGroup(trx, token.groupId, host.mac, t);
        const replaced = await st.revokeAgentsOfHost(trx, hostId, t, id);
        if (existing) await st.activateAgent(trx, id, hostId, t, token.id);
        else await st.insertAgent(trx, { id, publicKey: req.publicKey, state: 'active', hostId, identity: req.identity, ip, now: t, tokenId: token.id });
        return { agent: (await st.getAgent(trx, id)) as st.Agent, how: 'token' as const, replaced };
      });
      const a = result.agent;
      if (result.how === 'token') {
        log.info({ subsystem: 'agents', agent: a.id, mac: a.host?.mac, ip, replaced: result.replaced }, `agent ${a.id} enrolled as ${a.host?.mac ?? '?'}${a.host?.name ? ` (${a.host.name})` : ''}${result.replaced?.length ? `; it replaces ${result.replaced.join(', ')} (revoked)` : ''}`);
      } else {
        log.info({ subsystem: 'agents', agent: a.id, ip, macs: req.identity.macs }, `agent ${a.id} enrolled without a token: pending until an administrator approves it (fleetboot agent approve ${a.id} --host MAC)`);
      }
      return { agentId: a.id, state: stateOf(a), host: a.host ? { mac: a.host.mac, name: a.host.name } : null, packageKey, pollSeconds: settings.pollSeconds };
    },

    async openSession(req, ip) {
      await takeNonce(req.nonce);
      const agent = await st.getAgent(db, req.agentId);
      if (!agent) throw new AgentAuthError('UNKNOWN_AGENT', `No agent ${req.agentId} is enrolled here: enrol again`);
      if (!verifySignature(ed25519PublicKey(agent.publicKey), sessionSigningBytes(req.nonce, req.agentId), req.signature)) throw new AgentAuthError('BAD_SIGNATURE', `The signature does not verify with agent ${agent.id}'s key`);
      const state = stateOf(agent);
      try {
        checkIdentity(agent, req.identity);
      } catch (err) {
        log.warn({ subsystem: 'agents', agent: agent.id, ip, enrolled: agent.identity.macs, reported: req.identity.macs }, `agent ${agent.id}'s key is used on another machine (${ip ?? '?'}): refused`);
        throw err;
      }
      const secret = randomBytes(32).toString('base64url');
      const t = now();
      await st.createAgentSession(db, { id: hashSecret(secret), agentId: agent.id, createdAt: new Date(t).toISOString(), expiresAt: new Date(t + settings.sessionMinutes * 60_000).toISOString() });
      await st.noteAgentSeen(db, agent.id, { now: new Date(t).toISOString(), ip, identity: req.identity });
      return {
        session: secret,
        expiresInSeconds: settings.sessionMinutes * 60,
        state,
        host: agent.host ? { mac: agent.host.mac, name: agent.host.name } : null,
        pollSeconds: settings.pollSeconds,
        longPollSeconds: settings.longPollSeconds,
        packageKey,
      };
    },

    async authenticate(secret, ip) {
      const s = await st.agentSession(db, hashSecret(secret));
      if (!s) throw new AgentAuthError('SESSION_EXPIRED', 'Unknown or ended session: open a new one');
      stateOf(s.agent);
      if (Date.parse(s.expiresAt) <= now()) throw new AgentAuthError('SESSION_EXPIRED', `The session ended at ${s.expiresAt}: open a new one`);
      await st.noteAgentSeen(db, s.agent.id, { now: iso(), ip });
      return s.agent;
    },

    async poll(agent, o) {
      const state = stateOf(agent);
      const answer = async (): Promise<WorkAnswer> => {
        // The state may have changed while the poll waited.
        const fresh = await st.getAgent(db, agent.id);
        if (!fresh) throw new AgentAuthError('UNKNOWN_AGENT', `Agent ${agent.id} was deleted`);
        const s = stateOf(fresh);
        return { state: s, pollSeconds: settings.pollSeconds, work: s === 'active' ? await handOut(fresh, o.held) : [] };
      };
      const first = await answer();
      const wait = Math.min(Math.max(0, o.waitSeconds), settings.longPollSeconds);
      if (first.work.length > 0 || wait === 0 || state !== 'active' || !agent.host || o.signal.aborted) return first;
      const mac = agent.host.mac;
      const host = agent.host;
      const nextDue = await st.nextDueAt(db, host.id, iso());
      const waitMs = Math.min(wait * 1000, nextDue === null ? Infinity : Math.max(0, Date.parse(nextDue) - now()) + 50);
      await new Promise<void>((resolve) => {
        let set = waiters.get(mac);
        if (!set) waiters.set(mac, (set = new Set()));
        const done = (): void => {
          clearTimeout(timer);
          o.signal.removeEventListener('abort', done);
          waiters.get(mac)?.delete(done);
          resolve();
        };
        const timer = setTimeout(done, waitMs);
        o.signal.addEventListener('abort', done);
        set.add(done);
      });
      if (o.signal.aborted) return first;
      return answer();
    },

    async report(agent, workId, result) {
      stateOf(agent);
      const t = iso();
      const outcome = await st.finishWork(db, workId, agent.id, result, t);
      if (outcome === 'not-yours') throw new FleetbootError('NOT_FOUND', `Work #${workId} was not handed to agent ${agent.id}`);
      if (outcome === 'repeat') return;
      const w = await st.getWork(db, workId);
      if (!w) return;
      if (w.kind === 'inventory' && result.inventory !== null && result.status === 'succeeded') await putInventory(db, w.mac, result.inventory);
      const what = w.kind === 'package' ? `package ${w.packageName ?? '?'} r${w.packageRevision ?? '?'}` : w.kind;
      const line = `work #${w.id} (${what}) on ${w.mac}: ${result.status}${result.exitCode !== null ? `, exit ${result.exitCode}` : ''}${result.signal ? `, ${result.signal}` : ''} - ${result.message}`;
      if (result.status === 'succeeded') log.info({ subsystem: 'agents', agent: agent.id, mac: w.mac, work: w.id, kind: w.kind, status: result.status, exitCode: result.exitCode, ms: result.durationMs }, line);
      else log.warn({ subsystem: 'agents', agent: agent.id, mac: w.mac, work: w.id, kind: w.kind, status: result.status, exitCode: result.exitCode, signal: result.signal, ms: result.durationMs }, line);
    },

    async fileFor(agent, sha256) {
      stateOf(agent);
      if (!/^[0-9a-f]{64}$/.test(sha256)) throw new FleetbootError('INVALID_INPUT', `Expected a sha256 (64 lower-case hex digits): got ${JSON.stringify(sha256.slice(0, 80))}`);
      const held = await db
        .selectFrom('agent_work')
        .innerJoin('packages', 'packages.id', 'agent_work.package_id')
        .select('packages.manifest')
        .where('agent_work.agent_id', '=', agent.id)
        .where('agent_work.state', '=', 'sent')
        .execute();
      const named = held.some((r) => (JSON.parse(r.manifest) as PackageManifest).files.some((f) => f.sha256 === sha256));
      if (!named) throw new FleetbootError('NOT_FOUND', `No package handed to this agent names the file ${sha256}`);
      const path = join(blobDir, sha256);
      try {
        const s = await stat(path);
        return { path, size: s.size };
      } catch {
        throw new FleetbootError('NOT_FOUND', `The package file ${sha256} is missing from the server's store`);
      }
    },

    async createToken(t) {
      if (!Number.isSafeInteger(t.ttlSeconds) || t.ttlSeconds < 60 || t.ttlSeconds > 366 * 86400) throw new FleetbootError('INVALID_INPUT', `ttl must be from 60 s to 366 days: got ${t.ttlSeconds} s`);
      if (!Number.isSafeInteger(t.uses) || t.uses < 1 || t.uses > 100_000) throw new FleetbootError('INVALID_INPUT', `uses must be from 1 to 100000: got ${t.uses}`);
      let hostId: number | null = null;
      let groupId: number | null = null;
      if (t.host) hostId = (await macsOf([t.host]))[0]?.id ?? null;
      if (t.group) {
        const g = await db.selectFrom('groups').select('id').where('name', '=', t.group).executeTakeFirst();
        if (!g) throw new FleetbootError('NOT_FOUND', `No host group ${JSON.stringify(t.group)}`);
        groupId = g.id;
      }
      if (hostId !== null && t.uses > 1) throw new FleetbootError('INVALID_INPUT', `A token for one host (${t.host ?? ''}) enrols one agent: uses must be 1, got ${t.uses}`);
      if (t.macBound === true && hostId === null) throw new TypeError('createToken(): a MAC-bound token needs a host');
      const token = randomBytes(24).toString('base64url');
      const n = now();
      const at = new Date(n).toISOString();
      const taskId = t.taskId ?? null;
      const { info, revoked } = await db.transaction().execute(async (trx) => {
        const revoked = taskId === null ? [] : await st.revokeTaskEnrolTokens(trx, taskId, at);
        const info = await st.createEnrolToken(trx, { tokenHash: hashSecret(token), hostId, groupId, uses: t.uses, createdAt: at, createdBy: t.createdBy, expiresAt: new Date(n + t.ttlSeconds * 1000).toISOString(), taskId, macBound: t.macBound === true });
        return { info, revoked };
      });
      log.info(
        { subsystem: 'agents', token: info.id, host: info.host, group: info.group, uses: info.usesLeft, expiresAt: info.expiresAt, task: taskId, macBound: info.macBound, revoked },
        `enrolment token #${info.id} made by ${t.createdBy}${info.macBound ? ` (only for MAC ${info.host ?? '?'})` : ''}${revoked.length ? `; the task's earlier token${revoked.length === 1 ? '' : 's'} #${revoked.join(', #')} revoked` : ''}`,
      );
      return { token, info };
    },

    listTokens: () => st.listEnrolTokens(db),

    async revokeToken(id) {
      if (!(await st.revokeEnrolToken(db, id, iso()))) throw new FleetbootError('NOT_FOUND', `No unrevoked enrolment token #${id}`);
    },

    listAgents: (filter = {}) => st.listAgents(db, filter),

    async findAgent(idOrMac) {
      if (/^[0-9a-f]{32}$/.test(idOrMac)) {
        const a = await st.getAgent(db, idOrMac);
        if (!a) throw new FleetbootError('NOT_FOUND', `No agent ${idOrMac}`);
        return a;
      }
      const mac = normaliseMac(idOrMac);
      if (mac === null) throw new FleetbootError('INVALID_INPUT', `Expected an agent id (32 hex digits) or a host's MAC: got ${JSON.stringify(idOrMac.slice(0, 80))}`);
      const list = (await st.listAgents(db, { mac })).filter((a) => a.state !== 'revoked');
      const a = list.find((x) => x.state === 'active') ?? list[0];
      if (!a) throw new FleetbootError('NOT_FOUND', `Host ${mac} has no enrolled agent`);
      return a;
    },

    async approve(agentId, mac) {
      const t = iso();
      const a = await db.transaction().execute(async (trx) => {
        const agent = await st.getAgent(trx, agentId);
        if (!agent) throw new FleetbootError('NOT_FOUND', `No agent ${agentId}`);
        if (agent.state === 'revoked') throw new FleetbootError('CONFLICT', `Agent ${agentId} was revoked: it must enrol again with a new key`);
        let hostId: number;
        if (mac !== null) {
          const n = normaliseMac(mac);
          if (n === null) throw new FleetbootError('INVALID_INPUT', `Invalid MAC ${JSON.stringify(mac)}`);
          const h = (await st.hostsByMacs(trx, [n]))[0];
          hostId = h ? h.id : await st.insertHostForAgent(trx, { mac: n, name: null, now: t });
        } else if (agent.host) {
          hostId = agent.host.id;
        } else {
          const first = agent.identity.macs[0];
          if (first === undefined) throw new FleetbootError('INVALID_INPUT', `Agent ${agentId} reported no MAC: name the host (--host MAC)`);
          const found = (await st.hostsByMacs(trx, agent.identity.macs))[0];
          hostId = found ? found.id : await st.insertHostForAgent(trx, { mac: first, name: null, now: t });
        }
        await st.approveHostById(trx, hostId, t);
        await st.revokeAgentsOfHost(trx, hostId, t, agentId);
        await st.activateAgent(trx, agentId, hostId, t);
        return (await st.getAgent(trx, agentId)) as st.Agent;
      });
      log.info({ subsystem: 'agents', agent: a.id, mac: a.host?.mac }, `agent ${a.id} approved as ${a.host?.mac ?? '?'}`);
      return a;
    },

    async revoke(idOrMac) {
      const a = await service.findAgent(idOrMac);
      if (a.state === 'revoked') return a;
      await db.transaction().execute(async (trx) => st.revokeAgent(trx, a.id, iso()));
      log.info({ subsystem: 'agents', agent: a.id, mac: a.host?.mac }, `agent ${a.id}${a.host ? ` of ${a.host.mac}` : ''} revoked: its next request gets 401`);
      if (a.host) notify(a.host.mac);
      return (await st.getAgent(db, a.id)) as st.Agent;
    },

    async queue(macs, kind, createdBy) {
      const hosts = await macsOf(macs);
      const t = iso();
      const ids = await db.transaction().execute(async (trx) => {
        const out: number[] = [];
        for (const h of hosts) {
          let payload: Record<string, unknown> = {};
          if (kind === 'hostname') {
            if (h.name === null || !HOSTNAME_RE.test(h.name)) throw new FleetbootError('INVALID_INPUT', `Host ${h.mac} has ${h.name === null ? 'no name' : `the name ${JSON.stringify(h.name)}, which is not a valid host name (letters, digits, hyphens; at most 63)`}: name it first (fleetboot host set ${h.mac} --name NAME)`);
            payload = { name: h.name };
          } else if (kind === 'reboot') payload = { reason: `asked by ${createdBy}` };
          out.push(await st.insertWork(trx, { hostId: h.id, kind, payload, createdBy, now: t }));
        }
        return out;
      });
      for (const h of hosts) notify(h.mac);
      return Promise.all(ids.map(async (id) => (await st.getWork(db, id)) as st.Work));
    },

    async wakeVia(viaMac, macs, port, createdBy) {
      const [via] = await macsOf([viaMac]);
      if (!via) throw new FleetbootError('NOT_FOUND', `No host ${viaMac}`);
      if (!(await st.activeAgentOfHost(db, via.id))) throw new FleetbootError('CONFLICT', `Host ${via.mac} has no active agent to send the packets`);
      const targets = macs.map((m) => {
        const n = normaliseMac(m);
        if (n === null) throw new FleetbootError('INVALID_INPUT', `Invalid MAC ${JSON.stringify(m)}`);
        return n;
      });
      if (targets.length === 0 || targets.length > 1000) throw new FleetbootError('INVALID_INPUT', `Name 1 to 1000 machines to wake: got ${targets.length}`);
      const id = await st.insertWork(db, { hostId: via.id, kind: 'wake', payload: { macs: targets, port, repeats: 3 }, createdBy, now: iso() });
      notify(via.mac);
      return (await st.getWork(db, id)) as st.Work;
    },

    async wakeThroughAgents(macs, o) {
      if (macs.length === 0) return 0;
      const since = new Date(now() - (2 * settings.pollSeconds + 60) * 1000).toISOString();
      const relays = await st.recentAgents(db, since);
      if (relays.length === 0) return 0;
      const known = await st.knownAddresses(db, macs);
      const mask = o.prefixLength === 0 ? 0 : (0xffffffff << (32 - o.prefixLength)) >>> 0;
      const net = (ip: string): number | null => {
        const p = ip.split('.').map(Number);
        if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) return null;
        return ((((p[0] as number) << 24) | ((p[1] as number) << 16) | ((p[2] as number) << 8) | (p[3] as number)) & mask) >>> 0;
      };
      const byRelay = new Map<number, { mac: string; targets: string[] }>();
      for (const m of macs) {
        const ip = known.get(m);
        const n = ip === undefined ? null : net(ip);
        if (n === null) continue;
        const relay = relays.find((r) => r.mac !== m && net(r.ip) === n);
        if (!relay) continue;
        const entry = byRelay.get(relay.hostId) ?? { mac: relay.mac, targets: [] };
        entry.targets.push(m);
        byRelay.set(relay.hostId, entry);
      }
      const t = iso();
      for (const [hostId, r] of byRelay) {
        await st.insertWork(db, { hostId, kind: 'wake', payload: { macs: r.targets, port: o.port, repeats: 3 }, createdBy: o.createdBy, now: t });
        notify(r.mac);
        log.info({ subsystem: 'agents', via: r.mac, macs: r.targets }, `wake ${r.targets.join(' ')}: asked the agent of ${r.mac} on their segment too`);
      }
      return byRelay.size;
    },

    async storeFile(body, expectedSha256, maxBytes) {
      if (!/^[0-9a-f]{64}$/.test(expectedSha256)) throw new FleetbootError('INVALID_INPUT', `Expected a sha256 (64 lower-case hex digits): got ${JSON.stringify(expectedSha256.slice(0, 80))}`);
      const final = join(blobDir, expectedSha256);
      if (existsSync(final)) {
        body.resume();
        return { sha256: expectedSha256, size: (await stat(final)).size, existed: true };
      }
      const tmp = join(blobDir, `.${expectedSha256}.${randomBytes(4).toString('hex')}.tmp`);
      const hash = createHash('sha256');
      let size = 0;
      try {
        await pipeline(
          body,
          async function* (source: AsyncIterable<Buffer>) {
            for await (const chunk of source) {
              size += chunk.length;
              if (size > maxBytes) throw new FleetbootError('INVALID_INPUT', `The file is larger than ${maxBytes} bytes`);
              hash.update(chunk);
              yield chunk;
            }
          },
          createWriteStream(tmp, { mode: 0o600, flags: 'wx' }),
        );
        const got = hash.digest('hex');
        if (got !== expectedSha256) throw new FleetbootError('INVALID_INPUT', `The file's sha256 is ${got}, not ${expectedSha256} as named: it was changed or cut on the way`);
        await chmod(tmp, 0o600);
        await rename(tmp, final);
        await store.durable();
        return { sha256: got, size, existed: false };
      } finally {
        await rm(tmp, { force: true });
      }
    },

    async addPackage(p) {
      if (!PACKAGE_NAME_RE.test(p.name)) throw new FleetbootError('INVALID_INPUT', `Invalid package name ${JSON.stringify(p.name)}: letters, digits, . _ - (at most 64), starting with a letter or digit`);
      if (p.files.length === 0) throw new FleetbootError('INVALID_INPUT', 'A package needs at least one file');
      const files: PackageManifest['files'] = [];
      for (const f of p.files) {
        if (!PACKAGE_FILE_RE.test(f.name)) throw new FleetbootError('INVALID_INPUT', `Invalid package file name ${JSON.stringify(f.name)}: a plain file name (letters, digits, . _ + -)`);
        let size: number;
        try {
          size = (await stat(join(blobDir, f.sha256))).size;
        } catch {
          throw new FleetbootError('PRECONDITION', `The file ${f.name} (sha256 ${f.sha256}) was not uploaded: PUT /api/v1/packages/files/${f.sha256} first`);
        }
        files.push({ name: f.name, sha256: f.sha256, size, executable: f.executable });
      }
      const created = await db.transaction().execute(async (trx) => {
        await lockFor(trx, `package:${p.name}`);
        const revision = await st.nextPackageRevision(trx, p.name);
        const manifest: PackageManifest = {
          format: 'fleetboot-package',
          version: 1,
          name: p.name,
          revision,
          files,
          argv: [...p.argv],
          timeoutSeconds: p.timeoutSeconds,
          rebootCodes: [...p.rebootCodes],
          successCodes: [...p.successCodes],
          createdAt: iso(),
        };
        const signature = sign(null, packageSigningBytes(manifest), privateKey).toString('base64');
        return st.insertPackage(trx, { manifest, manifestJson: canonicalJson(manifest), signature, createdBy: p.createdBy });
      });
      log.info({ subsystem: 'agents', package: created.name, revision: created.revision, files: files.map((f) => f.name) }, `package ${created.name} revision ${created.revision} added by ${p.createdBy}`);
      return created;
    },

    listPackages: () => st.listPackages(db),

    async getPackage(name, revision) {
      const p = await st.getPackage(db, name, revision);
      if (!p) throw new FleetbootError('NOT_FOUND', `No package ${JSON.stringify(name)}${revision !== undefined ? ` revision ${revision}` : ''}`);
      return p;
    },

    async deployPackage(name, macs, o) {
      const pkg = await service.getPackage(name);
      const hosts = await macsOf(macs);
      const t = iso();
      const ids = await db.transaction().execute(async (trx) => {
        const out: number[] = [];
        for (const h of hosts) out.push(await st.insertWork(trx, { hostId: h.id, kind: 'package', payload: {}, packageId: pkg.id, notBefore: o.notBefore, createdBy: o.createdBy, now: t }));
        return out;
      });
      for (const h of hosts) notify(h.mac);
      log.info({ subsystem: 'agents', package: pkg.name, revision: pkg.revision, hosts: hosts.length, notBefore: o.notBefore }, `package ${pkg.name} r${pkg.revision} queued for ${hosts.length} host${hosts.length === 1 ? '' : 's'}`);
      return Promise.all(ids.map(async (id) => (await st.getWork(db, id)) as st.Work));
    },

    async listWork(filter) {
      let hostId: number | undefined;
      if (filter.mac !== undefined) hostId = (await macsOf([filter.mac]))[0]?.id;
      return st.listWork(db, { ...(hostId !== undefined ? { hostId } : {}), ...(filter.kind !== undefined ? { kind: filter.kind } : {}), ...(filter.limit !== undefined ? { limit: filter.limit } : {}) });
    },

    async getWork(id) {
      const w = await st.getWork(db, id);
      if (!w) throw new FleetbootError('NOT_FOUND', `No agent work #${id}`);
      return w;
    },

    notify,

    close() {
      for (const off of unlisten) off();
      for (const mac of [...waiters.keys()]) wakeHere(mac);
    },
  };
  return service;
}

/** Read a stored package file (for the files route). */
export function openPackageFile(path: string): Readable {
  return createReadStream(path);
}

