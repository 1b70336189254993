/**
 * For tests and benchmarks: a throwaway PostgreSQL (Debian's postgresql-15,
 * installed by scripts/install-deps.sh --with-test), run by the test itself.
 * - `startPostgres()`: initdb into a new directory (C locale, UTF8, trust
 *   auth) and start `postgres` as the `postgres` user, on a Unix socket in
 *   that directory and, when asked, on a TCP address (inside a network
 *   namespace with `netns`). `stop()` kills it and removes the directory.
 * - `testPostgres()`: the one shared by a test run. scripts/run-tests.mjs
 *   starts it and passes its socket directory in FLEETBOOT_TEST_PG; a test
 *   file run alone starts its own, stopped when the process exits.
 * - `createTestDatabase()`: a new empty database on it, as a URL.
 * PostgreSQL refuses to run as root, hence `runuser -u postgres` (initdb)
 * and `setpriv` (the server: it execs, so the child's pid is postgres's); without
 * root or without the binaries, `postgresUnavailable()` says why, and tests
 * that need it fail with that reason (the test command installs both).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, chownSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { program, resolveArgv, type Argv } from '../lib/programs.js';

export const PG_BIN = '/usr/lib/postgresql/15/bin';
export const TEST_PG_ENV = 'FLEETBOOT_TEST_PG';
/** 'postgres': tests that open a store through openTestStore() use a new PostgreSQL database. */
export const TEST_STORE_ENV = 'FLEETBOOT_TEST_STORE';

export interface PostgresServer {
  /** The directory holding the data and the socket. */
  readonly dir: string;
  readonly socketDir: string;
  /** The TCP address it listens on, or null (socket only). */
  readonly host: string | null;
  readonly port: number;
  readonly process: ChildProcess | null;
  /** A URL for database `name` (over TCP when `tcp` and there is an address, else the socket). */
  url(name: string, o?: { tcp?: boolean }): string;
  stop(): Promise<void>;
}

/** Why a PostgreSQL cannot be started here, or null. */
export function postgresUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'starting PostgreSQL for tests needs root (it runs as the postgres user)';
  if (!existsSync(join(PG_BIN, 'postgres'))) return `${PG_BIN}/postgres is missing: run scripts/install-deps.sh --with-test (postgresql-15)`;
  if (spawnSync(program('id'), ['-u', 'postgres']).status !== 0) return 'there is no postgres user: run scripts/install-deps.sh --with-test';
  return null;
}

function socketUrl(socketDir: string, port: number, name: string): string {
  return `postgres:///${encodeURIComponent(name)}?host=${encodeURIComponent(socketDir)}&port=${port}&user=postgres`;
}

export interface StartPostgresOptions {
  /** Listen on this IPv4 address too (default: the socket only). */
  host?: string;
  port?: number;
  /** Run inside this network namespace (ip netns exec). */
  netns?: string;
  /** fsync, synchronous commits and full-page writes on, as in production (benchmarks); off by default: a test's database need not survive a power loss. */
  fsync?: boolean;
  /** Override synchronous_commit (default: as fsync); off keeps fsync but a commit no longer waits for its WAL flush. */
  synchronousCommit?: boolean;
  maxConnections?: number;
  /** Also accept (trust) TCP clients from this network, e.g. "10.215.0.0/24" (a lab's servers). */
  allowFrom?: string;
  /** Pin the server and every process it forks to these CPUs (taskset -c, e.g. "0"; benchmarks). */
  cpus?: string;
  /** Make the data directory under this directory (default: the system's temporary directory). */
  parentDir?: string;
}

