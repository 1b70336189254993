/**
 * Endpoint agents (fleetboot-agent on installed machines): the ones
 * waiting for approval first (approve for a host MAC, by default the one
 * the agent reported), then active and revoked ones with what they last
 * reported; revoking names the host. For admins, enrolment tokens: their
 * state in words, a new one (for a host, a group or any machine; how long
 * and how many uses) shown once with the `fleetboot-agent enroll` line,
 * and revocation. Roles as the API's: reads viewer, approval, revocation
 * and tokens admin.
 */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, can, errorText } from '../api.js';
import type { Agent, AgentList, CreatedEnrolToken, EnrolToken, EnrolTokenList, GroupList } from '../types.js';
import { POLL_MS, hostHref, reported, usePoll } from '../components/agents.js';
import { CopyField, ShownOnce } from '../components/secret.js';
import { Confirm, Empty, ErrorNote, Page, State, announce, formatTime, useFocusKept, useLoad } from '../components/ui.js';

/** The state order of the list of agents: active first, then revoked (pending ones have their own table). */
const ORDER: Record<Agent['state'], number> = { pending: 0, active: 1, revoked: 2 };

function hostLabel(a: Agent): string {
  if (a.host) return a.host.name ? `${a.host.name} (${a.host.mac})` : a.host.mac;
  const name = reported(a).hostname;
  return name ? `machine ${name}` : `agent ${a.id.slice(0, 12)}`;
}

