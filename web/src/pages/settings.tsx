/**
 * Settings: one's own password; users (admins only: add with a role and a
 * one-time password shown once, change role, disable and enable, reset the
 * password, delete); API tokens (one's own, an admin's: everyone's; made
 * with a name, a role no higher than the owner's and an expiry, the secret
 * shown once; revoked); login sessions (the current one marked; revoked).
 * A viewer reads here but makes and removes nothing.
 */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ShownOnce } from '../components/secret.js';
import { api, can, errorText, loadMe, me, qs, type Role } from '../api.js';
import type { ApiToken, Session, SessionList, TokenCreated, TokenList, User, UserAndPassword, UserList } from '../types.js';
import { Confirm, Empty, ErrorNote, Page, State, announce, formatTime, useLoad, useFocusKept } from '../components/ui.js';


const ROLES: readonly Role[] = ['viewer', 'operator', 'admin'];
const ROLE_TEXT: Record<Role, string> = {
  viewer: 'viewer (reads only)',
  operator: 'operator (tasks, hosts, groups, entries, images)',
  admin: 'admin (also users, settings, deletes)',
};

function roleOf(v: string): Role {
  return v === 'admin' || v === 'operator' ? v : 'viewer';
}
function rolesUpTo(max: Role): Role[] {
  return ROLES.slice(0, ROLES.indexOf(max) + 1);
}

function OwnPassword(props: { name: string }): JSX.Element {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(null);
    setDone(null);
    if (next !== again) {
      setError('The two new passwords differ.');
      return;
    }
    setBusy(true);
    try {
      await api<UserAndPassword>('POST', `/users/${encodeURIComponent(props.name)}/password`, { currentPassword: current, password: next });
      setCurrent('');
      setNext('');
      setAgain('');
      setDone('Password changed. Your other sessions were signed out; this one stays.');
      announce('Password changed');
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="own-password">
      <h2 id="own-password">Your password</h2>
      <form class="stacked narrow-form" onSubmit={(e) => void submit(e)}>
        <input type="text" name="username" autocomplete="username" value={props.name} readOnly hidden />
        <label for="pw-current">Current password</label>
        <input id="pw-current" type="password" autocomplete="current-password" required value={current} onInput={(e) => setCurrent(e.currentTarget.value)} />
        <label for="pw-new">New password</label>
        <input id="pw-new" type="password" autocomplete="new-password" required value={next} onInput={(e) => setNext(e.currentTarget.value)} />
        <label for="pw-again">New password again</label>
        <input id="pw-again" type="password" autocomplete="new-password" required value={again} onInput={(e) => setAgain(e.currentTarget.value)} />
        <ErrorNote error={error} />
        {done ? <p role="status">{done}</p> : null}
        <div>
          <button type="submit" class="primary" disabled={busy}>
            Change password
          </button>
        </div>
      </form>
    </section>
  );
}

type UserAction = { kind: 'role' | 'disable' | 'reset' | 'delete'; user: User };

