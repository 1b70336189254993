/**
 * `fleetboot-agent run`: the endpoint agent's life on an enrolled machine.
 *
 * Start
 * - The state directory is checked (private to this user). When agent.json
 *   names another machine than this one (sameMachine(): a cloned disk, a
 *   copied state directory), its key is not used: the state is moved aside
 *   (agent.json, key.pem, runs/ renamed with a time-stamp suffix) and the
 *   agent enrols again with a fresh key, pending (or with enrol.json's
 *   token when the imaging deploy left one).
 * - Not enrolled and <state>/enrol.json present: enrol with it, then delete it.
 * - runs/<id>.json markers: a marker without a result is work the machine
 *   was doing when it stopped (reboot, crash): it is reported `interrupted`
 *   and never run again; a marker with a result is a report the server has
 *   not acknowledged: it is sent again.
 *
 * Polling
 * - First poll 0-3 s after start, then every pollSeconds (from the server)
 *   × (1 ± POLL_JITTER). Long-poll (`--long-poll`): GET /work?wait=S with S
 *   the session's longPollSeconds, and again at once (plus < 1 s) after
 *   each answer. Every poll names the work the machine holds (`running=`).
 * - Errors (network, 5xx, 429, unreadable answers): full-jitter exponential
 *   backoff (backoff.ts), Retry-After honoured up to the cap, reset after a
 *   success.
 *
 * Sessions
 * - challenge -> session (the nonce signed with the agent's key); renewed a
 *   little before expiresInSeconds and on 401 SESSION_EXPIRED.
 * - 401 REVOKED: the agent logs it, drops the work it has not started and
 *   does none, and asks for a session again at the backoff cap (5 min), so
 *   an admin who restores the agent gets it back without touching the
 *   machine. It does NOT re-enrol by itself: a revoked machine coming back
 *   as a new pending agent would undo the admin's decision; re-enrolling is
 *   the admin's act (`fleetboot-agent enroll` on the machine, or a redeploy).
 * - 401 IDENTITY_CHANGED or UNKNOWN_AGENT: state moved aside, a fresh key,
 *   enrolled again without a token (pending).
 * - Pending: the agent polls as usual; the server gives it no work until an
 *   admin approves it.
 *
 * Work is done one item at a time, beside the polling (a package may run
 * for hours while the agent keeps its session and keeps polling); each is
 * reported with POST /work/:id/result until the server acknowledges it,
 * then its marker and run directory are removed. Reboots (work 'reboot', a
 * package's reboot exit code) happen only after that acknowledgement, so a
 * lost report never makes the machine reboot twice.
 */
import type { KeyObject } from 'node:crypto';
import { setTimeout as sleepTimer } from 'node:timers/promises';
import { EndpointProtocolError, sameMachine, sessionSigningBytes, type SessionAnswer, type WorkItem, type WorkResult } from '../model/endpoint.js';
import { parseSessionAnswer, parseWorkAnswer } from './answers.js';
import { BACKOFF_CAP_MS, LONG_POLL_GAP_MS, pollDelayMs, retryDelayMs, startDelayMs, type BackoffOptions, type Random } from './backoff.js';
import { EndpointClient, RequestError } from './client.js';
import { challenge, enroll, enrollWithClient, signB64 } from './enroll.js';
import { AgentError } from './errors.js';
import { errorText, type AgentLog } from './log.js';
import type { AgentOs } from './os.js';
import { KILL_GRACE_MS, resultOf, runPackage } from './package-run.js';
import type { AgentRecord, RunMarker, StateDir } from './state.js';
import { sendWake, type SendFn, type WakeTarget } from './wake.js';

export const DEFAULT_POLL_SECONDS = 60;
/** After asking for a real reboot, no new work starts for this long (the machine is going down). */
export const REBOOT_PAUSE_MS = 120_000;

export interface AgentOptions {
  state: StateDir;
  os: AgentOs;
  log: AgentLog;
  /** One session, one poll, the work, the reports; then resolve. */
  once?: boolean;
  longPoll?: boolean;
  random?: Random;
  backoff?: BackoffOptions;
  /** Stops the loop (SIGTERM). */
  signal?: AbortSignal;
  /** SIGTERM to SIGKILL for a package's process tree (default 5 s). */
  killGraceMs?: number;
  /** No new work for this long after a reboot was asked for (default REBOOT_PAUSE_MS; 0 with a reboot hook). */
  rebootPauseMs?: number;
  /** Request timeout (default 30 s). */
  timeoutMs?: number;
  /** Wake-on-LAN sending (tests). */
  wake?: { targets?: WakeTarget[]; send?: SendFn };
  /** Wait between package download attempts (default 2 s). */
  downloadRetryMs?: number;
}

