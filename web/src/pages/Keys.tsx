import { useState, type FormEvent } from 'react';
import { api, errorMessage, type ApiKey, type BudgetPeriod, type CreatedKey, type KeyCreate, type SellableModel } from '../api';
import { CodeBlock, CopyButton, DateTime, Dialog, ErrorText, Field, Loading, Money, useAsync } from '../components';
import { integer, localDay, parseDollars, usd } from '../format';
import { curlSnippet, nodeSnippet } from '../snippets';

function keyState(k: ApiKey): 'revoked' | 'expired' | 'disabled' | 'active' {
  if (k.revoked) return 'revoked';
  if (k.expires_at && Date.parse(k.expires_at) <= Date.now()) return 'expired';
  if (k.disabled) return 'disabled';
  return 'active';
}

function limits(k: ApiKey): string {
  const parts = [k.rpm_limit !== null ? `${integer(k.rpm_limit)} RPM` : null, k.tpm_limit !== null ? `${integer(k.tpm_limit)} TPM` : null];
  const text = parts.filter(Boolean).join(' · ');
  return text || 'Workspace limits';
}

function BudgetBar({ k }: { k: ApiKey }) {
  if (k.budget_micros === null) {
    return (
      <span>
        <Money micros={k.spent_micros} rounded /> spent · no budget
      </span>
    );
  }
  const share = k.budget_micros > 0 ? Math.min(1, k.spent_micros / k.budget_micros) : 1;
  const label = `${usd(k.spent_micros)} of ${usd(k.budget_micros)} spent${k.budget_period ? ` (resets ${k.budget_period})` : ''}`;
  return (
    <div className="budget">
      <span>
        <Money micros={k.spent_micros} rounded /> / <Money micros={k.budget_micros} rounded />
        {k.budget_period && <span className="muted"> {k.budget_period}</span>}
      </span>
      <div
        className="bar"
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(share * 100)}
      >
        <div className={share >= 1 ? 'fill full' : share > 0.8 ? 'fill high' : 'fill'} style={{ width: `${(share * 100).toFixed(1)}%` }} />
      </div>
    </div>
  );
}

