/**
 * `fleetboot events [--follow] [--kind K]...`: the live events
 * (GET /api/v1/events, src/model/events.ts), one line each; with --json one
 * JSON object a line. Without --follow: the events the server still keeps
 * (the last 5 minutes, at most 5,000), then it ends. With --follow it goes
 * on, and after a dropped connection or a server restart reconnects,
 * resuming from the last event seen (a gap it cannot fill is said on
 * stderr).
 */
import type { Command } from 'commander';
import { SseParser, type SseMessage } from '../lib/sse.js';
import { isLiveEventKind, LIVE_EVENT_KINDS, type LiveEvent } from '../model/events.js';
import { CliError, connect, type ApiClient } from './client.js';
import type { GlobalOptions } from './globals.js';
import { formatBytes, formatDuration, formatPercent, formatRate, time } from './imaging.js';
import { printLine } from './output.js';

/** The words after the time and kind: what happened, for people. */
export function eventText(e: LiveEvent): string {
  switch (e.kind) {
    case 'task.progress': {
      const parts = [`task #${e.taskId} ${e.mac} ${e.phase}`];
      const pct = formatPercent(e.bytesDone, e.bytesTotal);
      parts.push(e.bytesTotal !== null && e.bytesTotal > 0 ? `${formatBytes(e.bytesDone)} / ${formatBytes(e.bytesTotal)} (${pct})` : (formatBytes(e.bytesDone) ?? ''));
      const rate = formatRate(e.rateBps);
      if (rate) parts.push(rate);
      const eta = formatDuration(e.etaSeconds);
      if (eta) parts.push(`ETA ${eta}`);
      return parts.join(', ') + (e.message ? `: ${e.message}` : '');
    }
    case 'task.state':
      return `task #${e.taskId} ${e.type}${e.image ? ` ${e.image}` : ''} ${e.mac}: ${e.from === null ? `created, ${e.state}` : `${e.from} -> ${e.state}`}${e.error ? ` (${e.error})` : ''}`;
    case 'host.pending':
      return `host ${e.mac}${e.name ? ` (${e.name})` : ''} registered${e.ip ? ` from ${e.ip}` : ''} ${e.via === 'boot-menu' ? 'from the boot menu' : 'by a register task'}: waits for approval`;
    case 'host.changed':
      return `host ${e.mac}${e.name ? ` (${e.name})` : ''} ${e.change}`;
    case 'host.imported':
      return `${e.added} host${e.added === 1 ? '' : 's'} imported${e.skipped ? `, ${e.skipped} already there` : ''}${e.groupsCreated.length ? `; groups made: ${e.groupsCreated.join(', ')}` : ''}`;
    case 'dhcp.lease':
      return `${e.ip} ${e.state}${e.mac ? ` ${e.mac}` : ''}${e.hostname ? ` (${e.hostname})` : ''}${e.active ? ` until ${time(e.expiresAt) ?? e.expiresAt}` : ''}`;
    case 'boot.event':
      return `${e.mac ?? e.ip ?? '?'} ${e.step}: ${e.summary}`;
    case 'multicast.session':
      return `multicast session #${e.sessionId} (${e.image} revision ${e.revision}): ${e.state}${e.error ? ` (${e.error})` : ''}`;
    case 'multicast.member':
      return `multicast session #${e.sessionId}: ${e.taskId === null ? 'an unknown receiver' : `task #${e.taskId}`} ${e.state}${e.reason ? ` (${e.reason})` : ''}`;
  }
}

/** One line: the time (UTC), the kind, what happened. */
export function eventLine(e: LiveEvent): string {
  return `${(time(e.at) ?? e.at).padEnd(24)}  ${e.kind.padEnd(17)}  ${eventText(e)}`;
}

