/**
 * The task runner: one task, from its spec to complete() or fail(), on any
 * transport (the server over HTTP, or a local image directory).
 *
 * capture/deploy wait for a transfer slot first (reporting 'waiting-slot');
 * inventory/register collect and complete (register's completion carries the
 * inventory too). Any error -> fail(reason) and the error is rethrown (the
 * CLI exits non-zero). A task cancelled on the server (a progress answer
 * 'cancelled', or 409 on any request) aborts at once: the children are
 * killed, fail() is not sent (the task is already finished there) and a
 * CancelledError is thrown.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseManifest, type Manifest } from '../model/manifest.js';
import { EndpointProtocolError, parseEnrolSpec, type EnrolSpec } from '../model/endpoint.js';
import type { EnrolOutcome, HardwareIdentity, MulticastSpec, TaskType } from '../imaging/protocol.js';
import { writeEnrolment } from './enrol.js';
import { MulticastTransport } from './multicast-transport.js';
import { capture } from './capture.js';
import { deploy } from './deploy.js';
import { pickDisk, type DiskInfo } from './disk.js';
import { AgentError, CancelledError, errorMessage } from './errors.js';
import { collectInventory, readSmbiosIdentity } from './inventory.js';
import { Progress, etaSeconds, formatDuration, formatRate, toError } from './progress.js';
import { checkDiskFits, type TableChoice } from './table.js';
import type { Transport } from './transport.js';

/** What to do: a TaskSpec from the server, or one made up for a local run. */
export interface Job {
  id: number | null;
  type: TaskType;
  mac: string | null;
  image: string | null;
  manifest: unknown;
  disk: string | null;
  table: TableChoice;
  progressIntervalSeconds: number;
  agentTimeoutSeconds: number;
  /** deploy: receive from this multicast session (falls back to the transport). */
  multicast?: MulticastSpec | null;
  /** deploy: write this enrolment file into the deployed Linux root (src/agent/enrol.ts); checked before anything is written. */
  enrol?: unknown;
}

export interface RunOptions {
  /** Overrides job.disk (--disk, fleetboot.disk=). */
  disk?: string | null;
  log?: (msg: string) => void;
  /** Print a progress line at every report (console of the boot environment, a terminal). */
  progressLines?: boolean;
  /** Aborting this stops the task (SIGTERM/SIGINT); its reason becomes the failure. */
  signal?: AbortSignal;
  /** The local address that reaches the server: a multicast deploy joins its group there. */
  localAddress?: string;
}

export interface RunResult {
  type: TaskType;
  seconds: number;
  /** Compressed stream bytes moved. */
  streamBytes: number;
  /** capture: sum of used bytes (partclone) or partition sizes (raw); deploy: the same from the manifest. */
  dataBytes: number;
  manifest: Manifest | null;
  /** deploy with enrol: where the enrolment file went, or the warning. */
  enrol?: EnrolOutcome;
}

/** A job's enrol, checked (null: none asked); AgentError naming the bad field. */
export function jobEnrol(job: Pick<Job, 'enrol'>): EnrolSpec | null {
  if (job.enrol === undefined || job.enrol === null) return null;
  try {
    return parseEnrolSpec(job.enrol);
  } catch (err) {
    if (err instanceof EndpointProtocolError) throw new AgentError(`the server's enrolment data is refused (nothing was written): ${err.message}`);
    throw err;
  }
}

/** The machine's hardware identity (SMBIOS UUID and serial, the task's disk), for the server's check before any transfer. */
export function identityOf(disk: DiskInfo | null, root = '/'): HardwareIdentity {
  const smbios = readSmbiosIdentity(root);
  return { ...smbios, disk: disk ? { name: disk.name, model: disk.model, sizeBytes: disk.sizeBytes } : null };
}

function dataBytesOf(m: Manifest): number {
  return m.partitions.reduce((s, p) => s + (p.usedBytes ?? p.sizeBytes), 0);
}

