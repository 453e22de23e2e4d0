import { useMemo, useState, type FormEvent } from 'react';
import { api, errorMessage, type ApiKey, type Page, type SellableModel, type UsageLog, type UsageSummary } from '../api';
import { axisDollars, BarChart, DateTime, ErrorText, Field, Loading, Money, useAsync, type ChartSeries } from '../components';
import { download, usageCsv } from '../csv';
import { addDays, integer, localDay, startOfLocalDay } from '../format';

interface Filters {
  from: string;
  to: string;
  keyId: string;
  model: string;
  status: string;
}

const EXPORT_LIMIT = 100_000;

function defaultFilters(): Filters {
  const today = localDay(new Date());
  return { from: addDays(today, -29), to: today, keyId: '', model: '', status: '' };
}

/** The query of the logs list for these filters (dates are the user's days, sent as instants). */
function logQuery(f: Filters, cursor: string | null, limit: number) {
  return {
    limit,
    cursor,
    key_id: f.keyId || undefined,
    model: f.model || undefined,
    status: f.status || undefined,
    from: startOfLocalDay(f.from),
    to: startOfLocalDay(addDays(f.to, 1)),
  };
}

function costSeries(values: number[]): ChartSeries {
  return { label: 'Cost (USD)', values, format: axisDollars, color: '#3b5bdb' };
}

function requestSeries(values: number[]): ChartSeries {
  return { label: 'Requests', values, format: (v) => integer(Math.round(v)), color: '#2f9e44', integer: true };
}

