/**
 * Multicast sessions in the server: one per multicast deploy job (made with
 * the job, src/store/multicast.ts), each run by a MulticastSender on its own
 * UDP port from `multicast.ports` and group address from
 * `multicast.addresses`. The object it carries is the image revision's
 * partition streams one after another, in the order the agent writes them
 * (by partition start); every agent checks each stream's sha256 as it does
 * for a unicast deploy.
 *
 * Who may receive: a session admits a receiver id only if it is one of its
 * tasks' ids and the JOIN comes from the address the task's token was
 * handed to (the agent learns its id with its task spec, over the token's
 * HTTP request). One machine cannot take another's place.
 *
 * When it starts: the sender runs (announcing, waiting) once one member
 * task is queued or further (a scheduled job waits for its time), and sends
 * when every member has joined, or when `minReceivers` have and
 * `maxWaitSeconds` have passed since it began waiting. Members that join
 * late get the whole image in a later sweep of the same session; once it
 * has ended, by unicast. A member dropped as too slow, or whose session is
 * cancelled or fails, goes on by unicast from where it was (the agent).
 * A restart of the server fails its running sessions (their agents go on
 * by unicast).
 *
 * Several servers on one database (nodes, src/nodes/service.ts): a session
 * belongs to the node of its receivers' subnet when that node is up and
 * holds (or is copying) the revision, else to the node that created it
 * (multicast_sessions.node, stamped when it is made: `allocate` names the
 * creator, src/store/multicast-placement.ts places it), or to the node that
 * claims it first (compare-and-swap) when it has none. A node whose copy is
 * still on its way (missing or copying) holds its sender back until
 * replication verifies it; a deploy asking for its spec meanwhile goes by
 * unicast (from its nearest verified copy). A node's start fails only its
 * own sessions (and unclaimed ones, made before nodes existed); reconcile
 * runs only its own, and fails those of a node that is down. A deploy whose
 * session runs on another node gets no multicast part from this one (it
 * goes by unicast); cancelling such a session is refused here (cancel it on
 * its node). Without `node`
 * (tests), every session is this server's, as before nodes existed.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { FleetbootConfig } from '../config/config.js';
import { parseCidr } from '../dhcp/subnets.js';
import type { Logger } from '../lib/log.js';
import { errorMessage, FleetbootError } from '../lib/errors.js';
import { MAX_RATE_MBPS, parseMulticastPorts, pickEndpoint } from '../model/multicast.js';
import type { EventPublisher, MulticastSessionState } from '../model/events.js';
import { openMcast, type McastSocket } from '../net/mcast-udp.js';
import { defaultUdpBackend, ipv4ToNumber, udpPeer } from '../net/udp.js';
import { DEFAULT_BLOCK_SIZE, parseSessionIdHex, sessionIdHex, type SessionId } from '../protocol/mcast/codec.js';
import type { MulticastSpec } from '../imaging/protocol.js';
import { imagesRoot } from '../imaging/image-store.js';
import { getCopy, servableOn } from '../store/copies.js';
import type { Store } from '../store/db.js';
import { getRevision } from '../store/images.js';
import { claimSession, endSession, failOrphanedSessions, failSessionOfNode, getSession, listSessions, markSessionSending, sessionMembers, type AllocateEndpoint, type MulticastSession, type SessionMember } from '../store/multicast.js';
import { listNodes } from '../store/nodes.js';
import type { Task } from '../store/tasks.js';
import { MulticastSender, type ReceiverView, type SenderStats } from './sender.js';
import { FileObject } from './source.js';
import { DEFAULT_WINDOW, interfaceAddress } from './standalone.js';

export interface MulticastServiceDeps {
  store: Store;
  config: Readonly<FleetbootConfig>;
  serverIp: string;
  log: Logger;
  /** Live events: sessions waiting, sending and ending, members joining and leaving (src/events/bus.ts). */
  events?: EventPublisher;
  /** This server's node name (src/nodes/service.ts): it runs only its own sessions. Absent or null: every session (one server). */
  node?: string | null;
}

/** A member as the API shows it: its task, and the sender's view of its receiver while the session runs. */
export interface SessionMemberView extends SessionMember {
  receiverState: ReceiverView['state'] | 'not joined' | null;
  receiverBytes: number | null;
  lossShare: number | null;
  reason: string | null;
}

