/**
 * The CLI's HTTP client for /api/v1. It finds the server from
 * <dataDir>/server.json (written by `fleetboot serve`) unless --server says
 * otherwise, and the token from the first of: --token, --token-file FILE,
 * FLEETBOOT_TOKEN, <dataDir>/api-token (see resolveToken).
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import type { GlobalOptions } from './globals.js';

/** A failure to report to the user: printed as "fleetboot: <message>", exit status 1. */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly status: number | null;
  constructor(message: string, status: number | null = null) {
    super(message);
    this.status = status;
  }
}

export interface ApiClient {
  readonly baseUrl: string;
  request<T>(method: string, path: string, body?: unknown): Promise<T>;
  upload<T>(path: string, file: string): Promise<T>;
  /** A GET read as it arrives (the event stream): the response once it is a 2xx, else the API's error. */
  stream(path: string, headers?: Record<string, string>, signal?: AbortSignal): Promise<Response>;
}

export function defaultDataDir(globals: GlobalOptions): string {
  return resolve(globals.dataDir ?? 'data');
}

async function readJson(file: string): Promise<unknown> {
  return JSON.parse(await readFile(file, 'utf8')) as unknown;
}

/** What an errno means for a file the CLI reads. */
function why(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'it does not exist';
  if (code === 'EACCES' || code === 'EPERM') return "permission denied (the data directory and the token are readable by the server's user only: run as that user or root)";
  if (code === 'EISDIR') return 'it is a directory';
  return err instanceof Error ? err.message : String(err);
}

/** Where the token came from (for messages and tests). */
export type TokenSource = '--token' | '--token-file' | 'FLEETBOOT_TOKEN' | 'data-dir';

function checkToken(token: string, from: string): string {
  if (token === '') throw new CliError(`The API token from ${from} is empty`);
  if (/\s/.test(token)) throw new CliError(`The API token from ${from} must be one word (the token only): it holds white space`);
  return token;
}

/**
 * The API token: --token, else --token-file FILE (which must exist and hold
 * the token), else FLEETBOOT_TOKEN, else <dataDir>/api-token.
 */
export async function resolveToken(globals: GlobalOptions, dataDir: string): Promise<{ token: string; source: TokenSource }> {
  if (globals.token !== null) return { token: checkToken(globals.token, '--token'), source: '--token' };
  if (globals.tokenFile !== null) {
    const file = resolve(globals.tokenFile);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new CliError(`Cannot read the API token file ${file} (--token-file): ${why(err)}`);
    }
    return { token: checkToken(text.trim(), `the file ${file} (--token-file)`), source: '--token-file' };
  }
  if (globals.envToken !== null) return { token: checkToken(globals.envToken, 'FLEETBOOT_TOKEN'), source: 'FLEETBOOT_TOKEN' };
  const file = join(dataDir, 'api-token');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(`No API token: cannot read ${file}: ${why(err)}. Pass --token-file FILE, set FLEETBOOT_TOKEN, or --data-dir DIR (the server's data directory)`);
  }
  return { token: checkToken(text.trim(), file), source: 'data-dir' };
}

export async function connect(globals: GlobalOptions): Promise<ApiClient> {
  const dataDir = defaultDataDir(globals);
  let url = globals.server;
  if (url === null) {
    const file = join(dataDir, 'server.json');
    let info: unknown;
    try {
      info = await readJson(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new CliError(`No running server found: ${file} does not exist. Start one with \`fleetboot serve --data-dir ${dataDir}\`, or pass --server URL and --token-file FILE`);
      }
      throw new CliError(`Cannot read ${file}: ${why(err)}. Or pass --server URL and --token-file FILE`);
    }
    if (typeof info !== 'object' || info === null || !('url' in info) || typeof info.url !== 'string') {
      throw new CliError(`${file} does not say where the server is (no "url")`);
    }
    url = info.url;
  }
  if (!/^https?:\/\//.test(url)) throw new CliError(`--server must be an http:// or https:// URL, got ${JSON.stringify(url)}`);
  const { token } = await resolveToken(globals, dataDir);
  return makeClient(url.replace(/\/+$/, ''), token);
}

function makeClient(baseUrl: string, token: string): ApiClient {
  async function call(method: string, path: string, init: RequestInit): Promise<Response> {
    const target = `${baseUrl}/api/v1${path}`;
    try {
      return await fetch(target, { ...init, method, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string> | undefined) } });
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : err instanceof Error ? err.message : String(err);
      throw new CliError(`Cannot reach the server at ${baseUrl}: ${cause}`);
    }
  }
  /** The body as JSON (or text), and the API's error message as a CliError for a status that is not 2xx. */
  async function answer(res: Response): Promise<unknown> {
    const text = await res.text();
    let body: unknown = null;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    if (!res.ok) {
      const msg = typeof body === 'object' && body !== null && 'message' in body && typeof body.message === 'string' ? body.message : `HTTP ${res.status}`;
      throw new CliError(res.status === 401 ? `${msg}` : `${msg} (HTTP ${res.status})`, res.status);
    }
    return body;
  }
  async function send<T>(method: string, path: string, init: RequestInit): Promise<T> {
    return (await answer(await call(method, path, init))) as T;
  }
  return {
    baseUrl,
    request<T>(method: string, path: string, body?: unknown): Promise<T> {
      return send<T>(method, path, body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    },
    async upload<T>(path: string, file: string): Promise<T> {
      const st = await stat(file);
      const stream = Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>;
      return send<T>('PUT', path, {
        body: stream,
        duplex: 'half',
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(st.size) },
      } as RequestInit);
    },
    async stream(path: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
      const res = await call('GET', path, { headers, ...(signal ? { signal } : {}) });
      if (!res.ok) await answer(res);
      return res;
    },
  };
}
