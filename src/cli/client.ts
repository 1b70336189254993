/**
 * The CLI's HTTP client for /api/v1. It finds the server from
 * <dataDir>/server.json (written by `fleetboot serve`) and the token from
 * <dataDir>/api-token, unless --server and --token say otherwise.
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
}

export function defaultDataDir(globals: GlobalOptions): string {
  return resolve(globals.dataDir ?? 'data');
}

async function readJson(file: string): Promise<unknown> {
  return JSON.parse(await readFile(file, 'utf8')) as unknown;
}

export async function connect(globals: GlobalOptions): Promise<ApiClient> {
  const dataDir = defaultDataDir(globals);
  let url = globals.server;
  if (url === null) {
    const file = join(dataDir, 'server.json');
    let info: unknown;
    try {
      info = await readJson(file);
    } catch {
      throw new CliError(`No running server found: ${file} does not exist. Start one with \`fleetboot serve --data-dir ${dataDir}\`, or pass --server URL --token TOKEN`);
    }
    if (typeof info !== 'object' || info === null || !('url' in info) || typeof info.url !== 'string') {
      throw new CliError(`${file} does not say where the server is (no "url")`);
    }
    url = info.url;
  }
  if (!/^https?:\/\//.test(url)) throw new CliError(`--server must be an http:// or https:// URL, got ${JSON.stringify(url)}`);
  let token = globals.token;
  if (token === null) {
    const file = join(dataDir, 'api-token');
    try {
      token = (await readFile(file, 'utf8')).trim();
    } catch {
      throw new CliError(`No API token: cannot read ${file}. Pass --token TOKEN (the server's <dataDir>/api-token) or --data-dir DIR`);
    }
  }
  return makeClient(url.replace(/\/+$/, ''), token);
}

function makeClient(baseUrl: string, token: string): ApiClient {
  async function send<T>(method: string, path: string, init: RequestInit): Promise<T> {
    const target = `${baseUrl}/api/v1${path}`;
    let res: Response;
    try {
      res = await fetch(target, { ...init, method, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string> | undefined) } });
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : err instanceof Error ? err.message : String(err);
      throw new CliError(`Cannot reach the server at ${baseUrl}: ${cause}`);
    }
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
    return body as T;
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
  };
}
