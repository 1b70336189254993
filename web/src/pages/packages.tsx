/**
 * Software packages (FOG's snapins, Altiris' RapidInstall): the newest
 * revision of each with its files (size, sha256), command, timeout and exit
 * codes; running one on hosts or a group, now or from a time; the recent
 * runs with their state, exit code and duration, each opening onto the
 * tails of its output. Packages are added with `fleetboot package add`
 * (the files are uploaded first); deploying takes an operator.
 */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, can } from '../api.js';
import type { AgentWorkList, GroupList, Package, PackageList } from '../types.js';
import { POLL_MS, WorkTable, unfinished, usePoll } from '../components/agents.js';
import { Confirm, Empty, ErrorNote, Page, announce, formatBytes, formatDuration, formatTime, useLoad } from '../components/ui.js';

/** How many runs "Recent runs" shows. */
const RUNS_SHOWN = 50;

/** The argument array as a reader would type it: arguments with spaces or quotes in single quotes (no shell runs it). */
function commandText(argv: string[]): string {
  return argv.map((a) => (a !== '' && /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

function codes(list: number[], none: string): string {
  return list.length ? list.join(', ') : none;
}

function PackageTable(props: { packages: Package[]; operator: boolean; onDeploy: (p: Package) => void }): JSX.Element {
  return (
    <table class="packages">
      <caption class="sr-only">Packages, newest revision of each</caption>
      <thead>
        <tr>
          <th scope="col">Package</th>
          <th scope="col">Files</th>
          <th scope="col">Command</th>
          <th scope="col">Timeout</th>
          <th scope="col">Exit codes</th>
          <th scope="col">Added</th>
          {props.operator ? <th scope="col">Actions</th> : null}
        </tr>
      </thead>
      <tbody>
        {props.packages.map((p) => (
          <tr key={p.name} data-package={p.name}>
            <td>
              <strong>{p.name}</strong>
              <div class="task-message">revision {p.revision}</div>
            </td>
            <td>
              <ul class="plain files">
                {p.files.map((f) => (
                  <li key={f.name}>
                    <span class="mono">{f.name}</span>, {formatBytes(f.size)}
                    {f.executable ? ', executable' : ''}
                    <div class="hash mono">
                      <span class="sr-only">sha256 </span>
                      {f.sha256}
                    </div>
                  </li>
                ))}
              </ul>
            </td>
            <td>
              <code>{commandText(p.argv)}</code>
            </td>
            <td>{formatDuration(p.timeoutSeconds)}</td>
            <td>
              success {codes(p.successCodes, 'none')}
              <div class="task-message">reboot {codes(p.rebootCodes, 'none')}</div>
            </td>
            <td>
              {formatTime(p.createdAt)}
              <div class="task-message">by {p.createdBy}</div>
            </td>
            {props.operator ? (
              <td class="row-actions">
                <button type="button" onClick={() => props.onDeploy(p)}>
                  Deploy…<span class="sr-only"> {p.name}</span>
                </button>
              </td>
            ) : null}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function DeployDialog(props: { pkg: Package | null; onClose: () => void; onDone: () => void }): JSX.Element {
  const p = props.pkg;
  const [target, setTarget] = useState<'group' | 'macs'>('macs');
  const [group, setGroup] = useState('');
  const [macs, setMacs] = useState('');
  const [at, setAt] = useState('');
  const [groups, setGroups] = useState<string[]>([]);
  useEffect(() => {
    if (!p) return;
    setAt('');
    void api<GroupList>('GET', '/groups').then((r) => setGroups((r.groups ?? []).flatMap((g) => (g.name ? [g.name] : []))), () => undefined);
  }, [p]);
  const macList = macs.split(/[\s,;]+/).filter((m) => m !== '');
  const who = target === 'group' ? (group ? `group ${group}` : 'a group') : `${macList.length} host${macList.length === 1 ? '' : 's'}`;
  const run = async (): Promise<void> => {
    if (!p) return;
    const body: Record<string, unknown> = {};
    if (target === 'group') {
      if (!group) throw new Error('Choose the group.');
      body['group'] = group;
    } else {
      if (macList.length === 0) throw new Error('Enter the MAC of a host (or several).');
      body['macs'] = macList;
    }
    if (at) {
      const when = new Date(at);
      if (Number.isNaN(when.getTime())) throw new Error(`Not a time: ${at}`);
      body['at'] = when.toISOString();
    }
    const r = await api<AgentWorkList>('POST', `/packages/${encodeURIComponent(p.name)}/deploy`, body);
    announce(`${p.name} revision ${p.revision} queued for ${r.work.length} host${r.work.length === 1 ? '' : 's'}${at ? `, from ${formatTime(body['at'] as string)}` : ''}`);
    props.onDone();
  };
  return (
    <Confirm open={p !== null} title={`Deploy ${p?.name ?? ''}`} confirmLabel={`Run ${p?.name ?? ''} on ${who}`} onClose={props.onClose} onConfirm={run}>
      <p>
        Run <strong>{p?.name}</strong> revision {p?.revision} (<code>{p ? commandText(p.argv) : ''}</code>) on each machine through its agent, at the agent's next poll. Machines without an active agent keep it queued until one enrols.
      </p>
      <fieldset>
        <legend>On</legend>
        <label>
          <input type="radio" name="deploy-target" checked={target === 'macs'} onChange={() => setTarget('macs')} /> Hosts by MAC
        </label>
        <label>
          <input type="radio" name="deploy-target" checked={target === 'group'} onChange={() => setTarget('group')} /> A group
        </label>
      </fieldset>
      {target === 'group' ? (
        <p>
          <label for="deploy-group">Group</label>
          <select id="deploy-group" value={group} onChange={(e) => setGroup(e.currentTarget.value)}>
            <option value="">Choose…</option>
            {groups.map((g) => (
              <option key={g} value={g}>
                {g}
              </option>
            ))}
          </select>
        </p>
      ) : (
        <p>
          <label for="deploy-macs">MAC addresses (separated by spaces or commas)</label>
          <input id="deploy-macs" class="mono wide" value={macs} onInput={(e) => setMacs(e.currentTarget.value)} placeholder="52:54:00:12:34:56" autocomplete="off" />
        </p>
      )}
      <p>
        <label for="deploy-at">Not before (optional)</label>
        <input id="deploy-at" type="datetime-local" value={at} onInput={(e) => setAt(e.currentTarget.value)} aria-describedby="deploy-at-hint" />
        <span id="deploy-at-hint" class="hint">
          {' '}
          In this browser's time zone; empty: now.
        </span>
      </p>
    </Confirm>
  );
}

export default function Packages(): JSX.Element {
  const list = useLoad(() => api<PackageList>('GET', '/packages'), []);
  const runs = useLoad(() => api<AgentWorkList>('GET', `/agents/work?kind=package&limit=${RUNS_SHOWN}`), []);
  const work = runs.data?.work ?? [];
  usePoll(runs.reload, work.some(unfinished));
  const operator = can('operator');
  const [deploy, setDeploy] = useState<Package | null>(null);
  const packages = [...(list.data?.packages ?? [])].sort((a, b) => a.name.localeCompare(b.name));
  return (
    <Page title="Packages">
      <p class="hint">
        Files and a command that endpoint agents run, checked against the server's signature and each file's sha256 before anything runs. Add one with <code>fleetboot package add NAME --file PATH… -- COMMAND…</code>.
      </p>
      <ErrorNote error={list.error} />
      {packages.length === 0 && !list.loading ? <Empty>No packages yet.</Empty> : <PackageTable packages={packages} operator={operator} onDeploy={setDeploy} />}
      <section aria-labelledby="runs-title">
        <h2 id="runs-title">Recent runs</h2>
        <p class="hint">The newest {RUNS_SHOWN}; read again every {POLL_MS / 1000} seconds while one is queued or running.</p>
        <ErrorNote error={runs.error} />
        {work.length === 0 && !runs.loading ? <Empty>No package has been run yet.</Empty> : <WorkTable work={work} caption="Recent package runs, newest first" />}
      </section>
      <DeployDialog pkg={deploy} onClose={() => setDeploy(null)} onDone={runs.reload} />
    </Page>
  );
}