interface Session {
  token: string;
  /** Renew after this (ms since the epoch). */
  renewAt: number;
  answer: SessionAnswer;
}

/** Work the agent holds: a new item, or a result to report again. */
type Job = { item: WorkItem; result: WorkResult | null } | { unreadable: number; result: WorkResult };

function jobId(j: Job): number {
  return 'item' in j ? j.item.id : j.unreadable;
}

class Stopped extends Error {}

export class EndpointAgent {
  private readonly o: AgentOptions;
  private readonly log: AgentLog;
  private readonly random: Random;
  private rec: AgentRecord | null = null;
  private key: KeyObject | null = null;
  private client: EndpointClient | null = null;
  private session: Session | null = null;
  private opening: Promise<Session> | null = null;
  private revoked = false;
  private lastState: string | null = null;
  private pollSeconds = DEFAULT_POLL_SECONDS;
  /** Ids the machine holds: markers in runs/ and the item being done. */
  private readonly held = new Set<number>();
  /** Ids seen in this process (not taken twice). */
  private readonly seen = new Set<number>();
  private readonly queue: Job[] = [];
  private wakeWorker: (() => void) | null = null;
  private pausedUntil = 0;
  private runningPid: number | null = null;

  constructor(opts: AgentOptions) {
    this.o = opts;
    this.log = opts.log;
    this.random = opts.random ?? Math.random;
  }

  private get aborted(): boolean {
    return this.o.signal?.aborted === true;
  }

  private async sleep(ms: number): Promise<void> {
    if (ms <= 0) return;
    try {
      await sleepTimer(ms, undefined, this.o.signal ? { signal: this.o.signal } : {});
    } catch {
      throw new Stopped();
    }
  }

  private retryDelay(attempt: number, err: unknown): number {
    const ra = err instanceof RequestError ? err.retryAfterMs : null;
    return retryDelayMs(Math.min(attempt, 30), this.random, ra, this.o.backoff);
  }

  private get capMs(): number {
    return this.o.backoff?.capMs ?? BACKOFF_CAP_MS;
  }

  // ---------------------------------------------------------------- enrolment

  private pinnedClient(server: string): EndpointClient {
    const caPem = this.o.state.readCa();
    if (caPem === null) throw new AgentError('STATE', `${this.o.state.path('ca.pem')} is missing: enrol again (fleetboot-agent enroll --server URL --ca-sha256 HEX)`);
    this.client?.close();
    this.client = new EndpointClient(this.o.timeoutMs === undefined ? { server, caPem } : { server, caPem, timeoutMs: this.o.timeoutMs });
    return this.client;
  }

  /**
   * Load the enrolment, or make one: enrol.json, or a fresh pending enrolment
   * with the same server when the old one was moved aside. Throws AgentError
   * NOT_ENROLLED when there is nothing to enrol with.
   */
  private async loadOrEnrol(): Promise<void> {
    const { state, os } = this.o;
    let rec = state.readAgent();
    let key = rec === null ? null : state.readKey();
    let reEnrolWith: string | null = null;
    if (rec !== null && key === null) {
      this.log.warn('agent.json has no key.pem beside it: enrolling again', { agentId: rec.agentId });
      reEnrolWith = rec.server;
      state.moveAside(new Date());
      rec = null;
    } else if (rec !== null) {
      const now = os.identity();
      if (!sameMachine(rec.identity, now)) {
        this.log.warn('this state directory was enrolled on another machine (a cloned disk?): its key is not used; enrolling again as pending with a fresh key', {
          agentId: rec.agentId,
          enrolledMacs: rec.identity.macs,
          enrolledUuid: rec.identity.smbiosUuid,
          macs: now.macs,
          uuid: now.smbiosUuid,
        });
        reEnrolWith = rec.server;
        state.moveAside(new Date());
        rec = null;
        key = null;
      }
    }
    if (rec === null) {
      const file = state.readEnrolFile();
      if (file !== null) {
        this.log.info('enrolling with enrol.json', { server: file.server, withToken: file.token !== null });
        rec = await enroll({ server: file.server, caSha256: file.caSha256, token: file.token, state, os, log: this.log, ...(this.o.timeoutMs === undefined ? {} : { timeoutMs: this.o.timeoutMs }) });
        state.removeEnrolFile();
      } else if (reEnrolWith !== null) {
        rec = await enrollWithClient(this.pinnedClient(reEnrolWith), state, os, null, this.log);
      } else {
        throw new AgentError('NOT_ENROLLED', `not enrolled (no ${state.path('agent.json')}): run fleetboot-agent enroll --server URL --ca-sha256 HEX first, or write ${state.path('enrol.json')}`);
      }
      key = state.readKey();
    }
    if (key === null) throw new AgentError('STATE', `${state.path('key.pem')} is missing`);
    this.rec = rec;
    this.key = key;
    this.lastState = rec.state;
    this.pinnedClient(rec.server);
  }

