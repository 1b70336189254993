/**
 * The layers read one way (README "Layout"): each folder below may import
 * only the folders listed for it (and node: / npm packages). A new import
 * that runs back up fails here, naming the file and the import.
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const SRC = new URL('.', import.meta.url).pathname;

/** folder -> the folders of src/ it may import from. */
const ALLOWED: Record<string, readonly string[]> = {
  protocol: ['protocol'],
  lib: ['lib'],
  model: ['model', 'lib'],
  store: ['store', 'model', 'lib'],
  boot: ['boot', 'model', 'lib', 'protocol'],
  // The agent bundle carries no server code: the multicast receiver and its sockets are shared with the server's sender, not part of it.
  agent: ['agent', 'model', 'lib', 'imaging/protocol.ts', 'protocol', 'net/udp.ts', 'net/mcast-udp.ts', 'multicast/receiver.ts'],
  // The endpoint agent (fleetboot-agent) is bundled alone: no server code, node's standard library only.
  'endpoint-agent': ['endpoint-agent', 'model', 'lib', 'protocol', 'agent/inventory.ts'],
  // Services: decisions and timing over the store; sockets only through net/'s small interfaces.
  schedule: ['schedule', 'model', 'lib', 'store', 'imaging/submit.ts'],
  // Credentials, logins and sessions over the store; HTTP is src/http/auth.ts's business.
  auth: ['auth', 'model', 'lib', 'store'],
  multicast: ['multicast', 'model', 'lib', 'protocol', 'net/udp.ts', 'net/mcast-udp.ts', 'store', 'config', 'dhcp/subnets.ts', 'imaging/protocol.ts', 'imaging/image-store.ts'],
  wake: ['wake', 'model', 'lib', 'protocol', 'store', 'dhcp/subnets.ts', 'net/wol-socket.ts', 'config'],
  events: ['events', 'model', 'lib', 'store'],
  // This server as a node: registration and heartbeat over the store, node-to-node credentials,
  // the directory of live nodes (its URLs checked as iPXE's: boot/ipxe.ts is pure).
  nodes: ['nodes', 'model', 'lib', 'store', 'config', 'dhcp/subnets.ts', 'boot/ipxe.ts'],
  // Prometheus counters: fed boot steps and live events by the wiring, gauges read from the store.
  metrics: ['metrics', 'model', 'lib', 'store'],
  // The endpoint agents' server side: rules over the store.
  endpoints: ['endpoints', 'model', 'lib', 'store'],
  // Certificates (DER, X.509) and the CA's files in the data directory: no config, no HTTP.
  tls: ['tls', 'lib', 'model'],
  // `fleetboot doctor`'s judgements and the nftables evaluator: pure, over facts src/cli/doctor.ts gathers.
  doctor: ['doctor', 'lib', 'model'],
  // The API's schemas and types: pure, for the server, the CLI and the console's browser bundle.
  'http/schemas': ['http/schemas', 'model'],
};

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    // testdata/ holds tools that recapture fixtures in the lab, not code of the layer.
    if (statSync(p).isDirectory()) {
      if (name !== 'testdata') out.push(...walk(p));
    }
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/g)) found.push(m[1] as string);
  for (const m of text.matchAll(/\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g)) found.push(m[1] as string);
  return found;
}

test('every folder imports only the layers below it', () => {
  const problems: string[] = [];
  for (const [folder, allowed] of Object.entries(ALLOWED)) {
    for (const file of walk(join(SRC, folder))) {
      for (const spec of importsOf(file)) {
        const target = relative(SRC, resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
        const ok = allowed.some((a) => target === a || target.startsWith(`${a}/`));
        if (!ok) problems.push(`${relative(SRC, file)} imports ${spec} (${folder}/ may import only ${allowed.join(', ')})`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

test('the import scan sees imports (not vacuous)', () => {
  assert.ok(importsOf(join(SRC, 'store/tasks.ts')).some((s) => s.includes('model/task.js')));
});
