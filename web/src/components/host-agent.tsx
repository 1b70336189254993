/**
 * A host's endpoint agent on the host page: its state and what it last
 * reported, revocation (admin), the work an operator may hand it while it
 * is active (refresh the inventory, set the machine's name to the host's,
 * reboot), and its recent work. Read again while work is unfinished; a
 * finished piece of work tells the page (an inventory changes the host).
 */
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, can, errorText } from '../api.js';
import { BASE } from '../base.js';
import type { Agent, AgentList, AgentWorkList } from '../types.js';
import { POLL_MS, WorkTable, reported, unfinished, usePoll } from './agents.js';
import { Confirm, Empty, ErrorNote, State, announce, formatTime, useFocusKept, useLoad } from './ui.js';

/** How much of the host's agent work is shown. */
const WORK_SHOWN = 20;

type Ask = 'hostname' | 'reboot' | 'revoke';

function AgentFacts(props: { agent: Agent }): JSX.Element {
  const a = props.agent;
  const id = reported(a);
  return (
    <dl class="facts" data-testid="host-agent">
      <dt>State</dt>
      <dd>
        <State state={a.state} />
        {a.revokedAt ? <> since {formatTime(a.revokedAt)}</> : null}
      </dd>
      <dt>Agent</dt>
      <dd class="mono">{a.id}</dd>
      <dt>Machine name</dt>
      <dd>{id.hostname ?? '—'}</dd>
      <dt>OS</dt>
      <dd>{id.os ?? '—'}</dd>
      <dt>Agent version</dt>
      <dd>{id.agentVersion}</dd>
      <dt>Address</dt>
      <dd class="mono">{a.lastIp ?? '—'}</dd>
      <dt>Last seen</dt>
      <dd>{a.lastSeenAt ? formatTime(a.lastSeenAt) : 'never'}</dd>
      <dt>Enrolled</dt>
      <dd>{formatTime(a.enrolledAt)}</dd>
    </dl>
  );
}

export function HostAgent(props: { mac: string; hostName: string | null; onWorkDone: () => void }): JSX.Element {
  const { mac } = props;
  const agents = useLoad(() => api<AgentList>('GET', `/agents?mac=${encodeURIComponent(mac)}`), [mac]);
  const work = useLoad(() => api<AgentWorkList>('GET', `/agents/work?mac=${encodeURIComponent(mac)}&limit=${WORK_SHOWN}`), [mac]);
  const items = work.data?.work ?? [];
  usePoll(
    () => {
      work.reload();
      agents.reload();
    },
    items.some(unfinished),
  );
  // Work that was unfinished and now is not: the host may have changed (an inventory, a name).
  const pendingIds = useRef<Set<number>>(new Set());
  useEffect(() => {
    const now = new Set(items.filter(unfinished).map((w) => w.id));
    if ([...pendingIds.current].some((id) => !now.has(id))) props.onWorkDone();
    pendingIds.current = now;
  }, [work.data]);
  const [ask, setAsk] = useState<Ask | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useFocusKept(agents.data);

  const list = agents.data?.agents ?? [];
  const active = list.find((a) => a.state === 'active') ?? null;
  const shown = active ?? [...list].sort((a, b) => b.enrolledAt.localeCompare(a.enrolledAt))[0] ?? null;
  const hostText = props.hostName ? `${props.hostName} (${mac})` : mac;

  const queue = async (kind: 'inventory' | 'hostname' | 'reboot'): Promise<void> => {
    await api<AgentWorkList>('POST', '/agents/work', { kind, macs: [mac] });
    const what = kind === 'inventory' ? 'Inventory refresh' : kind === 'hostname' ? 'Host name change' : 'Reboot';
    announce(`${what} queued for ${hostText}: the agent picks it up at its next poll`);
    work.reload();
  };
  const refresh = async (): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await queue('inventory');
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="agent-title">
      <h2 id="agent-title">Endpoint agent</h2>
      <ErrorNote error={agents.error ?? error} />
      {agents.data && !shown ? (
        <Empty>
          No endpoint agent. Enrol one with a token from the <a href={`${BASE}/agents`}>Agents</a> page.
        </Empty>
      ) : null}
      {shown ? (
        <>
          <AgentFacts agent={shown} />
          {active && can('operator') ? (
            <div class="actions agent-actions">
              {can('operator') ? (
                <>
                  <button type="button" disabled={busy} onClick={() => void refresh()}>
                    Refresh inventory
                  </button>
                  <button type="button" disabled={!props.hostName} aria-describedby={props.hostName ? undefined : 'agent-hostname-hint'} onClick={() => setAsk('hostname')}>
                    Set host name…
                  </button>
                  <button type="button" onClick={() => setAsk('reboot')}>
                    Reboot…
                  </button>
                </>
              ) : null}
              {can('admin') ? (
                <button type="button" class="danger" onClick={() => setAsk('revoke')}>
                  Revoke agent…
                </button>
              ) : null}
            </div>
          ) : null}
          {active && !props.hostName && can('operator') ? (
            <p id="agent-hostname-hint" class="hint">
              This host has no name here to give the machine: name it first.
            </p>
          ) : null}
          {!active ? <p class="hint">The agent is {shown.state}: it gets no work.</p> : null}
        </>
      ) : null}
      <h3>Recent agent work</h3>
      <ErrorNote error={work.error} />
      {items.length === 0 && !work.loading ? (
        <Empty>No agent work for this host yet.</Empty>
      ) : (
        <WorkTable work={items} caption={`Agent work of ${hostText}, newest first`} showHost={false} />
      )}
      {active && !work.loading && items.some(unfinished) ? <p class="hint">Read again every {POLL_MS / 1000} seconds while work is unfinished.</p> : null}
      <Confirm
        open={ask === 'hostname'}
        title={`Set the machine name of ${hostText}`}
        confirmLabel={`Name the machine ${props.hostName ?? ''}`}
        onClose={() => setAsk(null)}
        onConfirm={() => queue('hostname')}
      >
        <p>
          The agent sets the machine's own host name to <strong>{props.hostName}</strong>
          {shown && reported(shown).hostname ? <> (it is {reported(shown).hostname} now)</> : null}.
        </p>
      </Confirm>
      <Confirm open={ask === 'reboot'} title={`Reboot ${hostText}`} confirmLabel={`Reboot ${props.hostName ?? mac}`} danger onClose={() => setAsk(null)} onConfirm={() => queue('reboot')}>
        <p>
          The agent reboots <strong>{hostText}</strong> at its next poll, whoever is using it.
        </p>
      </Confirm>
      <Confirm
        open={ask === 'revoke'}
        title={`Revoke the agent of ${hostText}`}
        confirmLabel={`Revoke the agent of ${props.hostName ?? mac}`}
        danger
        onClose={() => setAsk(null)}
        onConfirm={async () => {
          if (!active) return;
          await api<Agent>('POST', `/agents/${active.id}/revoke`);
          announce(`Agent of ${hostText} revoked`);
          agents.reload();
        }}
      >
        <p>
          Revoke the agent of <strong>{hostText}</strong>? Its key is refused from its next request on, and it does no more work. The machine needs a new enrolment token to enrol again.
        </p>
      </Confirm>
    </section>
  );
}
