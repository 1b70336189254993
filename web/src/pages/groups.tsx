/**
 * Host groups: the list with member counts, create (operator) and delete
 * (admin); a group's page lists its members, adds hosts by MAC and removes
 * members (operator), and links to the hosts list filtered by the group,
 * where the bulk actions are.
 */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { useLocation, useRoute } from 'preact-iso';
import { api, can, errorText, qs } from '../api.js';
import { BASE } from '../base.js';
import { useLiveReload } from '../live.js';
import type { Group, GroupList, GroupListItem, GroupMember, GroupMembersAdded } from '../types.js';
import { Confirm, Empty, ErrorNote, Page, announce, formatTime, useLoad, useFocusKept } from '../components/ui.js';


const hostsOf = (group: string): string => `${BASE}/hosts${qs({ group })}`;
const groupHref = (group: string): string => `${BASE}/groups/${encodeURIComponent(group)}`;

function hostsText(n: number): string {
  return `${n.toLocaleString('en')} host${n === 1 ? '' : 's'}`;
}

/** The deletion's confirmation: what goes (the memberships), what stays, and what blocks it. */
function DeleteGroup(props: { group: { name: string; members: number } | null; onClose: () => void; onDeleted: (name: string) => void }): JSX.Element {
  const g = props.group;
  return (
    <Confirm
      open={g !== null}
      title={`Delete group ${g?.name ?? ''}`}
      confirmLabel={`Delete group ${g?.name ?? ''}`}
      danger
      onClose={props.onClose}
      onConfirm={async () => {
        if (!g) return;
        await api('DELETE', `/groups/${encodeURIComponent(g.name)}`);
        announce(`Group ${g.name} deleted`);
        props.onDeleted(g.name);
      }}
    >
      <p>
        Delete group <strong>{g?.name}</strong>? Its {hostsText(g?.members ?? 0)} stay hosts: only their membership of this group goes. Jobs made for the group keep its name.
      </p>
      <p>A schedule that uses the group blocks the deletion: remove that schedule first.</p>
    </Confirm>
  );
}

