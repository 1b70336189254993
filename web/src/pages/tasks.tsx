/** Tasks: filter by state, live progress with rate and ETA, cancel and retry. */
import type { JSX } from 'preact';
import { useLocation } from 'preact-iso';
import { api, qs } from '../api.js';
import { BASE } from '../base.js';
import { useLiveReload } from '../live.js';
import type { Task } from '../types.js';
import { TaskTable } from '../components/tasks.js';
import { Empty, ErrorNote, Page, useLoad } from '../components/ui.js';

const FILTERS = [
  { value: '', label: 'All' },
  { value: 'active', label: 'Active' },
  { value: 'running', label: 'Running' },
  { value: 'queued', label: 'Queued' },
  { value: 'scheduled', label: 'Scheduled' },
  { value: 'done', label: 'Done' },
  { value: 'failed', label: 'Failed' },
  { value: 'cancelled', label: 'Cancelled' },
];

export default function Tasks(): JSX.Element {
  const loc = useLocation();
  const state = FILTERS.some((f) => f.value === loc.query['state']) ? (loc.query['state'] ?? '') : '';
  const query = state === 'active' ? { active: 'true' } : { state };
  const list = useLoad(() => api<{ tasks: Task[] }>('GET', `/tasks${qs({ ...query, limit: 200 })}`), [state]);
  useLiveReload(['task.state'], list.reload);
  const tasks = list.data?.tasks ?? [];
  return (
    <Page title="Tasks">
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label for="task-state">State</label>
        <select id="task-state" value={state} onChange={(e) => loc.route(`${BASE}/tasks${qs({ state: e.currentTarget.value })}`, true)}>
          {FILTERS.map((f) => (
            <option key={f.value} value={f.value}>
              {f.label}
            </option>
          ))}
        </select>
      </form>
      <ErrorNote error={list.error} />
      {tasks.length === 0 && !list.loading ? <Empty>No task{state ? ` in state ${state}` : ''}.</Empty> : <TaskTable caption="Tasks, newest first" tasks={tasks} onChanged={list.reload} />}
    </Page>
  );
}