export function UsagePage() {
  const [draft, setDraft] = useState<Filters>(defaultFilters);
  const [filters, setFilters] = useState<Filters>(defaultFilters);
  const [formError, setFormError] = useState<string | null>(null);
  const [cursors, setCursors] = useState<Array<string | null>>([null]);
  const [exporting, setExporting] = useState<string | null>(null);
  const [exportError, setExportError] = useState<unknown>(null);

  const keys = useAsync(() => api<{ data: ApiKey[] }>('/dashboard/keys'), []);
  const models = useAsync(() => api<{ data: SellableModel[] }>('/dashboard/models'), []);
  const keyNames = useMemo(() => new Map((keys.data?.data ?? []).map((k) => [k.id, k.name])), [keys.data]);

  const summary = useAsync(async () => {
    const range = { from: filters.from, to: addDays(filters.to, 1) };
    const [byDay, byModel, byKey] = await Promise.all(
      (['day', 'model', 'key'] as const).map((group_by) => api<UsageSummary>('/dashboard/usage', { query: { group_by, ...range } })),
    );
    return { byDay, byModel, byKey };
  }, [filters.from, filters.to]);

  const cursor = cursors[cursors.length - 1];
  const logs = useAsync(() => api<Page<UsageLog>>('/dashboard/usage-logs', { query: logQuery(filters, cursor, 25) }), [filters, cursor]);

  const charts = useMemo(() => {
    if (!summary.data) return null;
    const { byDay, byModel, byKey } = summary.data;
    const days: string[] = [];
    for (let d = filters.from; d <= filters.to && days.length < 400; d = addDays(d, 1)) days.push(d);
    const dayMap = new Map(byDay.data.map((g) => [g.day, g]));
    return {
      day: {
        labels: byDay.data.length ? days.map((d) => d.slice(5)) : [],
        series: [
          costSeries(days.map((d) => (dayMap.get(d)?.cost_micros ?? 0) / 1e6)),
          requestSeries(days.map((d) => dayMap.get(d)?.requests ?? 0)),
        ],
      },
      model: {
        labels: byModel.data.map((g) => g.model ?? ''),
        series: [costSeries(byModel.data.map((g) => g.cost_micros / 1e6)), requestSeries(byModel.data.map((g) => g.requests))],
      },
      key: {
        labels: byKey.data.map((g) => keyNames.get(g.key_id ?? '') ?? `${(g.key_id ?? '').slice(0, 8)}…`),
        series: [costSeries(byKey.data.map((g) => g.cost_micros / 1e6)), requestSeries(byKey.data.map((g) => g.requests))],
      },
    };
  }, [summary.data, filters.from, filters.to, keyNames]);

  function apply(e: FormEvent) {
    e.preventDefault();
    if (!draft.from || !draft.to) return setFormError('Pick both dates of the range.');
    if (draft.from > draft.to) return setFormError('The range must start on or before its last day.');
    if (draft.status && !/^[1-5]\d\d$/.test(draft.status.trim()))
      return setFormError('A status is an HTTP code from 100 to 599, such as 200 or 429.');
    setFormError(null);
    setFilters({ ...draft, status: draft.status.trim() });
    setCursors([null]);
  }

  async function exportCsv() {
    setExportError(null);
    setExporting('Preparing the export…');
    try {
      const all: UsageLog[] = [];
      let next: string | null = null;
      do {
        const page: Page<UsageLog> = await api<Page<UsageLog>>('/dashboard/usage-logs', { query: logQuery(filters, next, 100) });
        all.push(...page.data);
        next = page.next_cursor;
        setExporting(`Preparing the export… ${integer(all.length)} rows`);
      } while (next && all.length < EXPORT_LIMIT);
      download(`nexorouter-usage-${filters.from}-to-${filters.to}.csv`, usageCsv(all, keyNames));
      if (next) setExportError(`The export stops at ${integer(EXPORT_LIMIT)} rows: narrow the range for the rest.`);
    } catch (err) {
      setExportError(errorMessage(err));
    } finally {
      setExporting(null);
    }
  }

  const totals = summary.data?.byDay.totals;

  return (
    <section aria-labelledby="usage-title">
      <h1 id="usage-title">Usage</h1>
      <form className="filters" onSubmit={apply} noValidate aria-label="Usage filters">
        <Field label="From">
          {(p) => (
            <input {...p} type="date" value={draft.from} max={draft.to} onChange={(e) => setDraft({ ...draft, from: e.target.value })} />
          )}
        </Field>
        <Field label="To">
          {(p) => (
            <input {...p} type="date" value={draft.to} min={draft.from} onChange={(e) => setDraft({ ...draft, to: e.target.value })} />
          )}
        </Field>
        <Field label="Key">
          {(p) => (
            <select {...p} value={draft.keyId} onChange={(e) => setDraft({ ...draft, keyId: e.target.value })}>
              <option value="">All keys</option>
              {(keys.data?.data ?? []).map((k) => (
                <option key={k.id} value={k.id}>
                  {k.name} ({k.prefix}…{k.last_four})
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Model">
          {(p) => (
            <select {...p} value={draft.model} onChange={(e) => setDraft({ ...draft, model: e.target.value })}>
              <option value="">All models</option>
              {(models.data?.data ?? []).map((m) => (
                <option key={m.id} value={m.id}>
                  {m.id}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Status">
          {(p) => (
            <input
              {...p}
              type="text"
              inputMode="numeric"
              placeholder="any"
              size={5}
              value={draft.status}
              onChange={(e) => setDraft({ ...draft, status: e.target.value })}
            />
          )}
        </Field>
        <button type="submit">Apply</button>
        <ErrorText error={formError} />
      </form>

      <ErrorText error={summary.error} />
      {totals && (
        <p data-testid="usage-totals">
          {integer(totals.requests)} requests · {integer(totals.prompt_tokens)} prompt and {integer(totals.completion_tokens)} completion
          tokens · <Money micros={totals.cost_micros} /> (charts count UTC days; key, model and status filters apply to the logs)
        </p>
      )}
      {summary.loading && !summary.data && <Loading what="usage" />}
      {charts && (
        <div className="charts">
          <div>
            <h2>Cost and requests by day</h2>
            <BarChart title="Day" labels={charts.day.labels} series={charts.day.series} />
          </div>
          <div>
            <h2>By model</h2>
            <BarChart title="Model" labels={charts.model.labels} series={charts.model.series} />
          </div>
          <div>
            <h2>By key</h2>
            <BarChart title="Key" labels={charts.key.labels} series={charts.key.series} />
          </div>
        </div>
      )}

      <div className="page-head">
        <h2>Request logs</h2>
        <button type="button" className="secondary" disabled={exporting !== null} onClick={() => void exportCsv()}>
          Export CSV
        </button>
      </div>
      {exporting && <p role="status">{exporting}</p>}
      <ErrorText error={exportError} />
      <ErrorText error={logs.error} />
      {logs.loading && !logs.data && <Loading what="logs" />}
      {logs.data && logs.data.data.length === 0 && <p>No requests match these filters.</p>}
      {logs.data && logs.data.data.length > 0 && (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Request logs, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Request id</th>
                <th scope="col">Key</th>
                <th scope="col">Model</th>
                <th scope="col">Provider</th>
                <th scope="col" className="num">
                  Status
                </th>
                <th scope="col" className="num">
                  Tokens in / out
                </th>
                <th scope="col" className="num">
                  Cost
                </th>
                <th scope="col" className="num">
                  Latency
                </th>
              </tr>
            </thead>
            <tbody>
              {logs.data.data.map((l) => (
                <tr key={l.request_id} data-testid="log-row" data-request-id={l.request_id}>
                  <td>
                    <DateTime iso={l.created_at} />
                  </td>
                  <td>
                    <code className="small">{l.request_id}</code>
                  </td>
                  <td>{keyNames.get(l.key_id) ?? <code className="small">{l.key_id.slice(0, 8)}…</code>}</td>
                  <td>
                    {l.model}
                    {l.stream && <span className="muted"> (stream)</span>}
                  </td>
                  <td>{l.provider ?? '—'}</td>
                  <td className="num">
                    {l.status ?? '—'}
                    {l.error_code && <div className="muted small">{l.error_code}</div>}
                  </td>
                  <td className="num" title={l.usage_source === 'provider' ? 'counted by the provider' : `counted by: ${l.usage_source}`}>
                    {integer(l.prompt_tokens)} / {integer(l.completion_tokens)}
                  </td>
                  <td className="num">
                    <Money micros={l.cost_micros} testId="log-cost" />
                  </td>
                  <td className="num">{integer(l.latency_ms)} ms</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <nav className="pager" aria-label="Log pages">
        <button type="button" className="secondary" disabled={cursors.length <= 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
          Newer
        </button>
        <span>Page {cursors.length}</span>
        <button
          type="button"
          className="secondary"
          disabled={!logs.data?.next_cursor}
          onClick={() => logs.data?.next_cursor && setCursors((c) => [...c, logs.data!.next_cursor])}
        >
          Older
        </button>
      </nav>
    </section>
  );
}
