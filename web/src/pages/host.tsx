/**
 * One host: its entry, reservation and groups, inventory, tasks, and the
 * boot timeline from the server's own records (DHCP offer with the boot
 * file and why, TFTP and HTTP fetches, the decision, the task), oldest
 * first, with the diagnosis of how far the last boot got; its endpoint
 * agent (state, last report, revoke; inventory, host name and reboot
 * through it) and the agent's recent work.
 */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { useRoute } from 'preact-iso';
import { api, can } from '../api.js';
import { BASE } from '../base.js';
import { useLive, useLiveReload } from '../live.js';
import type { BootEvent, HostDetail, Task } from '../types.js';
import { TaskTable } from '../components/tasks.js';
import { HostAgent } from '../components/host-agent.js';
import { BulkDialog, type BulkAction } from '../components/bulk.js';
import { Confirm, Empty, ErrorNote, Page, State, formatBytes, formatTime, useLoad } from '../components/ui.js';

interface Why {
  mac: string;
  stage: string;
  completed: boolean;
  verdict: string;
  next: string | null;
}

function field(o: Record<string, unknown> | null, path: string): string {
  let v: unknown = o;
  for (const k of path.split('.')) {
    if (typeof v !== 'object' || v === null) return '—';
    v = (v as Record<string, unknown>)[k];
  }
  if (v === null || v === undefined || v === '') return '—';
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
}

function Inventory(props: { inv: Record<string, unknown> | null }): JSX.Element {
  const inv = props.inv;
  if (!inv) return <Empty>No inventory collected yet (an inventory task collects it).</Empty>;
  const disks = Array.isArray(inv['disks']) ? (inv['disks'] as Record<string, unknown>[]) : [];
  const nics = Array.isArray(inv['nics']) ? (inv['nics'] as Record<string, unknown>[]) : [];
  return (
    <dl class="facts">
      <dt>Maker and model</dt>
      <dd>
        {field(inv, 'smbios.manufacturer')} {field(inv, 'smbios.product')}
      </dd>
      <dt>Serial number</dt>
      <dd>{field(inv, 'smbios.serial')}</dd>
      <dt>Firmware</dt>
      <dd>
        {field(inv, 'firmware')} ({field(inv, 'smbios.biosVendor')} {field(inv, 'smbios.biosVersion')})
      </dd>
      <dt>CPU</dt>
      <dd>
        {field(inv, 'cpu.model')}, {field(inv, 'cpu.threads')} threads
      </dd>
      <dt>Memory</dt>
      <dd>{formatBytes(typeof inv['memoryBytes'] === 'number' ? inv['memoryBytes'] : null)}</dd>
      <dt>Disks</dt>
      <dd>{disks.length ? disks.map((d) => `${field(d, 'name')} ${formatBytes(typeof d['sizeBytes'] === 'number' ? d['sizeBytes'] : null)} ${field(d, 'model')}`).join('; ') : '—'}</dd>
      <dt>Network</dt>
      <dd>{nics.length ? nics.map((n) => `${field(n, 'name')} ${field(n, 'mac')}`).join('; ') : '—'}</dd>
      <dt>Collected</dt>
      <dd>{formatTime(field(inv, 'collectedAt'))}</dd>
    </dl>
  );
}

