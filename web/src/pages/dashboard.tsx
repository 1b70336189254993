/** The dashboard: what runs and waits, multicast sessions, the image store's disk, and what failed lately. */
import type { JSX } from 'preact';
import { api } from '../api.js';
import { BASE } from '../base.js';
import { useLiveReload } from '../live.js';
import type { Task } from '../types.js';
import { TaskTable } from '../components/tasks.js';
import { Empty, ErrorNote, Page, Progress, State, formatBytes, useLoad } from '../components/ui.js';

interface Status {
  version: string;
  serverIp: string;
  counts: { hosts: number; entries: number; pendingHosts?: number };
  storage?: { dataDir: string; totalBytes: number; freeBytes: number; imagesBytes: number } | null;
}
interface McSession {
  id: number;
  state: string;
  image: string;
  members?: number;
  receivers?: number;
  createdAt: string;
}

export function Dashboard(): JSX.Element {
  const active = useLoad(() => api<{ tasks: Task[] }>('GET', '/tasks?active=true&limit=200'), []);
  const failed = useLoad(() => api<{ tasks: Task[] }>('GET', '/tasks?state=failed&limit=20'), []);
  const status = useLoad(() => api<Status>('GET', '/status'), []);
  const mc = useLoad(() => api<{ sessions: McSession[] }>('GET', '/multicast?active=true'), []);
  useLiveReload(['task.state'], () => {
    active.reload();
    failed.reload();
    mc.reload();
  });
  useLiveReload(['host.pending', 'host.changed', 'host.imported'], status.reload);
  useLiveReload(['multicast.session'], mc.reload);
  const tasks = active.data?.tasks ?? [];
  const running = tasks.filter((t) => t.state === 'running');
  const waiting = tasks.filter((t) => t.state !== 'running');
  const s = status.data;
  const since = Date.now() - 24 * 3600 * 1000;
  const recentFailures = (failed.data?.tasks ?? []).filter((t) => Date.parse(t.finishedAt ?? t.updatedAt) >= since);
  return (
    <Page title="Dashboard">
      <div class="cards">
        <section class="card" aria-labelledby="c-running">
          <h2 id="c-running">Running</h2>
          <p class="big">{running.length}</p>
        </section>
        <section class="card" aria-labelledby="c-queued">
          <h2 id="c-queued">Queued or scheduled</h2>
          <p class="big">{waiting.length}</p>
        </section>
        <section class="card" aria-labelledby="c-hosts">
          <h2 id="c-hosts">Hosts</h2>
          <p class="big">{s ? s.counts.hosts : '—'}</p>
          {s?.counts.pendingHosts ? (
            <p>
              <a href={`${BASE}/pending`}>{s.counts.pendingHosts} pending approval</a>
            </p>
          ) : null}
        </section>
        <section class="card" aria-labelledby="c-disk">
          <h2 id="c-disk">Image store</h2>
          {s?.storage ? (
            <>
              <Progress id="disk" done={s.storage.totalBytes - s.storage.freeBytes} total={s.storage.totalBytes} label="Disk used" />
              <p>
                {formatBytes(s.storage.imagesBytes)} in images, {formatBytes(s.storage.freeBytes)} free of {formatBytes(s.storage.totalBytes)}
              </p>
            </>
          ) : (
            <p>—</p>
          )}
        </section>
      </div>
      <ErrorNote error={active.error ?? status.error ?? mc.error ?? failed.error} />
      <h2>Needs attention</h2>
      {recentFailures.length === 0 ? <Empty>No task failed in the last 24 hours.</Empty> : <TaskTable caption="Failed tasks, last 24 hours" tasks={recentFailures} onChanged={() => failed.reload()} />}
      <h2>Running tasks</h2>
      {running.length === 0 ? <Empty>No task is running.</Empty> : <TaskTable caption="Running tasks" tasks={running} onChanged={active.reload} />}
      <h2>Queued and scheduled</h2>
      {waiting.length === 0 ? <Empty>Nothing is waiting.</Empty> : <TaskTable caption="Queued and scheduled tasks" tasks={waiting} onChanged={active.reload} />}
      <h2>Multicast sessions</h2>
      {(mc.data?.sessions ?? []).length === 0 ? (
        <Empty>No multicast session is running.</Empty>
      ) : (
        <ul class="plain">
          {(mc.data?.sessions ?? []).map((m) => (
            <li key={m.id}>
              <a href={`${BASE}/multicast#session-${m.id}`}>Session {m.id}</a>: {m.image} <State state={m.state} />
            </li>
          ))}
        </ul>
      )}
    </Page>
  );
}
