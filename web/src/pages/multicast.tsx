/**
 * Multicast sessions: each running or waiting session with its live rate,
 * rate ceiling (changeable), resent share and receivers (progress, loss,
 * state), a straggler dropped to unicast, the session cancelled; then the
 * sessions that ended, with their final figures. Each session's element
 * is `session-ID` (the dashboard links to /ui/multicast#session-ID).
 */
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, can, errorText } from '../api.js';
import { BASE } from '../base.js';
import { useLiveReload } from '../live.js';
import type { MulticastDetail, MulticastList, MulticastMember, MulticastSession } from '../types.js';
import { Confirm, Empty, ErrorNote, Page, Progress, State, announce, formatBytes, formatDuration, formatTime, useLoad, useFocusKept } from '../components/ui.js';


const ACTIVE = ['waiting', 'sending'];
/** Ended sessions shown (the list is newest first). */
const ENDED_SHOWN = 50;

function num(o: unknown, key: string): number | null {
  if (typeof o !== 'object' || o === null) return null;
  const v = (o as Record<string, unknown>)[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function percent(share: number | null): string {
  return share === null ? '—' : `${(share * 100).toFixed(1)} %`;
}

/** Bytes per second as Mbit/s, the unit of the rate ceiling. */
function mbps(bytesPerSecond: number | null): string {
  return bytesPerSecond === null ? '—' : `${((bytesPerSecond * 8) / 1e6).toFixed(1)} Mbit/s`;
}

interface Loaded {
  active: MulticastDetail[];
  ended: MulticastSession[];
}

async function load(): Promise<Loaded> {
  const list = await api<MulticastList>('GET', '/multicast');
  const sessions = list.sessions ?? [];
  const active = await Promise.all(sessions.filter((s) => ACTIVE.includes(s.state)).map((s) => api<MulticastDetail>('GET', `/multicast/${s.id}`)));
  return { active, ended: sessions.filter((s) => !ACTIVE.includes(s.state)).slice(0, ENDED_SHOWN) };
}

function RateForm(props: { session: MulticastDetail; onChanged: () => void }): JSX.Element {
  const s = props.session;
  const current = num(s.live, 'maxRateBps');
  const [value, setValue] = useState(current === null ? '' : String(Math.round((current * 8) / 1e6)));
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(null);
    const n = Number(value);
    if (!(n > 0)) {
      setError('The ceiling is a number of Mbit/s above 0.');
      return;
    }
    try {
      await api<MulticastDetail>('POST', `/multicast/${s.id}/rate`, { maxRateMbps: n });
      announce(`Session ${s.id}: rate ceiling ${n} Mbit/s`);
      props.onChanged();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <form class="inline-form" onSubmit={(e) => void submit(e)}>
      <label for={`rate-${s.id}`}>Rate ceiling (Mbit/s)</label>
      <input id={`rate-${s.id}`} type="number" min="1" step="any" class="narrow" value={value} onInput={(e) => setValue(e.currentTarget.value)} />
      <button type="submit">
        Set ceiling<span class="sr-only"> of session {s.id}</span>
      </button>
      <ErrorNote error={error} />
    </form>
  );
}

function ActiveSession(props: { session: MulticastDetail; onDrop: (s: MulticastDetail, m: MulticastMember) => void; onCancel: (s: MulticastDetail) => void; onChanged: () => void }): JSX.Element {
  const s = props.session;
  const operator = can('operator');
  const objectBytes = num(s.live, 'objectBytes');
  const elapsedMs = num(s.live, 'elapsedMs');
  const joined = s.members.filter((m) => m.receiverState && m.receiverState !== 'not joined').length;
  return (
    <section class="session" id={`session-${s.id}`} aria-labelledby={`session-${s.id}-title`} tabIndex={-1}>
      <header class="session-head">
        <h2 id={`session-${s.id}-title`}>
          Session {s.id}: {s.image} revision {s.revision}
        </h2>
        <State state={s.state} />
        {operator ? (
          <button type="button" class="danger" onClick={() => props.onCancel(s)}>
            Cancel session…<span class="sr-only"> {s.id}</span>
          </button>
        ) : null}
      </header>
      <dl class="facts">
        <dt>Receivers</dt>
        <dd>
          {joined} joined of {s.expected} expected
          {s.minReceivers !== undefined && s.minReceivers < s.expected ? `; starts with ${s.minReceivers} after ${formatDuration(s.maxWaitSeconds ?? null)}` : ''}
        </dd>
        <dt>Rate</dt>
        <dd>
          {s.state === 'sending' ? mbps(num(s.live, 'rateBps')) : 'not sending yet'} (ceiling {mbps(num(s.live, 'maxRateBps'))})
        </dd>
        <dt>Resent</dt>
        <dd>{percent(num(s.live, 'retransmittedShare'))} of the data sent again as repairs</dd>
        <dt>Size</dt>
        <dd>{formatBytes(objectBytes)}</dd>
        <dt>Sending for</dt>
        <dd>{elapsedMs === null ? 'not started' : formatDuration(elapsedMs / 1000)}</dd>
        <dt>Group address</dt>
        <dd class="mono">
          {s.address}:{s.port}
        </dd>
        {s.jobId ? (
          <>
            <dt>Job</dt>
            <dd>job #{s.jobId}</dd>
          </>
        ) : null}
      </dl>
      {operator ? <RateForm session={s} onChanged={props.onChanged} /> : null}
      <table>
        <caption class="sr-only">Receivers of session {s.id}</caption>
        <thead>
          <tr>
            <th scope="col">Host</th>
            <th scope="col">Task</th>
            <th scope="col">Receiver</th>
            <th scope="col">Progress</th>
            <th scope="col">Loss</th>
            <th scope="col">Note</th>
            {operator ? <th scope="col">Actions</th> : null}
          </tr>
        </thead>
        <tbody>
          {s.members.map((m, i) => {
            const done = m.receiverBytes ?? m.bytesDone ?? 0;
            const total = m.bytesTotal ?? objectBytes;
            const droppable = m.receiverState === 'active' || m.receiverState === 'waiting';
            return (
              <tr key={m.taskId ?? i} data-task={m.taskId}>
                <td class="mono">{m.mac ? <a href={`${BASE}/hosts/${encodeURIComponent(m.mac)}`}>{m.mac}</a> : '—'}</td>
                <td>
                  {m.taskId ? <a href={`${BASE}/tasks/${m.taskId}`}>#{m.taskId}</a> : '—'} {m.taskState ? <State state={m.taskState} /> : null}
                </td>
                <td>{m.receiverState ? <State state={m.receiverState} /> : '—'}</td>
                <td>
                  <Progress id={`mc-${s.id}-${m.taskId ?? i}`} done={done} total={total} label={`Progress of ${m.mac ?? 'receiver'}`} />
                </td>
                <td>{percent(m.lossShare ?? null)}</td>
                <td>{m.reason ?? m.error ?? ''}</td>
                {operator ? (
                  <td class="row-actions">
                    {droppable ? (
                      <button type="button" onClick={() => props.onDrop(s, m)}>
                        Drop…<span class="sr-only"> {m.mac}</span>
                      </button>
                    ) : null}
                  </td>
                ) : null}
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}

export default function Multicast(): JSX.Element {
  const data = useLoad(load, []);
  useFocusKept(data.data);
  const active = data.data?.active ?? [];
  const ended = data.data?.ended ?? [];
  useLiveReload(['multicast.session', 'task.state'], data.reload, 1000);
  // The receivers' figures come from the sender, not the event stream: ask again every 2 s while a session runs.
  const running = active.length > 0;
  useEffect(() => {
    if (!running) return;
    const t = setInterval(data.reload, 2000);
    return () => clearInterval(t);
  }, [running]);
  // A link to #session-ID: show that session once it is on the page.
  const scrolled = useRef(false);
  useEffect(() => {
    if (scrolled.current || !data.data) return;
    scrolled.current = true;
    const el = location.hash ? document.getElementById(location.hash.slice(1)) : null;
    if (el) {
      el.scrollIntoView();
      if (el.tagName === 'SECTION') el.focus();
    }
  }, [data.data]);

  const [drop, setDrop] = useState<{ session: MulticastDetail; member: MulticastMember } | null>(null);
  const [cancel, setCancel] = useState<MulticastDetail | null>(null);

  return (
    <Page title="Multicast sessions">
      <p class="hint">A deploy to a group or to several hosts with multicast sends the image once to all of them. A receiver that holds the others back can be dropped: it goes on by unicast.</p>
      <ErrorNote error={data.error} />
      {active.length === 0 && !data.loading ? <Empty>No multicast session is waiting or sending.</Empty> : null}
      {active.map((s) => (
        <ActiveSession key={s.id} session={s} onDrop={(session, member) => setDrop({ session, member })} onCancel={setCancel} onChanged={data.reload} />
      ))}
      <h2>Ended sessions</h2>
      {ended.length === 0 ? (
        <Empty>No session has ended yet.</Empty>
      ) : (
        <table>
          <caption class="sr-only">Ended multicast sessions, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Session</th>
              <th scope="col">Image</th>
              <th scope="col">State</th>
              <th scope="col">Receivers</th>
              <th scope="col">Rate</th>
              <th scope="col">Resent</th>
              <th scope="col">Started</th>
              <th scope="col">Ended</th>
              <th scope="col">Note</th>
            </tr>
          </thead>
          <tbody>
            {ended.map((s) => (
              <tr key={s.id} id={`session-${s.id}`}>
                <td>{s.id}</td>
                <td>
                  {s.image} revision {s.revision}
                </td>
                <td>
                  <State state={s.state} />
                </td>
                <td>{s.expected}</td>
                <td>{mbps(num(s.stats, 'rateBps'))}</td>
                <td>{percent(num(s.stats, 'retransmittedShare'))}</td>
                <td>{formatTime(s.startedAt)}</td>
                <td>{formatTime(s.finishedAt)}</td>
                <td>{s.error ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Confirm
        open={drop !== null}
        title={`Drop ${drop?.member.mac ?? ''} from session ${drop?.session.id ?? ''}`}
        confirmLabel={`Drop ${drop?.member.mac ?? ''}`}
        danger
        onClose={() => setDrop(null)}
        onConfirm={async () => {
          if (!drop) return;
          await api<MulticastDetail>('POST', `/multicast/${drop.session.id}/drop/${drop.member.taskId ?? 0}`);
          announce(`${drop.member.mac ?? 'The receiver'} dropped from session ${drop.session.id}; it goes on by unicast`);
          data.reload();
        }}
      >
        <p>
          Drop host <strong>{drop?.member.mac}</strong> (task #{drop?.member.taskId}) from multicast session {drop?.session.id}? It leaves the session and its deploy goes on by unicast from the server; the other{' '}
          {drop ? drop.session.members.length - 1 : 0} receivers no longer wait for it.
        </p>
      </Confirm>
      <Confirm
        open={cancel !== null}
        title={`Cancel session ${cancel?.id ?? ''}`}
        confirmLabel={`Cancel session ${cancel?.id ?? ''}`}
        danger
        onClose={() => setCancel(null)}
        onConfirm={async () => {
          if (!cancel) return;
          await api<MulticastDetail>('POST', `/multicast/${cancel.id}/cancel`);
          announce(`Session ${cancel.id} cancelled; its members go on by unicast`);
          data.reload();
        }}
      >
        <p>
          Cancel multicast session <strong>{cancel?.id}</strong> ({cancel?.image} revision {cancel?.revision})? Its <strong>{cancel?.members.length ?? 0}</strong> receivers go on by unicast: their deploy tasks are not cancelled
          {cancel?.jobId ? <> (to cancel the tasks too, cancel job #{cancel.jobId})</> : null}.
        </p>
      </Confirm>
    </Page>
  );
}
