#!/usr/bin/env node
// The `fleetboot-agent` command, the endpoint agent of installed machines:
// runs the compiled agent (npm run build makes dist/). On a machine without
// Node, install the Debian package instead (scripts/build-agent-deb.sh).
import { existsSync } from 'node:fs';
const entry = new URL('../dist/src/endpoint-agent/main.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('fleetboot-agent: not built yet; run `npm run build` (or scripts/install-deps.sh) first');
  process.exit(1);
}
const { runAsProgram } = await import(entry.href);
runAsProgram();
