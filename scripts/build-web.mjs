#!/usr/bin/env node
// Builds the console (web/src) into web/dist with esbuild: one ES module
// entry plus a chunk per page (loaded when the page is first shown),
// minified, file names carrying a content hash (served as immutable), and
// index.html naming the entry and its style sheet. web/dist/meta.json is
// esbuild's metafile: test/console/size.test.ts measures the initial
// JavaScript from it. Type checking is `npm run typecheck` (esbuild strips types).
import { build } from 'esbuild';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const out = join(root, 'web', 'dist');
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });

const r = await build({
  absWorkingDir: root,
  entryPoints: ['web/src/main.tsx'],
  bundle: true,
  splitting: true,
  format: 'esm',
  minify: true,
  sourcemap: false,
  platform: 'browser',
  target: ['chrome100', 'firefox100', 'safari15'],
  outdir: 'web/dist/assets',
  entryNames: '[name]-[hash]',
  chunkNames: 'chunk-[hash]',
  assetNames: '[name]-[hash]',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  tsconfig: 'web/tsconfig.json',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});

let js = null;
let css = null;
for (const [file, o] of Object.entries(r.metafile.outputs)) {
  if (o.entryPoint === 'web/src/main.tsx') {
    js = basename(file);
    if (o.cssBundle) css = basename(o.cssBundle);
  }
}
if (!js) throw new Error('build-web: esbuild named no output for web/src/main.tsx');
writeFileSync(join(out, 'meta.json'), JSON.stringify(r.metafile));
writeFileSync(
  join(out, 'index.html'),
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fleetboot</title>
<link rel="icon" href="data:,">
${css ? `<link rel="stylesheet" href="/ui/assets/${css}">\n` : ''}<script type="module" src="/ui/assets/${js}"></script>
</head>
<body>
<div id="app"></div>
<noscript>The Fleetboot console needs JavaScript. The CLI (fleetboot --help) and the API (/api/docs) work without it.</noscript>
</body>
</html>
`,
);
console.log(`build-web: web/dist (${js}${css ? `, ${css}` : ''})`);