export interface SessionDetail extends MulticastSession {
  /** Live figures while it runs (null otherwise: `stats` has the final ones). */
  live: Omit<SenderStats, 'receivers'> | null;
  members: SessionMemberView[];
}

export interface MulticastService {
  /** For the store's job transaction: the first free group address and port. */
  readonly allocate: AllocateEndpoint;
  /** UDP ports sessions may use (for `fleetboot ports` and the firewall). */
  readonly ports: { from: number; to: number };
  start(): Promise<void>;
  /** Start senders for sessions that are due, end those whose members are all gone. */
  reconcile(): Promise<void>;
  /** The multicast part of a deploy task's spec (null: unicast), for the agent asking from `clientIp`. */
  specFor(task: Task, clientIp: string): Promise<MulticastSpec | null>;
  list(filter?: { active?: boolean }): Promise<MulticastSession[]>;
  show(id: number): Promise<SessionDetail | null>;
  /** Ends a session: its members go on by unicast. */
  cancel(id: number, reason: string): Promise<MulticastSession>;
  /** One member leaves the session and goes on by unicast. */
  drop(id: number, taskId: number, reason: string): Promise<void>;
  /** A new rate ceiling for a running session, Mbit/s (multicast.maxRateMbps stays the default of new ones). */
  setMaxRate(id: number, mbps: number): Promise<void>;
  close(): Promise<void>;
}

interface Live {
  row: MulticastSession;
  sender: MulticastSender;
  socket: McastSocket;
  object: FileObject;
  /** receiver id (hex) -> the task and the address its token was handed to. */
  members: Map<string, { taskId: number; tokenIp: string | null }>;
  files: string[];
  objectBytes: number;
  done: Promise<void>;
}

/** The identity of what a session carries: the revision's streams, in order (not a digest of the bytes: each stream's sha256 is checked by the agent). */
function objectIdentity(streams: ReadonlyArray<{ file: string; sha256: string; streamBytes: number }>): Buffer {
  return createHash('sha256')
    .update(JSON.stringify(streams.map((s) => [s.file, s.sha256, s.streamBytes])))
    .digest();
}

