/**
 * Bulk actions on hosts (deploy, capture, inventory, wake, assign an entry,
 * add to a group), each behind a confirmation that names how many hosts
 * and which image or entry. A selection is a list of MACs, or "every host
 * of group X" (sent as the group: no limit, the server takes its members).
 */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { Confirm, announce } from './ui.js';

export type BulkAction = 'deploy' | 'capture' | 'inventory' | 'wake' | 'entry' | 'group';

export interface Selection {
  /** The MACs, when they are known one by one. */
  macs: string[];
  /** Set when the selection is exactly a group's members. */
  group: string | null;
  count: number;
}

/** The most hosts one request may name (src/model/task-request.ts MACS_MAX). */
export const MACS_MAX = 1000;

interface Named {
  name: string;
}

const TITLE: Record<BulkAction, string> = {
  deploy: 'Deploy an image',
  capture: 'Capture an image',
  inventory: 'Collect inventory',
  wake: 'Wake up',
  entry: 'Assign a boot entry',
  group: 'Add to a group',
};

function hostsText(n: number): string {
  return `${n.toLocaleString('en')} host${n === 1 ? '' : 's'}`;
}

export function BulkDialog(props: { action: BulkAction | null; selection: Selection; onClose: () => void; onDone: () => void }): JSX.Element {
  const { action, selection } = props;
  const [images, setImages] = useState<Named[]>([]);
  const [entries, setEntries] = useState<Named[]>([]);
  const [groups, setGroups] = useState<Named[]>([]);
  const [image, setImage] = useState('');
  const [entry, setEntry] = useState('');
  const [group, setGroup] = useState('');
  const [multicast, setMulticast] = useState(false);
  const [wake, setWake] = useState(true);

  useEffect(() => {
    if (action === 'deploy' || action === 'capture') void api<{ images: Named[] }>('GET', '/images').then((r) => setImages(r.images));
    if (action === 'entry') void api<{ entries: Named[] }>('GET', '/entries').then((r) => setEntries(r.entries));
    if (action === 'group') void api<{ groups: Named[] }>('GET', '/groups').then((r) => setGroups(r.groups));
  }, [action]);

  const n = selection.count;
  const tooMany = selection.group === null && n > MACS_MAX;
  const target = (): Record<string, unknown> => {
    if (selection.group !== null) return { group: selection.group };
    if (selection.macs.length === 1) return { mac: selection.macs[0] };
    return { macs: selection.macs };
  };

  const run = async (): Promise<void> => {
    if (tooMany) throw new Error(`At most ${MACS_MAX} hosts at once: narrow the search, or put the hosts in a group and act on the group.`);
    switch (action) {
      case 'deploy': {
        if (!image) throw new Error('Choose the image to deploy.');
        await api('POST', '/tasks', { type: 'deploy', image, ...target(), ...(wake ? { wake: true } : {}), ...(multicast && n > 1 ? { multicast: true } : {}) });
        announce(`Deploy of ${image} queued for ${hostsText(n)}`);
        break;
      }
      case 'capture': {
        if (!image) throw new Error('Name the image to capture into.');
        if (n !== 1) throw new Error(`A capture takes one host: ${n} are selected.`);
        await api('POST', '/tasks', { type: 'capture', image, ...target(), ...(wake ? { wake: true } : {}) });
        announce(`Capture into ${image} queued`);
        break;
      }
      case 'inventory':
        await api('POST', '/tasks', { type: 'inventory', ...target(), ...(wake ? { wake: true } : {}) });
        announce(`Inventory queued for ${hostsText(n)}`);
        break;
      case 'wake':
        await api('POST', '/wake', selection.group !== null ? { group: selection.group } : { macs: selection.macs });
        announce(`Wake-on-LAN sent to ${hostsText(n)}`);
        break;
      case 'entry': {
        let macs = selection.macs;
        if (selection.group !== null) macs = (await api<{ members: { mac: string }[] }>('GET', `/groups/${encodeURIComponent(selection.group)}`)).members.map((m) => m.mac);
        await api('POST', '/hosts/entry', { macs, entry: entry === '' ? null : entry });
        announce(entry === '' ? `Entry removed from ${hostsText(n)}` : `Entry ${entry} assigned to ${hostsText(n)}`);
        break;
      }
      case 'group': {
        if (!group) throw new Error('Choose the group.');
        let macs = selection.macs;
        if (selection.group !== null) macs = (await api<{ members: { mac: string }[] }>('GET', `/groups/${encodeURIComponent(selection.group)}`)).members.map((m) => m.mac);
        await api('POST', `/groups/${encodeURIComponent(group)}/members`, { macs });
        announce(`${hostsText(n)} added to ${group}`);
        break;
      }
      default:
        return;
    }
    props.onDone();
  };

  let label = 'Confirm';
  if (action === 'deploy') label = image ? `Deploy ${image} to ${hostsText(n)}` : 'Deploy';
  if (action === 'capture') label = image ? `Capture into ${image}` : 'Capture';
  if (action === 'inventory') label = `Collect inventory of ${hostsText(n)}`;
  if (action === 'wake') label = `Wake ${hostsText(n)}`;
  if (action === 'entry') label = entry ? `Assign ${entry} to ${hostsText(n)}` : `Remove the entry of ${hostsText(n)}`;
  if (action === 'group') label = group ? `Add ${hostsText(n)} to ${group}` : 'Add to group';

  return (
    <Confirm open={action !== null} title={action ? TITLE[action] : ''} confirmLabel={label} danger={action === 'deploy'} onConfirm={run} onClose={props.onClose}>
      <p class="bulk-summary" data-testid="bulk-summary">
        {action === 'deploy' ? (
          <>
            Deploy {image ? <strong>{image}</strong> : 'an image'} to <strong>{hostsText(n)}</strong>
            {selection.group !== null ? <> (every member of group {selection.group})</> : null}. Their disks will be overwritten.
          </>
        ) : (
          <>
            <strong>{hostsText(n)}</strong> selected{selection.group !== null ? <> (every member of group {selection.group})</> : null}.
          </>
        )}
      </p>
      {tooMany ? (
        <p class="error" role="alert">
          At most {MACS_MAX} hosts at once: narrow the search, or act on a group.
        </p>
      ) : null}
      {action === 'deploy' || action === 'capture' ? (
        <p>
          <label for="bulk-image">{action === 'deploy' ? 'Image' : 'Image to capture into (new or existing)'}</label>
          {action === 'deploy' ? (
            <select id="bulk-image" value={image} onChange={(e) => setImage(e.currentTarget.value)}>
              <option value="">Choose…</option>
              {images.map((i) => (
                <option key={i.name} value={i.name}>
                  {i.name}
                </option>
              ))}
            </select>
          ) : (
            <input id="bulk-image" list="bulk-images" value={image} onInput={(e) => setImage(e.currentTarget.value)} />
          )}
          <datalist id="bulk-images">
            {images.map((i) => (
              <option key={i.name} value={i.name} />
            ))}
          </datalist>
        </p>
      ) : null}
      {action === 'deploy' && n > 1 ? (
        <p>
          <label>
            <input type="checkbox" checked={multicast} onChange={(e) => setMulticast(e.currentTarget.checked)} /> One multicast session for all of them
          </label>
        </p>
      ) : null}
      {action === 'deploy' || action === 'capture' || action === 'inventory' ? (
        <p>
          <label>
            <input type="checkbox" checked={wake} onChange={(e) => setWake(e.currentTarget.checked)} /> Wake the machines (Wake-on-LAN)
          </label>
        </p>
      ) : null}
      {action === 'entry' ? (
        <p>
          <label for="bulk-entry">Boot entry</label>
          <select id="bulk-entry" value={entry} onChange={(e) => setEntry(e.currentTarget.value)}>
            <option value="">None (the menu)</option>
            {entries.map((x) => (
              <option key={x.name} value={x.name}>
                {x.name}
              </option>
            ))}
          </select>
        </p>
      ) : null}
      {action === 'group' ? (
        <p>
          <label for="bulk-group">Group</label>
          <select id="bulk-group" value={group} onChange={(e) => setGroup(e.currentTarget.value)}>
            <option value="">Choose…</option>
            {groups.map((x) => (
              <option key={x.name} value={x.name}>
                {x.name}
              </option>
            ))}
          </select>
        </p>
      ) : null}
    </Confirm>
  );
}