export async function runJob(job: Job, transport: Transport, opts: RunOptions = {}): Promise<RunResult> {
  const log = opts.log ?? (() => undefined);
  const abort = new AbortController();
  const outer = opts.signal;
  const onOuter = (): void => abort.abort(outer?.reason);
  outer?.addEventListener('abort', onOuter, { once: true });
  const progress = new Progress(transport, job.progressIntervalSeconds, abort);
  if (opts.progressLines) {
    const send = progress.send.bind(progress);
    progress.send = async () => {
      await send();
      const r = progress.report();
      const rate = progress.meter.rate();
      const eta = etaSeconds(r.bytesDone, r.bytesTotal, rate);
      const total = r.bytesTotal !== null ? ` / ${(r.bytesTotal / 1e6).toFixed(1)}` : '';
      log(`${r.phase}${r.partition !== null ? ` partition ${r.partition}` : ''}: ${(r.bytesDone / 1e6).toFixed(1)}${total} MB, ${formatRate(rate)}${eta !== null ? `, ETA ${formatDuration(eta)}` : ''}${r.message ? ` (${r.message})` : ''}`);
    };
  }
  const started = Date.now();
  const waitSlot = async (): Promise<void> => {
    for (;;) {
      const a = await transport.slot();
      if (a.granted) return;
      await progress.enter('waiting-slot', null, `waiting for a transfer slot (position ${a.position})`);
      await sleep(Math.max(1, a.retryAfterSeconds) * 1000, undefined, { signal: abort.signal }).catch(() => undefined);
      progress.throwIfAborted();
    }
  };
  try {
    await progress.enter('starting', null);
    let manifest: Manifest | null = null;
    let dataBytes = 0;
    let enrolled: EnrolOutcome | undefined;
    switch (job.type) {
      case 'capture': {
        const disk = pickDisk(opts.disk ?? job.disk);
        log(`capture of ${disk.path} (${(disk.sizeBytes / 2 ** 30).toFixed(1)} GiB${disk.model ? `, ${disk.model}` : ''})`);
        await transport.identify(identityOf(disk));
        await waitSlot();
        manifest = await capture({ transport, disk, progress, signal: abort.signal, name: job.image ?? '', source: { mac: job.mac, taskId: job.id }, retrySeconds: job.agentTimeoutSeconds, log });
        await progress.enter('finishing', null);
        await transport.complete({ type: 'capture', manifest });
        dataBytes = dataBytesOf(manifest);
        break;
      }
      case 'deploy': {
        if (job.manifest === null || job.manifest === undefined) throw new Error('the deploy task carries no manifest');
        const m = parseManifest(job.manifest);
        const enrol = jobEnrol(job);
        const disk = pickDisk(opts.disk ?? job.disk);
        // Before waiting for a slot, before anything is written.
        checkDiskFits(m, job.table, disk);
        await transport.identify(identityOf(disk));
        log(`deploy of ${m.name || 'the image'} onto ${disk.path} (${job.table} table)${job.multicast ? ` from multicast session ${job.multicast.session}` : ''}`);
        let source: Transport = transport;
        if (job.multicast) {
          // A session is not a transfer slot's load on the server: only its unicast fallback waits for one.
          source = new MulticastTransport(transport, job.multicast, {
            localAddress: opts.localAddress ?? '0.0.0.0',
            sizes: new Map(m.partitions.map((p) => [p.file, p.streamBytes])),
            log,
            note: (msg) => {
              progress.message = msg;
            },
            beforeUnicast: waitSlot,
          });
        } else {
          await waitSlot();
        }
        await deploy({ transport: source, disk, manifest: m, table: job.table, progress, signal: abort.signal, log });
        if (enrol !== null) {
          await progress.enter('finishing', null, 'writing the enrolment token into the deployed system');
          enrolled = await writeEnrolment({ manifest: m, disk: disk.path, spec: enrol, log });
          progress.throwIfAborted();
        }
        await progress.enter('finishing', null, enrolled?.message);
        await transport.complete(enrolled ? { type: 'deploy', verified: true, enrol: enrolled } : { type: 'deploy', verified: true });
        manifest = m;
        dataBytes = dataBytesOf(m);
        break;
      }
      case 'inventory':
      case 'register': {
        await progress.enter('inventory', null);
        await transport.identify(identityOf(null));
        const inventory = collectInventory();
        await transport.complete({ type: job.type, inventory });
        break;
      }
      default:
        throw new Error(`unknown task type ${String(job.type)}`);
    }
    return { type: job.type, seconds: (Date.now() - started) / 1000, streamBytes: progress.bytesDone, dataBytes, manifest, ...(enrolled ? { enrol: enrolled } : {}) };
  } catch (e) {
    const err = abort.signal.aborted ? toError(abort.signal.reason) : e;
    abort.abort(err);
    if (err instanceof CancelledError) throw err;
    const reason = errorMessage(err);
    try {
      let inventory;
      try {
        inventory = collectInventory();
      } catch {
        inventory = undefined;
      }
      await transport.fail(inventory && job.type !== 'inventory' && job.type !== 'register' ? { reason, inventory } : { reason });
    } catch (e2) {
      if (e2 instanceof CancelledError) throw e2;
      log(`could not report the failure: ${errorMessage(e2)}`);
    }
    throw err;
  } finally {
    progress.stop();
    outer?.removeEventListener('abort', onOuter);
  }
}
