#!/usr/bin/env node
// Runs the test suite with node's test runner: unit tests beside the code
// (src/**/*.test.ts), then integration and lab tests (test/**/*.test.ts).
// `--unit` runs only the unit tests. Extra arguments are file filters.
//
// The store is tested on both databases: the files that open their store
// through openTestStore()/withTempStore()/testDatabaseUrl() (src/store/temp-store.ts)
// run a second time with FLEETBOOT_TEST_STORE=postgres, on a PostgreSQL this
// script starts (scripts/test-postgres.ts) and stops. `--sqlite-only` skips
// that pass; without root or PostgreSQL's binaries it fails with the reason
// (scripts/install-deps.sh --with-test installs them).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const sqliteOnly = args.includes('--sqlite-only');
const filters = args.filter((a) => !a.startsWith('--'));

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const dirs = unitOnly ? ['src'] : ['src', 'test'];
let files = dirs.flatMap((d) => walk(join(root, d))).map((p) => relative(root, p)).sort();
if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}
const STORE_USERS = /\b(openTestStore|withTempStore|testDatabaseUrl)\(/;
// Not again on PostgreSQL: the CLI's tests drive the same API (tested on both stores)
// through its client, and the agent's loop-device tests spend their time in partclone
// (a capture and deploys through a server on PostgreSQL run in test/replication.lab).
// Together they would add about 3 minutes to the run and nothing the API tests lack.
const SQLITE_ONCE = /^test\/(lab\/|cli-|agent-)/;
const pgFiles = sqliteOnly ? [] : files.filter((f) => !SQLITE_ONCE.test(f) && f !== 'src/store/temp-store.ts' && STORE_USERS.test(readFileSync(join(root, f), 'utf8')));

/** The test run's PostgreSQL: its socket directory, and how to stop it. */
async function startPostgres() {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/test-postgres.ts'], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise((resolve) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', () => resolve(null));
  });
  if (!line) throw new Error('run-tests: the test PostgreSQL did not start (see above)');
  return { socketDir: line, stop: () => new Promise((resolve) => { child.once('exit', resolve); child.stdin.end(); }) };
}

let pg = null;
if (pgFiles.length > 0) {
  try {
    pg = await startPostgres();
  } catch (err) {
    console.error(String(err));
    process.exit(1);
  }
}
const env = { ...process.env, ...(pg ? { FLEETBOOT_TEST_PG: pg.socketDir } : {}) };

// One file at a time: lab tests own network namespaces and CPU-heavy QEMU guests.
const run = (list, extraEnv) =>
  spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...list], {
    cwd: root,
    stdio: 'inherit',
    env: { ...env, ...extraEnv },
  }).status ?? 1;
let status = run(files, {});
if (pgFiles.length > 0) {
  console.log(`\n# the store on PostgreSQL: ${pgFiles.length} files again with FLEETBOOT_TEST_STORE=postgres\n`);
  const s = run(pgFiles, { FLEETBOOT_TEST_STORE: 'postgres' });
  if (status === 0) status = s;
}
await pg?.stop();
process.exit(status);
