import { useState, type FormEvent } from 'react';
import { api, ApiError, errorMessage, setSessionToken, type SignupResult } from '../api';
import { ErrorText, Field } from '../components';
import { Link, navigate } from '../router';

const MIN_PASSWORD = 10;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Where to go after logging in: the page the user was on, never another site. */
function destination(next: string | null): string {
  if (next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/login') && !next.startsWith('/signup')) return next;
  return '/';
}

export function LoginPage({ next, expired, onSignedIn }: { next: string | null; expired: boolean; onSignedIn: () => void }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState<{ email?: string; password?: string; form?: string }>({});
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const found: typeof errors = {};
    if (!EMAIL.test(email.trim())) found.email = 'Enter the email address you signed up with.';
    if (!password) found.password = 'Enter your password.';
    setErrors(found);
    if (Object.keys(found).length) return;
    setBusy(true);
    try {
      const res = await api<{ access_token: string }>('/auth/login', {
        method: 'POST',
        body: { email: email.trim(), password },
        session: false,
      });
      setSessionToken(res.access_token);
      onSignedIn();
      navigate(destination(next), { replace: true });
    } catch (err) {
      setErrors({ form: err instanceof ApiError && err.status === 401 ? 'Wrong email or password.' : errorMessage(err) });
      setBusy(false);
    }
  }

  return (
    <main className="auth" id="main">
      <h1>Log in to NexoRouter</h1>
      {expired && (
        <p className="notice" role="status">
          Your session has ended. Log in again to continue where you were.
        </p>
      )}
      <form onSubmit={(e) => void submit(e)} noValidate aria-label="Log in">
        <Field label="Email" error={errors.email}>
          {(p) => <input {...p} type="email" autoComplete="username" value={email} onChange={(e) => setEmail(e.target.value)} required />}
        </Field>
        <Field label="Password" error={errors.password}>
          {(p) => (
            <input
              {...p}
              type="password"
              autoComplete="current-password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              required
            />
          )}
        </Field>
        <ErrorText error={errors.form} />
        <button type="submit" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
      <p>
        No account yet? <Link to={next ? `/signup?next=${encodeURIComponent(next)}` : '/signup'}>Sign up</Link>
      </p>
    </main>
  );
}

export function SignupPage({ next, onSignedIn }: { next: string | null; onSignedIn: () => void }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [workspace, setWorkspace] = useState('');
  const [errors, setErrors] = useState<{ email?: string; password?: string; workspace?: string; form?: string }>({});
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const found: typeof errors = {};
    if (!EMAIL.test(email.trim()) || email.trim().length > 254) found.email = 'Enter a valid email address.';
    if (password.length < MIN_PASSWORD) found.password = `Use at least ${MIN_PASSWORD} characters.`;
    else if (password.length > 256) found.password = 'Use at most 256 characters.';
    if (!workspace.trim()) found.workspace = 'Name your workspace (your team or project).';
    else if (workspace.trim().length > 200) found.workspace = 'Use at most 200 characters.';
    setErrors(found);
    if (Object.keys(found).length) return;
    setBusy(true);
    try {
      const res = await api<SignupResult>('/auth/signup', {
        method: 'POST',
        body: { email: email.trim(), password, workspace_name: workspace.trim() },
        session: false,
      });
      setSessionToken(res.access_token);
      onSignedIn();
      navigate(destination(next), { replace: true });
    } catch (err) {
      const message = errorMessage(err);
      if (err instanceof ApiError && /email/i.test(message)) setErrors({ email: message });
      else if (err instanceof ApiError && /password/i.test(message)) setErrors({ password: message });
      else setErrors({ form: message });
      setBusy(false);
    }
  }

  return (
    <main className="auth" id="main">
      <h1>Create your NexoRouter account</h1>
      <p className="muted">One balance for every model: top it up, create keys, and point any OpenAI SDK at this gateway.</p>
      <form onSubmit={(e) => void submit(e)} noValidate aria-label="Sign up">
        <Field label="Email" error={errors.email}>
          {(p) => <input {...p} type="email" autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} required />}
        </Field>
        <Field label="Password" error={errors.password} hint={`At least ${MIN_PASSWORD} characters.`}>
          {(p) => (
            <input
              {...p}
              type="password"
              autoComplete="new-password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              required
            />
          )}
        </Field>
        <Field label="Workspace name" error={errors.workspace}>
          {(p) => (
            <input
              {...p}
              type="text"
              autoComplete="organization"
              value={workspace}
              onChange={(e) => setWorkspace(e.target.value)}
              required
            />
          )}
        </Field>
        <ErrorText error={errors.form} />
        <button type="submit" disabled={busy}>
          {busy ? 'Creating your account…' : 'Sign up'}
        </button>
      </form>
      <p>
        Already have an account? <Link to={next ? `/login?next=${encodeURIComponent(next)}` : '/login'}>Log in</Link>
      </p>
    </main>
  );
}
