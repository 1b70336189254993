/**
 * Schedules: recurring task requests (a cron expression in the server's
 * time zone) with their next and last run; add one (operator: deploy,
 * inventory or capture, to a group or to hosts by MAC) and delete one
 * (operator: deleting a schedule removes no data). Below, the tasks that
 * wait for a start time of their own (queued once with a time).
 */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, can, errorText } from '../api.js';
import { BASE } from '../base.js';
import { useLiveReload } from '../live.js';
import type { GroupList, ImageList, Schedule, ScheduleList, Task } from '../types.js';
import { Confirm, Dialog, Empty, ErrorNote, Page, State, announce, formatTime, useLoad, useFocusKept } from '../components/ui.js';


/** A schedule's request in words: what, which image, to whom, with which options. */
function requestText(r: Record<string, unknown>): string {
  const type = typeof r['type'] === 'string' ? r['type'] : 'task';
  const image = typeof r['image'] === 'string' ? r['image'] : null;
  let who = '?';
  if (typeof r['group'] === 'string') who = `group ${r['group']}`;
  else if (Array.isArray(r['macs'])) who = `${r['macs'].length} hosts`;
  else if (typeof r['mac'] === 'string') who = r['mac'];
  let text: string;
  if (type === 'deploy') text = `Deploy ${image ?? 'an image'}${typeof r['revision'] === 'number' ? ` revision ${r['revision']}` : ''} to ${who}`;
  else if (type === 'capture') text = `Capture ${who} into ${image ?? 'an image'}`;
  else if (type === 'inventory') text = `Inventory of ${who}`;
  else text = `${type} of ${who}`;
  const extra: string[] = [];
  if (r['multicast'] !== undefined && r['multicast'] !== false) extra.push('by multicast');
  if (r['wake'] === true) extra.push('with Wake-on-LAN');
  if (typeof r['disk'] === 'string') extra.push(`disk ${r['disk']}`);
  if (typeof r['table'] === 'string' && r['table'] !== 'keep') extra.push(`${r['table']} table`);
  return extra.length ? `${text}, ${extra.join(', ')}` : text;
}

type TaskType = 'deploy' | 'inventory' | 'capture';

