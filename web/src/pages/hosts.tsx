/**
 * Hosts: server-side paging, sorting and search (name, MAC in any
 * spelling, address, serial, group), the filter kept in the URL, selection
 * of a page or of everything the filter matches, and bulk actions.
 */
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { api, can, qs } from '../api.js';
import { BASE } from '../base.js';
import { useLiveReload } from '../live.js';
import type { HostPage } from '../types.js';
import { BulkDialog, type BulkAction, type Selection } from '../components/bulk.js';
import { Empty, ErrorNote, Page, State, useLoad } from '../components/ui.js';

const PAGE = 50;
const SORTS = ['name', 'mac', 'entry', 'status', 'createdAt', 'updatedAt'] as const;
type Sort = (typeof SORTS)[number];

function sortOf(v: string | undefined): Sort {
  return (SORTS as readonly string[]).includes(v ?? '') ? (v as Sort) : 'name';
}

export default function Hosts(): JSX.Element {
  const loc = useLocation();
  const q = loc.query['q'] ?? '';
  const group = loc.query['group'] ?? '';
  const sort = sortOf(loc.query['sort']);
  const order = loc.query['order'] === 'desc' ? 'desc' : 'asc';
  const page = Math.max(1, Number(loc.query['page'] ?? '1') || 1);
  const offset = (page - 1) * PAGE;

  const [text, setText] = useState(q);
  useEffect(() => setText(q), [q]);
  const setQuery = (changes: Record<string, string | number | undefined>, replace = true): void => {
    const next = { q, group, sort: sort === 'name' ? undefined : sort, order: order === 'asc' ? undefined : order, page: page === 1 ? undefined : page, ...changes };
    loc.route(`${BASE}/hosts${qs(next)}`, replace);
  };
  // Typing searches after a short pause; the URL keeps the filter (a reload or a shared link shows the same list).
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const onType = (v: string): void => {
    setText(v);
    if (timer.current) clearTimeout(timer.current);
    timer.current = setTimeout(() => setQuery({ q: v.trim(), page: undefined }), 250);
  };

  const list = useLoad(() => api<HostPage>('GET', `/hosts${qs({ status: 'approved', q, group, sort, order, offset, limit: PAGE })}`), [q, group, sort, order, offset]);
  useLiveReload(['host.changed', 'host.imported'], list.reload, 2000);

  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [allMatching, setAllMatching] = useState(false);
  useEffect(() => {
    setSelected(new Set());
    setAllMatching(false);
  }, [q, group, sort, order]);
  const [action, setAction] = useState<BulkAction | null>(null);
  const [selection, setSelection] = useState<Selection>({ macs: [], group: null, count: 0 });
  const [prepError, setPrepError] = useState<string | null>(null);

  const hosts = list.data?.hosts ?? [];
  const total = list.data?.total ?? 0;
  const pageAll = hosts.length > 0 && hosts.every((h) => selected.has(h.mac));
  const count = allMatching ? total : selected.size;

  const toggle = (mac: string, on: boolean): void => {
    const s = new Set(selected);
    if (on) s.add(mac);
    else s.delete(mac);
    setSelected(s);
    setAllMatching(false);
  };
  const togglePage = (on: boolean): void => {
    const s = new Set(selected);
    for (const h of hosts) {
      if (on) s.add(h.mac);
      else s.delete(h.mac);
    }
    setSelected(s);
    setAllMatching(false);
  };

  const open = async (a: BulkAction): Promise<void> => {
    setPrepError(null);
    try {
      if (!allMatching) {
        setSelection({ macs: [...selected], group: null, count: selected.size });
      } else if (group !== '' && q === '') {
        setSelection({ macs: [], group, count: total });
      } else {
        // Everything the filter matches: the server lists them again now (the dialog names exactly these).
        const all = await api<HostPage>('GET', `/hosts${qs({ status: 'approved', q, group })}`);
        setSelection({ macs: all.hosts.map((h) => h.mac), group: null, count: all.total });
      }
      setAction(a);
    } catch (err) {
      setPrepError(err instanceof Error ? err.message : String(err));
    }
  };

  const sortHeader = (key: Sort, label: string): JSX.Element => {
    const active = sort === key;
    return (
      <th scope="col" aria-sort={active ? (order === 'asc' ? 'ascending' : 'descending') : 'none'}>
        <button type="button" class="sort" onClick={() => setQuery({ sort: key === 'name' ? undefined : key, order: active && order === 'asc' ? 'desc' : undefined, page: undefined })}>
          {label}
          <span aria-hidden="true">{active ? (order === 'asc' ? ' ▲' : ' ▼') : ''}</span>
        </button>
      </th>
    );
  };

  const first = total === 0 ? 0 : offset + 1;
  const last = Math.min(offset + hosts.length, total);
  const operator = can('operator');
  return (
    <Page title="Hosts">
      <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label for="host-search">Search</label>
        <input id="host-search" type="search" placeholder="name, MAC, address, serial or group" value={text} onInput={(e) => onType(e.currentTarget.value)} />
        {group ? (
          <span class="chip">
            group {group}{' '}
            <button type="button" onClick={() => setQuery({ group: undefined, page: undefined })}>
              Remove<span class="sr-only"> the group filter</span>
            </button>
          </span>
        ) : null}
      </form>
      <p class="count" aria-live="polite" data-testid="host-count">
        {list.loading && !list.data ? 'Loading…' : `${first.toLocaleString('en')}–${last.toLocaleString('en')} of ${total.toLocaleString('en')}`}
      </p>
      <ErrorNote error={list.error ?? prepError} />
      {operator ? (
        <div class="bulk" role="toolbar" aria-label="Actions on the selected hosts">
          <span class="selected-count">{count > 0 ? `${count.toLocaleString('en')} selected` : 'None selected'}</span>
          {pageAll && !allMatching && total > hosts.length ? (
            <button type="button" class="link" onClick={() => setAllMatching(true)}>
              Select all {total.toLocaleString('en')} matching
            </button>
          ) : null}
          {allMatching ? (
            <button type="button" class="link" onClick={() => { setAllMatching(false); setSelected(new Set()); }}>
              Clear the selection
            </button>
          ) : null}
          <button type="button" disabled={count === 0} onClick={() => void open('deploy')}>
            Deploy…
          </button>
          <button type="button" disabled={count !== 1} onClick={() => void open('capture')}>
            Capture…
          </button>
          <button type="button" disabled={count === 0} onClick={() => void open('inventory')}>
            Inventory…
          </button>
          <button type="button" disabled={count === 0} onClick={() => void open('wake')}>
            Wake…
          </button>
          <button type="button" disabled={count === 0} onClick={() => void open('entry')}>
            Assign entry…
          </button>
          <button type="button" disabled={count === 0} onClick={() => void open('group')}>
            Add to group…
          </button>
        </div>
      ) : null}
      {hosts.length === 0 && !list.loading ? (
        <Empty>{q || group ? 'No host matches.' : 'No hosts yet: machines appear in Pending hosts when they boot, or add them with fleetboot host add.'}</Empty>
      ) : (
        <table class="hosts">
          <caption class="sr-only">Hosts, sorted by {sort} {order === 'asc' ? 'ascending' : 'descending'}</caption>
          <thead>
            <tr>
              {operator ? (
                <th scope="col">
                  <input type="checkbox" aria-label="Select every host on this page" checked={pageAll} onChange={(e) => togglePage(e.currentTarget.checked)} />
                </th>
              ) : null}
              {sortHeader('name', 'Name')}
              {sortHeader('mac', 'MAC')}
              <th scope="col">Address</th>
              {sortHeader('entry', 'Entry')}
              <th scope="col">Groups</th>
              {sortHeader('updatedAt', 'Changed')}
            </tr>
          </thead>
          <tbody>
            {hosts.map((h) => (
              <tr key={h.mac}>
                {operator ? (
                  <td>
                    <input type="checkbox" aria-label={`Select ${h.name ?? h.mac}`} checked={allMatching || selected.has(h.mac)} onChange={(e) => toggle(h.mac, e.currentTarget.checked)} />
                  </td>
                ) : null}
                <td>
                  <a href={`${BASE}/hosts/${encodeURIComponent(h.mac)}`}>{h.name ?? '(no name)'}</a>
                </td>
                <td class="mono">{h.mac}</td>
                <td>{h.ip ?? '—'}</td>
                <td>{h.entry ?? '—'}</td>
                <td>
                  {h.groups.map((g) => (
                    <button type="button" class="chip link" key={g} onClick={() => setQuery({ group: g, page: undefined })}>
                      {g}
                    </button>
                  ))}
                </td>
                <td>{h.status === 'approved' ? new Date(h.updatedAt).toLocaleDateString() : <State state={h.status} />}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={page <= 1} onClick={() => setQuery({ page: page - 1 === 1 ? undefined : page - 1 }, false)}>
          Previous page
        </button>
        <span>
          Page {page} of {Math.max(1, Math.ceil(total / PAGE))}
        </span>
        <button type="button" disabled={offset + PAGE >= total} onClick={() => setQuery({ page: page + 1 }, false)}>
          Next page
        </button>
      </nav>
      <BulkDialog
        action={action}
        selection={selection}
        onClose={() => setAction(null)}
        onDone={() => {
          setSelected(new Set());
          setAllMatching(false);
          list.reload();
        }}
      />
    </Page>
  );
}