export function createMulticastService(deps: MulticastServiceDeps): MulticastService {
  const { store, config, log } = deps;
  const range = parseCidr(config.multicast.addresses);
  const ports = parseMulticastPorts(config.multicast.ports);
  if (!ports) throw new FleetbootError('INVALID_INPUT', `multicast.ports: not a port range: ${config.multicast.ports}`);
  const node = deps.node ?? null;
  const allocate: AllocateEndpoint = (used) => {
    const e = pickEndpoint(range, ports, used);
    return e && { ...e, node };
  };
  const live = new Map<number, Live>();
  const starting = new Map<number, Promise<Live | null>>();
  let closed = false;
  let timer: NodeJS.Timeout | null = null;
  const mlog = log.child({ subsystem: 'multicast' });

  function announce(row: MulticastSession, state: MulticastSessionState, error: string | null): void {
    deps.events?.publish({ kind: 'multicast.session', sessionId: row.id, jobId: row.jobId, image: row.image, revision: row.revision, state, error });
  }

  /** End a session that has no sender (endSession's answer: whether it was still active). */
  async function endIdle(row: MulticastSession, state: 'cancelled' | 'failed', reason: string): Promise<boolean> {
    const ended = await endSession(store.db, row.id, state, reason, null);
    if (ended) announce(row, state, reason);
    return ended;
  }

  async function streamsOf(row: MulticastSession): Promise<{ paths: { path: string; bytes: number }[]; files: string[]; identity: Buffer }> {
    const rec = await getRevision(store.db, row.image, row.revision);
    if (!rec) throw new FleetbootError('NOT_FOUND', `revision ${row.revision} of image '${row.image}' no longer exists`);
    // A node never sends a copy it has not verified (src/store/copies.ts, src/replication/service.ts).
    if (node !== null && store.dialect !== 'sqlite' && !(await servableOn(store.db, row.image, row.revision, node))) throw new FleetbootError('NOT_FOUND', `Image '${row.image}' revision ${row.revision} is not verified on node '${node}': it is not sent from here until replication verifies it`);
    const parts = [...rec.manifest.partitions].sort((a, b) => a.start - b.start);
    const dir = join(imagesRoot(store), rec.dir);
    return { paths: parts.map((p) => ({ path: join(dir, p.file), bytes: p.streamBytes })), files: parts.map((p) => p.file), identity: objectIdentity(parts) };
  }

  /** This node's copy of the session's revision is on its way (missing or copying), not verified yet: the sender waits (logged once). */
  const waitingFor = new Set<number>();
  async function copyPending(row: MulticastSession): Promise<boolean> {
    if (node === null || store.dialect === 'sqlite' || (await servableOn(store.db, row.image, row.revision, node))) return false;
    const c = await getCopy(store.db, row.image, row.revision, node);
    const pending = c !== null && (c.state === 'missing' || c.state === 'copying');
    if (pending && !waitingFor.has(row.id)) {
      waitingFor.add(row.id);
      mlog.info({ session: row.id, image: row.image, revision: row.revision, copy: c.state }, `session #${row.id} waits for this node's copy of ${row.image} revision ${row.revision} to be verified (it is ${c.state})`);
    }
    return pending;
  }

  async function startSession(row: MulticastSession): Promise<Live | null> {
    const session = parseSessionIdHex(row.session);
    if (!session) throw new TypeError(`session ${row.id} has a malformed id ${row.session}`);
    const { paths, files, identity } = await streamsOf(row);
    const object = new FileObject(paths);
    const local = interfaceAddress(config.multicast.interface ?? deps.serverIp);
    let sender: MulticastSender | null = null;
    let socket: McastSocket;
    try {
      socket = await openMcast(defaultUdpBackend(), {
        address: local,
        port: row.port,
        interfaceAddress: local,
        ttl: config.multicast.ttl,
        sndbuf: 4 << 20,
        rcvbuf: 4 << 20,
        onMessage: (m, ip, port) => sender?.handle(m, ip, port),
        onError: (err) => mlog.warn({ session: row.id, err: err.message }, 'socket error'),
      });
    } catch (err) {
      object.close();
      throw err;
    }
    const members = new Map<string, { taskId: number; tokenIp: string | null }>();
    for (const m of await sessionMembers(store.db, row.id)) members.set(m.receiver, { taskId: m.taskId, tokenIp: m.tokenIp });
    sender = new MulticastSender(socket, {
      object,
      label: `${row.image} revision ${row.revision}`,
      digest: identity,
      digestIsSha256: false,
      session,
      group: udpPeer(ipv4ToNumber(row.address), row.port),
      expected: row.expected,
      minReceivers: row.minReceivers,
      maxWaitMs: row.maxWaitSeconds === null ? null : row.maxWaitSeconds * 1000,
      maxRateBps: (config.multicast.maxRateMbps * 1e6) / 8,
      blockSize: DEFAULT_BLOCK_SIZE,
      maxWindow: DEFAULT_WINDOW,
      slowMs: config.multicast.slowReceiverSeconds * 1000,
      receiverTimeoutMs: config.multicast.receiverTimeoutSeconds * 1000,
      admit: (receiver: SessionId, from) => {
        const m = members.get(sessionIdHex(receiver));
        return m !== undefined && m.tokenIp !== null && m.tokenIp === from.address;
      },
      onEvent: (e) => {
        if (e.kind === 'joined') {
          deps.events?.publish({ kind: 'multicast.member', sessionId: row.id, taskId: members.get(e.receiver)?.taskId ?? null, state: 'joined', reason: null });
        } else if (e.kind === 'started') {
          announce(row, 'sending', null);
          void markSessionSending(store.db, row.id).catch((err: unknown) => mlog.error({ session: row.id, err: errorMessage(err) }, 'could not record the start'));
          mlog.info({ session: row.id, receivers: e.receivers }, `session #${row.id} sends ${row.image} revision ${row.revision} to ${e.receivers} of ${row.expected} member(s) on ${row.address}:${row.port}`);
        } else if (e.kind === 'receiver') {
          const m = members.get(e.receiver);
          mlog.info({ session: row.id, task: m?.taskId, state: e.state, reason: e.reason }, `session #${row.id}: task #${m?.taskId ?? '?'} ${e.state}${e.reason ? `: ${e.reason}` : ''}`);
          deps.events?.publish({ kind: 'multicast.member', sessionId: row.id, taskId: m?.taskId ?? null, state: e.state, reason: e.reason });
        }
      },
      log: (msg) => mlog.debug({ session: row.id }, msg),
    });
    const s = sender;
    const l: Live = {
      row,
      sender: s,
      socket,
      object,
      members,
      files,
      objectBytes: object.bytes,
      done: s.run().then(
        async (ok) => {
          const st = s.stats();
          const state = st.state === 'cancelled' ? 'cancelled' : 'finished';
          const failed = st.receivers.filter((r) => r.state !== 'done').length;
          const error = ok ? null : `${failed} of ${st.receivers.length} receiver(s) did not finish in the session (they go on by unicast)`;
          await endSession(store.db, row.id, state, error, st).catch((err: unknown) => mlog.error({ session: row.id, err: errorMessage(err) }, 'could not record the end'));
          announce(row, state, error);
          mlog.info({ session: row.id, ok, retransmittedShare: st.retransmittedShare, seconds: (st.elapsedMs ?? 0) / 1000 }, `session #${row.id} ${state}`);
          setTimeout(() => {
            void socket.close();
            object.close();
          }, 1000).unref(); // answer stragglers' JOIN and STATUS a moment longer
          live.delete(row.id);
        },
        (err: unknown) => mlog.error({ session: row.id, err: errorMessage(err) }, 'session failed'),
      ),
    };
    live.set(row.id, l);
    mlog.info({ session: row.id, address: row.address, port: row.port }, `session #${row.id} waits for ${row.expected} member(s) on ${row.address}:${row.port} (${object.bytes} bytes)`);
    announce(row, 'waiting', null);
    return l;
  }

  async function ensureLive(row: MulticastSession): Promise<Live | null> {
    const have = live.get(row.id);
    if (have) return have;
    if (closed) return null;
    let p = starting.get(row.id);
    if (!p) {
      p = startSession(row).catch(async (err: unknown) => {
        mlog.error({ session: row.id, err: errorMessage(err) }, 'could not start the session');
        await endIdle(row, 'failed', `could not start: ${errorMessage(err)}`);
        return null;
      });
      starting.set(row.id, p);
      void p.finally(() => starting.delete(row.id));
    }
    return p;
  }

  /**
   * Whether this server runs `row` (claiming it when no node holds it). A
   * session of another node that is down (or gone) is failed on the way:
   * its sender died with it, and its members go on by unicast.
   */
  async function ownOrClaim(row: MulticastSession, nodesUp: () => Promise<Set<string>>): Promise<boolean> {
    if (node === null || row.node === node) return true;
    if (row.node === null) return claimSession(store.db, row.id, node);
    if (!(await nodesUp()).has(row.node)) {
      const reason = `its node ${row.node} is down; its members go on by unicast`;
      if (await failSessionOfNode(store.db, row.id, row.node, reason)) {
        announce(row, 'failed', reason);
        mlog.warn({ session: row.id, node: row.node }, `session #${row.id} failed: ${reason}`);
      }
    }
    return false;
  }

  async function reconcile(): Promise<void> {
    if (closed) return;
    let up: Promise<Set<string>> | null = null;
    const nodesUp = (): Promise<Set<string>> => (up ??= listNodes(store.db).then((ns) => new Set(ns.filter((n) => n.state === 'up').map((n) => n.name))));
    for (const row of await listSessions(store.db, { active: true })) {
      if (live.has(row.id)) continue;
      if (!(await ownOrClaim(row, nodesUp))) continue;
      const members = await sessionMembers(store.db, row.id);
      const active = members.filter((m) => ['queued', 'booting', 'waiting', 'running'].includes(m.taskState));
      if (active.length === 0 && !members.some((m) => m.taskState === 'scheduled')) {
        await endIdle(row, 'cancelled', 'every member task ended before the session started');
        continue;
      }
      if (active.length > 0 && !(await copyPending(row))) await ensureLive(row);
    }
  }

  return {
    allocate,
    ports,

    async start() {
      const reason = 'the server restarted during the session; its members go on by unicast';
      if (node === null) {
        for (const row of await listSessions(store.db, { active: true })) {
          // Its sender's state died with the previous process: the agents go on by unicast.
          if (await endIdle(row, 'failed', reason)) {
            mlog.warn({ session: row.id }, `session #${row.id} failed: the server restarted (its members go on by unicast)`);
          }
        }
      } else {
        // Only this node's sessions (and unclaimed ones): the other nodes' senders run on.
        for (const row of await failOrphanedSessions(store.db, node, reason)) {
          announce(row, 'failed', reason);
          mlog.warn({ session: row.id }, `session #${row.id} failed: the server restarted (its members go on by unicast)`);
        }
      }
      timer = setInterval(() => void reconcile().catch((err: unknown) => mlog.error({ err: errorMessage(err) }, 'reconcile failed')), 2000);
      timer.unref();
    },

    reconcile,

    async specFor(task, clientIp) {
      if (task.type !== 'deploy' || task.multicastId === null || task.multicastReceiver === null) return null;
      const row = await getSession(store.db, task.multicastId);
      if (!row || (row.state !== 'waiting' && row.state !== 'sending')) return null;
      // A session another node runs: this node has no sender for it (the deploy goes by unicast).
      if (node !== null && row.node !== node && !(row.node === null && (await claimSession(store.db, row.id, node)))) return null;
      if (await copyPending(row)) return null;
      const l = await ensureLive(row);
      if (!l) return null;
      // The receiver id is admitted from this address only (the one the token was handed to).
      l.members.set(task.multicastReceiver, { taskId: task.id, tokenIp: clientIp });
      return {
        session: row.session,
        address: row.address,
        port: row.port,
        receiver: task.multicastReceiver,
        window: DEFAULT_WINDOW,
        files: l.files,
        objectBytes: l.objectBytes,
      };
    },

    list: (filter = {}) => listSessions(store.db, filter),

    async show(id) {
      const row = await getSession(store.db, id);
      if (!row) return null;
      const members = await sessionMembers(store.db, id);
      const l = live.get(id);
      const stats = l?.sender.stats() ?? null;
      const byId = new Map((stats?.receivers ?? []).map((r) => [r.id, r]));
      const views: SessionMemberView[] = members.map((m) => {
        const r = byId.get(m.receiver);
        return {
          ...m,
          receiverState: r ? r.state : stats ? 'not joined' : null,
          receiverBytes: r ? r.bytes : null,
          lossShare: r ? r.lossShare : null,
          reason: r?.reason ?? null,
        };
      });
      let liveStats: SessionDetail['live'] = null;
      if (stats) {
        const { receivers: _r, ...rest } = stats;
        liveStats = rest;
      }
      return { ...row, live: liveStats, members: views };
    },

    async cancel(id, reason) {
      const row = await getSession(store.db, id);
      if (!row) throw new FleetbootError('NOT_FOUND', `No multicast session #${id}`);
      if (row.state !== 'waiting' && row.state !== 'sending') throw new FleetbootError('CONFLICT', `Multicast session #${id} has already ended (${row.state})`);
      if (node !== null && row.node !== null && row.node !== node) throw new FleetbootError('CONFLICT', `Multicast session #${id} runs on node ${row.node}, not on this one (${node}): cancel it through that node`);
      const l = live.get(id);
      if (l) {
        l.sender.cancel(reason);
        await l.done;
      } else {
        await endIdle(row, 'cancelled', reason);
      }
      const after = await getSession(store.db, id);
      if (!after) throw new FleetbootError('NOT_FOUND', `No multicast session #${id}`);
      return after;
    },

    async drop(id, taskId, reason) {
      const row = await getSession(store.db, id);
      if (!row) throw new FleetbootError('NOT_FOUND', `No multicast session #${id}`);
      const member = (await sessionMembers(store.db, id)).find((m) => m.taskId === taskId);
      if (!member) throw new FleetbootError('NOT_FOUND', `Task #${taskId} is not a member of multicast session #${id}`);
      const l = live.get(id);
      if (!l || !l.sender.drop(member.receiver, reason)) throw new FleetbootError('CONFLICT', `Task #${taskId} is not receiving in session #${id} now (not joined, finished, or the session is not running)`);
    },

    async setMaxRate(id, mbps) {
      const row = await getSession(store.db, id);
      if (!row) throw new FleetbootError('NOT_FOUND', `No multicast session #${id}`);
      if (!(mbps > 0 && mbps <= MAX_RATE_MBPS)) throw new FleetbootError('INVALID_INPUT', `A rate ceiling is above 0 and at most ${MAX_RATE_MBPS} Mbit/s: got ${mbps}`);
      const l = live.get(id);
      if (!l) throw new FleetbootError('CONFLICT', `Multicast session #${id} is not running now (${row.state}): a ceiling applies to a session waiting for or sending to its members`);
      l.sender.setMaxRate((mbps * 1e6) / 8);
      mlog.info({ session: id, maxRateMbps: mbps }, `session #${id}: rate ceiling ${mbps} Mbit/s`);
    },

    async close() {
      closed = true;
      if (timer) clearInterval(timer);
      for (const l of live.values()) l.sender.cancel('the server is stopping');
      await Promise.all([...live.values()].map((l) => l.done));
    },
  };
}
