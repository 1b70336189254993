/** DHCP leases the server handed out (DHCP server mode): address, MAC, name, state and expiry; active ones by default, all on request (kept in the URL). */
import type { JSX } from 'preact';
import { useLocation } from 'preact-iso';
import { api, qs } from '../api.js';
import { BASE } from '../base.js';
import { useLiveReload } from '../live.js';
import type { LeaseList } from '../types.js';
import { Empty, ErrorNote, Page, State, formatDuration, formatTime, useLoad } from '../components/ui.js';

/** "in 5 min" or "2 h 3 min ago", from now (seconds only under a minute). */
function fromNow(iso: string): string {
  const ms = Date.parse(iso) - Date.now();
  if (!Number.isFinite(ms)) return '';
  const s = Math.abs(ms) / 1000;
  const text = s < 60 || s >= 3600 ? formatDuration(s) : `${Math.round(s / 60)} min`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

export default function Leases(): JSX.Element {
  const loc = useLocation();
  const all = loc.query['all'] === 'true';
  const list = useLoad(() => api<LeaseList>('GET', `/dhcp/leases${qs({ all: all ? 'true' : 'false' })}`), [all]);
  useLiveReload(['dhcp.lease'], list.reload, 1000);
  const leases = list.data?.leases ?? [];
  const mode = list.data?.mode;
  return (
    <Page title="DHCP leases">
      {mode ? (
        <p class="hint">
          DHCP mode: <strong>{mode}</strong>
          {mode === 'server' ? '. The server hands out addresses from its pools.' : mode === 'proxy' ? '. Another DHCP server hands out addresses; this one only adds the boot information, so it keeps no leases.' : '. The DHCP service is off.'}
        </p>
      ) : null}
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          <input type="checkbox" checked={all} onChange={(e) => loc.route(`${BASE}/leases${qs({ all: e.currentTarget.checked ? 'true' : undefined })}`, true)} /> Show expired and released leases too
        </label>
      </form>
      <ErrorNote error={list.error} />
      <p class="count" aria-live="polite">
        {list.loading && !list.data ? 'Loading…' : `${leases.length.toLocaleString('en')} lease${leases.length === 1 ? '' : 's'}`}
      </p>
      {leases.length === 0 && !list.loading ? (
        <Empty>{all ? 'No leases.' : 'No active leases.'}</Empty>
      ) : (
        <table>
          <caption class="sr-only">DHCP leases{all ? '' : ', active ones'}, by address</caption>
          <thead>
            <tr>
              <th scope="col">Address</th>
              <th scope="col">MAC</th>
              <th scope="col">Host name (from the client)</th>
              <th scope="col">State</th>
              <th scope="col">Expires</th>
              <th scope="col">Changed</th>
            </tr>
          </thead>
          <tbody>
            {leases.map((l) => (
              <tr key={`${l.ip}-${l.mac}`}>
                <td class="mono">{l.ip}</td>
                <td class="mono">
                  <a href={`${BASE}/hosts/${encodeURIComponent(l.mac)}`}>{l.mac}</a>
                </td>
                <td>{l.hostname ?? '—'}</td>
                <td>
                  <State state={l.state} />
                  {l.active ? null : <span class="task-message"> (inactive)</span>}
                </td>
                <td>
                  {formatTime(l.expiresAt)} <span class="task-message">({fromNow(l.expiresAt)})</span>
                </td>
                <td>{formatTime(l.updatedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}