function GroupListPage(): JSX.Element {
  const list = useLoad(() => api<GroupList>('GET', '/groups'), []);
  const [name, setName] = useState('');
  const [createError, setCreateError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [remove, setRemove] = useState<{ name: string; members: number } | null>(null);
  useFocusKept(list.data);
  const groups = (list.data?.groups ?? []).filter((g): g is GroupListItem & { name: string } => typeof g.name === 'string');

  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    const n = name.trim();
    if (!n) {
      setCreateError('Name the group.');
      return;
    }
    setBusy(true);
    setCreateError(null);
    try {
      await api<Group>('POST', '/groups', { name: n });
      announce(`Group ${n} created`);
      setName('');
      list.reload();
    } catch (err) {
      setCreateError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const admin = can('admin');
  return (
    <Page title="Groups">
      <p class="hint">
        A group names a set of hosts: deploy, capture, inventory and schedules can take a whole group. Add hosts to a group from the <a href={`${BASE}/hosts`}>hosts list</a> (select them, then Add to group).
      </p>
      {can('operator') ? (
        <form class="inline-form" onSubmit={(e) => void create(e)} aria-labelledby="new-group-title">
          <h2 id="new-group-title" class="sr-only">
            New group
          </h2>
          <label for="group-name">New group name</label>
          <input id="group-name" value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="e.g. lab-a" aria-describedby="group-name-hint" />
          <button type="submit" class="primary" disabled={busy}>
            Create group
          </button>
          <span id="group-name-hint" class="hint">
            Letters, digits, . _ - (up to 64).
          </span>
        </form>
      ) : null}
      <ErrorNote error={createError ?? list.error} />
      {groups.length === 0 && !list.loading ? (
        <Empty>No groups yet.</Empty>
      ) : (
        <table>
          <caption class="sr-only">Host groups</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Members</th>
              <th scope="col">Created</th>
              <th scope="col">Hosts list</th>
              {admin ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {groups.map((g) => (
              <tr key={g.name}>
                <td>
                  <a href={groupHref(g.name)}>{g.name}</a>
                </td>
                <td>{(g.members ?? 0).toLocaleString('en')}</td>
                <td>{formatTime(g.createdAt)}</td>
                <td>
                  <a href={hostsOf(g.name)}>
                    Show in hosts<span class="sr-only"> the members of {g.name}</span>
                  </a>
                </td>
                {admin ? (
                  <td class="row-actions">
                    <button type="button" onClick={() => setRemove({ name: g.name, members: g.members ?? 0 })}>
                      Delete…<span class="sr-only"> group {g.name}</span>
                    </button>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <DeleteGroup group={remove} onClose={() => setRemove(null)} onDeleted={() => list.reload()} />
    </Page>
  );
}

function GroupPage(props: { name: string }): JSX.Element {
  const { name } = props;
  const loc = useLocation();
  const group = useLoad(() => api<Group>('GET', `/groups/${encodeURIComponent(name)}`), [name]);
  useLiveReload(['host.changed', 'host.imported'], group.reload, 2000);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [removing, setRemoving] = useState<GroupMember[] | null>(null);
  const [deleting, setDeleting] = useState(false);
  const [macs, setMacs] = useState('');
  const [addError, setAddError] = useState<string | null>(null);
  const [addResult, setAddResult] = useState<string | null>(null);
  useEffect(() => setSelected(new Set()), [name]);

  useFocusKept(group.data);
  const g = group.data;
  const members = g?.members ?? [];
  const operator = can('operator');
  const allOn = members.length > 0 && members.every((m) => selected.has(m.mac));
  const toggle = (mac: string, on: boolean): void => {
    const s = new Set(selected);
    if (on) s.add(mac);
    else s.delete(mac);
    setSelected(s);
  };

  const add = async (e: Event): Promise<void> => {
    e.preventDefault();
    setAddError(null);
    setAddResult(null);
    const list = macs.split(/[\s,;]+/).filter((m) => m !== '');
    if (list.length === 0) {
      setAddError('Enter one MAC address or more.');
      return;
    }
    try {
      const r = await api<GroupMembersAdded>('POST', `/groups/${encodeURIComponent(name)}/members`, { macs: list });
      const added = r.added?.length ?? 0;
      const already = r.already?.length ?? 0;
      const text = `${hostsText(added)} added to ${name}${already ? `; ${hostsText(already)} already in it` : ''}.`;
      setAddResult(text);
      announce(text);
      setMacs('');
      group.reload();
    } catch (err) {
      setAddError(errorText(err));
    }
  };

  return (
    <Page
      title={`Group ${name}`}
      actions={
        <>
          <a class="button-link" href={hostsOf(name)}>
            Show in the hosts list (bulk actions)
          </a>
          {g && can('admin') ? (
            <button type="button" class="danger" onClick={() => setDeleting(true)}>
              Delete group…
            </button>
          ) : null}
        </>
      }
    >
      <p>
        <a href={`${BASE}/groups`}>All groups</a>
      </p>
      <ErrorNote error={group.error} />
      {g ? (
        <>
          <dl class="facts">
            <dt>Members</dt>
            <dd>{hostsText(members.length)}</dd>
            <dt>Created</dt>
            <dd>{formatTime(g.createdAt)}</dd>
          </dl>
          <p class="hint">
            To deploy, capture, collect inventory, wake or assign an entry to the members, use the <a href={hostsOf(name)}>hosts list filtered by this group</a>.
          </p>
          {operator ? (
            <form class="inline-form" onSubmit={(e) => void add(e)}>
              <label for="group-add-macs">Add hosts by MAC</label>
              <input id="group-add-macs" class="wide" value={macs} onInput={(e) => setMacs(e.currentTarget.value)} placeholder="52:54:00:12:34:56, 52:54:00:12:34:57" aria-describedby="group-add-hint" />
              <button type="submit">Add to {name}</button>
              <span id="group-add-hint" class="hint">
                Known hosts only; separate MACs with spaces or commas.
              </span>
            </form>
          ) : null}
          <ErrorNote error={addError} />
          {addResult ? <p role="status">{addResult}</p> : null}
          <h2>Members</h2>
          {members.length === 0 ? (
            <Empty>This group has no members yet.</Empty>
          ) : (
            <>
              {operator ? (
                <div class="bulk" role="toolbar" aria-label="Actions on the selected members">
                  <span class="selected-count">{selected.size > 0 ? `${selected.size.toLocaleString('en')} selected` : 'None selected'}</span>
                  <button type="button" disabled={selected.size === 0} onClick={() => setRemoving(members.filter((m) => selected.has(m.mac)))}>
                    Remove from the group…
                  </button>
                </div>
              ) : null}
              <table>
                <caption class="sr-only">Members of group {name}</caption>
                <thead>
                  <tr>
                    {operator ? (
                      <th scope="col">
                        <input type="checkbox" aria-label="Select every member" checked={allOn} onChange={(e) => setSelected(e.currentTarget.checked ? new Set(members.map((m) => m.mac)) : new Set())} />
                      </th>
                    ) : null}
                    <th scope="col">Name</th>
                    <th scope="col">MAC</th>
                    <th scope="col">Added</th>
                    {operator ? <th scope="col">Actions</th> : null}
                  </tr>
                </thead>
                <tbody>
                  {members.map((m) => (
                    <tr key={m.mac}>
                      {operator ? (
                        <td>
                          <input type="checkbox" aria-label={`Select ${m.name ?? m.mac}`} checked={selected.has(m.mac)} onChange={(e) => toggle(m.mac, e.currentTarget.checked)} />
                        </td>
                      ) : null}
                      <td>
                        <a href={`${BASE}/hosts/${encodeURIComponent(m.mac)}`}>{m.name ?? '(no name)'}</a>
                      </td>
                      <td class="mono">{m.mac}</td>
                      <td>{formatTime(m.addedAt)}</td>
                      {operator ? (
                        <td class="row-actions">
                          <button type="button" onClick={() => setRemoving([m])}>
                            Remove…<span class="sr-only"> {m.name ?? m.mac} from the group</span>
                          </button>
                        </td>
                      ) : null}
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
          <Confirm
            open={removing !== null}
            title={`Remove from group ${name}`}
            confirmLabel={`Remove ${hostsText(removing?.length ?? 0)} from ${name}`}
            danger
            onClose={() => setRemoving(null)}
            onConfirm={async () => {
              if (!removing) return;
              await api<Group>('POST', `/groups/${encodeURIComponent(name)}/members/remove`, { macs: removing.map((m) => m.mac) });
              announce(`${hostsText(removing.length)} removed from ${name}`);
              setSelected(new Set());
              group.reload();
            }}
          >
            <p>
              Remove <strong>{hostsText(removing?.length ?? 0)}</strong> from group <strong>{name}</strong>
              {removing && removing.length <= 5 ? <> ({removing.map((m) => m.name ?? m.mac).join(', ')})</> : null}? The hosts stay; tasks and schedules for the group no longer include them.
            </p>
          </Confirm>
          <DeleteGroup group={deleting ? { name, members: members.length } : null} onClose={() => setDeleting(false)} onDeleted={() => loc.route(`${BASE}/groups`)} />
        </>
      ) : null}
    </Page>
  );
}

export default function Groups(): JSX.Element {
  const { params } = useRoute();
  const name = params['name'];
  return name ? <GroupPage name={decodeURIComponent(name)} /> : <GroupListPage />;
}
