/**
 * Boot entries: a kernel, its initrds and a command line that hosts boot.
 * Lists them; adds one whose files are http(s) URLs (operator; entries with
 * local files are added by the CLI, which uploads them); deletes one
 * (admin), optionally unassigning the hosts that use it.
 */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api, can, errorText } from '../api.js';
import type { BootEntry, EntryList } from '../types.js';
import { Confirm, Dialog, Empty, ErrorNote, Page, announce, formatTime, useLoad, useFocusKept } from '../components/ui.js';


function Source(props: { src: string }): JSX.Element {
  return /^https?:\/\//.test(props.src) ? <span class="mono">{props.src}</span> : <span class="mono">{props.src} (uploaded file)</span>;
}

/** The form for an entry whose kernel and initrds are URLs (iPXE fetches them as they are). */
function AddEntry(props: { open: boolean; onClose: () => void; onAdded: () => void }): JSX.Element {
  const [name, setName] = useState('');
  const [kernel, setKernel] = useState('');
  const [initrds, setInitrds] = useState('');
  const [cmdline, setCmdline] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const list = initrds.split('\n').map((s) => s.trim()).filter((s) => s !== '');
      const entry = await api<BootEntry>('POST', '/entries', { name: name.trim(), kernel: kernel.trim(), ...(list.length ? { initrds: list } : {}), ...(cmdline.trim() ? { cmdline: cmdline.trim() } : {}) });
      announce(`Boot entry ${entry.name} added`);
      setName('');
      setKernel('');
      setInitrds('');
      setCmdline('');
      props.onAdded();
      props.onClose();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={props.open} title="Add a boot entry from URLs" onClose={props.onClose}>
      <form class="stacked" onSubmit={(e) => void submit(e)}>
        <p class="hint">The kernel and initrds are http(s) URLs that the booting machine fetches. To use files from your computer, add the entry with the CLI (it uploads them).</p>
        <label for="entry-name">Name</label>
        <input id="entry-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="e.g. debian-installer" />
        <label for="entry-kernel">Kernel URL</label>
        <input id="entry-kernel" type="url" required value={kernel} onInput={(e) => setKernel(e.currentTarget.value)} placeholder="http://mirror.example/debian/linux" />
        <label for="entry-initrds">Initrd URLs (one a line, in order; optional)</label>
        <textarea id="entry-initrds" rows={3} value={initrds} onInput={(e) => setInitrds(e.currentTarget.value)} />
        <label for="entry-cmdline">Kernel command line (optional)</label>
        <input id="entry-cmdline" value={cmdline} onInput={(e) => setCmdline(e.currentTarget.value)} placeholder="console=ttyS0 auto=true" />
        <ErrorNote error={error} />
        <div class="dialog-actions">
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Adding…' : 'Add entry'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export default function Entries(): JSX.Element {
  const list = useLoad(() => api<EntryList>('GET', '/entries'), []);
  const [adding, setAdding] = useState(false);
  const [remove, setRemove] = useState<BootEntry | null>(null);
  const [force, setForce] = useState(false);
  useFocusKept(list.data);
  const entries = list.data?.entries ?? [];
  const admin = can('admin');

  const openRemove = (e: BootEntry): void => {
    setForce(false);
    setRemove(e);
  };

  return (
    <Page
      title="Boot entries"
      actions={
        can('operator') ? (
          <button type="button" onClick={() => setAdding(true)}>
            Add an entry from URLs…
          </button>
        ) : null
      }
    >
      <p class="hint">A boot entry is a kernel, its initrds and a command line; a host with an entry boots it instead of the boot menu (assign entries from the hosts list).</p>
      {can('operator') ? (
        <details class="cli-hint">
          <summary>Add an entry with local files (CLI)</summary>
          <p>The CLI uploads the files to the server, then adds the entry:</p>
          <pre>
            <code>fleetboot entry add NAME --kernel ./vmlinuz --initrd ./initrd.img --cmdline 'console=ttyS0'</code>
          </pre>
          <p class="hint">Each source is a local file or an http(s) URL; repeat --initrd for several, in order. Entries cannot be changed: delete one and add it again.</p>
        </details>
      ) : null}
      <ErrorNote error={list.error} />
      {entries.length === 0 && !list.loading ? (
        <Empty>No boot entries yet.</Empty>
      ) : (
        <table>
          <caption class="sr-only">Boot entries</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Kernel</th>
              <th scope="col">Initrds</th>
              <th scope="col">Command line</th>
              <th scope="col">Added</th>
              {admin ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={e.name}>
                <td>{e.name}</td>
                <td>
                  <Source src={e.kernel} />
                </td>
                <td>
                  {e.initrds.length === 0
                    ? '—'
                    : e.initrds.map((i) => (
                        <div key={i}>
                          <Source src={i} />
                        </div>
                      ))}
                </td>
                <td>{e.cmdline ? <code>{e.cmdline}</code> : '—'}</td>
                <td>{formatTime(e.createdAt)}</td>
                {admin ? (
                  <td class="row-actions">
                    <button type="button" onClick={() => openRemove(e)}>
                      Delete…<span class="sr-only"> entry {e.name}</span>
                    </button>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <AddEntry open={adding} onClose={() => setAdding(false)} onAdded={list.reload} />
      <Confirm
        open={remove !== null}
        title={`Delete boot entry ${remove?.name ?? ''}`}
        confirmLabel={force ? `Delete ${remove?.name ?? ''} and unassign its hosts` : `Delete ${remove?.name ?? ''}`}
        danger
        onClose={() => setRemove(null)}
        onConfirm={async () => {
          if (!remove) return;
          // In use and not forced: the server's 409 names how many hosts, shown in the dialog.
          const r = await api<{ deleted: string; unassigned: string[] }>('DELETE', `/entries/${encodeURIComponent(remove.name)}${force ? '?force=true' : ''}`);
          announce(`Boot entry ${r.deleted} deleted${r.unassigned.length ? `; ${r.unassigned.length} host(s) boot the menu again` : ''}`);
          list.reload();
        }}
      >
        <p>
          Delete boot entry <strong>{remove?.name}</strong> and its uploaded files? This cannot be undone.
        </p>
        <p>The server refuses while hosts are assigned to it, unless you choose to unassign them: they then boot the boot menu again.</p>
        <p>
          <label>
            <input type="checkbox" checked={force} onChange={(e) => setForce(e.currentTarget.checked)} /> Unassign the hosts that use it (force)
          </label>
        </p>
      </Confirm>
    </Page>
  );
}
