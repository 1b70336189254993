/** A table of tasks with live progress bars (shared by the dashboard, the task list and the host page). */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api, can } from '../api.js';
import { BASE } from '../base.js';
import { taskProgress } from '../live.js';
import type { Task } from '../types.js';
import { Confirm, Progress, State, announce, formatTime } from './ui.js';

export const ACTIVE_STATES = ['scheduled', 'queued', 'booting', 'waiting', 'running'];

/** The bar of one task: the stream's latest figures when there are any, else the task's own. */
export function TaskBar(props: { task: Task }): JSX.Element {
  const t = props.task;
  // Live figures only while it runs: a finished task shows what the server recorded at its end.
  const live = ACTIVE_STATES.includes(t.state) ? taskProgress(t.id).value : null;
  const done = live?.bytesDone ?? t.bytesDone;
  const total = live?.bytesTotal ?? t.bytesTotal ?? null;
  const rate = live ? live.rateBps : (t.rateBps ?? null);
  const eta = live ? live.etaSeconds : (t.etaSeconds ?? null);
  return <Progress id={`task-${t.id}`} done={done} total={total} rateBps={rate} etaSeconds={eta} label={`Task ${t.id} progress`} />;
}

export function TaskTable(props: { tasks: Task[]; onChanged: () => void; showHost?: boolean; caption: string }): JSX.Element {
  const [cancel, setCancel] = useState<Task | null>(null);
  const operator = can('operator');
  const retry = async (t: Task): Promise<void> => {
    const r = await api<Task>('POST', `/tasks/${t.id}/retry`);
    announce(`Task ${t.id} queued again as task ${r.id}`);
    props.onChanged();
  };
  return (
    <>
      <table class="tasks">
        <caption class="sr-only">{props.caption}</caption>
        <thead>
          <tr>
            <th scope="col">Task</th>
            <th scope="col">Type</th>
            {props.showHost !== false ? <th scope="col">Host</th> : null}
            <th scope="col">Image</th>
            <th scope="col">State</th>
            <th scope="col">Progress</th>
            <th scope="col">Updated</th>
            {operator ? <th scope="col">Actions</th> : null}
          </tr>
        </thead>
        <tbody>
          {props.tasks.map((t) => (
            <tr key={t.id} data-task={t.id}>
              <td>
                <a href={`${BASE}/tasks/${t.id}`}>#{t.id}</a>
              </td>
              <td>{t.type}</td>
              {props.showHost !== false ? (
                <td>
                  <a href={`${BASE}/hosts/${encodeURIComponent(t.mac)}`}>{t.hostName ?? t.mac}</a>
                </td>
              ) : null}
              <td>{t.image ?? '—'}</td>
              <td>
                <State state={t.state} />
                {t.error ? <div class="task-error">{t.error}</div> : t.message ? <div class="task-message">{t.message}</div> : null}
              </td>
              <td>{t.state === 'running' || t.bytesDone > 0 ? <TaskBar task={t} /> : '—'}</td>
              <td>{formatTime(t.updatedAt)}</td>
              {operator ? (
                <td class="row-actions">
                  {ACTIVE_STATES.includes(t.state) ? (
                    <button type="button" onClick={() => setCancel(t)}>
                      Cancel<span class="sr-only"> task {t.id}</span>
                    </button>
                  ) : null}
                  {t.state === 'failed' || t.state === 'cancelled' ? (
                    <button type="button" onClick={() => void retry(t)}>
                      Retry<span class="sr-only"> task {t.id}</span>
                    </button>
                  ) : null}
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
      <Confirm
        open={cancel !== null}
        title="Cancel task"
        confirmLabel="Cancel the task"
        danger
        onClose={() => setCancel(null)}
        onConfirm={async () => {
          if (!cancel) return;
          await api('POST', `/tasks/${cancel.id}/cancel`);
          announce(`Task ${cancel.id} cancelled`);
          props.onChanged();
        }}
      >
        <p>
          Cancel task #{cancel?.id} ({cancel?.type} of {cancel?.hostName ?? cancel?.mac})? A running deploy leaves the disk unusable until it is deployed again.
        </p>
      </Confirm>
    </>
  );
}