  /** 401 IDENTITY_CHANGED / UNKNOWN_AGENT: move the state aside and enrol again, pending. */
  private async reEnrol(why: string): Promise<void> {
    const { state, os } = this.o;
    const server = this.rec?.server;
    if (server === undefined) throw new AgentError('STATE', 'cannot enrol again: no server known');
    this.log.warn('the server does not accept this agent any more: moving its state aside and enrolling again as pending with a fresh key', { why, agentId: this.rec?.agentId ?? null });
    const moved = state.moveAside(new Date());
    this.log.info('moved the old state aside', { moved });
    this.session = null;
    this.held.clear();
    this.queue.length = 0;
    const file = state.readEnrolFile();
    const rec = await enrollWithClient(this.pinnedClient(server), state, os, file?.token ?? null, this.log);
    if (file !== null) state.removeEnrolFile();
    this.rec = rec;
    this.key = state.readKey();
    this.lastState = rec.state;
  }

  // ---------------------------------------------------------------- sessions

  private async openSession(): Promise<Session> {
    const { rec, key, client } = this;
    if (rec === null || key === null || client === null) throw new TypeError('openSession before the enrolment was loaded');
    const nonce = await challenge(client);
    const body = { agentId: rec.agentId, nonce, signature: signB64(key, sessionSigningBytes(nonce, rec.agentId)), identity: this.o.os.identity() };
    const answer = parseSessionAnswer(await client.json('POST', '/session', { body }));
    const lifeMs = answer.expiresInSeconds * 1000;
    const s: Session = { token: answer.session, renewAt: Date.now() + lifeMs - Math.min(60_000, lifeMs / 5), answer };
    this.pollSeconds = answer.pollSeconds;
    if (this.revoked) this.log.info('the server accepts this agent again (no longer revoked)', { agentId: rec.agentId });
    this.revoked = false;
    this.noteState(answer.state, answer.packageKey);
    this.log.info('session opened', { agentId: rec.agentId, state: answer.state, expiresInSeconds: answer.expiresInSeconds, host: answer.host?.name ?? answer.host?.mac ?? null });
    // An enrol.json left while the enrolment was still good is not needed any more.
    if (this.o.state.readEnrolFile() !== null) {
      this.o.state.removeEnrolFile();
      this.log.info('enrol.json removed: this machine is already enrolled', { agentId: rec.agentId });
    }
    return s;
  }

  private noteState(state: 'active' | 'pending', packageKey: string): void {
    const rec = this.rec;
    if (rec === null) return;
    if (state !== this.lastState) {
      this.log.info(state === 'pending' ? 'pending: waiting for an admin to approve this agent' : 'approved: this agent is active', { agentId: rec.agentId });
      this.lastState = state;
    }
    if (rec.state !== state || rec.packageKey !== packageKey) {
      if (rec.packageKey !== packageKey) this.log.warn('the server gave a new package key', { agentId: rec.agentId });
      this.rec = { ...rec, state, packageKey };
      this.o.state.writeAgent(this.rec);
    }
  }

  /** The current session, opened or renewed when needed (one opening at a time). */
  private async bearer(): Promise<string> {
    if (this.session !== null && Date.now() < this.session.renewAt) return this.session.token;
    this.opening ??= this.openSession().finally(() => {
      this.opening = null;
    });
    this.session = await this.opening;
    return this.session.token;
  }

  /** Call with the session; on 401 SESSION_EXPIRED open a new one and call once more. */
  private async withSession<T>(fn: (bearer: string) => Promise<T>): Promise<T> {
    const bearer = await this.bearer();
    try {
      return await fn(bearer);
    } catch (err) {
      if (!(err instanceof RequestError && err.status === 401 && err.code === 'SESSION_EXPIRED')) throw err;
      this.log.info('session expired: opening a new one');
      if (this.session?.token === bearer) this.session = null;
      return fn(await this.bearer());
    }
  }

