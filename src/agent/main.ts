#!/usr/bin/env node
/**
 * Fleetboot's imaging agent, `fleetboot-imager`. Runs in the boot environment
 * (`node /fleetboot/agent.mjs boot`, bundled with esbuild) and on any Linux
 * host (`node --import tsx src/agent/main.ts ...`). Not to be confused with
 * the endpoint agent on installed machines, `fleetboot-agent`
 * (src/endpoint-agent/).
 *
 *   run --url URL --task ID --token TOKEN [--disk DEV]   do the server's task
 *   boot [--cmdline FILE]                                 the same, values from /proc/cmdline
 *   capture --disk DEV --out DIR                          capture into a local image directory
 *   deploy --disk DEV --from DIR [--table keep|gpt|mbr] [--enrol FILE]
 *                                                         deploy from a local image directory; --enrol: then
 *                                                         write FILE ({ server, caSha256, token }) into the
 *                                                         deployed Linux root as the endpoint agent's enrol.json
 *   inventory                                             print the hardware inventory (JSON)
 *
 * Exit 0 on success; otherwise one line on stderr and 1 (failed), 2 (usage),
 * 3 (cancelled on the server).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMainModule } from '../lib/is-main.js';
import { parseManifest } from '../model/manifest.js';
import { bootParams, parseArgs, parseKernelCmdline, UsageError } from './cmdline.js';
import dgram from 'node:dgram';
import { DirTransport } from './dir-transport.js';
import { AgentError, CancelledError, errorMessage } from './errors.js';
import { HttpTransport } from './http-transport.js';
import { collectInventoryWithSource } from './inventory.js';
import { runJob, type Job, type RunResult } from './run.js';
import type { TableChoice } from './table.js';

const USAGE = `usage: fleetboot-imager <command>
  run --url URL --task ID --token TOKEN [--disk DEV]
  boot [--cmdline FILE]
  capture --disk DEV --out DIR
  deploy --disk DEV --from DIR [--table keep|gpt|mbr] [--enrol FILE]
  inventory [--root DIR]`;

const COMMANDS: Record<string, readonly string[]> = {
  run: ['url', 'task', 'token', 'disk'],
  boot: ['cmdline', 'disk'],
  capture: ['disk', 'out', 'progress'],
  deploy: ['disk', 'from', 'table', 'progress', 'enrol'],
  inventory: ['root'],
  help: [],
};

function log(msg: string): void {
  process.stdout.write(`fleetboot-imager: ${msg}\n`);
}

function need(flags: Map<string, string>, key: string, command: string): string {
  const v = flags.get(key);
  if (!v) throw new UsageError(`${command}: --${key} is required`);
  return v;
}

function summary(r: RunResult): string {
  const mb = (n: number): number => Math.round(n / 1e4) / 100;
  return JSON.stringify({
    ok: true,
    type: r.type,
    seconds: Math.round(r.seconds * 100) / 100,
    streamMB: mb(r.streamBytes),
    dataMB: mb(r.dataBytes),
    dataMBps: r.seconds > 0 ? mb(r.dataBytes / r.seconds) : null,
    ...(r.enrol ? { enrol: r.enrol } : {}),
    partitions: r.manifest?.partitions.map((p) => ({ number: p.number, filesystem: p.filesystem, tool: p.tool, file: p.file, sizeBytes: p.sizeBytes, usedBytes: p.usedBytes, streamBytes: p.streamBytes })) ?? [],
  });
}

/** The local IPv4 address this machine reaches the server from (a connected UDP socket sends nothing). */
async function localAddressFor(url: string): Promise<string> {
  const u = new URL(url);
  const sock = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.connect(Number(u.port || 80), u.hostname, () => resolve());
    });
    return sock.address().address;
  } finally {
    sock.close();
  }
}

async function serverTask(url: string, taskId: number, token: string, disk: string | null, signal: AbortSignal): Promise<void> {
  const transport = new HttpTransport({ url, token, log });
  log(`asking ${url} for task ${taskId}`);
  const spec = await transport.task();
  if (spec.id !== taskId) throw new AgentError(`the server answered with task ${spec.id}, not ${taskId}`);
  transport.timeoutSeconds = spec.agentTimeoutSeconds;
  // A deploy reads its streams from the nearest node holding the image (absent: this server).
  if (spec.type === 'deploy') transport.useStreamsUrl(spec.streamsUrl);
  log(`task ${spec.id}: ${spec.type}${spec.image ? ` (image ${spec.image})` : ''}`);
  const job: Job = { ...spec, table: spec.table };
  const localAddress = spec.multicast ? await localAddressFor(url) : undefined;
  const r = await runJob(job, transport, { disk, log, progressLines: true, signal, localAddress });
  log(`task ${spec.id} done in ${r.seconds.toFixed(1)} s`);
}