function PendingAgents(props: { agents: Agent[]; admin: boolean; onApprove: (a: Agent) => void; onRevoke: (a: Agent) => void }): JSX.Element {
  if (props.agents.length === 0) return <Empty>No agent is waiting for approval.</Empty>;
  return (
    <table>
      <caption class="sr-only">Agents waiting for approval, oldest first</caption>
      <thead>
        <tr>
          <th scope="col">Machine name</th>
          <th scope="col">MACs it reported</th>
          <th scope="col">Serial number</th>
          <th scope="col">OS</th>
          <th scope="col">Agent version</th>
          <th scope="col">Address</th>
          <th scope="col">Enrolled</th>
          {props.admin ? <th scope="col">Actions</th> : null}
        </tr>
      </thead>
      <tbody>
        {props.agents.map((a) => {
          const id = reported(a);
          return (
            <tr key={a.id} data-agent={a.id}>
              <td>
                {id.hostname ?? '—'}
                <div class="task-message mono">agent {a.id.slice(0, 12)}…</div>
              </td>
              <td class="mono">{id.macs.length ? id.macs.join(', ') : '—'}</td>
              <td>{id.smbiosSerial ?? '—'}</td>
              <td>{id.os ?? '—'}</td>
              <td>{id.agentVersion}</td>
              <td class="mono">{a.lastIp ?? '—'}</td>
              <td>{formatTime(a.enrolledAt)}</td>
              {props.admin ? (
                <td class="row-actions">
                  <button type="button" class="primary" onClick={() => props.onApprove(a)}>
                    Approve…<span class="sr-only"> {id.hostname ?? a.id}</span>
                  </button>
                  <button type="button" onClick={() => props.onRevoke(a)}>
                    Refuse…<span class="sr-only"> {id.hostname ?? a.id}</span>
                  </button>
                </td>
              ) : null}
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function AgentTable(props: { agents: Agent[]; admin: boolean; onRevoke: (a: Agent) => void }): JSX.Element {
  if (props.agents.length === 0) return <Empty>No agent has enrolled yet: make an enrolment token, then run fleetboot-agent enroll on the machine.</Empty>;
  return (
    <table>
      <caption class="sr-only">Endpoint agents, active first</caption>
      <thead>
        <tr>
          <th scope="col">Host</th>
          <th scope="col">State</th>
          <th scope="col">Machine name</th>
          <th scope="col">OS</th>
          <th scope="col">Agent version</th>
          <th scope="col">Address</th>
          <th scope="col">Last seen</th>
          {props.admin ? <th scope="col">Actions</th> : null}
        </tr>
      </thead>
      <tbody>
        {props.agents.map((a) => {
          const id = reported(a);
          return (
            <tr key={a.id} data-agent={a.id}>
              <td>
                {a.host ? <a href={hostHref(a.host.mac)}>{a.host.name ?? a.host.mac}</a> : '—'}
                <div class="task-message mono">agent {a.id.slice(0, 12)}…</div>
              </td>
              <td>
                <State state={a.state} />
                {a.revokedAt ? <div class="task-message">since {formatTime(a.revokedAt)}</div> : null}
              </td>
              <td>{id.hostname ?? '—'}</td>
              <td>{id.os ?? '—'}</td>
              <td>{id.agentVersion}</td>
              <td class="mono">{a.lastIp ?? '—'}</td>
              <td>{a.lastSeenAt ? formatTime(a.lastSeenAt) : 'never'}</td>
              {props.admin ? (
                <td class="row-actions">
                  {a.state === 'active' ? (
                    <button type="button" onClick={() => props.onRevoke(a)}>
                      Revoke…<span class="sr-only"> the agent of {hostLabel(a)}</span>
                    </button>
                  ) : null}
                </td>
              ) : null}
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/** An enrolment token's state in one word. */
export function tokenState(t: EnrolToken, now = Date.now()): 'revoked' | 'used' | 'expired' | 'usable' {
  if (t.revokedAt) return 'revoked';
  if (t.usesLeft <= 0) return 'used';
  if (Date.parse(t.expiresAt) <= now) return 'expired';
  return 'usable';
}

const TTL = [
  { value: 3600, label: '1 hour' },
  { value: 86400, label: '24 hours' },
  { value: 7 * 86400, label: '7 days' },
  { value: 30 * 86400, label: '30 days' },
];

/** Where agents reach the server over HTTPS and the CA they pin, as far as the server says (GET /status, GET /tls). */
interface EnrolTarget {
  server: string | null;
  caSha256: string | null;
}

function rec(v: unknown): Record<string, unknown> | null {
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : null;
}

const LOOPBACK = /^(127\.|localhost$|\[?::1\]?$)/;

/**
 * The HTTPS URL and the CA's SHA-256 for the enrol line. Read as unknown
 * and narrowed: a server without HTTPS answers neither (no /tls, no HTTPS
 * port), and the line then shows placeholders with where to find them.
 * The host is the one this console is reached by, unless that is
 * loopback: then an address from the server certificate, or the server's.
 */
async function enrolTarget(): Promise<EnrolTarget> {
  const [status, tls] = await Promise.all([api<unknown>('GET', '/status').catch(() => null), api<unknown>('GET', '/tls').catch(() => null)]);
  const s = rec(status);
  const port = rec(s?.['https'])?.['port'] ?? rec(s?.['runtime'])?.['httpsPort'];
  const ca = rec(rec(tls)?.['ca'])?.['sha256'];
  const names = rec(rec(tls)?.['server'])?.['names'];
  const serverIp = typeof s?.['serverIp'] === 'string' ? s['serverIp'] : null;
  let host = location.hostname;
  if (LOOPBACK.test(host)) {
    const certIp = Array.isArray(names) ? names.find((n): n is string => typeof n === 'string' && /^\d+\.\d+\.\d+\.\d+$/.test(n) && !n.startsWith('127.')) : undefined;
    host = certIp ?? serverIp ?? host;
  }
  return {
    server: typeof port === 'number' ? `https://${host}:${port}` : null,
    caSha256: typeof ca === 'string' && /^[0-9a-f]{64}$/.test(ca) ? ca : null,
  };
}

function enrolLine(t: EnrolTarget, token: string): string {
  return `fleetboot-agent enroll --server ${t.server ?? 'https://SERVER:8443'} --ca-sha256 ${t.caSha256 ?? 'HEX'} --token ${token}`;
}

/** Whom a token is for, in words (`link`: the host's MAC links to its page; not in dialogs, whose first stop must be their field). */
function tokenFor(t: EnrolToken, link = true): JSX.Element {
  if (t.host) {
    return (
      <>
        host {link ? <a href={hostHref(t.host)}>{t.host}</a> : <span class="mono">{t.host}</span>}
        {t.group ? <>, joins group {t.group}</> : null}
      </>
    );
  }
  return t.group ? <>any machine, joins group {t.group}</> : <>any machine (the host with a MAC it reports)</>;
}

type For = 'any' | 'host' | 'group';

function EnrolTokens(): JSX.Element {
  const list = useLoad(() => api<EnrolTokenList>('GET', '/agents/tokens'), []);
  // Enrolments spend uses: read again as the agents are.
  usePoll(list.reload, true);
  const target = useLoad(enrolTarget, []);
  const [kind, setKind] = useState<For>('any');
  const [mac, setMac] = useState('');
  const [group, setGroup] = useState('');
  const [groups, setGroups] = useState<string[]>([]);
  const [ttl, setTtl] = useState(86400);
  const [uses, setUses] = useState('1');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<CreatedEnrolToken | null>(null);
  const [revoke, setRevoke] = useState<EnrolToken | null>(null);
  useEffect(() => {
    if (kind === 'group' && groups.length === 0) void api<GroupList>('GET', '/groups').then((r) => setGroups((r.groups ?? []).flatMap((g) => (g.name ? [g.name] : []))), () => undefined);
  }, [kind]);
  const tokens = [...(list.data?.tokens ?? [])].sort((a, b) => b.id - a.id);

  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(null);
    const body: Record<string, unknown> = { ttlSeconds: ttl };
    if (kind === 'host') {
      if (!mac.trim()) return setError('Enter the MAC of the host the agent becomes.');
      body['host'] = mac.trim();
    } else {
      if (kind === 'group') {
        if (!group) return setError('Choose the group the agent joins.');
        body['group'] = group;
      }
      if (!/^[1-9][0-9]{0,5}$/.test(uses.trim()) || Number(uses) > 100_000) return setError(`Uses must be a whole number from 1 to 100000: got ${JSON.stringify(uses)}`);
      body['uses'] = Number(uses);
    }
    setBusy(true);
    try {
      const r = await api<CreatedEnrolToken>('POST', '/agents/tokens', body);
      announce(`Enrolment token #${r.info.id} made`);
      setCreated(r);
      list.reload();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const t = target.data ?? { server: null, caSha256: null };
  const missing: Array<[string, string]> = [];
  if (!t.server) missing.push(['https://SERVER:8443', "the server's HTTPS address"]);
  if (!t.caSha256) missing.push(['HEX', "the SHA-256 of its CA"]);
  return (
    <section aria-labelledby="tokens-title">
      <h2 id="tokens-title">Enrolment tokens</h2>
      <p class="hint">
        An agent that enrols with a token is active at once (without one it waits above for approval). A token for a host makes the agent that host; a token for any machine makes it the host with a MAC it reports, made when none has it.
      </p>
      <form class="stacked narrow-form" onSubmit={(e) => void create(e)} aria-labelledby="token-form-title">
        <h3 id="token-form-title">Make a token</h3>
        <fieldset class="choices">
          <legend>For</legend>
          <label>
            <input type="radio" name="token-for" checked={kind === 'any'} onChange={() => setKind('any')} /> Any machine
          </label>
          <label>
            <input type="radio" name="token-for" checked={kind === 'host'} onChange={() => setKind('host')} /> One host
          </label>
          <label>
            <input type="radio" name="token-for" checked={kind === 'group'} onChange={() => setKind('group')} /> The hosts of a group
          </label>
        </fieldset>
        {kind === 'host' ? (
          <>
            <label for="token-host">MAC of the host</label>
            <input id="token-host" class="mono" value={mac} onInput={(e) => setMac(e.currentTarget.value)} placeholder="52:54:00:12:34:56" autocomplete="off" />
          </>
        ) : null}
        {kind === 'group' ? (
          <>
            <label for="token-group">Group the agent's host joins</label>
            <select id="token-group" value={group} onChange={(e) => setGroup(e.currentTarget.value)}>
              <option value="">Choose…</option>
              {groups.map((g) => (
                <option key={g} value={g}>
                  {g}
                </option>
              ))}
            </select>
          </>
        ) : null}
        <label for="token-ttl">Valid for</label>
        <select id="token-ttl" value={String(ttl)} onChange={(e) => setTtl(Number(e.currentTarget.value))}>
          {TTL.map((x) => (
            <option key={x.value} value={String(x.value)}>
              {x.label}
            </option>
          ))}
        </select>
        <label for="token-uses">Uses (how many agents may enrol with it)</label>
        {kind === 'host' ? (
          <>
            <input id="token-uses" type="number" value="1" disabled aria-describedby="token-uses-hint" />
            <span id="token-uses-hint" class="hint">
              A token for one host enrols one agent.
            </span>
          </>
        ) : (
          <input id="token-uses" type="number" min={1} max={100000} required value={uses} onInput={(e) => setUses(e.currentTarget.value)} />
        )}
        <ErrorNote error={error} />
        <div>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Making…' : 'Make token'}
          </button>
        </div>
      </form>
      <ErrorNote error={list.error} />
      {tokens.length === 0 && !list.loading ? (
        <Empty>No enrolment tokens.</Empty>
      ) : (
        <table>
          <caption class="sr-only">Enrolment tokens, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Token</th>
              <th scope="col">For</th>
              <th scope="col">State</th>
              <th scope="col">Uses</th>
              <th scope="col">Made</th>
              <th scope="col">Expires</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {tokens.map((k) => (
              <tr key={k.id} data-token={k.id}>
                <td>#{k.id}</td>
                <td>{tokenFor(k)}</td>
                <td>
                  <State state={tokenState(k)} />
                </td>
                <td>
                  {k.uses} used, {k.usesLeft} left
                </td>
                <td>
                  {formatTime(k.createdAt)} by {k.createdBy}
                </td>
                <td>{formatTime(k.expiresAt)}</td>
                <td class="row-actions">
                  {k.revokedAt || k.usesLeft <= 0 ? null : (
                    <button type="button" onClick={() => setRevoke(k)}>
                      Revoke…<span class="sr-only"> token #{k.id}</span>
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <ShownOnce
        open={created !== null}
        title={`Enrolment token #${created?.info.id ?? ''} made`}
        label="Token"
        value={created?.token ?? ''}
        onClose={() => setCreated(null)}
        extra={
          created ? (
            <>
              <CopyField id="enrol-line" label="On the machine, as root" value={enrolLine(t, created.token)} describedBy="enrol-line-hint" multiline />
              <p id="enrol-line-hint" class="hint">
                {missing.length === 0 ? (
                  <>The server's HTTPS address and the SHA-256 of its CA, which the agent pins, are filled in.</>
                ) : (
                  <>
                    Replace{' '}
                    {missing.map(([placeholder, what], i) => (
                      <span key={placeholder}>
                        {i > 0 ? ' and ' : null}
                        <code>{placeholder}</code> by {what}
                      </span>
                    ))}
                    . On the server, <code>fleetboot ca show</code> prints the CA's SHA-256, and the summary <code>fleetboot serve</code> prints at start names the HTTPS address and the SHA-256.
                  </>
                )}{' '}
                Then <code>systemctl restart fleetboot-agent</code>.
              </p>
            </>
          ) : null
        }
      >
        <p>
          For {created ? tokenFor(created.info, false) : null}, {created?.info.usesLeft} use{created?.info.usesLeft === 1 ? '' : 's'}, valid until {formatTime(created?.info.expiresAt)}. The server keeps only a hash of the token.
        </p>
      </ShownOnce>
      <Confirm
        open={revoke !== null}
        title={`Revoke enrolment token #${revoke?.id ?? ''}`}
        confirmLabel={`Revoke token #${revoke?.id ?? ''}`}
        danger
        onClose={() => setRevoke(null)}
        onConfirm={async () => {
          if (!revoke) return;
          await api<EnrolToken>('DELETE', `/agents/tokens/${revoke.id}`);
          announce(`Enrolment token #${revoke.id} revoked`);
          list.reload();
        }}
      >
        <p>
          Revoke enrolment token <strong>#{revoke?.id}</strong> (for {revoke ? tokenFor(revoke, false) : null}, {revoke?.usesLeft} use{revoke?.usesLeft === 1 ? '' : 's'} left)? No agent can enrol with it from now on. Agents that already enrolled with it stay active.
        </p>
      </Confirm>
    </section>
  );
}

export default function Agents(): JSX.Element {
  const list = useLoad(() => api<AgentList>('GET', '/agents'), []);
  usePoll(list.reload, true, POLL_MS);
  const admin = can('admin');
  const [approve, setApprove] = useState<Agent | null>(null);
  const [hostMac, setHostMac] = useState('');
  const [revoke, setRevoke] = useState<Agent | null>(null);
  useFocusKept(list.data);
  useEffect(() => {
    if (approve) setHostMac(reported(approve).macs[0] ?? '');
  }, [approve]);
  const all = list.data?.agents ?? [];
  const pending = all.filter((a) => a.state === 'pending').sort((a, b) => a.enrolledAt.localeCompare(b.enrolledAt));
  const others = all.filter((a) => a.state !== 'pending').sort((a, b) => ORDER[a.state] - ORDER[b.state] || (b.lastSeenAt ?? b.enrolledAt).localeCompare(a.lastSeenAt ?? a.enrolledAt));
  const approveMacs = approve ? reported(approve).macs : [];
  return (
    <Page title="Agents">
      <p class="hint">
        <code>fleetboot-agent</code> runs on installed machines and asks the server for work over HTTPS (packages, inventory, host name, reboot). This list is read again every {POLL_MS / 1000} seconds.
      </p>
      <ErrorNote error={list.error} />
      <section aria-labelledby="pending-title">
        <h2 id="pending-title">Waiting for approval{pending.length ? ` (${pending.length})` : ''}</h2>
        {list.data ? <PendingAgents agents={pending} admin={admin} onApprove={setApprove} onRevoke={setRevoke} /> : null}
      </section>
      <section aria-labelledby="agents-title">
        <h2 id="agents-title">Agents</h2>
        {list.data ? <AgentTable agents={others} admin={admin} onRevoke={setRevoke} /> : null}
      </section>
      {admin ? <EnrolTokens /> : null}
      <Confirm
        open={approve !== null}
        title={`Approve agent ${approve ? (reported(approve).hostname ?? approve.id.slice(0, 12)) : ''}`}
        confirmLabel={hostMac.trim() ? `Approve for ${hostMac.trim()}` : 'Approve'}
        onClose={() => setApprove(null)}
        onConfirm={async () => {
          if (!approve) return;
          const a = await api<Agent>('POST', `/agents/${approve.id}/approve`, hostMac.trim() ? { host: hostMac.trim() } : {});
          announce(`Agent approved for ${a.host ? (a.host.name ?? a.host.mac) : 'its host'}`);
          list.reload();
        }}
      >
        <p>
          <label for="approve-host">Host MAC</label>
          <input id="approve-host" class="mono" list="approve-macs" value={hostMac} onInput={(e) => setHostMac(e.currentTarget.value)} aria-describedby="approve-host-hint" autocomplete="off" />
          <datalist id="approve-macs">
            {approveMacs.map((m) => (
              <option key={m} value={m} />
            ))}
          </datalist>
        </p>
        <p id="approve-host-hint" class="hint">
          The agent reported {approveMacs.length ? approveMacs.join(', ') : 'no MAC'}. It becomes active for the host with this MAC, made when no host has it; another active agent of that host is revoked. Check the machine first: a MAC alone proves nothing.
        </p>
      </Confirm>
      <Confirm
        open={revoke !== null}
        title={revoke?.state === 'pending' ? `Refuse ${revoke ? hostLabel(revoke) : ''}` : `Revoke the agent of ${revoke ? hostLabel(revoke) : ''}`}
        confirmLabel={revoke?.state === 'pending' ? 'Refuse the agent' : `Revoke the agent of ${revoke?.host?.name ?? revoke?.host?.mac ?? 'this host'}`}
        danger
        onClose={() => setRevoke(null)}
        onConfirm={async () => {
          if (!revoke) return;
          await api<Agent>('POST', `/agents/${revoke.id}/revoke`);
          announce(`Agent of ${hostLabel(revoke)} revoked`);
          list.reload();
        }}
      >
        <p>
          Revoke the agent of <strong>{revoke ? hostLabel(revoke) : ''}</strong>? Its key is refused from its next request on, and it does no more work. The machine needs a new enrolment token to enrol again.
        </p>
      </Confirm>
    </Page>
  );
}