  /**
   * What to do after a failed exchange with the server: re-enrol, note a
   * revocation, or nothing; returns how long to wait before the next try.
   */
  private async afterError(err: unknown, attempt: number, what: string): Promise<number> {
    if (err instanceof RequestError && err.status === 401) {
      this.session = null;
      if (err.code === 'REVOKED') {
        if (!this.revoked) this.log.error('this agent was revoked by an admin: it does no work; asking again every few minutes (re-enrol with fleetboot-agent enroll to replace it)', { agentId: this.rec?.agentId ?? null });
        this.revoked = true;
        const dropped = this.queue.filter((j) => 'item' in j && j.result === null).length;
        if (dropped > 0) this.log.warn('dropped work not started', { count: dropped });
        for (let i = this.queue.length - 1; i >= 0; i--) {
          const j = this.queue[i] as Job;
          if ('item' in j && j.result === null) this.queue.splice(i, 1);
        }
        if (this.o.once) throw new AgentError('REVOKED', `this agent (${this.rec?.agentId ?? '?'}) was revoked by an admin`);
        return this.capMs;
      }
      if (err.code === 'IDENTITY_CHANGED' || err.code === 'UNKNOWN_AGENT') {
        await this.reEnrol(err.code);
        return 0;
      }
    }
    if (err instanceof RequestError && err.status === 403 && err.code === 'PENDING') return pollDelayMs(this.pollSeconds, this.random);
    const delay = this.retryDelay(attempt, err);
    const level = err instanceof RequestError && err.retryable ? 'warn' : 'error';
    this.log[level](`${what} failed: retrying`, { error: errorText(err), status: err instanceof RequestError ? err.status : null, inMs: delay, attempt: attempt + 1 });
    return delay;
  }

  // ---------------------------------------------------------------- polling

  private runningParam(): string {
    const ids = [...this.held].sort((a, b) => a - b);
    return ids.length ? `running=${ids.join(',')}` : '';
  }

  private async poll(longPoll: boolean): Promise<void> {
    let wait = 0;
    const answer = await this.withSession(async (bearer) => {
      const w = longPoll ? (this.session?.answer.longPollSeconds ?? 0) : 0;
      wait = w;
      const q = [w > 0 ? `wait=${w}` : '', this.runningParam()].filter(Boolean).join('&');
      const client = this.client as EndpointClient;
      return parseWorkAnswer(await client.json('GET', `/work${q ? `?${q}` : ''}`, { bearer, timeoutMs: (this.o.timeoutMs ?? 30_000) + w * 1000 }));
    });
    this.pollSeconds = answer.pollSeconds;
    this.noteState(answer.state, this.rec?.packageKey ?? '');
    for (const d of answer.dropped) this.log.warn('the server sent work without an id: ignored', { error: d });
    let taken = 0;
    for (const item of answer.work) {
      if (this.seen.has(item.id) || this.held.has(item.id)) continue;
      this.remember(item.id);
      this.queue.push({ item, result: null });
      taken++;
      this.log.info('work received', { workId: item.id, kind: item.kind });
    }
    for (const u of answer.unreadable) {
      if (this.seen.has(u.id) || this.held.has(u.id)) continue;
      this.remember(u.id);
      this.log.warn('work refused: it cannot be read', { workId: u.id, error: u.message });
      this.queue.push({ unreadable: u.id, result: resultOf('refused', `the agent cannot read this work item: ${u.message}`) });
      taken++;
    }
    this.log.debug('polled', { work: taken, wait, state: answer.state });
    if (taken > 0) this.wakeWorker?.();
  }

  private remember(id: number): void {
    this.seen.add(id);
    if (this.seen.size > 10_000) {
      const first = this.seen.values().next().value;
      if (first !== undefined) this.seen.delete(first);
    }
  }

  // ---------------------------------------------------------------- work

  /** Markers left by an earlier run: interrupted work and unsent reports. */
  private resumeMarkers(): void {
    const { state } = this.o;
    for (const m of state.markers((p, msg) => this.log.error('unreadable run marker removed', { path: p, error: msg }))) {
      let result = m.result;
      if (result === null) {
        result = resultOf('interrupted', `the machine or the agent stopped while this ${m.item.kind} work ran (started ${m.startedAt}): it is not run again`);
        state.writeMarker({ ...m, result });
        this.log.warn('work was interrupted by a stop of the agent or the machine: reporting it, not running it again', { workId: m.workId, kind: m.item.kind });
      } else {
        this.log.info('a report was not acknowledged before the stop: sending it again', { workId: m.workId, status: result.status });
      }
      this.held.add(m.workId);
      this.remember(m.workId);
      this.queue.push({ item: m.item, result });
    }
  }

