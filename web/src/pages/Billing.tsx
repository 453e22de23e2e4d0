import { useEffect, useMemo, useState, type FormEvent } from 'react';
import {
  api,
  errorMessage,
  type CheckoutConfig,
  type CheckoutStatus,
  type LedgerEntry,
  type LedgerKind,
  type Page,
  type Workspace,
} from '../api';
import { DateTime, ErrorText, Field, Loading, Money, useAsync } from '../components';
import { integer, localDate, parseDollars, usdCents } from '../format';
import { navigate } from '../router';
import { useSession } from '../session';

const PRESETS_CENTS = [1_000, 2_500, 5_000, 10_000];
const KIND_LABELS: Record<LedgerKind, string> = {
  topup: 'Top-up',
  credit: 'Credit',
  charge: 'Charges',
  refund: 'Refund',
  dispute: 'Dispute',
  correction: 'Correction',
};

export function BillingPage({ checkoutId, canceled }: { checkoutId: string | null; canceled: boolean }) {
  const config = useAsync(() => api<CheckoutConfig>('/dashboard/billing/config'), []);
  const [ledgerVersion, setLedgerVersion] = useState(0);
  return (
    <section aria-labelledby="billing-title">
      <h1 id="billing-title">Billing</h1>
      {checkoutId && <CheckoutReturn id={checkoutId} canceled={canceled} onCredited={() => setLedgerVersion((v) => v + 1)} />}
      <h2>Top up</h2>
      <ErrorText error={config.error} />
      {config.loading && !config.data && <Loading what="billing settings" />}
      {config.data && !config.data.enabled && (
        <p className="notice" data-testid="topups-disabled">
          Top-ups are not configured on this gateway: its operator has not set the Stripe keys. Everything else works; ask the operator for
          credit.
        </p>
      )}
      {config.data?.enabled && <TopUpForm config={config.data} />}
      <h2>Ledger</h2>
      <Ledger key={ledgerVersion} />
    </section>
  );
}

function TopUpForm({ config }: { config: CheckoutConfig }) {
  const presets = PRESETS_CENTS.filter((c) => c >= config.min_cents && c <= config.max_cents);
  const [choice, setChoice] = useState<string>(
    presets[1] !== undefined ? String(presets[1]) : presets[0] !== undefined ? String(presets[0]) : 'custom',
  );
  const [custom, setCustom] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [idempotencyKey] = useState(() => crypto.randomUUID());
  const bounds = `${usdCents(config.min_cents * 10_000)} to ${usdCents(config.max_cents * 10_000)}`;

  async function submit(e: FormEvent) {
    e.preventDefault();
    let cents: number;
    if (choice === 'custom') {
      const parsed = parseDollars(custom);
      if ('error' in parsed) return setError(parsed.error);
      if (parsed.micros % 10_000n !== 0n) return setError('Top-ups are in whole cents.');
      cents = Number(parsed.micros / 10_000n);
    } else cents = Number(choice);
    if (cents < config.min_cents || cents > config.max_cents) return setError(`A top-up is from ${bounds}.`);
    setError(null);
    setBusy(true);
    try {
      // one key per amount on this page: a double click opens one Checkout Session, not two
      const session = await api<{ id: string; url: string }>('/dashboard/billing/checkout', {
        method: 'POST',
        body: { amount_cents: cents },
        headers: { 'Idempotency-Key': `${idempotencyKey}-${cents}` },
      });
      window.location.assign(session.url);
    } catch (err) {
      setError(errorMessage(err));
      setBusy(false);
    }
  }

  return (
    <form onSubmit={(e) => void submit(e)} noValidate aria-label="Top up">
      <fieldset>
        <legend>Amount (USD)</legend>
        <div className="checks">
          {presets.map((c) => (
            <label key={c} className="check pill">
              <input type="radio" name="amount" value={c} checked={choice === String(c)} onChange={() => setChoice(String(c))} />{' '}
              {usdCents(c * 10_000)}
            </label>
          ))}
          <label className="check pill">
            <input type="radio" name="amount" value="custom" checked={choice === 'custom'} onChange={() => setChoice('custom')} /> Other
            amount
          </label>
        </div>
      </fieldset>
      {choice === 'custom' && (
        <Field label="Amount in dollars" hint={`From ${bounds}.`}>
          {(p) => (
            <input
              {...p}
              type="text"
              inputMode="decimal"
              placeholder="e.g. 40"
              value={custom}
              onChange={(e) => setCustom(e.target.value)}
              autoFocus
            />
          )}
        </Field>
      )}
      <ErrorText error={error} />
      <button type="submit" disabled={busy}>
        {busy ? 'Opening Stripe Checkout…' : 'Continue to payment'}
      </button>
      <p className="hint">You pay on Stripe&apos;s page; the credit appears here as soon as Stripe confirms the payment.</p>
    </form>
  );
}

