/**
 * Images: the list with the current revision, size and date; an image's
 * page with its revisions (roll back to a ready one, approve a pending
 * one), the current revision's partitions, what uses it (active tasks,
 * schedules, hosts whose last deploy wrote it), protection against capture
 * and deletion.
 */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { useLocation, useRoute } from 'preact-iso';
import { api, can, errorText } from '../api.js';
import { BASE } from '../base.js';
import { useLiveReload } from '../live.js';
import type { ImageDetail, ImageInfo, ImageList, ImageRevision, Schedule, ScheduleList, Task } from '../types.js';
import { TaskTable } from '../components/tasks.js';
import { Confirm, Empty, ErrorNote, Page, State, announce, formatBytes, formatTime, useLoad, useFocusKept } from '../components/ui.js';


const imageHref = (name: string): string => `${BASE}/images/${encodeURIComponent(name)}`;
const hostHref = (mac: string): string => `${BASE}/hosts/${encodeURIComponent(mac)}`;

/** How many finished tasks "used by" reads to find the hosts whose last deploy wrote the image. */
const DONE_TASKS_READ = 1000;

function ImageListPage(): JSX.Element {
  const list = useLoad(() => api<ImageList>('GET', '/images'), []);
  useLiveReload(['task.state'], list.reload, 2000);
  const images = list.data?.images ?? [];
  return (
    <Page title="Images">
      <p class="hint">Images are made by capture tasks (Hosts, then Capture…); each capture adds a revision, and deploys write the current one.</p>
      <ErrorNote error={list.error} />
      {images.length === 0 && !list.loading ? (
        <Empty>No images yet: capture one from a reference machine.</Empty>
      ) : (
        <table>
          <caption class="sr-only">Images</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Current revision</th>
              <th scope="col">Revisions</th>
              <th scope="col">Stored</th>
              <th scope="col">Disk</th>
              <th scope="col">Created</th>
              <th scope="col">Capture</th>
            </tr>
          </thead>
          <tbody>
            {images.map((i) => (
              <tr key={i.name}>
                <td>
                  <a href={imageHref(i.name)}>{i.name}</a>
                </td>
                <td>{i.revision !== null ? `revision ${i.revision}` : <State state="pending" />}</td>
                <td>
                  {i.revisionCount}
                  {i.pending > 0 ? ` (${i.pending} pending approval)` : ''}
                </td>
                <td>{formatBytes(i.sizeBytes)}</td>
                <td>{formatBytes(i.diskBytes)}</td>
                <td>{formatTime(i.createdAt)}</td>
                <td>{i.protected ? <State state="protected" /> : 'allowed'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
function text(v: unknown): string {
  return typeof v === 'string' && v !== '' ? v : '—';
}
function records(v: unknown): Record<string, unknown>[] {
  return Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null) : [];
}

/** The current revision's partitions, read from its manifest (src/model/manifest.ts). */
function Partitions(props: { manifest: Record<string, unknown> | null }): JSX.Element {
  const parts = records(props.manifest?.['partitions']);
  if (parts.length === 0) return <Empty>No approved revision: no partitions to show.</Empty>;
  return (
    <table>
      <caption class="sr-only">Partitions of the current revision</caption>
      <thead>
        <tr>
          <th scope="col">Partition</th>
          <th scope="col">File system</th>
          <th scope="col">Tool</th>
          <th scope="col">Size</th>
          <th scope="col">Used</th>
          <th scope="col">Stored</th>
        </tr>
      </thead>
      <tbody>
        {parts.map((p, i) => (
          <tr key={num(p['number']) ?? i}>
            <td>{num(p['number']) ?? '—'}</td>
            <td>{text(p['filesystem'])}</td>
            <td>{text(p['tool'])}</td>
            <td>{formatBytes(num(p['sizeBytes']))}</td>
            <td>{formatBytes(num(p['usedBytes']))}</td>
            <td>{formatBytes(num(p['streamBytes']))}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/*
 * What uses an image, derived from the task and schedule lists (the API
 * has no query for it): active tasks (they block deletion; read again as
 * tasks change), and, read once per visit, schedules whose request names
 * it and hosts whose newest finished deploy among the newest
 * DONE_TASKS_READ finished tasks wrote it.
 */
async function activeTasksOf(name: string): Promise<Task[]> {
  const r = await api<{ tasks?: Task[] }>('GET', '/tasks?active=true&limit=1000');
  return (r.tasks ?? []).filter((t) => t.image === name);
}

interface History {
  schedules: Schedule[];
  hosts: { mac: string; hostName: string | null; revision: number | null; at: string }[];
}

async function historyOf(name: string): Promise<History> {
  const [done, schedules] = await Promise.all([api<{ tasks?: Task[] }>('GET', `/tasks?state=done&limit=${DONE_TASKS_READ}`), api<ScheduleList>('GET', '/schedules')]);
  const seen = new Set<string>();
  const hosts: History['hosts'] = [];
  for (const t of done.tasks ?? []) {
    if (t.type !== 'deploy' || seen.has(t.mac)) continue;
    seen.add(t.mac);
    if (t.image === name) hosts.push({ mac: t.mac, hostName: t.hostName ?? null, revision: t.revision ?? null, at: t.finishedAt ?? t.updatedAt });
  }
  return { schedules: (schedules.schedules ?? []).filter((s) => s.request['image'] === name), hosts };
}

function RevisionTable(props: { image: ImageDetail; onRollback: (r: ImageRevision) => void; onApprove: (r: ImageRevision) => void }): JSX.Element {
  const { image } = props;
  const operator = can('operator');
  const revisions = [...image.revisions].sort((a, b) => b.number - a.number);
  return (
    <table>
      <caption class="sr-only">Revisions of image {image.name}, newest first</caption>
      <thead>
        <tr>
          <th scope="col">Revision</th>
          <th scope="col">State</th>
          <th scope="col">Stored</th>
          <th scope="col">Source host</th>
          <th scope="col">Created</th>
          <th scope="col">Approved</th>
          {operator ? <th scope="col">Actions</th> : null}
        </tr>
      </thead>
      <tbody>
        {revisions.map((r) => (
          <tr key={r.number} data-revision={r.number}>
            <td>
              {r.number}
              {r.current ? <strong> (current)</strong> : null}
            </td>
            <td>
              <State state={r.state} />
            </td>
            <td>{formatBytes(r.sizeBytes)}</td>
            <td>{r.sourceMac ? <a href={hostHref(r.sourceMac)}>{r.sourceMac}</a> : '—'}</td>
            <td>
              {formatTime(r.createdAt)}
              {r.taskId ? (
                <>
                  {' '}
                  (<a href={`${BASE}/tasks/${r.taskId}`}>task #{r.taskId}</a>)
                </>
              ) : null}
            </td>
            <td>{r.state === 'pending' ? 'not yet' : formatTime(r.approvedAt)}</td>
            {operator ? (
              <td class="row-actions">
                {r.state === 'pending' ? (
                  <button type="button" onClick={() => props.onApprove(r)}>
                    Approve…<span class="sr-only"> revision {r.number}</span>
                  </button>
                ) : null}
                {r.state === 'ready' && !r.current ? (
                  <button type="button" onClick={() => props.onRollback(r)}>
                    {image.revision !== null && r.number > image.revision ? 'Make current…' : 'Roll back to this…'}
                    <span class="sr-only"> revision {r.number}</span>
                  </button>
                ) : null}
              </td>
            ) : null}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function describeTarget(s: Schedule): string {
  const r = s.request;
  if (typeof r['group'] === 'string') return `group ${r['group']}`;
  if (Array.isArray(r['macs'])) return `${r['macs'].length} hosts`;
  if (typeof r['mac'] === 'string') return r['mac'];
  return '—';
}

function ImagePage(props: { name: string }): JSX.Element {
  const { name } = props;
  const loc = useLocation();
  const image = useLoad(() => api<ImageDetail>('GET', `/images/${encodeURIComponent(name)}`), [name]);
  const active = useLoad(() => activeTasksOf(name), [name]);
  const history = useLoad(() => historyOf(name), [name]);
  useLiveReload(
    ['task.state'],
    () => {
      image.reload();
      active.reload();
    },
    2000,
  );
  const [rollback, setRollback] = useState<ImageRevision | null>(null);
  const [approve, setApprove] = useState<ImageRevision | null>(null);
  const [remove, setRemove] = useState(false);
  const [protectError, setProtectError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useFocusKept(image.data);
  const img = image.data;
  const operator = can('operator');

  const setProtected = async (on: boolean): Promise<void> => {
    setBusy(true);
    setProtectError(null);
    try {
      await api<ImageInfo>('PATCH', `/images/${encodeURIComponent(name)}`, { protected: on });
      announce(on ? `Image ${name} is protected against capture` : `Image ${name} accepts captures again`);
      image.reload();
    } catch (err) {
      setProtectError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const running = active.data ?? [];
  const past = history.data;
  return (
    <Page
      title={`Image ${name}`}
      actions={
        img && operator ? (
          <>
            <button type="button" disabled={busy} onClick={() => void setProtected(!img.protected)}>
              {img.protected ? 'Allow captures' : 'Protect against capture'}
            </button>
            {can('admin') ? (
              <button type="button" class="danger" onClick={() => setRemove(true)}>
                Delete image…
              </button>
            ) : null}
          </>
        ) : null
      }
    >
      <p>
        <a href={`${BASE}/images`}>All images</a>
      </p>
      <ErrorNote error={image.error ?? protectError} />
      {img ? (
        <>
          <dl class="facts">
            <dt>Current revision</dt>
            <dd>{img.revision !== null ? `revision ${img.revision}` : 'none: no revision is approved yet'}</dd>
            <dt>Revisions</dt>
            <dd>
              {img.revisionCount}
              {img.pending > 0 ? `, ${img.pending} pending approval` : ''}
            </dd>
            <dt>Stored</dt>
            <dd>{formatBytes(img.sizeBytes)}</dd>
            <dt>Source disk</dt>
            <dd>
              {formatBytes(img.diskBytes)}, {img.tableType === 'dos' ? 'MBR (dos)' : img.tableType.toUpperCase()} partition table, {img.partitions} partition{img.partitions === 1 ? '' : 's'}
            </dd>
            <dt>Captured from</dt>
            <dd>{img.sourceMac ? <a href={hostHref(img.sourceMac)}>{img.sourceMac}</a> : '—'}</dd>
            <dt>Created</dt>
            <dd>{formatTime(img.createdAt)}</dd>
            <dt>Capture</dt>
            <dd data-testid="image-protection">
              {img.protected ? (
                <>
                  <State state="protected" /> captures into this image are refused
                </>
              ) : (
                'allowed: a capture into this name adds a revision'
              )}
            </dd>
            <dt>Manifest sha256</dt>
            <dd class="mono">{img.manifestSha256}</dd>
          </dl>
          <h2>Revisions</h2>
          <p class="hint">Rolling back or approving only changes which revision deploys write; no revision is deleted.</p>
          <RevisionTable image={img} onRollback={setRollback} onApprove={setApprove} />
          <h2>Partitions of the current revision</h2>
          <Partitions manifest={img.manifest} />
          <h2>Used by</h2>
          <ErrorNote error={active.error ?? history.error} />
          <p class="hint">
            From the task and schedule lists: active tasks, schedules whose request names this image, and hosts whose latest finished deploy (among the newest {DONE_TASKS_READ.toLocaleString('en')} finished tasks) wrote it.
          </p>
          <h3>Active tasks</h3>
          {running.length === 0 ? <Empty>No active task uses this image.</Empty> : <TaskTable caption={`Active tasks using image ${name}`} tasks={running} onChanged={active.reload} />}
          {past ? (
            <>
              <h3>Schedules</h3>
              {past.schedules.length === 0 ? (
                <Empty>No schedule uses this image.</Empty>
              ) : (
                <ul>
                  {past.schedules.map((s) => (
                    <li key={s.id}>
                      <a href={`${BASE}/schedules#schedule-${s.id}`}>{s.name ?? `Schedule #${s.id}`}</a>: {String(s.request['type'])} to {describeTarget(s)}, <code>{s.cron}</code>, next {formatTime(s.nextRunAt)}
                    </li>
                  ))}
                </ul>
              )}
              <h3>Hosts last deployed with it</h3>
              {past.hosts.length === 0 ? (
                <Empty>No host's latest deploy wrote this image.</Empty>
              ) : (
                <ul class="columns">
                  {past.hosts.map((h) => (
                    <li key={h.mac}>
                      <a href={hostHref(h.mac)}>{h.hostName ?? h.mac}</a>
                      {h.revision !== null ? ` (revision ${h.revision}, ${formatTime(h.at)})` : ` (${formatTime(h.at)})`}
                    </li>
                  ))}
                </ul>
              )}
            </>
          ) : null}
          <Confirm
            open={rollback !== null}
            title={`Make revision ${rollback?.number ?? ''} of ${name} current`}
            confirmLabel={`Make revision ${rollback?.number ?? ''} current`}
            onClose={() => setRollback(null)}
            onConfirm={async () => {
              if (!rollback) return;
              await api<ImageRevision>('POST', `/images/${encodeURIComponent(name)}/rollback`, { to: rollback.number });
              announce(`Image ${name}: revision ${rollback.number} is current`);
              image.reload();
            }}
          >
            <p>
              Make revision <strong>{rollback?.number}</strong> of image <strong>{name}</strong> current
              {img.revision !== null ? <> instead of revision {img.revision}</> : null}? Deploys that start from now on write revision {rollback?.number}; deploys already running keep the revision they started with. Nothing is deleted: you can switch back.
            </p>
          </Confirm>
          <Confirm
            open={approve !== null}
            title={`Approve revision ${approve?.number ?? ''} of ${name}`}
            confirmLabel={`Approve revision ${approve?.number ?? ''}`}
            onClose={() => setApprove(null)}
            onConfirm={async () => {
              if (!approve) return;
              await api<ImageRevision>('POST', `/images/${encodeURIComponent(name)}/revisions/${approve.number}/approve`);
              announce(`Image ${name}: revision ${approve.number} approved and current`);
              image.reload();
            }}
          >
            <p>
              Approve revision <strong>{approve?.number}</strong> of image <strong>{name}</strong>
              {approve?.sourceMac ? <> (captured from {approve.sourceMac})</> : null}? It becomes the current revision: deploys that start from now on write it.
            </p>
          </Confirm>
          <Confirm
            open={remove}
            title={`Delete image ${name}`}
            confirmLabel={`Delete ${name} and its ${img.revisionCount} revision${img.revisionCount === 1 ? '' : 's'}`}
            danger
            onClose={() => setRemove(false)}
            onConfirm={async () => {
              await api('DELETE', `/images/${encodeURIComponent(name)}`);
              announce(`Image ${name} deleted`);
              loc.route(`${BASE}/images`);
            }}
          >
            <p>
              Delete image <strong>{name}</strong> with all its <strong>{img.revisionCount}</strong> revision{img.revisionCount === 1 ? '' : 's'} ({formatBytes(img.sizeBytes)} for the current one)? Their files are removed and cannot be restored.
            </p>
            <p>
              The server refuses while an active task uses the image{running.length > 0 ? <> ({running.length} now)</> : null}.
              {past && past.schedules.length === 1 ? ' 1 schedule deploys it: its next run will fail.' : null}
              {past && past.schedules.length > 1 ? ` ${past.schedules.length} schedules deploy it: their next runs will fail.` : null}
            </p>
          </Confirm>
        </>
      ) : null}
    </Page>
  );
}

export default function Images(): JSX.Element {
  const { params } = useRoute();
  const name = params['name'];
  return name ? <ImagePage name={decodeURIComponent(name)} /> : <ImageListPage />;
}
