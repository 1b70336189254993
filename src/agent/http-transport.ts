/**
 * The HTTP transport: the agent side of src/imaging/protocol.ts, on
 * node:http/node:https (streams with back-pressure, Range, no dependency).
 *
 * Retries: network errors, 5xx and 429 are retried with exponential backoff
 * (Retry-After honoured) for up to `timeoutSeconds` counted from the first
 * failure in a row; 409 means the task is no longer active (cancelled): a
 * CancelledError; any other 4xx is final.
 *
 * Downloads (getStream) resume after a cut connection with `Range: bytes=N-`
 * and hand the caller one continuous stream. Uploads (putStream) cannot be
 * retried here: the body is a pipe from partclone/zstd that cannot be
 * rewound, so a failed upload rejects with a retryable TransportError and
 * the capture restarts that partition's stream from the start.
 *
 * Streams node (issue 15, nearest node): when the task names one
 * (TaskSpec.streamsUrl, `useStreamsUrl`), getStream reads from it with the
 * same token; everything else stays on the control server. When the
 * streams node fails (a final 4xx other than 409, or network errors/5xx for
 * `streamsFallbackSeconds`), the download goes on from the control server,
 * at the byte it had reached, and so does the rest of the deploy.
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { AGENT_PREFIX, type CompleteBody, type HardwareIdentity, type FailBody, type ProgressAnswer, type ProgressReport, type SlotAnswer, type StreamReceipt, type TaskSpec, type TaskState } from '../imaging/protocol.js';
import { CancelledError, TransportError, errorMessage } from './errors.js';
import type { Transport } from './transport.js';

export interface HttpTransportOptions {
  /** Server base URL (http://10.0.0.1:8080); the protocol's paths are appended. */
  url: string;
  token: string;
  /** How long to keep retrying an unreachable server (TaskSpec.agentTimeoutSeconds; settable later). */
  timeoutSeconds?: number;
  /** First backoff delay (doubles up to maxDelayMs). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Socket idle timeout: a stalled connection counts as a network error. */
  idleTimeoutMs?: number;
  /** How long a failing streams node is retried before the control server takes over (default 30). */
  streamsFallbackSeconds?: number;
  log?: (msg: string) => void;
}

interface Retry {
  firstFailure: number | null;
  attempt: number;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function readBody(res: IncomingMessage, limit = 1 << 20): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of res) {
    const b = chunk as Buffer;
    n += b.length;
    if (n > limit) throw new TransportError('server answer too large', { retryable: false });
    parts.push(b);
  }
  return Buffer.concat(parts).toString('utf8');
}

function errorText(status: number, body: string): string {
  try {
    const j: unknown = JSON.parse(body);
    if (isObj(j) && typeof j['message'] === 'string') return `${status} ${typeof j['error'] === 'string' ? j['error'] + ': ' : ''}${j['message']}`;
  } catch {
    /* not JSON */
  }
  return `${status} ${body.slice(0, 200).trim()}`;
}

export class HttpTransport implements Transport {
  private readonly base: URL;
  private readonly token: string;
  timeoutSeconds: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly idleTimeoutMs: number;
  private readonly log: (msg: string) => void;
  private readonly streamsFallbackSeconds: number;
  /** Where stream GETs go (TaskSpec.streamsUrl), or null: the control server. */
  private streamsBase: URL | null = null;

  constructor(opts: HttpTransportOptions) {
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw new TypeError(`server URL ${JSON.stringify(opts.url)} is not a URL`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`server URL ${opts.url} must be http:// or https://`);
    if (!u.pathname.endsWith('/')) u.pathname += '/';
    this.base = u;
    this.token = opts.token;
    this.timeoutSeconds = opts.timeoutSeconds ?? 300;
    this.baseDelayMs = opts.baseDelayMs ?? 1000;
    this.maxDelayMs = opts.maxDelayMs ?? 15_000;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
    this.log = opts.log ?? (() => undefined);
    this.streamsFallbackSeconds = opts.streamsFallbackSeconds ?? 30;
  }