/** --kind: a kind (task.state) or a family (task), checked. */
export function kindFilter(list: readonly string[]): (kind: string) => boolean {
  const families = new Set(LIVE_EVENT_KINDS.map((k) => k.split('.')[0] ?? k));
  for (const k of list) {
    if (!isLiveEventKind(k) && !families.has(k)) throw new CliError(`--kind ${JSON.stringify(k)} is not an event kind: expected one of ${LIVE_EVENT_KINDS.join(', ')}, or ${[...families].join(', ')}`);
  }
  if (list.length === 0) return () => true;
  return (kind) => list.some((k) => kind === k || kind.startsWith(`${k}.`));
}

/** The live event a message carries, or null (ready, reset, end, or not ours). */
function liveEvent(m: SseMessage): LiveEvent | null {
  if (!isLiveEventKind(m.event)) return null;
  try {
    const v: unknown = JSON.parse(m.data);
    return typeof v === 'object' && v !== null && 'kind' in v && v.kind === m.event ? (v as LiveEvent) : null;
  } catch {
    return null;
  }
}

/** The `reason` of a reset or end event, or null. */
function reasonOf(data: string): string | null {
  try {
    const v: unknown = JSON.parse(data);
    return typeof v === 'object' && v !== null && 'reason' in v && typeof v.reason === 'string' ? v.reason : null;
  } catch {
    return null;
  }
}

/**
 * Read one connection: print events; true when it ended because the
 * history was all shown (not following), false when the server ended it
 * or it broke (reconnect).
 */
async function readOnce(api: ApiClient, parser: SseParser, o: { follow: boolean; json: boolean; wanted: (k: string) => boolean }): Promise<boolean> {
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (parser.lastEventId !== '') headers['last-event-id'] = parser.lastEventId;
  const res = await api.stream(`/events${parser.lastEventId === '' ? '?history=true' : ''}`, headers);
  if (!res.body) throw new CliError('The server sent no event stream');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return false;
      for (const m of parser.push(value)) {
        const e = liveEvent(m);
        if (e) {
          if (o.wanted(e.kind)) printLine(o.json ? JSON.stringify(e) : eventLine(e));
          continue;
        }
        const reason = reasonOf(m.data);
        if (m.event === 'ready' && !o.follow) return true;
        if (m.event === 'reset') process.stderr.write(`fleetboot: some events were missed: ${reason ?? 'the server cannot tell which'}\n`);
        if (m.event === 'end') {
          if (!o.follow) return true;
          process.stderr.write(`fleetboot: the server ended the stream${reason ? `: ${reason}` : ''}\n`);
        }
      }
    }
  } finally {
    void reader.cancel().catch(() => undefined);
  }
}

export function registerEventCommands(program: Command, globals: GlobalOptions): void {
  program
    .command('events')
    .description('live events (task progress and states, pending hosts, host changes, DHCP leases, boot steps, multicast): the last 5 minutes, or with --follow as they happen')
    .option('-f, --follow', 'keep printing as events happen (reconnects and resumes after a dropped connection or a restart)')
    .option('--kind <kind>', `only these kinds (repeatable): ${LIVE_EVENT_KINDS.join(', ')}, or a family such as task`, (v: string, prev: string[]) => [...prev, v], [] as string[])
    .action(async (o: { follow?: boolean; kind: string[] }) => {
      const wanted = kindFilter(o.kind);
      const api = await connect(globals);
      const parser = new SseParser();
      const opts = { follow: o.follow === true, json: globals.json, wanted };
      for (;;) {
        let finished: boolean;
        try {
          finished = await readOnce(api, parser, opts);
        } catch (err) {
          // Refusals (401, 403, 429) end the command; a broken connection is retried when following.
          if (!opts.follow || (err instanceof CliError && err.status !== null)) throw err;
          process.stderr.write(`fleetboot: ${err instanceof Error ? err.message : String(err)}; trying again\n`);
          finished = false;
        }
        if (finished || !opts.follow) return;
        await new Promise((r) => setTimeout(r, parser.retry ?? 3000));
      }
    });
}
