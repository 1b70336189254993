#!/usr/bin/env node
// Runs the test suite with node's test runner: unit tests beside the code
// (src/**/*.test.ts), then integration and lab tests (test/**/*.test.ts).
// `--unit` runs only the unit tests. Extra arguments are file filters.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
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
// One file at a time: lab tests own network namespaces and CPU-heavy QEMU guests.
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
