#!/usr/bin/env node
// The `fleetboot` command: runs the compiled CLI (npm run build makes dist/).
import { existsSync } from 'node:fs';
const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('fleetboot: not built yet; run `npm run build` (or scripts/install-deps.sh) first');
  process.exit(1);
}
await import(entry.href);