function AddSchedule(props: { open: boolean; onClose: () => void; onAdded: () => void }): JSX.Element {
  const [name, setName] = useState('');
  const [type, setType] = useState<TaskType>('deploy');
  const [target, setTarget] = useState<'group' | 'macs'>('group');
  const [group, setGroup] = useState('');
  const [macs, setMacs] = useState('');
  const [image, setImage] = useState('');
  const [cron, setCron] = useState('');
  const [wake, setWake] = useState(true);
  const [multicast, setMulticast] = useState(false);
  const [groups, setGroups] = useState<string[]>([]);
  const [images, setImages] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!props.open) return;
    setError(null);
    void api<GroupList>('GET', '/groups').then((r) => setGroups((r.groups ?? []).flatMap((g) => (g.name ? [g.name] : []))), () => undefined);
    void api<ImageList>('GET', '/images').then((r) => setImages((r.images ?? []).map((i) => i.name)), () => undefined);
  }, [props.open]);
  const byCapture = type === 'capture';
  const effectiveTarget = byCapture ? 'macs' : target;
  const macList = macs.split(/[\s,;]+/).filter((m) => m !== '');

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(null);
    const request: Record<string, unknown> = { type };
    if (effectiveTarget === 'group') {
      if (!group) return setError('Choose the group.');
      request['group'] = group;
    } else if (macList.length === 1) {
      request['mac'] = macList[0];
    } else if (macList.length > 1) {
      request['macs'] = macList;
    } else {
      return setError('Enter the MAC address of a host (or several).');
    }
    if (type !== 'inventory') {
      if (!image.trim()) return setError(type === 'deploy' ? 'Choose the image to deploy.' : 'Name the image to capture into.');
      request['image'] = image.trim();
    }
    if (wake) request['wake'] = true;
    if (type === 'deploy' && multicast && (effectiveTarget === 'group' || macList.length > 1)) request['multicast'] = true;
    setBusy(true);
    try {
      const s = await api<Schedule>('POST', '/schedules', { cron: cron.trim(), ...(name.trim() ? { name: name.trim() } : {}), request });
      announce(`Schedule ${s.name ?? `#${s.id}`} added; next run ${formatTime(s.nextRunAt)}`);
      props.onAdded();
      props.onClose();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog open={props.open} title="Add a schedule" onClose={props.onClose}>
      <form class="stacked" onSubmit={(e) => void submit(e)}>
        <label for="sched-type">Task</label>
        <select id="sched-type" value={type} onChange={(e) => setType(e.currentTarget.value as TaskType)}>
          <option value="deploy">Deploy an image</option>
          <option value="inventory">Collect inventory</option>
          <option value="capture">Capture an image (one host)</option>
        </select>
        {byCapture ? null : (
          <fieldset>
            <legend>Hosts</legend>
            <label>
              <input type="radio" name="sched-target" checked={target === 'group'} onChange={() => setTarget('group')} /> A group
            </label>
            <label>
              <input type="radio" name="sched-target" checked={target === 'macs'} onChange={() => setTarget('macs')} /> Hosts by MAC
            </label>
          </fieldset>
        )}
        {effectiveTarget === 'group' ? (
          <>
            <label for="sched-group">Group</label>
            <select id="sched-group" value={group} onChange={(e) => setGroup(e.currentTarget.value)}>
              <option value="">Choose…</option>
              {groups.map((g) => (
                <option key={g} value={g}>
                  {g}
                </option>
              ))}
            </select>
          </>
        ) : (
          <>
            <label for="sched-macs">{byCapture ? 'MAC of the reference host' : 'MAC addresses (separated by spaces or commas)'}</label>
            <input id="sched-macs" value={macs} onInput={(e) => setMacs(e.currentTarget.value)} placeholder="52:54:00:12:34:56" />
          </>
        )}
        {type === 'deploy' ? (
          <>
            <label for="sched-image">Image</label>
            <select id="sched-image" value={image} onChange={(e) => setImage(e.currentTarget.value)}>
              <option value="">Choose…</option>
              {images.map((i) => (
                <option key={i} value={i}>
                  {i}
                </option>
              ))}
            </select>
          </>
        ) : null}
        {type === 'capture' ? (
          <>
            <label for="sched-image">Image to capture into (new or existing)</label>
            <input id="sched-image" list="sched-images" value={image} onInput={(e) => setImage(e.currentTarget.value)} />
            <datalist id="sched-images">
              {images.map((i) => (
                <option key={i} value={i} />
              ))}
            </datalist>
          </>
        ) : null}
        <label for="sched-cron">When (cron expression)</label>
        <input id="sched-cron" class="mono" required value={cron} onInput={(e) => setCron(e.currentTarget.value)} placeholder="0 22 * * 1-5" aria-describedby="sched-cron-hint" />
        <span id="sched-cron-hint" class="hint">
          Minute, hour, day of month, month, day of week (a sixth field first for seconds), in the server's time zone: <code>0 22 * * 1-5</code> is 22:00 on weekdays, <code>30 6 1 * *</code> 06:30 on the 1st of each month.
        </span>
        <label for="sched-name">Name (optional)</label>
        <input id="sched-name" value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="e.g. nightly-lab-a" />
        <label>
          <input type="checkbox" checked={wake} onChange={(e) => setWake(e.currentTarget.checked)} /> Wake the machines (Wake-on-LAN)
        </label>
        {type === 'deploy' && (effectiveTarget === 'group' || macList.length > 1) ? (
          <label>
            <input type="checkbox" checked={multicast} onChange={(e) => setMulticast(e.currentTarget.checked)} /> One multicast session for all of them
          </label>
        ) : null}
        <ErrorNote error={error} />
        <div class="dialog-actions">
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Adding…' : 'Add schedule'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export default function Schedules(): JSX.Element {
  const list = useLoad(() => api<ScheduleList>('GET', '/schedules'), []);
  const timed = useLoad(() => api<{ tasks?: Task[] }>('GET', '/tasks?state=scheduled&limit=200'), []);
  useLiveReload(
    ['task.state'],
    () => {
      list.reload();
      timed.reload();
    },
    2000,
  );
  const [adding, setAdding] = useState(false);
  const [remove, setRemove] = useState<Schedule | null>(null);
  useFocusKept(list.data);
  const schedules = list.data?.schedules ?? [];
  const waiting = [...(timed.data?.tasks ?? [])].sort((a, b) => (a.startAt ?? '').localeCompare(b.startAt ?? ''));
  const operator = can('operator');
  const label = (s: Schedule): string => (s.name ? `${s.name} (#${s.id})` : `#${s.id}`);
  return (
    <Page
      title="Schedules"
      actions={
        operator ? (
          <button type="button" onClick={() => setAdding(true)}>
            Add a schedule…
          </button>
        ) : null
      }
    >
      <p class="hint">A schedule submits the same task request at each time its cron expression names (the server's time zone). Deleting one deletes no tasks or jobs it made.</p>
      <ErrorNote error={list.error} />
      {schedules.length === 0 && !list.loading ? (
        <Empty>No schedules.</Empty>
      ) : (
        <table>
          <caption class="sr-only">Recurring schedules</caption>
          <thead>
            <tr>
              <th scope="col">Schedule</th>
              <th scope="col">What</th>
              <th scope="col">When</th>
              <th scope="col">Next run</th>
              <th scope="col">Last run</th>
              {operator ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {schedules.map((s) => (
              <tr key={s.id} id={`schedule-${s.id}`}>
                <td>{label(s)}</td>
                <td>{requestText(s.request)}</td>
                <td>
                  <code>{s.cron}</code>
                </td>
                <td>{formatTime(s.nextRunAt)}</td>
                <td>
                  {s.lastRunAt ? (
                    <>
                      {formatTime(s.lastRunAt)} <State state={s.lastResult?.startsWith('failed') ? 'failed' : 'done'} />
                      {s.lastResult ? <div class={s.lastResult.startsWith('failed') ? 'task-error' : 'task-message'}>{s.lastResult}</div> : null}
                      {s.lastTaskId ? (
                        <div>
                          <a href={`${BASE}/tasks/${s.lastTaskId}`}>task #{s.lastTaskId}</a>
                        </div>
                      ) : null}
                      {s.lastJobId ? <div>job #{s.lastJobId}</div> : null}
                    </>
                  ) : (
                    'not yet'
                  )}
                </td>
                {operator ? (
                  <td class="row-actions">
                    <button type="button" onClick={() => setRemove(s)}>
                      Delete…<span class="sr-only"> schedule {label(s)}</span>
                    </button>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Tasks waiting for a start time</h2>
      <p class="hint">Tasks queued once with a start time (fleetboot task deploy … --at TIME); cancel one from its page.</p>
      <ErrorNote error={timed.error} />
      {waiting.length === 0 ? (
        <Empty>No task waits for a start time.</Empty>
      ) : (
        <table>
          <caption class="sr-only">Tasks waiting for their start time, soonest first</caption>
          <thead>
            <tr>
              <th scope="col">Task</th>
              <th scope="col">Type</th>
              <th scope="col">Host</th>
              <th scope="col">Image</th>
              <th scope="col">Starts</th>
            </tr>
          </thead>
          <tbody>
            {waiting.map((t) => (
              <tr key={t.id}>
                <td>
                  <a href={`${BASE}/tasks/${t.id}`}>#{t.id}</a>
                </td>
                <td>{t.type}</td>
                <td>
                  <a href={`${BASE}/hosts/${encodeURIComponent(t.mac)}`}>{t.hostName ?? t.mac}</a>
                </td>
                <td>{t.image ?? '—'}</td>
                <td>{formatTime(t.startAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <AddSchedule open={adding} onClose={() => setAdding(false)} onAdded={list.reload} />
      <Confirm
        open={remove !== null}
        title={`Delete schedule ${remove ? label(remove) : ''}`}
        confirmLabel={`Delete schedule ${remove ? label(remove) : ''}`}
        danger
        onClose={() => setRemove(null)}
        onConfirm={async () => {
          if (!remove) return;
          await api<{ deleted?: Schedule }>('DELETE', `/schedules/${remove.id}`);
          announce(`Schedule ${label(remove)} deleted`);
          list.reload();
        }}
      >
        <p>
          Delete schedule <strong>{remove ? label(remove) : ''}</strong>: {remove ? requestText(remove.request) : ''}, <code>{remove?.cron}</code>? It submits nothing more (its next run was {formatTime(remove?.nextRunAt)}); the tasks and jobs it already made stay.
        </p>
      </Confirm>
    </Page>
  );
}