function Users(props: { onChanged: () => void }): JSX.Element {
  const list = useLoad(() => api<UserList>('GET', '/users'), []);
  const self = me.value?.user?.name ?? null;
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('viewer');
  const [addError, setAddError] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [action, setAction] = useState<UserAction | null>(null);
  const [newRole, setNewRole] = useState<Role>('viewer');
  const [secret, setSecret] = useState<{ user: string; password: string; isNew: boolean } | null>(null);
  useFocusKept(list.data);
  const users = list.data?.users ?? [];

  const changed = (): void => {
    list.reload();
    props.onChanged();
  };

  const add = async (e: Event): Promise<void> => {
    e.preventDefault();
    setAddError(null);
    try {
      const r = await api<UserAndPassword>('POST', '/users', { name: name.trim(), role });
      announce(`User ${r.user.name} added`);
      setName('');
      if (r.password) setSecret({ user: r.user.name, password: r.password, isNew: true });
      changed();
    } catch (err) {
      setAddError(errorText(err));
    }
  };

  const enable = async (u: User): Promise<void> => {
    setActionError(null);
    try {
      await api<User>('PATCH', `/users/${encodeURIComponent(u.name)}`, { disabled: false });
      announce(`User ${u.name} enabled`);
      changed();
    } catch (err) {
      setActionError(errorText(err));
    }
  };

  const open = (kind: UserAction['kind'], u: User): void => {
    setNewRole(roleOf(u.role));
    setAction({ kind, user: u });
  };

  const run = async (): Promise<void> => {
    if (!action) return;
    const u = action.user;
    const path = `/users/${encodeURIComponent(u.name)}`;
    switch (action.kind) {
      case 'role':
        await api<User>('PATCH', path, { role: newRole });
        announce(`${u.name} is now ${newRole}`);
        break;
      case 'disable':
        await api<User>('PATCH', path, { disabled: true });
        announce(`User ${u.name} disabled`);
        break;
      case 'reset': {
        const r = await api<UserAndPassword>('POST', `${path}/password`, {});
        if (r.password) setSecret({ user: u.name, password: r.password, isNew: false });
        announce(`Password of ${u.name} reset`);
        break;
      }
      case 'delete':
        await api('DELETE', path);
        announce(`User ${u.name} deleted`);
        break;
    }
    // One's own role, state or account changed: what this page may show changes with it (or the login form comes back).
    if (u.name === self) await loadMe();
    changed();
  };

  const a = action;
  const you = (u: User): string => (u.name === self ? ' (you)' : '');
  return (
    <section aria-labelledby="users-title" data-testid="user-management">
      <h2 id="users-title">Users</h2>
      <form class="inline-form" onSubmit={(e) => void add(e)}>
        <label for="user-name">New user</label>
        <input id="user-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="name" autocomplete="off" />
        <label for="user-role">Role</label>
        <select id="user-role" value={role} onChange={(e) => setRole(roleOf(e.currentTarget.value))}>
          {ROLES.map((r) => (
            <option key={r} value={r}>
              {ROLE_TEXT[r]}
            </option>
          ))}
        </select>
        <button type="submit" class="primary">
          Add user
        </button>
      </form>
      <p class="hint">A new user gets a one-time password, shown once, to change at the first login.</p>
      <ErrorNote error={addError ?? actionError ?? list.error} />
      {users.length === 0 && !list.loading ? (
        <Empty>No users.</Empty>
      ) : (
        <table>
          <caption class="sr-only">Users</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Role</th>
              <th scope="col">Status</th>
              <th scope="col">Added</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {users.map((u) => (
              <tr key={u.name} data-user={u.name}>
                <td>
                  {u.name}
                  {you(u)}
                </td>
                <td>{u.role}</td>
                <td>
                  <State state={u.disabledAt ? 'disabled' : 'enabled'} />
                  {u.disabledAt ? <span class="task-message"> since {formatTime(u.disabledAt)}</span> : null}
                  {u.mustChangePassword ? <div class="task-message">must choose a password at the next login</div> : null}
                </td>
                <td>{formatTime(u.createdAt)}</td>
                <td class="row-actions">
                  <button type="button" onClick={() => open('role', u)}>
                    Change role…<span class="sr-only"> of {u.name}</span>
                  </button>
                  {u.disabledAt ? (
                    <button type="button" onClick={() => void enable(u)}>
                      Enable<span class="sr-only"> {u.name}</span>
                    </button>
                  ) : (
                    <button type="button" onClick={() => open('disable', u)}>
                      Disable…<span class="sr-only"> {u.name}</span>
                    </button>
                  )}
                  {u.name === self ? null : (
                    <button type="button" onClick={() => open('reset', u)}>
                      Reset password…<span class="sr-only"> of {u.name}</span>
                    </button>
                  )}
                  <button type="button" onClick={() => open('delete', u)}>
                    Delete…<span class="sr-only"> user {u.name}</span>
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Confirm
        open={a !== null}
        title={
          a === null ? '' : a.kind === 'role' ? `Change the role of ${a.user.name}` : a.kind === 'disable' ? `Disable ${a.user.name}` : a.kind === 'reset' ? `Reset the password of ${a.user.name}` : `Delete user ${a.user.name}`
        }
        confirmLabel={
          a === null ? '' : a.kind === 'role' ? `Make ${a.user.name} ${newRole}` : a.kind === 'disable' ? `Disable ${a.user.name}` : a.kind === 'reset' ? 'Reset the password' : `Delete ${a.user.name}`
        }
        danger={a !== null && a.kind !== 'role'}
        onClose={() => setAction(null)}
        onConfirm={run}
      >
        {a?.kind === 'role' ? (
          <>
            <p>
              <label for="user-new-role">New role of {a.user.name}</label>
              <select id="user-new-role" value={newRole} onChange={(e) => setNewRole(roleOf(e.currentTarget.value))}>
                {ROLES.map((r) => (
                  <option key={r} value={r}>
                    {ROLE_TEXT[r]}
                  </option>
                ))}
              </select>
            </p>
            <p>
              {a.user.name} is {a.user.role} now. Their API tokens keep their own roles, but none acts above the owner's new role. The last enabled admin cannot lose the admin role.
            </p>
          </>
        ) : null}
        {a?.kind === 'disable' ? (
          <p>
            Disable <strong>{a.user.name}</strong>
            {you(a.user)}? Their sessions end at once, they cannot log in, and their API tokens are refused until they are enabled again.
          </p>
        ) : null}
        {a?.kind === 'reset' ? (
          <p>
            Reset the password of <strong>{a.user.name}</strong>? A one-time password is generated and shown once; {a.user.name} must choose a new one at the next login. Their sessions end.
          </p>
        ) : null}
        {a?.kind === 'delete' ? (
          <p>
            Delete user <strong>{a.user.name}</strong>
            {you(a.user)} with all their sessions and API tokens? This cannot be undone; the audit log keeps their name.
          </p>
        ) : null}
      </Confirm>
      <ShownOnce
        open={secret !== null}
        title={secret?.isNew ? `User ${secret.user} added` : `New password of ${secret?.user ?? ''}`}
        label={`One-time password of ${secret?.user ?? ''}`}
        value={secret?.password ?? ''}
        onClose={() => setSecret(null)}
      >
        <p>Give {secret?.user} this password; they must choose their own at the first login.</p>
      </ShownOnce>
    </section>
  );
}

const EXPIRY = [
  { value: '7', label: '7 days' },
  { value: '30', label: '30 days' },
  { value: '90', label: '90 days' },
  { value: '365', label: '1 year' },
  { value: 'never', label: 'Never' },
];

function tokenState(t: ApiToken): string {
  if (t.revokedAt) return 'revoked';
  if (t.expiresAt && Date.parse(t.expiresAt) <= Date.now()) return 'expired';
  return 'active';
}

function Tokens(props: { usersKey: number }): JSX.Element {
  const m = me.value;
  const admin = can('admin');
  // One's own tokens and sessions are every user's to manage (they change no machine); an admin's cover everyone's.
  const writer = me.value?.user != null;
  const self = m?.user?.name ?? '';
  const [showRevoked, setShowRevoked] = useState(false);
  const list = useLoad(() => api<TokenList>('GET', `/tokens${qs({ revoked: showRevoked ? 'true' : undefined })}`), [showRevoked, props.usersKey]);
  // An admin may make a token for another user: the role offered is at most that user's.
  const users = useLoad(() => (admin ? api<UserList>('GET', '/users') : Promise.resolve<UserList>({ users: [] })), [admin, props.usersKey]);
  const [name, setName] = useState('');
  const [owner, setOwner] = useState(self);
  const [role, setRole] = useState<Role>('viewer');
  const [expiry, setExpiry] = useState('90');
  const [error, setError] = useState<string | null>(null);
  const [created, setCreated] = useState<TokenCreated | null>(null);
  const [revoke, setRevoke] = useState<ApiToken | null>(null);
  const ownerRole: Role = owner === self ? (m?.role ?? 'viewer') : roleOf((users.data?.users ?? []).find((u) => u.name === owner)?.role ?? 'viewer');
  const roles = rolesUpTo(ownerRole);
  useEffect(() => {
    if (!roles.includes(role)) setRole(roles[roles.length - 1] ?? 'viewer');
  }, [ownerRole]);
  useFocusKept(list.data);
  const tokens = list.data?.tokens ?? [];

  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(null);
    try {
      const r = await api<TokenCreated>('POST', '/tokens', {
        name: name.trim(),
        role,
        expiresInDays: expiry === 'never' ? null : Number(expiry),
        ...(owner && owner !== self ? { user: owner } : {}),
      });
      announce(`Token ${r.token.name} made`);
      setName('');
      setCreated(r);
      list.reload();
    } catch (err) {
      setError(errorText(err));
    }
  };

  return (
    <section aria-labelledby="tokens-title">
      <h2 id="tokens-title">API tokens</h2>
      <p class="hint">
        A token lets a program use the API as its owner, with a role no higher than the owner's: send it as <code>Authorization: Bearer fbt_…</code>. {admin ? 'You see every user\'s tokens.' : 'You see your own tokens.'}
      </p>
      {writer ? (
        <form class="inline-form" onSubmit={(e) => void create(e)}>
          <label for="token-name">Token name</label>
          <input id="token-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="e.g. inventory-script" autocomplete="off" />
          {admin ? (
            <>
              <label for="token-owner">Owner</label>
              <select id="token-owner" value={owner} onChange={(e) => setOwner(e.currentTarget.value)}>
                {self ? <option value={self}>{self} (you)</option> : <option value="">Choose…</option>}
                {(users.data?.users ?? [])
                  .filter((u) => u.name !== self && !u.disabledAt)
                  .map((u) => (
                    <option key={u.name} value={u.name}>
                      {u.name} ({u.role})
                    </option>
                  ))}
              </select>
            </>
          ) : null}
          <label for="token-role">Role</label>
          <select id="token-role" value={role} onChange={(e) => setRole(roleOf(e.currentTarget.value))}>
            {roles.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
          <label for="token-expiry">Expires after</label>
          <select id="token-expiry" value={expiry} onChange={(e) => setExpiry(e.currentTarget.value)}>
            {EXPIRY.map((x) => (
              <option key={x.value} value={x.value}>
                {x.label}
              </option>
            ))}
          </select>
          <button type="submit" class="primary">
            Make token
          </button>
        </form>
      ) : (
        <p class="hint">An admin makes API tokens for viewers.</p>
      )}
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          <input type="checkbox" checked={showRevoked} onChange={(e) => setShowRevoked(e.currentTarget.checked)} /> Show revoked tokens
        </label>
      </form>
      <ErrorNote error={error ?? list.error} />
      {tokens.length === 0 && !list.loading ? (
        <Empty>No API tokens.</Empty>
      ) : (
        <table>
          <caption class="sr-only">API tokens</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              {admin ? <th scope="col">Owner</th> : null}
              <th scope="col">Role</th>
              <th scope="col">Status</th>
              <th scope="col">Made</th>
              <th scope="col">Expires</th>
              <th scope="col">Last used</th>
              {writer ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {tokens.map((t) => (
              <tr key={t.id} data-token={t.id}>
                <td>
                  {t.name} <span class="task-message">#{t.id}</span>
                </td>
                {admin ? <td>{t.user}</td> : null}
                <td>{t.role}</td>
                <td>
                  <State state={tokenState(t)} />
                </td>
                <td>{formatTime(t.createdAt)}</td>
                <td>{t.expiresAt ? formatTime(t.expiresAt) : 'never'}</td>
                <td>{t.lastUsedAt ? formatTime(t.lastUsedAt) : 'never'}</td>
                {writer ? (
                  <td class="row-actions">
                    {t.revokedAt ? null : (
                      <button type="button" onClick={() => setRevoke(t)}>
                        Revoke…<span class="sr-only"> token {t.name}</span>
                      </button>
                    )}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <ShownOnce open={created !== null} title={`Token ${created?.token.name ?? ''} made`} label="Token secret" value={created?.secret ?? ''} onClose={() => setCreated(null)}>
        <p>
          Role {created?.token.role}, owner {created?.token.user}, {created?.token.expiresAt ? `expires ${formatTime(created.token.expiresAt)}` : 'never expires'}. The server keeps only a hash of the secret.
        </p>
      </ShownOnce>
      <Confirm
        open={revoke !== null}
        title={`Revoke token ${revoke?.name ?? ''}`}
        confirmLabel={`Revoke ${revoke?.name ?? ''}`}
        danger
        onClose={() => setRevoke(null)}
        onConfirm={async () => {
          if (!revoke) return;
          await api<{ revoked?: ApiToken }>('DELETE', `/tokens/${revoke.id}`);
          announce(`Token ${revoke.name} revoked`);
          list.reload();
        }}
      >
        <p>
          Revoke token <strong>{revoke?.name}</strong> (#{revoke?.id}, {revoke?.role}) of {revoke?.user}? Programs using it are refused from now on. This cannot be undone.
        </p>
      </Confirm>
    </section>
  );
}

/** The browser and system from a User-Agent header, roughly ("Chrome on Linux"). */
function browserOf(ua: string | null): string {
  if (!ua) return '—';
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : /curl\//.test(ua) ? 'curl' : null;
  const os = /Windows/.test(ua) ? 'Windows' : /Mac OS X/.test(ua) ? 'macOS' : /Android/.test(ua) ? 'Android' : /Linux/.test(ua) ? 'Linux' : null;
  if (!browser) return ua.slice(0, 40);
  return os ? `${browser} on ${os}` : browser;
}

function Sessions(props: { reloadKey: number }): JSX.Element {
  const admin = can('admin');
  // One's own tokens and sessions are every user's to manage (they change no machine); an admin's cover everyone's.
  const writer = me.value?.user != null;
  const list = useLoad(() => api<SessionList>('GET', '/sessions'), [props.reloadKey]);
  const [revoke, setRevoke] = useState<Session | null>(null);
  useFocusKept(list.data);
  const sessions = list.data?.sessions ?? [];
  return (
    <section aria-labelledby="sessions-title">
      <h2 id="sessions-title">Sessions</h2>
      <p class="hint">{admin ? 'Every user\'s open login sessions.' : 'Your open login sessions.'} A session ends after a while unused, and at the latest some hours after the login.</p>
      <ErrorNote error={list.error} />
      {sessions.length === 0 && !list.loading ? (
        <Empty>No open sessions.</Empty>
      ) : (
        <table>
          <caption class="sr-only">Open login sessions</caption>
          <thead>
            <tr>
              {admin ? <th scope="col">User</th> : null}
              <th scope="col">Session</th>
              <th scope="col">From</th>
              <th scope="col">Browser</th>
              <th scope="col">Logged in</th>
              <th scope="col">Last used</th>
              <th scope="col">Ends if unused</th>
              {writer ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {sessions.map((s) => (
              <tr key={s.id} class={s.current ? 'current' : undefined} aria-current={s.current ? 'true' : undefined}>
                {admin ? <td>{s.user}</td> : null}
                <td>
                  <span class="mono">{s.id.slice(0, 12)}…</span>
                  {s.current ? <strong> (this session)</strong> : null}
                </td>
                <td class="mono">{s.ip ?? '—'}</td>
                <td title={s.userAgent ?? undefined}>{browserOf(s.userAgent)}</td>
                <td>{formatTime(s.createdAt)}</td>
                <td>{formatTime(s.lastSeenAt)}</td>
                <td>{formatTime(s.idleExpiresAt)}</td>
                {writer ? (
                  <td class="row-actions">
                    <button type="button" onClick={() => setRevoke(s)}>
                      {s.current ? 'Log out…' : 'Revoke…'}
                      <span class="sr-only">
                        {' '}
                        session {s.id.slice(0, 12)} of {s.user}
                      </span>
                    </button>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Confirm
        open={revoke !== null}
        title={revoke?.current ? 'End this session' : `Revoke a session of ${revoke?.user ?? ''}`}
        confirmLabel={revoke?.current ? 'End this session and log out' : 'Revoke the session'}
        danger
        onClose={() => setRevoke(null)}
        onConfirm={async () => {
          if (!revoke) return;
          await api<{ revoked?: Session }>('DELETE', `/sessions/${revoke.id}`);
          if (revoke.current) {
            await loadMe();
            return;
          }
          announce(`Session of ${revoke.user} revoked`);
          list.reload();
        }}
      >
        {revoke?.current ? (
          <p>This is the session you are using: ending it logs you out of this browser.</p>
        ) : (
          <p>
            Revoke the session of <strong>{revoke?.user}</strong> from {revoke?.ip ?? 'an unknown address'} ({browserOf(revoke?.userAgent ?? null)}, last used {formatTime(revoke?.lastSeenAt)})? That browser is logged out at its next request.
          </p>
        )}
      </Confirm>
    </section>
  );
}

export default function Settings(): JSX.Element {
  const m = me.value;
  // A change to users (disabled, deleted, password reset) ends sessions and changes token owners: those lists load again.
  const [usersChanged, setUsersChanged] = useState(0);
  return (
    <Page title="Settings">
      {m?.user ? <OwnPassword name={m.user.name} /> : null}
      {can('admin') ? <Users onChanged={() => setUsersChanged((n) => n + 1)} /> : null}
      <Tokens usersKey={usersChanged} />
      <Sessions reloadKey={usersChanged} />
    </Page>
  );
}