function localJob(type: 'capture' | 'deploy', disk: string, extra: Partial<Job>): Job {
  return { id: null, type, mac: null, image: null, manifest: null, disk, table: 'keep', progressIntervalSeconds: 2, agentTimeoutSeconds: 0, ...extra };
}

export async function main(argv: readonly string[], signal: AbortSignal): Promise<number> {
  const { command, flags } = parseArgs(argv, COMMANDS);
  switch (command) {
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    case 'run': {
      const task = Number(need(flags, 'task', command));
      if (!Number.isSafeInteger(task) || task < 1) throw new UsageError(`run: --task ${flags.get('task') ?? ''} is not a task number`);
      await serverTask(need(flags, 'url', command), task, need(flags, 'token', command), flags.get('disk') ?? null, signal);
      return 0;
    }
    case 'boot': {
      const path = flags.get('cmdline') ?? '/proc/cmdline';
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        throw new AgentError(`cannot read ${path}`);
      }
      const p = bootParams(parseKernelCmdline(text));
      await serverTask(p.url, p.task, p.token, flags.get('disk') ?? p.disk, signal);
      return 0;
    }
    case 'capture': {
      const disk = need(flags, 'disk', command);
      const out = need(flags, 'out', command);
      const show = flags.get('progress') === 'yes' || process.stderr.isTTY;
      const transport = new DirTransport(out);
      const name = out.replace(/\/+$/, '').split('/').pop() ?? '';
      const r = await runJob(localJob('capture', disk, { image: name }), transport, { disk, signal, progressLines: show, log: show ? (m) => process.stderr.write(`${m}\n`) : undefined });
      process.stdout.write(`${summary(r)}\n`);
      return 0;
    }
    case 'deploy': {
      const disk = need(flags, 'disk', command);
      const from = need(flags, 'from', command);
      const table = flags.get('table') ?? 'keep';
      if (table !== 'keep' && table !== 'gpt' && table !== 'mbr') throw new UsageError(`deploy: --table must be keep, gpt or mbr (not ${table})`);
      let manifest;
      try {
        manifest = parseManifest(JSON.parse(readFileSync(join(from, 'manifest.json'), 'utf8')) as unknown);
      } catch (e) {
        throw new AgentError(`${join(from, 'manifest.json')}: ${errorMessage(e)}`);
      }
      let enrol: unknown = null;
      const enrolFile = flags.get('enrol');
      if (enrolFile !== undefined) {
        try {
          enrol = JSON.parse(readFileSync(enrolFile, 'utf8')) as unknown;
        } catch (e) {
          throw new AgentError(`--enrol ${enrolFile}: ${errorMessage(e)}`);
        }
      }
      const show = flags.get('progress') === 'yes' || process.stderr.isTTY;
      const r = await runJob(localJob('deploy', disk, { manifest, table: table as TableChoice, enrol }), new DirTransport(from), { disk, signal, progressLines: show, log: show ? (m) => process.stderr.write(`${m}\n`) : undefined });
      process.stdout.write(`${summary(r)}\n`);
      return 0;
    }
    case 'inventory': {
      const { inventory, memorySource } = collectInventoryWithSource(flags.get('root') ?? '/');
      process.stdout.write(`${JSON.stringify({ ...inventory, memorySource }, null, 2)}\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

if (isMainModule(import.meta.url)) {
  const ac = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => ac.abort(new AgentError(`interrupted by ${sig}`)));
  }
  main(process.argv.slice(2), ac.signal).then(
    (code) => process.exit(code),
    (e: unknown) => {
      const msg = errorMessage(e).split('\n')[0] ?? 'failed';
      process.stderr.write(`fleetboot-imager: ${msg}${e instanceof UsageError ? ' (usage: fleetboot-imager help)' : ''}\n`);
      process.exit(e instanceof UsageError ? 2 : e instanceof CancelledError ? 3 : 1);
    },
  );
}
