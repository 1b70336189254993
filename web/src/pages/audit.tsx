/**
 * The audit log (admin): every change made through the API, newest first,
 * a page at a time (`before` in the URL: a reload or a shared link shows
 * the same page): who, what, when, from where, and the result.
 */
import type { JSX } from 'preact';
import { useLocation } from 'preact-iso';
import { api, can, qs } from '../api.js';
import { BASE } from '../base.js';
import type { AuditEntry, AuditPage } from '../types.js';
import { Empty, ErrorNote, Page, State, formatTime, useLoad } from '../components/ui.js';

const PAGE = 100;

/** The request in words: the method and the route pattern, or the URL when there is no route. */
function what(e: AuditEntry): string {
  return `${e.method} ${e.route ?? e.url}`;
}

function Summary(props: { entry: AuditEntry }): JSX.Element | null {
  const s = props.entry.summary;
  if (s === null || s === undefined || (typeof s === 'object' && Object.keys(s).length === 0)) return null;
  return (
    <details>
      <summary>
        Details<span class="sr-only"> of entry {props.entry.id}</span>
      </summary>
      <pre class="json">{JSON.stringify(s, null, 2)}</pre>
    </details>
  );
}

function AuditLog(): JSX.Element {
  const loc = useLocation();
  const raw = loc.query['before'] ?? '';
  const before = /^[1-9][0-9]{0,12}$/.test(raw) ? raw : '';
  const page = useLoad(() => api<AuditPage>('GET', `/audit${qs({ limit: PAGE, before })}`), [before]);
  const entries = page.data?.entries ?? [];
  const next = page.data?.nextBefore ?? null;
  return (
    <Page title="Audit log">
      <p class="hint">Every change made through the API or this console, newest first. Secrets (passwords, tokens) are never recorded.</p>
      <ErrorNote error={page.error} />
      {entries.length === 0 && !page.loading ? (
        <Empty>{before ? 'No older entries.' : 'The audit log is empty.'}</Empty>
      ) : (
        <table class="audit">
          <caption class="sr-only">Audit log, newest first{before ? `, entries before #${before}` : ''}</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">From</th>
              <th scope="col">What</th>
              <th scope="col">Result</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={e.id} data-id={e.id}>
                <td>
                  <time dateTime={e.at}>{formatTime(e.at)}</time>
                </td>
                <td>{e.actor}</td>
                <td class="mono">{e.ip ?? '—'}</td>
                <td>
                  <code>{what(e)}</code>
                  {e.route && e.url !== e.route ? <div class="task-message mono">{e.url}</div> : null}
                  <Summary entry={e} />
                </td>
                <td>
                  <State state={e.status < 400 ? 'succeeded' : 'failed'} /> <span class="task-message">HTTP {e.status}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <nav class="pager" aria-label="Pages">
        {before ? (
          <a href={`${BASE}/audit`}>Newest entries</a>
        ) : null}
        <button type="button" disabled={next === null} onClick={() => loc.route(`${BASE}/audit${qs({ before: next })}`)}>
          Older entries
        </button>
      </nav>
    </Page>
  );
}

export default function Audit(): JSX.Element {
  if (!can('admin')) {
    return (
      <Page title="Audit log">
        <p>The audit log is shown to admins only.</p>
      </Page>
    );
  }
  return <AuditLog />;
}
