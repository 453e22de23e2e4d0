import { useCallback, useEffect, useState } from 'react';
import { api, onSessionExpired, sessionToken, setSessionToken, type Session } from './api';
import { ErrorText, Loading, Money } from './components';
import { BillingPage } from './pages/Billing';
import { KeysPage } from './pages/Keys';
import { LoginPage, SignupPage } from './pages/Auth';
import { ModelsPage } from './pages/Models';
import { OverviewPage } from './pages/Overview';
import { UsagePage } from './pages/Usage';
import { here, Link, navigate, useLocation } from './router';
import { SessionContext } from './session';

const PAGES = [
  { path: '/', label: 'Overview' },
  { path: '/keys', label: 'Keys' },
  { path: '/usage', label: 'Usage' },
  { path: '/billing', label: 'Billing' },
  { path: '/models', label: 'Models' },
] as const;

const TITLES: Record<string, string> = {
  '/login': 'Log in',
  '/signup': 'Sign up',
  ...Object.fromEntries(PAGES.map((p) => [p.path, p.label])),
};

export function App() {
  const location = useLocation();
  const [token, setToken] = useState(sessionToken);
  const [session, setSession] = useState<Session | null>(null);
  const [sessionError, setSessionError] = useState<unknown>(null);
  const publicPage = location.path === '/login' || location.path === '/signup';

  useEffect(() => {
    document.title = `${TITLES[location.path] ?? 'Not found'} · NexoRouter`;
  }, [location.path]);

  // an expired or revoked session sends the user to log in, remembering where they were
  useEffect(
    () =>
      onSessionExpired(() => {
        setToken(null);
        setSession(null);
        const next = here();
        navigate(`/login?expired=1&next=${encodeURIComponent(next)}`, { replace: true });
      }),
    [],
  );

  const loadSession = useCallback(() => {
    if (!sessionToken()) return;
    api<Session>('/auth/session').then(
      (s) => {
        setSession(s);
        setSessionError(null);
      },
      (err: unknown) => setSessionError(err),
    );
  }, []);

  useEffect(() => {
    if (token) loadSession();
  }, [token, loadSession]);

  useEffect(() => {
    if (!token && !publicPage) navigate(location.path === '/' ? '/login' : `/login?next=${encodeURIComponent(here())}`, { replace: true });
    if (token && publicPage) navigate('/', { replace: true });
  }, [token, publicPage, location.path]);

  const signedIn = () => setToken(sessionToken());

  if (publicPage) {
    if (token) return null;
    return location.path === '/login' ? (
      <LoginPage next={location.params.get('next')} expired={location.params.get('expired') === '1'} onSignedIn={signedIn} />
    ) : (
      <SignupPage next={location.params.get('next')} onSignedIn={signedIn} />
    );
  }
  if (!token) return null;

  async function logout() {
    try {
      await api('/auth/logout', { method: 'POST' });
    } catch {
      // the session may already be gone; the token is dropped either way
    }
    setSessionToken(null);
    setSession(null);
    setToken(null);
    navigate('/login', { replace: true });
  }

  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <div className="brand">
          <span aria-hidden="true" className="logo">
            ◆
          </span>{' '}
          NexoRouter
        </div>
        <nav aria-label="Main">
          <ul>
            {PAGES.map((p) => (
              <li key={p.path}>
                <Link to={p.path} aria-current={location.path === p.path ? 'page' : undefined}>
                  {p.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="account">
          {session && (
            <>
              <span className="workspace" title={session.user.email}>
                {session.workspace.name} · <Money micros={session.workspace.available_micros} rounded testId="header-available" />
              </span>
              <button type="button" className="secondary small" onClick={() => void logout()}>
                Log out
              </button>
            </>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {!session && !sessionError && <Loading what="your workspace" />}
        {!session && sessionError ? <ErrorText error={sessionError} /> : null}
        {session && (
          <SessionContext.Provider value={{ session, refresh: loadSession }}>
            <Page path={location.path} params={location.params} />
          </SessionContext.Provider>
        )}
      </main>
    </>
  );
}

function Page({ path, params }: { path: string; params: URLSearchParams }) {
  switch (path) {
    case '/':
      return <OverviewPage />;
    case '/keys':
      return <KeysPage />;
    case '/usage':
      return <UsagePage />;
    case '/billing':
      return <BillingPage checkoutId={params.get('checkout')} canceled={params.get('canceled') === '1'} />;
    case '/models':
      return <ModelsPage />;
    default:
      return (
        <section>
          <h1>Page not found</h1>
          <p>
            There is no page at this address. <Link to="/">Go to the overview</Link>.
          </p>
        </section>
      );
  }
}