  private marker(item: WorkItem, result: WorkResult | null, startedAt: string): void {
    const m: RunMarker = { workId: item.id, item, startedAt, result };
    this.o.state.writeMarker(m);
  }

  /** Do one work item (not a package's report), returning its result. */
  private async doWork(item: WorkItem): Promise<WorkResult> {
    const { os, log } = this.o;
    const startedAt = new Date().toISOString();
    const t0 = Date.now();
    if (item.kind !== 'package') this.marker(item, null, startedAt);
    const took = (): number => Date.now() - t0;
    try {
      switch (item.kind) {
        case 'inventory': {
          const inventory = os.inventory();
          return resultOf('succeeded', `inventory collected: ${inventory.cpu.threads} threads, ${inventory.disks.length} disks, ${inventory.nics.length} NICs`, { inventory, durationMs: took() });
        }
        case 'hostname': {
          const how = await os.setHostname(item.name);
          return resultOf('succeeded', how, { durationMs: took() });
        }
        case 'reboot':
          return resultOf('succeeded', `rebooting: ${item.reason}`, { durationMs: took() });
        case 'wake': {
          const r = await sendWake(item.macs, item.port, item.repeats, this.o.wake?.targets, this.o.wake?.send);
          return resultOf(r.sent > 0 ? 'succeeded' : 'failed', r.message, { durationMs: took() });
        }
        case 'package': {
          const rec = this.rec as AgentRecord;
          return await runPackage(item.id, item.package, {
            runDir: this.o.state.runDirOf(item.id),
            packageKey: rec.packageKey,
            fetchFile: (sha, onChunk) => this.withSession((bearer) => (this.client as EndpointClient).download(`/files/${sha}`, bearer, onChunk)),
            beforeStart: () => this.marker(item, null, startedAt),
            killTree: (pid, grace) => os.killTree(pid, grace),
            onProcess: (pid) => {
              this.runningPid = pid;
            },
            log,
            graceMs: this.o.killGraceMs ?? KILL_GRACE_MS,
            ...(this.o.downloadRetryMs === undefined ? {} : { retryMs: this.o.downloadRetryMs }),
          });
        }
      }
    } catch (err) {
      log.error('work failed', { workId: item.id, kind: item.kind, error: errorText(err) });
      return resultOf('failed', `${item.kind}: ${errorText(err)}`, { durationMs: took() });
    }
  }