export default function HostPage(): JSX.Element {
  const { params } = useRoute();
  const mac = decodeURIComponent(params['mac'] ?? '');
  const host = useLoad(() => api<HostDetail>('GET', `/hosts/${encodeURIComponent(mac)}`), [mac]);
  const tasks = useLoad(() => api<{ tasks: Task[] }>('GET', `/tasks?mac=${encodeURIComponent(mac)}&limit=20`), [mac]);
  const timeline = useLoad(() => api<{ events: BootEvent[] }>('GET', `/hosts/${encodeURIComponent(mac)}/timeline?limit=200`), [mac]);
  const why = useLoad(() => api<Why>('GET', `/hosts/${encodeURIComponent(mac)}/why`), [mac]);
  const reloadAll = (): void => {
    host.reload();
    tasks.reload();
  };
  useLiveReload(['task.state'], reloadAll);
  useLive(['boot.event'], (kind, data) => {
    if (kind === 'reset' || (typeof data === 'object' && data !== null && (data as Record<string, unknown>)['mac'] === host.data?.mac)) {
      timeline.reload();
      why.reload();
    }
  });
  const [action, setAction] = useState<BulkAction | null>(null);
  const [remove, setRemove] = useState(false);
  const h = host.data;
  const events = [...(timeline.data?.events ?? [])].sort((a, b) => a.id - b.id);
  return (
    <Page
      title={h ? `Host ${h.name ?? h.mac}` : 'Host'}
      actions={
        h && can('operator') ? (
          <>
            <button type="button" onClick={() => setAction('deploy')}>
              Deploy…
            </button>
            <button type="button" onClick={() => setAction('capture')}>
              Capture…
            </button>
            <button type="button" onClick={() => setAction('inventory')}>
              Inventory…
            </button>
            <button type="button" onClick={() => setAction('wake')}>
              Wake…
            </button>
            <button type="button" onClick={() => setAction('entry')}>
              Assign entry…
            </button>
            {can('admin') ? (
              <button type="button" class="danger" onClick={() => setRemove(true)}>
                Delete host…
              </button>
            ) : null}
          </>
        ) : null
      }
    >
      <ErrorNote error={host.error} />
      {h ? (
        <>
          <dl class="facts">
            <dt>MAC</dt>
            <dd class="mono">{h.mac}</dd>
            <dt>Name</dt>
            <dd>{h.name ?? '—'}</dd>
            <dt>Status</dt>
            <dd>
              <State state={h.status} />
            </dd>
            <dt>Boot entry</dt>
            <dd>{h.entry ?? 'none (the boot menu)'}</dd>
            <dt>Reserved address</dt>
            <dd>{h.ip ?? 'none'}</dd>
            <dt>Groups</dt>
            <dd>
              {h.groups.length === 0
                ? 'none'
                : h.groups.map((g) => (
                    <a class="chip" key={g} href={`${BASE}/hosts?group=${encodeURIComponent(g)}`}>
                      {g}
                    </a>
                  ))}
            </dd>
          </dl>
          <h2>Last boot</h2>
          {why.data ? (
            <p class={`verdict ${why.data.completed ? 'ok' : 'stopped'}`} data-testid="boot-verdict">
              <strong>{why.data.completed ? 'Completed: ' : 'Not finished: '}</strong>
              {why.data.verdict}
              {why.data.next ? <> Next expected: {why.data.next}</> : null}
            </p>
          ) : (
            <ErrorNote error={why.error} />
          )}
          <h2>Boot timeline</h2>
          {events.length === 0 ? (
            <Empty>The server has no record of this machine booting.</Empty>
          ) : (
            <ol class="timeline" data-testid="timeline">
              {events.map((e) => (
                <li key={e.id} data-kind={e.kind}>
                  <time dateTime={e.at}>{formatTime(e.at)}</time> <span class="kind">{e.kind}</span> {e.summary}
                </li>
              ))}
            </ol>
          )}
          <h2>Tasks</h2>
          {(tasks.data?.tasks ?? []).length === 0 ? <Empty>No task yet.</Empty> : <TaskTable caption="Tasks of this host" tasks={tasks.data?.tasks ?? []} onChanged={reloadAll} showHost={false} />}
          <HostAgent mac={h.mac} hostName={h.name} onWorkDone={host.reload} />
          <h2>Inventory</h2>
          <Inventory inv={h.inventory} />
          <BulkDialog action={action} selection={{ macs: [h.mac], group: null, count: 1 }} onClose={() => setAction(null)} onDone={reloadAll} />
          <Confirm
            open={remove}
            title="Delete host"
            confirmLabel={`Delete ${h.name ?? h.mac}`}
            danger
            onClose={() => setRemove(false)}
            onConfirm={async () => {
              await api('DELETE', `/hosts/${encodeURIComponent(h.mac)}`);
              location.assign(`${BASE}/hosts`);
            }}
          >
            <p>
              Delete host {h.name ?? ''} {h.mac}? Its reservation, group memberships and entry go with it; the next boot puts it in Pending hosts again.
            </p>
          </Confirm>
        </>
      ) : null}
    </Page>
  );
}