function CheckoutReturn({ id, canceled, onCredited }: { id: string; canceled: boolean; onCredited: () => void }) {
  const { refresh } = useSession();
  const [status, setStatus] = useState<CheckoutStatus | null>(null);
  const [workspace, setWorkspace] = useState<Workspace | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [gaveUp, setGaveUp] = useState(false);

  useEffect(() => {
    if (canceled) return;
    let live = true;
    const started = Date.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      try {
        const s = await api<CheckoutStatus>(`/dashboard/billing/checkout/${encodeURIComponent(id)}`);
        if (!live) return;
        setStatus(s);
        if (s.status === 'credited') {
          const w = await api<Workspace>('/dashboard/workspace');
          if (!live) return;
          setWorkspace(w);
          refresh();
          onCredited();
          return;
        }
        if (s.status !== 'pending') return;
      } catch (err) {
        if (!live) return;
        setError(err);
        return;
      }
      if (Date.now() - started > 5 * 60_000) return setGaveUp(true);
      timer = setTimeout(() => void poll(), 1000);
    };
    void poll();
    return () => {
      live = false;
      clearTimeout(timer);
    };
    // onCredited and refresh are stable enough: polling restarts only for another session
  }, [id, canceled]);

  const dismiss = () => navigate('/billing', { replace: true });

  if (canceled) {
    return (
      <div className="banner" role="status" data-testid="checkout-result">
        Checkout was canceled: nothing was charged.{' '}
        <button type="button" className="link" onClick={dismiss}>
          Dismiss
        </button>
      </div>
    );
  }
  return (
    <div
      className={`banner ${status?.status === 'credited' ? 'success' : status && status.status !== 'pending' ? 'danger' : ''}`}
      role="status"
      aria-live="polite"
      data-testid="checkout-result"
    >
      {error ? (
        <ErrorText error={error} />
      ) : status?.status === 'credited' ? (
        <>
          <strong>
            <Money micros={status.amount_micros} /> added to your balance.
          </strong>{' '}
          {workspace && (
            <>
              New balance: <Money micros={workspace.balance_micros} testId="new-balance" />.
            </>
          )}
        </>
      ) : status?.status === 'expired' ? (
        'This checkout expired before it was paid: nothing was charged.'
      ) : status?.status === 'failed' ? (
        'The payment failed: nothing was credited. Try again or use another payment method.'
      ) : gaveUp ? (
        'Stripe has not confirmed this payment yet. It will be credited as soon as it does: check the ledger later.'
      ) : (
        <>Waiting for Stripe to confirm your payment… {status && <Money micros={status.amount_micros} />}</>
      )}{' '}
      {status && status.status !== 'pending' && (
        <button type="button" className="link" onClick={dismiss}>
          Dismiss
        </button>
      )}
    </div>
  );
}

interface LedgerRow {
  id: string;
  kind: LedgerKind;
  label: string;
  amount: number;
  balanceAfter: number;
  at: string;
  detail: string;
}

/** Entries newest first; consecutive charges of one local day become one row. */
function summarise(entries: LedgerEntry[]): LedgerRow[] {
  const rows: LedgerRow[] = [];
  let charges: { row: LedgerRow; day: string; count: number } | null = null;
  for (const e of entries) {
    if (e.kind === 'charge') {
      const day = localDate(e.created_at);
      if (charges && charges.day === day) {
        charges.count += 1;
        charges.row.amount += e.amount_micros;
        charges.row.detail = `${integer(charges.count)} requests on ${day}`;
        continue;
      }
      charges = {
        day,
        count: 1,
        row: {
          id: e.id,
          kind: 'charge',
          label: 'Charges',
          amount: e.amount_micros,
          balanceAfter: e.balance_after_micros,
          at: e.created_at,
          detail: `1 request on ${day}`,
        },
      };
      rows.push(charges.row);
      continue;
    }
    charges = null;
    rows.push({
      id: e.id,
      kind: e.kind,
      label: KIND_LABELS[e.kind] ?? e.kind,
      amount: e.amount_micros,
      balanceAfter: e.balance_after_micros,
      at: e.created_at,
      detail: e.reason ?? e.reference,
    });
  }
  return rows;
}

function Ledger() {
  const [entries, setEntries] = useState<LedgerEntry[]>([]);
  const [next, setNext] = useState<string | null | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);

  async function load(cursor: string | null) {
    setLoading(true);
    try {
      const page = await api<Page<LedgerEntry>>('/dashboard/ledger', { query: { limit: 100, cursor } });
      setEntries((prev) => (cursor ? [...prev, ...page.data] : page.data));
      setNext(page.next_cursor);
      setError(null);
    } catch (err) {
      setError(err);
    } finally {
      setLoading(false);
    }
  }
  useEffect(() => {
    void load(null);
  }, []);
  const rows = useMemo(() => summarise(entries), [entries]);

  return (
    <>
      <ErrorText error={error} />
      {loading && entries.length === 0 && <Loading what="the ledger" />}
      {next !== undefined && rows.length === 0 && <p>No entries yet.</p>}
      {rows.length > 0 && (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Ledger: every change of your balance, newest first; charges summarised per day</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Entry</th>
                <th scope="col">Details</th>
                <th scope="col" className="num">
                  Amount
                </th>
                <th scope="col" className="num">
                  Balance after
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.id} data-testid="ledger-row" data-kind={r.kind}>
                  <td>
                    <DateTime iso={r.at} />
                  </td>
                  <td>{r.label}</td>
                  <td className="small">{r.detail}</td>
                  <td className={`num ${r.amount < 0 ? 'negative' : 'positive'}`}>
                    <Money micros={r.amount} testId="ledger-amount" />
                  </td>
                  <td className="num">
                    <Money micros={r.balanceAfter} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {next && (
        <button type="button" className="secondary" disabled={loading} onClick={() => void load(next)}>
          {loading ? 'Loading…' : 'Load older entries'}
        </button>
      )}
    </>
  );
}
