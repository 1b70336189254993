/**
 * What the Agents, Packages and Host pages share about endpoint agents:
 * what an agent last said about its machine, the table of agent work
 * (package runs, inventories, host names, reboots) whose rows open onto
 * the tails of the run's output, and a poll for what the event stream does
 * not carry (agents and their work have no live events: the agents
 * themselves only report when they poll, every minute by default).
 */
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { BASE } from '../base.js';
import type { Agent, AgentWork } from '../types.js';
import { State, formatDuration, formatTime } from './ui.js';

/** How often a page showing agents or unfinished work asks again. */
export const POLL_MS = 10_000;

/** Calls `reload` every `ms` while `enabled` and the tab is visible. */
export function usePoll(reload: () => void, enabled: boolean, ms = POLL_MS): void {
  const ref = useRef(reload);
  ref.current = reload;
  useEffect(() => {
    if (!enabled) return;
    const t = setInterval(() => {
      if (document.visibilityState === 'visible') ref.current();
    }, ms);
    return () => clearInterval(t);
  }, [enabled, ms]);
}

/** What the agent reported last (or at enrolment, before its first report). */
export function reported(a: Agent): Agent['identity'] {
  return a.lastIdentity ?? a.identity;
}

export const hostHref = (mac: string): string => `${BASE}/hosts/${encodeURIComponent(mac)}`;

/** Work not finished yet: the agent has not reported it. */
export function unfinished(w: AgentWork): boolean {
  return w.state === 'queued' || w.state === 'sent';
}

export function workWhat(w: AgentWork): string {
  if (w.kind === 'package' && w.package) return `package ${w.package.name} revision ${w.package.revision}`;
  if (w.kind === 'reboot' && w.taskId !== null) return `reboot into task #${w.taskId}`;
  if (w.kind === 'hostname') return 'set the host name';
  if (w.kind === 'inventory') return 'refresh the inventory';
  if (w.kind === 'wake') return 'wake machines on its segment';
  return w.kind;
}

function exitText(w: AgentWork): string {
  if (w.exitCode !== null) return w.signal ? `${w.exitCode} (${w.signal})` : String(w.exitCode);
  if (w.signal) return `killed by ${w.signal}`;
  return '—';
}

function durationText(ms: number | null): string {
  if (ms === null) return '—';
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : formatDuration(ms / 1000);
}

/** When, in words: finished, handed out, or queued (and not before when). */
function whenText(w: AgentWork): string {
  if (w.finishedAt) return `finished ${formatTime(w.finishedAt)}`;
  if (w.sentAt) return `handed out ${formatTime(w.sentAt)}`;
  if (w.notBefore && Date.parse(w.notBefore) > Date.now()) return `queued, not before ${formatTime(w.notBefore)}`;
  return `queued ${formatTime(w.createdAt)}`;
}

function Output(props: { w: AgentWork }): JSX.Element {
  const { w } = props;
  return (
    <div class="work-output">
      {w.message ? <p>{w.message}</p> : null}
      {w.rebootRequested ? <p>Its exit code is a reboot code: the agent rebooted the machine.</p> : null}
      <figure>
        <figcaption>Standard output{w.stdout ? ', its last 8 KB' : ': none'}</figcaption>
        {w.stdout ? <pre>{w.stdout}</pre> : null}
      </figure>
      <figure>
        <figcaption>Standard error{w.stderr ? ', its last 8 KB' : ': none'}</figcaption>
        {w.stderr ? <pre>{w.stderr}</pre> : null}
      </figure>
    </div>
  );
}

/**
 * Agent work, newest first. A row with output or a message has a button
 * that opens the row below it (aria-expanded, aria-controls) onto the
 * tails of stdout and stderr.
 */
export function WorkTable(props: { work: AgentWork[]; caption: string; showHost?: boolean; showWhat?: boolean }): JSX.Element {
  const [open, setOpen] = useState<ReadonlySet<number>>(new Set());
  const toggle = (id: number): void => {
    const next = new Set(open);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setOpen(next);
  };
  const showHost = props.showHost !== false;
  const showWhat = props.showWhat !== false;
  const columns = 6 + (showHost ? 1 : 0) + (showWhat ? 1 : 0);
  return (
    <table class="work">
      <caption class="sr-only">{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">Run</th>
          {showWhat ? <th scope="col">What</th> : null}
          {showHost ? <th scope="col">Host</th> : null}
          <th scope="col">State</th>
          <th scope="col">Exit code</th>
          <th scope="col">Duration</th>
          <th scope="col">When</th>
          <th scope="col">Output</th>
        </tr>
      </thead>
      <tbody>
        {props.work.map((w) => {
          const has = w.stdout !== null || w.stderr !== null || w.message !== null;
          const expanded = open.has(w.id);
          return [
            <tr key={w.id} data-work={w.id}>
              <td>#{w.id}</td>
              {showWhat ? <td>{workWhat(w)}</td> : null}
              {showHost ? (
                <td>
                  <a href={hostHref(w.mac)}>{w.hostName ?? w.mac}</a>
                </td>
              ) : null}
              <td>
                <State state={w.state} />
                {w.deliveries > 1 ? <div class="task-message">handed out {w.deliveries} times</div> : null}
              </td>
              <td>{exitText(w)}</td>
              <td>{durationText(w.durationMs)}</td>
              <td>{whenText(w)}</td>
              <td>
                {has ? (
                  <button type="button" class="link" aria-expanded={expanded} aria-controls={expanded ? `work-${w.id}-output` : undefined} onClick={() => toggle(w.id)}>
                    {expanded ? 'Hide output' : 'Show output'}
                    <span class="sr-only"> of run {w.id}</span>
                  </button>
                ) : (
                  '—'
                )}
              </td>
            </tr>,
            expanded ? (
              <tr key={`${w.id}-output`} id={`work-${w.id}-output`} class="output-row">
                <td colSpan={columns}>
                  <Output w={w} />
                </td>
              </tr>
            ) : null,
          ];
        })}
      </tbody>
    </table>
  );
}
