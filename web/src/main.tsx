/**
 * The Fleetboot console: a single-page app under /ui/, served by
 * `fleetboot serve`. Login gate, navigation, and one lazily loaded module
 * per page (the first load carries only the shell and the dashboard).
 */
import { render, type JSX } from 'preact';
import { LocationProvider, Router, Route, lazy, ErrorBoundary, useLocation } from 'preact-iso';
import { useEffect } from 'preact/hooks';
import { api, can, loadMe, me, type Role } from './api.js';
import { announcement } from './components/ui.js';
import { Login, ChangePassword } from './pages/login.js';
import { Dashboard } from './pages/dashboard.js';
import { startLive, stopLive, liveState } from './live.js';
import { BASE } from './base.js';
import './styles.css';

const Hosts = lazy(() => import('./pages/hosts.js'));
const HostPage = lazy(() => import('./pages/host.js'));
const Pending = lazy(() => import('./pages/pending.js'));
const Tasks = lazy(() => import('./pages/tasks.js'));
const TaskPage = lazy(() => import('./pages/task.js'));
const Groups = lazy(() => import('./pages/groups.js'));
const Images = lazy(() => import('./pages/images.js'));
const Entries = lazy(() => import('./pages/entries.js'));
const Multicast = lazy(() => import('./pages/multicast.js'));
const Schedules = lazy(() => import('./pages/schedules.js'));
const Leases = lazy(() => import('./pages/leases.js'));
const Audit = lazy(() => import('./pages/audit.js'));
const Settings = lazy(() => import('./pages/settings.js'));
const Agents = lazy(() => import('./pages/agents.js'));
const Packages = lazy(() => import('./pages/packages.js'));


const NAV: { href: string; label: string; role?: Role }[] = [
  { href: `${BASE}/`, label: 'Dashboard' },
  { href: `${BASE}/hosts`, label: 'Hosts' },
  { href: `${BASE}/pending`, label: 'Pending hosts' },
  { href: `${BASE}/groups`, label: 'Groups' },
  { href: `${BASE}/images`, label: 'Images' },
  { href: `${BASE}/entries`, label: 'Boot entries' },
  { href: `${BASE}/tasks`, label: 'Tasks' },
  { href: `${BASE}/agents`, label: 'Agents' },
  { href: `${BASE}/packages`, label: 'Packages' },
  { href: `${BASE}/multicast`, label: 'Multicast' },
  { href: `${BASE}/schedules`, label: 'Schedules' },
  { href: `${BASE}/leases`, label: 'DHCP leases' },
  { href: `${BASE}/audit`, label: 'Audit log', role: 'admin' },
  { href: `${BASE}/settings`, label: 'Settings' },
];

function Nav(): JSX.Element {
  const { path } = useLocation();
  return (
    <nav aria-label="Main">
      <ul>
        {NAV.filter((n) => !n.role || can(n.role)).map((n) => {
          const current = n.href === `${BASE}/` ? path === `${BASE}/` || path === BASE : path === n.href || path.startsWith(`${n.href}/`);
          return (
            <li key={n.href}>
              <a href={n.href} aria-current={current ? 'page' : undefined}>
                {n.label}
              </a>
            </li>
          );
        })}
      </ul>
    </nav>
  );
}

function NotFound(): JSX.Element {
  return (
    <section class="page">
      <h1 tabIndex={-1}>Not found</h1>
      <p>
        There is no console page at this address. <a href={`${BASE}/`}>Go to the dashboard</a>.
      </p>
    </section>
  );
}

function Shell(): JSX.Element {
  const m = me.value;
  useEffect(() => {
    if (m && !m.user?.mustChangePassword) startLive();
    else stopLive();
  }, [m]);
  if (m === undefined) return <p class="loading">Loading…</p>;
  if (m === null) return <Login />;
  if (m.user?.mustChangePassword) return <ChangePassword />;
  const logout = async (): Promise<void> => {
    try {
      await api('POST', '/auth/logout');
    } finally {
      me.value = null;
    }
  };
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Fleetboot</span>
        <span class="who">
          <span class={`live live-${liveState.value}`} data-live={liveState.value} title="Live updates">
            <span aria-hidden="true">{liveState.value === 'open' ? '● ' : '○ '}</span>
            {liveState.value === 'open' ? 'live' : liveState.value === 'connecting' ? 'connecting…' : 'offline'}
          </span>{' '}
          {m.user ? `${m.user.name} (${m.role})` : `local admin`}{' '}
          <button type="button" onClick={() => void logout()}>
            Log out
          </button>
        </span>
      </header>
      <div class="frame">
        <Nav />
        <main id="main">
          <ErrorBoundary>
            <Router>
              <Route path={`${BASE}/`} component={Dashboard} />
              <Route path={`${BASE}/hosts`} component={Hosts} />
              <Route path={`${BASE}/hosts/:mac`} component={HostPage} />
              <Route path={`${BASE}/pending`} component={Pending} />
              <Route path={`${BASE}/tasks`} component={Tasks} />
              <Route path={`${BASE}/tasks/:id`} component={TaskPage} />
              <Route path={`${BASE}/groups`} component={Groups} />
              <Route path={`${BASE}/groups/:name`} component={Groups} />
              <Route path={`${BASE}/images`} component={Images} />
              <Route path={`${BASE}/images/:name`} component={Images} />
              <Route path={`${BASE}/entries`} component={Entries} />
              <Route path={`${BASE}/agents`} component={Agents} />
              <Route path={`${BASE}/packages`} component={Packages} />
              <Route path={`${BASE}/multicast`} component={Multicast} />
              <Route path={`${BASE}/schedules`} component={Schedules} />
              <Route path={`${BASE}/leases`} component={Leases} />
              <Route path={`${BASE}/audit`} component={Audit} />
              <Route path={`${BASE}/settings`} component={Settings} />
              <Route default component={NotFound} />
            </Router>
          </ErrorBoundary>
        </main>
      </div>
      <div class="sr-only" role="status" aria-live="polite">
        {announcement.value}
      </div>
    </>
  );
}

function App(): JSX.Element {
  return (
    <LocationProvider scope={BASE}>
      <Shell />
    </LocationProvider>
  );
}

const root = document.getElementById('app');
if (root) {
  render(<App />, root);
  void loadMe();
}