  /**
   * Read deploy streams from `url` (TaskSpec.streamsUrl); null, undefined or
   * the control server's own URL: from the control server. A URL that is not
   * http(s) is ignored with a log line (the control server still answers).
   */
  useStreamsUrl(url: string | null | undefined): void {
    this.streamsBase = null;
    if (url === null || url === undefined) return;
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      this.log(`the task's streams URL ${JSON.stringify(url)} is not a URL: streams come from ${this.base.origin}`);
      return;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      this.log(`the task's streams URL ${url} is not http:// or https://: streams come from ${this.base.origin}`);
      return;
    }
    if (!u.pathname.endsWith('/')) u.pathname += '/';
    if (u.href === this.base.href) return;
    this.streamsBase = u;
    this.log(`streams come from ${u.origin} (the node nearest to this machine holding the image)`);
  }

  /** The base URL stream GETs go to now. */
  get streamsOrigin(): string {
    return (this.streamsBase ?? this.base).origin;
  }

  private urlOf(path: string, base: URL = this.base): URL {
    return new URL(`${AGENT_PREFIX.slice(1)}${path}`, base);
  }

  /** One request; resolves when the response headers arrive. Network trouble -> retryable TransportError. */
  private send(method: string, path: string, headers: OutgoingHttpHeaders, body: Buffer | Readable | null, signal?: AbortSignal, base: URL = this.base): Promise<IncomingMessage> {
    const url = this.urlOf(path, base);
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      let settled = false;
      const req = mod.request(url, { method, headers: { authorization: `Bearer ${this.token}`, ...headers }, signal, timeout: this.idleTimeoutMs });
      req.on('timeout', () => req.destroy(new Error(`no data for ${this.idleTimeoutMs / 1000} s`)));
      req.on('error', (e) => {
        if (settled) return;
        settled = true;
        if (signal?.aborted) reject(signal.reason instanceof Error ? signal.reason : new CancelledError('aborted'));
        else reject(new TransportError(`${method} ${url.pathname}: ${errorMessage(e)}`, { retryable: true, cause: e }));
      });
      req.on('response', (res) => {
        settled = true;
        res.setTimeout(this.idleTimeoutMs, () => res.destroy(new Error(`no data for ${this.idleTimeoutMs / 1000} s`)));
        resolve(res);
      });
      if (body === null) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else {
        body.on('error', (e) => req.destroy(e));
        body.pipe(req);
      }
    });
  }

  /** Wait before the next attempt, or throw `err` when the retry window is spent. */
  private async backoff(state: Retry, err: TransportError, retryAfterSeconds: number | null, signal?: AbortSignal): Promise<void> {
    const now = Date.now();
    state.firstFailure ??= now;
    const left = state.firstFailure + this.timeoutSeconds * 1000 - now;
    if (left <= 0) throw new TransportError(`${err.message} (gave up after ${this.timeoutSeconds} s of retries)`, { status: err.status, retryable: true, cause: err });
    const delay = Math.min(left, retryAfterSeconds !== null ? retryAfterSeconds * 1000 : Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** state.attempt));
    state.attempt++;
    this.log(`${err.message}; retrying in ${(delay / 1000).toFixed(1)} s`);
    await sleep(delay, undefined, signal ? { signal } : undefined);
  }

  private static retryAfter(res: IncomingMessage): number | null {
    const v = res.headers['retry-after'];
    const n = typeof v === 'string' ? Number(v) : NaN;
    return Number.isFinite(n) && n >= 0 ? Math.min(n, 300) : null;
  }

  /** A JSON request with retries. */
  private async json(method: string, path: string, payload: unknown): Promise<unknown> {
    const state: Retry = { firstFailure: null, attempt: 0 };
    const body = payload === undefined ? null : Buffer.from(JSON.stringify(payload));
    const headers: OutgoingHttpHeaders = body ? { 'content-type': 'application/json', 'content-length': body.length } : {};
    for (;;) {
      let res: IncomingMessage;
      try {
        res = await this.send(method, path, headers, body);
      } catch (e) {
        if (e instanceof TransportError && e.retryable) {
          await this.backoff(state, e, null);
          continue;
        }
        throw e;
      }
      let text: string;
      try {
        text = await readBody(res);
      } catch (e) {
        if (e instanceof TransportError) throw e;
        await this.backoff(state, new TransportError(`${method} ${path}: ${errorMessage(e)}`, { retryable: true }), null);
        continue;
      }
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) {
        try {
          return text ? (JSON.parse(text) as unknown) : null;
        } catch {
          throw new TransportError(`${method} ${path}: the server's answer is not JSON`, { status, retryable: false });
        }
      }
      this.checkFinal(method, path, status, text);
      await this.backoff(state, new TransportError(`${method} ${path}: ${errorText(status, text)}`, { status, retryable: true }), HttpTransport.retryAfter(res));
    }
  }

  /** Throws for a final status (409 -> CancelledError, other 4xx but 429); returns for a retryable one. */
  private checkFinal(method: string, path: string, status: number, text: string): void {
    if (status === 409) throw new CancelledError(`the task is no longer active on the server (${errorText(status, text)})`);
    if (status === 401) throw new TransportError(`${method} ${path}: the server refused the task token (${errorText(status, text)})`, { status, retryable: false });
    if (status < 500 && status !== 429) throw new TransportError(`${method} ${path}: ${errorText(status, text)}`, { status, retryable: false });
  }

  async task(): Promise<TaskSpec> {
    const t = await this.json('GET', '/task', undefined);
    if (!isObj(t) || typeof t['id'] !== 'number' || typeof t['type'] !== 'string') throw new TransportError('GET /task: the answer is not a task', { retryable: false });
    return t as unknown as TaskSpec;
  }

  async progress(report: ProgressReport): Promise<TaskState> {
    const a = await this.json('POST', '/task/progress', report);
    const state = isObj(a) ? (a as Partial<ProgressAnswer>).state : undefined;
    return typeof state === 'string' ? state : 'running';
  }

  async slot(): Promise<SlotAnswer> {
    const a = await this.json('POST', '/task/slot', {});
    if (!isObj(a) || typeof a['granted'] !== 'boolean') throw new TransportError('POST /task/slot: unexpected answer', { retryable: false });
    if (a['granted']) return { granted: true };
    const pos = typeof a['position'] === 'number' ? a['position'] : 0;
    const ra = typeof a['retryAfterSeconds'] === 'number' ? a['retryAfterSeconds'] : 5;
    return { granted: false, position: pos, retryAfterSeconds: ra };
  }

  async identify(identity: HardwareIdentity): Promise<void> {
    await this.json('POST', '/task/identity', identity);
  }

  async complete(body: CompleteBody): Promise<void> {
    await this.json('POST', '/task/complete', body);
  }

  async fail(body: FailBody): Promise<void> {
    await this.json('POST', '/task/fail', body);
  }

  async putStream(file: string, body: Readable, signal: AbortSignal): Promise<StreamReceipt> {
    const path = `/task/streams/${encodeURIComponent(file)}`;
    const res = await this.send('PUT', path, { 'content-type': 'application/octet-stream' }, body, signal);
    let text: string;
    try {
      text = await readBody(res);
    } catch (e) {
      throw new TransportError(`PUT ${path}: ${errorMessage(e)}`, { retryable: true, cause: e });
    }
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) {
      let r: unknown;
      try {
        r = JSON.parse(text);
      } catch {
        throw new TransportError(`PUT ${path}: the receipt is not JSON`, { status, retryable: false });
      }
      if (!isObj(r) || typeof r['bytes'] !== 'number' || typeof r['sha256'] !== 'string') throw new TransportError(`PUT ${path}: the receipt lacks bytes/sha256`, { status, retryable: false });
      return { file: typeof r['file'] === 'string' ? r['file'] : file, bytes: r['bytes'], sha256: r['sha256'] };
    }
    this.checkFinal('PUT', path, status, text);
    throw new TransportError(`PUT ${path}: ${errorText(status, text)}`, { status, retryable: true });
  }

  async getStream(file: string, offset: number, signal: AbortSignal): Promise<Readable> {
    const path = `/task/image/${encodeURIComponent(file)}`;
    const self = this;
    async function* chunks(): AsyncGenerator<Buffer> {
      const state: Retry = { firstFailure: null, attempt: 0 };
      let pos = offset;
      let total: number | null = null;
      let base = self.streamsBase ?? self.base;
      /** Leave a failing streams node for the control server (for the rest of the deploy); false when already there. */
      const fallBack = (why: string): boolean => {
        if (base === self.base) return false;
        self.log(`GET ${path} from ${base.origin}: ${why}; going on from ${self.base.origin} at byte ${pos}`);
        base = self.base;
        self.streamsBase = null;
        state.firstFailure = null;
        state.attempt = 0;
        return true;
      };
      const retry = async (err: TransportError, retryAfter: number | null): Promise<void> => {
        if (base !== self.base) {
          state.firstFailure ??= Date.now();
          if (Date.now() - state.firstFailure >= Math.min(self.streamsFallbackSeconds, self.timeoutSeconds) * 1000 && fallBack(err.message)) return;
        }
        await self.backoff(state, err, retryAfter, signal);
      };
      for (;;) {
        let res: IncomingMessage;
        try {
          res = await self.send('GET', path, pos > 0 ? { range: `bytes=${pos}-` } : {}, null, signal, base);
        } catch (e) {
          if (e instanceof TransportError && e.retryable) {
            await retry(e, null);
            continue;
          }
          throw e;
        }
        const status = res.statusCode ?? 0;
        let skip = 0;
        if (status === 206) {
          const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
          if (!m || Number(m[1]) !== pos) throw new TransportError(`GET ${path}: Content-Range ${String(res.headers['content-range'])} does not start at ${pos}`, { status, retryable: false });
          if (m[3] !== '*') total = Number(m[3]);
        } else if (status === 200) {
          // A server that ignores Range sends it all again: skip what we have.
          skip = pos;
          const len = Number(res.headers['content-length']);
          if (Number.isFinite(len)) total = len;
        } else if (status === 416 && total !== null && pos >= total) {
          res.resume();
          return;
        } else {
          const text = await readBody(res).catch(() => '');
          try {
            self.checkFinal('GET', path, status, text);
          } catch (e) {
            // A streams node that refuses (its copy went corrupt, 404; the token, 401/403): the control server decides.
            if (!(e instanceof CancelledError) && fallBack(errorMessage(e))) continue;
            throw e;
          }
          await retry(new TransportError(`GET ${path}: ${errorText(status, text)}`, { status, retryable: true }), HttpTransport.retryAfter(res));
          continue;
        }
        try {
          for await (const c of res) {
            let chunk = c as Buffer;
            if (skip > 0) {
              if (chunk.length <= skip) {
                skip -= chunk.length;
                continue;
              }
              chunk = chunk.subarray(skip);
              skip = 0;
            }
            pos += chunk.length;
            state.firstFailure = null;
            state.attempt = 0;
            yield chunk;
          }
        } catch (e) {
          if (signal.aborted) throw e;
          await retry(new TransportError(`GET ${path}: connection cut at byte ${pos}: ${errorMessage(e)}`, { retryable: true }), null);
          continue;
        }
        if (total === null || pos >= total) return;
        await retry(new TransportError(`GET ${path}: connection ended at byte ${pos} of ${total}`, { retryable: true }), null);
      }
    }
    return Readable.from(chunks(), { objectMode: false, highWaterMark: 1 << 20 });
  }
}