export async function startPostgres(o: StartPostgresOptions = {}): Promise<PostgresServer> {
  const why = postgresUnavailable();
  if (why) throw new Error(why);
  if (o.cpus !== undefined && !/^\d+([-,]\d+)*$/.test(o.cpus)) throw new TypeError(`cpus must be a CPU list such as "0" or "0-1": ${o.cpus}`);
  const dir = mkdtempSync(join(o.parentDir ?? tmpdir(), 'fleetboot-pg-'));
  const uid = Number(spawnSync(program('id'), ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync(program('id'), ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  chownSync(dir, uid, gid);
  const data = join(dir, 'data');
  const init = spawnSync(program('runuser'), ['-u', 'postgres', '--', join(PG_BIN, 'initdb'), '-D', data, '-A', 'trust', '--locale=C', '-E', 'UTF8', '--no-sync'], { encoding: 'utf8' });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  }
  if (o.allowFrom) {
    if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(o.allowFrom)) throw new TypeError(`allowFrom must be an IPv4 network (a.b.c.d/n): ${o.allowFrom}`);
    appendFileSync(join(data, 'pg_hba.conf'), `host all all ${o.allowFrom} trust\n`);
  }
  const port = o.port ?? 5432;
  const args = [
    // setpriv execs postgres (runuser would stay its parent, and killing runuser orphans postgres).
    '--reuid=postgres', '--regid=postgres', '--init-groups', '--', join(PG_BIN, 'postgres'), '-D', data,
    '-c', `listen_addresses=${o.host ?? ''}`, '-c', `port=${port}`, '-k', dir,
    '-c', `fsync=${o.fsync ? 'on' : 'off'}`, '-c', `synchronous_commit=${(o.synchronousCommit ?? o.fsync) ? 'on' : 'off'}`, '-c', `full_page_writes=${o.fsync ? 'on' : 'off'}`,
    '-c', `max_connections=${o.maxConnections ?? 200}`, '-c', 'shared_buffers=64MB',
  ];
  // Its log goes to a file, so no pipe keeps the test process alive.
  const logFile = join(dir, 'postgres.log');
  const logFd = openSync(logFile, 'a');
  const stdio: ['ignore', number, number] = ['ignore', logFd, logFd];
  // taskset execs too: the child's pid stays postgres's, and the processes it forks inherit the CPUs.
  const pinned: Argv = o.cpus !== undefined ? ['taskset', '-c', o.cpus, program('setpriv'), ...args] : ['setpriv', ...args];
  const child = o.netns ? spawn(program('ip'), ['netns', 'exec', o.netns, ...resolveArgv(pinned)], { stdio }) : spawn(program(pinned[0]), pinned.slice(1), { stdio });
  closeSync(logFd);
  child.unref();
  const log = (): string => {
    try {
      return readFileSync(logFile, 'utf8').slice(-2000);
    } catch {
      return '';
    }
  };
  const stopped = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const server: PostgresServer = {
    dir,
    socketDir: dir,
    host: o.host ?? null,
    port,
    process: child,
    url(name, u = {}) {
      if (u.tcp && o.host) return `postgres://postgres@${o.host}:${port}/${encodeURIComponent(name)}`;
      return socketUrl(dir, port, name);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT'); // fast shutdown
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await stopped;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  // Ready when a connection on the socket works.
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`postgres exited at start (${child.exitCode}): ${log()}`);
    }
    const c = new pg.Client({ connectionString: socketUrl(dir, port, 'postgres') });
    try {
      await c.connect();
      await c.query('select 1');
      await c.end();
      break;
    } catch {
      await c.end().catch(() => {});
      if (Date.now() > deadline) {
        await server.stop();
        throw new Error(`postgres did not accept connections within 30 s: ${log()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return server;
}

let shared: Promise<PostgresServer> | null = null;

/** The test run's PostgreSQL (see the header). */
export function testPostgres(): Promise<PostgresServer> {
  if (shared) return shared;
  const socketDir = process.env[TEST_PG_ENV];
  if (socketDir) {
    const port = 5432;
    shared = Promise.resolve({
      dir: socketDir,
      socketDir,
      host: null,
      port,
      process: null,
      url: (name: string) => socketUrl(socketDir, port, name),
      async stop() {},
    });
  } else {
    shared = startPostgres().then((s) => {
      // A file run alone: stop it when the test process ends, also by a signal
      // (the postgres child is detached from the event loop and would outlive it).
      const stop = (): void => {
        s.process?.kill('SIGKILL');
        rmSync(s.dir, { recursive: true, force: true });
      };
      process.once('exit', stop);
      for (const sig of ['SIGINT', 'SIGTERM'] as const) {
        process.once(sig, () => {
          stop();
          process.kill(process.pid, sig);
        });
      }
      return s;
    });
  }
  return shared;
}

/** A new, empty database (C collation) on `server` (default: the test run's), as a URL. */
export async function createTestDatabase(server?: PostgresServer): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const s = server ?? (await testPostgres());
  const name = `fb_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: s.url('postgres') });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'`);
  } finally {
    await admin.end();
  }
  return {
    url: s.url(name),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: s.url('postgres') });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
