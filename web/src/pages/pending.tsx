/** The inbox of machines that booted unknown and wait for approval: approve (name, group, image to deploy) or reject. */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, can } from '../api.js';
import { BASE } from '../base.js';
import { useLiveReload } from '../live.js';
import type { Host } from '../types.js';
import { Confirm, Empty, ErrorNote, Page, announce, formatTime, useLoad } from '../components/ui.js';

interface Named {
  name: string;
}

export default function Pending(): JSX.Element {
  const list = useLoad(() => api<{ hosts: Host[] }>('GET', '/hosts?status=pending&limit=500'), []);
  useLiveReload(['host.pending', 'host.changed'], list.reload, 500);
  const [approve, setApprove] = useState<Host | null>(null);
  const [reject, setReject] = useState<Host | null>(null);
  const [name, setName] = useState('');
  const [group, setGroup] = useState('');
  const [image, setImage] = useState('');
  const [groups, setGroups] = useState<Named[]>([]);
  const [images, setImages] = useState<Named[]>([]);
  useEffect(() => {
    if (!approve) return;
    setName('');
    setGroup('');
    setImage('');
    void api<{ groups: Named[] }>('GET', '/groups').then((r) => setGroups(r.groups));
    void api<{ images: Named[] }>('GET', '/images').then((r) => setImages(r.images));
  }, [approve]);
  const hosts = list.data?.hosts ?? [];
  const operator = can('operator');
  return (
    <Page title="Pending hosts">
      <p class="hint">Machines that booted without being known. Approving one makes it a host; rejecting removes it until it boots again.</p>
      <ErrorNote error={list.error} />
      {hosts.length === 0 && !list.loading ? (
        <Empty>No machine is waiting for approval.</Empty>
      ) : (
        <table>
          <caption class="sr-only">Machines waiting for approval</caption>
          <thead>
            <tr>
              <th scope="col">MAC</th>
              <th scope="col">First seen</th>
              {operator ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {hosts.map((h) => (
              <tr key={h.mac} data-mac={h.mac}>
                <td class="mono">
                  <a href={`${BASE}/hosts/${encodeURIComponent(h.mac)}`}>{h.mac}</a>
                </td>
                <td>{formatTime(h.createdAt)}</td>
                {operator ? (
                  <td class="row-actions">
                    <button type="button" class="primary" onClick={() => setApprove(h)}>
                      Approve…<span class="sr-only"> {h.mac}</span>
                    </button>
                    <button type="button" onClick={() => setReject(h)}>
                      Reject…<span class="sr-only"> {h.mac}</span>
                    </button>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Confirm
        open={approve !== null}
        title={`Approve ${approve?.mac ?? ''}`}
        confirmLabel={image ? `Approve and deploy ${image}` : 'Approve'}
        onClose={() => setApprove(null)}
        onConfirm={async () => {
          if (!approve) return;
          const h = await api<Host>('POST', `/hosts/${encodeURIComponent(approve.mac)}/approve`, name ? { name } : {});
          if (group) await api('POST', `/groups/${encodeURIComponent(group)}/members`, { macs: [h.mac] });
          if (image) await api('POST', '/tasks', { type: 'deploy', mac: h.mac, image });
          announce(`${h.name ?? h.mac} approved`);
          list.reload();
        }}
      >
        <p>
          <label for="approve-name">Name (optional)</label>
          <input id="approve-name" value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="e.g. lab-pc-07" />
        </p>
        <p>
          <label for="approve-group">Add to group (optional)</label>
          <select id="approve-group" value={group} onChange={(e) => setGroup(e.currentTarget.value)}>
            <option value="">No group</option>
            {groups.map((g) => (
              <option key={g.name} value={g.name}>
                {g.name}
              </option>
            ))}
          </select>
        </p>
        <p>
          <label for="approve-image">Deploy an image now (optional)</label>
          <select id="approve-image" value={image} onChange={(e) => setImage(e.currentTarget.value)}>
            <option value="">No deploy</option>
            {images.map((i) => (
              <option key={i.name} value={i.name}>
                {i.name}
              </option>
            ))}
          </select>
        </p>
      </Confirm>
      <Confirm
        open={reject !== null}
        title={`Reject ${reject?.mac ?? ''}`}
        confirmLabel="Reject"
        danger
        onClose={() => setReject(null)}
        onConfirm={async () => {
          if (!reject) return;
          await api('POST', `/hosts/${encodeURIComponent(reject.mac)}/reject`);
          announce(`${reject.mac} rejected`);
          list.reload();
        }}
      >
        <p>Reject {reject?.mac}? It is removed from this list, and comes back if it boots again.</p>
      </Confirm>
    </Page>
  );
}
