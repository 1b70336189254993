/**
 * The console's first load stays small: the entry module, every chunk it
 * imports statically and its style sheet, gzipped, under 100 KB. Pages
 * are lazy chunks and do not count. Reads what `npm run build` made
 * (web/dist/meta.json, esbuild's metafile).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const ROOT = new URL('../..', import.meta.url).pathname;
const LIMIT = 100 * 1024;

interface Meta {
  outputs: Record<string, { entryPoint?: string; imports: Array<{ path: string; kind: string }>; cssBundle?: string; bytes: number }>;
}

test('the console loads under 100 KB of gzipped JavaScript and CSS at first', () => {
  const metaFile = join(ROOT, 'web', 'dist', 'meta.json');
  assert.ok(existsSync(metaFile), `${metaFile} is missing: run npm run build (scripts/build-web.mjs)`);
  const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as Meta;
  const entry = Object.keys(meta.outputs).find((k) => meta.outputs[k]?.entryPoint === 'web/src/main.tsx');
  assert.ok(entry, 'the metafile names the entry web/src/main.tsx');
  const initial = new Set<string>();
  const visit = (file: string): void => {
    if (initial.has(file)) return;
    initial.add(file);
    const out = meta.outputs[file];
    assert.ok(out, `the metafile lists ${file}`);
    if (out.cssBundle) initial.add(out.cssBundle);
    for (const i of out.imports) if (i.kind === 'import-statement') visit(i.path);
  };
  visit(entry);
  const sizes = [...initial].map((f) => ({ f, gz: gzipSync(readFileSync(join(ROOT, f)), { level: 9 }).length }));
  const total = sizes.reduce((a, s) => a + s.gz, 0);
  console.log(`console first load: ${sizes.map((s) => `${s.f.split('/').pop()} ${s.gz} B`).join(', ')}; total ${total} B gzipped`);
  assert.ok(total < LIMIT, `the first load is ${total} bytes gzipped, over ${LIMIT}`);
  // The pages are not in it: a lazy chunk per page.
  const later = Object.keys(meta.outputs).filter((f) => !initial.has(f) && f.endsWith('.js'));
  assert.ok(later.length >= 10, `the pages are chunks loaded when shown: ${later.length} such chunks`);
});
