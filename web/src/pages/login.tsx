/** The login form, and the forced password change after a generated (one-time) password. */
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, errorText, loadMe, me, type Me } from '../api.js';
import { ErrorNote } from '../components/ui.js';

interface LoginAnswer {
  user: { name: string; role: Me['role']; mustChangePassword: boolean };
  csrfToken: string;
}

export function Login(): JSX.Element {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => {
    document.title = 'Log in · Fleetboot';
    first.current?.focus();
  }, []);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const r = await api<LoginAnswer>('POST', '/auth/login', { name, password });
      me.value = { user: r.user, role: r.user.role, csrfToken: r.csrfToken };
    } catch (err) {
      setPassword('');
      if (err instanceof ApiError && err.status === 429) setError(err.message);
      else if (err instanceof ApiError && err.status === 401) setError('Wrong user name or password.');
      else setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login" id="main">
      <form onSubmit={(e) => void submit(e)} aria-labelledby="login-title">
        <h1 id="login-title">Fleetboot</h1>
        <p class="hint">Log in to manage hosts, images and tasks.</p>
        <label for="login-name">User name</label>
        <input id="login-name" ref={first} name="username" autocomplete="username" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <label for="login-password">Password</label>
        <input id="login-password" name="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        <ErrorNote error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
        <p class="hint">
          No account yet? The first administrator is made on the server: <code>fleetboot user add NAME --role admin</code>.
        </p>
      </form>
    </main>
  );
}

export function ChangePassword(): JSX.Element {
  const m = me.value;
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    document.title = 'Choose a password · Fleetboot';
  }, []);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (next !== again) {
      setError('The two new passwords differ.');
      return;
    }
    try {
      await api('POST', `/users/${encodeURIComponent(m?.user?.name ?? '')}/password`, { currentPassword: current, password: next });
      await loadMe();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <main class="login" id="main">
      <form onSubmit={(e) => void submit(e)} aria-labelledby="pw-title">
        <h1 id="pw-title">Choose your password</h1>
        <p class="hint">Your password was generated for one use: choose your own to go on.</p>
        <label for="pw-current">Current (generated) password</label>
        <input id="pw-current" type="password" autocomplete="current-password" required value={current} onInput={(e) => setCurrent(e.currentTarget.value)} />
        <label for="pw-new">New password</label>
        <input id="pw-new" type="password" autocomplete="new-password" required value={next} onInput={(e) => setNext(e.currentTarget.value)} />
        <label for="pw-again">New password again</label>
        <input id="pw-again" type="password" autocomplete="new-password" required value={again} onInput={(e) => setAgain(e.currentTarget.value)} />
        <ErrorNote error={error} />
        <button type="submit" class="primary">
          Save password
        </button>
      </form>
    </main>
  );
}