  /**
   * Report a result until the server acknowledges it. A 4xx other than 401
   * and 429 means the server will never take it (the work is gone): the
   * report is dropped. In once mode a few tries, then AgentError.
   */
  private async report(id: number, result: WorkResult): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.aborted) throw new Stopped();
      try {
        await this.withSession((bearer) => (this.client as EndpointClient).json('POST', `/work/${id}/result`, { bearer, body: result }));
        this.log.info('work reported', { workId: id, status: result.status, exitCode: result.exitCode, message: result.message });
        return;
      } catch (err) {
        if (err instanceof RequestError && err.status !== null && err.status >= 400 && err.status < 500 && err.status !== 401 && err.status !== 429) {
          this.log.error('the server refused the report: dropped', { workId: id, error: err.message });
          return;
        }
        if (this.o.once && (attempt >= 2 || !(err instanceof RequestError))) throw new AgentError('SERVER', `the report of work ${id} was not accepted: ${errorText(err)} (kept in ${this.o.state.markerPath(id)}: sent again on the next run)`);
        await this.sleep(await this.afterError(err, attempt, `report of work ${id}`));
      }
    }
  }

  /** Do (or re-report) one job: marker, work, result, report, clean-up, and a reboot if asked. */
  private async handle(job: Job): Promise<void> {
    const { state } = this.o;
    const id = jobId(job);
    if (!('item' in job)) {
      await this.report(id, job.result);
      return;
    }
    this.held.add(id);
    let result = job.result;
    if (result === null) {
      this.log.info('work started', { workId: id, kind: job.item.kind });
      result = await this.doWork(job.item);
      // Stopped meanwhile: the marker stays without a result, reported `interrupted` at the next start.
      if (this.aborted) throw new Stopped();
      this.marker(job.item, result, new Date(Date.now() - result.durationMs).toISOString());
    }
    await this.report(id, result);
    state.removeRun(id);
    this.held.delete(id);
    const reboot = job.item.kind === 'reboot' ? job.item.reason : result.rebootRequested ? `package work ${id} asked for a reboot (exit ${result.exitCode ?? '?'})` : null;
    if (reboot !== null && (job.item.kind !== 'reboot' || result.status === 'succeeded')) await this.reboot(reboot);
  }

  private async reboot(reason: string): Promise<void> {
    try {
      await this.o.os.reboot(reason);
      const pause = this.o.rebootPauseMs ?? REBOOT_PAUSE_MS;
      this.pausedUntil = Date.now() + pause;
    } catch (err) {
      this.log.error('reboot failed', { reason, error: errorText(err) });
    }
  }

  private async worker(): Promise<void> {
    for (;;) {
      if (this.aborted) return;
      const job = this.queue.shift();
      if (job === undefined) {
        await new Promise<void>((resolve) => {
          const onAbort = (): void => resolve();
          this.wakeWorker = () => {
            this.o.signal?.removeEventListener('abort', onAbort);
            resolve();
          };
          this.o.signal?.addEventListener('abort', onAbort, { once: true });
        });
        this.wakeWorker = null;
        continue;
      }
      if ('item' in job && job.result === null && (this.revoked || Date.now() < this.pausedUntil)) {
        this.log.warn('work not started: the agent is revoked or rebooting', { workId: job.item.id });
        this.seen.delete(job.item.id);
        continue;
      }
      try {
        await this.handle(job);
      } catch (err) {
        if (err instanceof Stopped) return;
        this.log.error('work handling failed', { workId: jobId(job), error: errorText(err) });
      }
    }
  }

  /** Kill a package that runs while the agent stops (outside systemd, which kills the whole unit). */
  private async stopRunning(): Promise<void> {
    const pid = this.runningPid;
    if (pid === null) return;
    this.log.warn('stopping: killing the running package (it will be reported interrupted)', { pid });
    await this.o.os.killTree(pid, 2000).catch(() => {});
  }

  // ---------------------------------------------------------------- the loops

  async start(): Promise<void> {
    this.o.state.ensure();
    for (let attempt = 0; ; attempt++) {
      try {
        await this.loadOrEnrol();
        return;
      } catch (err) {
        const final = err instanceof AgentError && (err.code === 'NOT_ENROLLED' || err.code === 'STATE' || err.code === 'USAGE');
        if (this.o.once || final) throw err;
        const delay = this.retryDelay(attempt, err);
        this.log.error('enrolment failed: retrying', { error: errorText(err), inMs: delay });
        await this.sleep(delay);
      }
    }
  }

  /** `run --once`: one session, the reports left over, one poll, the work and its reports. */
  async once(): Promise<void> {
    await this.start();
    this.resumeMarkers();
    for (let attempt = 0; ; attempt++) {
      try {
        await this.poll(this.o.longPoll === true);
        break;
      } catch (err) {
        // 401s are acted on (a new session, a new enrolment, or AgentError REVOKED) and the poll made again.
        if (attempt >= 2 || !(err instanceof RequestError && err.status === 401)) throw err;
        await this.afterError(err, attempt, 'poll');
      }
    }
    while (this.queue.length > 0) await this.handle(this.queue.shift() as Job);
  }

  /** `run`: poll and work until the signal aborts. */
  async run(): Promise<void> {
    await this.start();
    this.resumeMarkers();
    const worker = this.worker();
    try {
      await this.sleep(startDelayMs(this.random));
      for (let attempt = 0; !this.aborted; ) {
        let delay: number;
        const longPoll = this.o.longPoll === true && (this.session?.answer.longPollSeconds ?? 1) > 0;
        try {
          await this.poll(longPoll);
          attempt = 0;
          delay = longPoll ? Math.floor(this.random() * LONG_POLL_GAP_MS) : pollDelayMs(this.pollSeconds, this.random);
        } catch (err) {
          if (err instanceof Stopped) break;
          if (err instanceof EndpointProtocolError) this.log.error('the server sent an answer the agent cannot read', { error: err.message });
          delay = await this.afterError(err, attempt, 'poll');
          attempt++;
        }
        await this.sleep(delay);
      }
    } catch (err) {
      if (!(err instanceof Stopped)) throw err;
    } finally {
      this.wakeWorker?.();
      await this.stopRunning();
      await worker.catch(() => {});
      this.client?.close();
    }
  }

  close(): void {
    this.client?.close();
  }
}