export function KeysPage() {
  const keys = useAsync(() => api<{ data: ApiKey[] }>('/dashboard/keys'), []);
  const models = useAsync(() => api<{ data: SellableModel[] }>('/dashboard/models'), []);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<CreatedKey | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const [rowError, setRowError] = useState<{ id: string; message: string } | null>(null);
  const [busy, setBusy] = useState<string | null>(null);

  async function toggle(k: ApiKey) {
    setBusy(k.id);
    setRowError(null);
    try {
      await api<ApiKey>(`/dashboard/keys/${k.id}`, { method: 'PATCH', body: { disabled: !k.disabled } });
      keys.reload();
    } catch (err) {
      setRowError({ id: k.id, message: errorMessage(err) });
    } finally {
      setBusy(null);
    }
  }

  return (
    <section aria-labelledby="keys-title">
      <div className="page-head">
        <h1 id="keys-title">API keys</h1>
        <button type="button" onClick={() => setCreating(true)}>
          Create key
        </button>
      </div>
      <p className="muted">
        Keys call the OpenAI-compatible API. Each one can be limited to some models, given a budget, an expiry and rate limits.
      </p>
      <ErrorText error={keys.error} />
      {keys.loading && !keys.data && <Loading what="keys" />}
      {keys.data && keys.data.data.length === 0 && <p>No keys yet: create one to start calling models.</p>}
      {keys.data && keys.data.data.length > 0 && (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Your API keys</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Key</th>
                <th scope="col">Models</th>
                <th scope="col">Budget</th>
                <th scope="col">Limits</th>
                <th scope="col">Expires</th>
                <th scope="col">State</th>
                <th scope="col">Last used</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.data.data.map((k) => {
                const state = keyState(k);
                return (
                  <tr key={k.id} data-testid="key-row" data-key-id={k.id} data-state={state}>
                    <td>{k.name}</td>
                    <td>
                      <code>
                        {k.prefix}…{k.last_four}
                      </code>
                    </td>
                    <td>{k.models === null ? <span className="muted">All models</span> : k.models.join(', ')}</td>
                    <td>
                      <BudgetBar k={k} />
                    </td>
                    <td>{limits(k)}</td>
                    <td>
                      <DateTime iso={k.expires_at} />
                    </td>
                    <td>
                      <span className={`state ${state}`}>{state}</span>
                    </td>
                    <td>{k.last_used_at ? <DateTime iso={k.last_used_at} /> : <span className="muted">never</span>}</td>
                    <td className="actions">
                      {state !== 'revoked' && (
                        <>
                          <button
                            type="button"
                            className="secondary small"
                            disabled={busy === k.id}
                            onClick={() => void toggle(k)}
                            aria-label={`${k.disabled ? 'Enable' : 'Disable'} key ${k.name}`}
                          >
                            {k.disabled ? 'Enable' : 'Disable'}
                          </button>
                          <button type="button" className="danger small" onClick={() => setRevoking(k)} aria-label={`Revoke key ${k.name}`}>
                            Revoke
                          </button>
                        </>
                      )}
                      {rowError?.id === k.id && <ErrorText error={rowError.message} />}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <Dialog open={creating} title="Create a key" onClose={() => setCreating(false)}>
        <CreateKeyForm
          models={models.data?.data ?? []}
          modelsError={models.error}
          onCancel={() => setCreating(false)}
          onCreated={(k) => {
            setCreating(false);
            setCreated(k);
            keys.reload();
          }}
        />
      </Dialog>
      <Dialog open={created !== null} title="Your new key" onClose={() => setCreated(null)}>
        {created && <SecretShownOnce created={created} onDone={() => setCreated(null)} />}
      </Dialog>
      <Dialog open={revoking !== null} title="Revoke this key?" onClose={() => setRevoking(null)}>
        {revoking && (
          <RevokeConfirm
            k={revoking}
            onCancel={() => setRevoking(null)}
            onRevoked={() => {
              setRevoking(null);
              keys.reload();
            }}
          />
        )}
      </Dialog>
    </section>
  );
}

function SecretShownOnce({ created, onDone }: { created: CreatedKey; onDone: () => void }) {
  const model = created.models?.[0] ?? 'deepseek-v4-flash';
  return (
    <div>
      <p className="notice" role="status">
        Copy this key now: it is shown only once. NexoRouter stores only its hash and cannot show it again.
      </p>
      <div className="secret">
        <code data-testid="new-key-secret">{created.key}</code>
        <CopyButton text={created.key} what="API key" />
      </div>
      <CodeBlock what="curl" code={curlSnippet(created.key, model)} />
      <CodeBlock what="openai SDK (Node.js)" code={nodeSnippet(created.key, model)} />
      <div className="buttons">
        <button type="button" onClick={onDone}>
          I have copied it
        </button>
      </div>
    </div>
  );
}

function RevokeConfirm({ k, onCancel, onRevoked }: { k: ApiKey; onCancel: () => void; onRevoked: () => void }) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  async function revoke() {
    setBusy(true);
    try {
      await api(`/dashboard/keys/${k.id}`, { method: 'DELETE' });
      onRevoked();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }
  return (
    <div>
      <p>
        Requests with <strong>{k.name}</strong> (
        <code>
          {k.prefix}…{k.last_four}
        </code>
        ) will be refused at once. This cannot be undone.
      </p>
      <ErrorText error={error} />
      <div className="buttons">
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" className="danger" disabled={busy} onClick={() => void revoke()}>
          {busy ? 'Revoking…' : 'Revoke key'}
        </button>
      </div>
    </div>
  );
}

interface FormErrors {
  name?: string;
  budget?: string;
  period?: string;
  expires?: string;
  rpm?: string;
  tpm?: string;
  form?: string;
}

function wholeNumber(text: string, what: string): { value: number | null } | { error: string } {
  const t = text.trim();
  if (!t) return { value: null };
  if (!/^\d+$/.test(t) || Number(t) < 1 || Number(t) > 2_147_483_647)
    return { error: `${what} must be a whole number from 1 to 2,147,483,647.` };
  return { value: Number(t) };
}

function CreateKeyForm({
  models,
  modelsError,
  onCancel,
  onCreated,
}: {
  models: SellableModel[];
  modelsError: unknown;
  onCancel: () => void;
  onCreated: (k: CreatedKey) => void;
}) {
  const [name, setName] = useState('');
  const [scope, setScope] = useState<string[]>([]);
  const [budget, setBudget] = useState('');
  const [period, setPeriod] = useState<'' | BudgetPeriod>('');
  const [expires, setExpires] = useState('');
  const [rpm, setRpm] = useState('');
  const [tpm, setTpm] = useState('');
  const [errors, setErrors] = useState<FormErrors>({});
  const [busy, setBusy] = useState(false);
  const tomorrow = localDay(new Date(Date.now() + 86_400_000));

  async function submit(e: FormEvent) {
    e.preventDefault();
    const found: FormErrors = {};
    const body: KeyCreate = { name: name.trim() };
    if (!body.name) found.name = 'Give the key a name, such as the app that will use it.';
    else if (body.name.length > 200) found.name = 'Use at most 200 characters.';
    if (scope.length) body.models = scope;
    if (budget.trim()) {
      const parsed = parseDollars(budget);
      if ('error' in parsed) found.budget = parsed.error;
      else if (parsed.micros <= 0n) found.budget = 'A budget must be more than $0.';
      else if (parsed.micros > BigInt(Number.MAX_SAFE_INTEGER)) found.budget = 'That budget is too large.';
      else body.budget_micros = Number(parsed.micros);
    }
    if (period) {
      if (!budget.trim()) found.period = 'A reset period needs a budget.';
      else body.budget_period = period;
    }
    if (expires) {
      const [y, m, d] = expires.split('-').map(Number);
      const at = new Date(y, m - 1, d, 23, 59, 59);
      if (Number.isNaN(at.getTime())) found.expires = 'Pick a date.';
      else if (at.getTime() <= Date.now()) found.expires = 'The expiry date must be in the future.';
      else body.expires_at = at.toISOString();
    }
    const r = wholeNumber(rpm, 'Requests per minute');
    if ('error' in r) found.rpm = r.error;
    else if (r.value !== null) body.rpm_limit = r.value;
    const t = wholeNumber(tpm, 'Tokens per minute');
    if ('error' in t) found.tpm = t.error;
    else if (t.value !== null) body.tpm_limit = t.value;
    setErrors(found);
    if (Object.keys(found).length) return;
    setBusy(true);
    try {
      onCreated(await api<CreatedKey>('/dashboard/keys', { method: 'POST', body }));
    } catch (err) {
      setErrors({ form: errorMessage(err) });
      setBusy(false);
    }
  }

  return (
    <form onSubmit={(e) => void submit(e)} noValidate aria-label="Create a key">
      <Field label="Name" error={errors.name}>
        {(p) => <input {...p} type="text" value={name} onChange={(e) => setName(e.target.value)} autoFocus maxLength={200} />}
      </Field>
      <fieldset>
        <legend>Models this key may call</legend>
        <p className="hint">None ticked: every model, including ones added later.</p>
        <ErrorText error={modelsError} />
        <div className="checks">
          {models.map((m) => (
            <label key={m.id} className="check">
              <input
                type="checkbox"
                checked={scope.includes(m.id)}
                onChange={(e) => setScope((s) => (e.target.checked ? [...s, m.id] : s.filter((x) => x !== m.id)))}
              />{' '}
              <code>{m.id}</code>
            </label>
          ))}
        </div>
      </fieldset>
      <div className="row">
        <Field label="Budget in dollars (optional)" error={errors.budget} hint="The key is refused once it has spent this much.">
          {(p) => (
            <input
              {...p}
              type="text"
              inputMode="decimal"
              placeholder="e.g. 5.00"
              value={budget}
              onChange={(e) => setBudget(e.target.value)}
            />
          )}
        </Field>
        <Field label="Budget resets" error={errors.period}>
          {(p) => (
            <select {...p} value={period} onChange={(e) => setPeriod(e.target.value as '' | BudgetPeriod)}>
              <option value="">Never</option>
              <option value="daily">Every day</option>
              <option value="weekly">Every week</option>
              <option value="monthly">Every month</option>
            </select>
          )}
        </Field>
      </div>
      <div className="row">
        <Field label="Expires on (optional)" error={errors.expires} hint="At the end of that day, your time.">
          {(p) => <input {...p} type="date" min={tomorrow} value={expires} onChange={(e) => setExpires(e.target.value)} />}
        </Field>
        <Field label="Requests per minute (optional)" error={errors.rpm}>
          {(p) => <input {...p} type="text" inputMode="numeric" value={rpm} onChange={(e) => setRpm(e.target.value)} />}
        </Field>
        <Field label="Tokens per minute (optional)" error={errors.tpm}>
          {(p) => <input {...p} type="text" inputMode="numeric" value={tpm} onChange={(e) => setTpm(e.target.value)} />}
        </Field>
      </div>
      <ErrorText error={errors.form} />
      <div className="buttons">
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Create key'}
        </button>
      </div>
    </form>
  );
}
