/** One task: its figures, live progress, and its log (the task's steps as the server recorded them). */
import type { JSX } from 'preact';
import { useRoute } from 'preact-iso';
import { api } from '../api.js';
import { BASE } from '../base.js';
import { useLiveReload } from '../live.js';
import type { BootEvent, Task } from '../types.js';
import { TaskTable } from '../components/tasks.js';
import { Empty, ErrorNote, Page, formatTime, useLoad } from '../components/ui.js';

export default function TaskPage(): JSX.Element {
  const { params } = useRoute();
  const id = Number(params['id']);
  const task = useLoad(() => api<Task>('GET', `/tasks/${id}`), [id]);
  const t = task.data;
  const log = useLoad(async () => (t ? (await api<{ events: BootEvent[] }>('GET', `/hosts/${encodeURIComponent(t.mac)}/timeline?limit=500`)).events : []), [t?.mac, t?.state]);
  useLiveReload(['task.state'], task.reload);
  const steps = (log.data ?? []).filter((e) => e.kind === 'task' && e.detail['task'] === id).sort((a, b) => a.id - b.id);
  return (
    <Page title={`Task #${id}`}>
      <ErrorNote error={task.error} />
      {t ? (
        <>
          <TaskTable caption="The task" tasks={[t]} onChanged={task.reload} />
          <dl class="facts">
            <dt>Host</dt>
            <dd>
              <a href={`${BASE}/hosts/${encodeURIComponent(t.mac)}`}>{t.hostName ?? t.mac}</a>
            </dd>
            <dt>Created</dt>
            <dd>{formatTime(t.createdAt)}</dd>
            <dt>Started</dt>
            <dd>{formatTime(t.startedAt)}</dd>
            <dt>Finished</dt>
            <dd>{formatTime(t.finishedAt)}</dd>
            <dt>Attempts</dt>
            <dd>{t.attempts}</dd>
            {t.retryOf ? (
              <>
                <dt>Retry of</dt>
                <dd>
                  <a href={`${BASE}/tasks/${t.retryOf}`}>#{t.retryOf}</a>
                </dd>
              </>
            ) : null}
            {t.jobId ? (
              <>
                <dt>Job</dt>
                <dd>#{t.jobId}</dd>
              </>
            ) : null}
          </dl>
          <h2>Log</h2>
          {steps.length === 0 ? (
            <Empty>No step recorded yet.</Empty>
          ) : (
            <ol class="timeline">
              {steps.map((e) => (
                <li key={e.id}>
                  <time dateTime={e.at}>{formatTime(e.at)}</time> {e.summary}
                </li>
              ))}
            </ol>
          )}
        </>
      ) : null}
    </Page>
  );
}
