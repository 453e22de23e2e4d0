import { useMemo } from 'react';
import { api, type UsageSummary, type Workspace } from '../api';
import { axisDollars, BarChart, CodeBlock, ErrorText, Loading, Money, useAsync } from '../components';
import { integer, utcDay } from '../format';
import { Link } from '../router';
import { useSession } from '../session';
import { baseUrl, nodeSnippet, pythonSnippet } from '../snippets';

/** Below this available balance ($1) the overview warns before requests start to be refused. */
const LOW_BALANCE_MICROS = 1_000_000;

interface Overview {
  workspace: Workspace;
  month: UsageSummary;
  today: UsageSummary;
  days: UsageSummary;
}

async function loadOverview(): Promise<Overview> {
  const now = new Date();
  const monthStart = `${now.toISOString().slice(0, 7)}-01`;
  const [workspace, month, today, days] = await Promise.all([
    api<Workspace>('/dashboard/workspace'),
    api<UsageSummary>('/dashboard/usage', { query: { group_by: 'day', from: monthStart } }),
    api<UsageSummary>('/dashboard/usage', { query: { group_by: 'day', from: utcDay(now) } }),
    api<UsageSummary>('/dashboard/usage', { query: { group_by: 'day', from: utcDay(new Date(now.getTime() - 29 * 86_400_000)) } }),
  ]);
  return { workspace, month, today, days };
}

export function OverviewPage() {
  const { refresh } = useSession();
  const state = useAsync(async () => {
    const data = await loadOverview();
    refresh();
    return data;
  }, []);
  const chart = useMemo(() => {
    if (!state.data) return null;
    // 30 UTC days, the empty ones included
    const byDay = new Map(state.data.days.data.map((g) => [g.day, g]));
    const labels: string[] = [];
    const cost: number[] = [];
    const requests: number[] = [];
    let day = utcDay(new Date(Date.now() - 29 * 86_400_000));
    for (let i = 0; i < 30; i++) {
      const g = byDay.get(day);
      labels.push(day.slice(5));
      cost.push((g?.cost_micros ?? 0) / 1_000_000);
      requests.push(g?.requests ?? 0);
      day = utcDay(new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000));
    }
    return {
      labels,
      series: [
        { label: 'Spend (USD)', values: cost, format: axisDollars, color: '#3b5bdb' },
        { label: 'Requests', values: requests, format: (v: number) => integer(Math.round(v)), color: '#2f9e44', integer: true },
      ],
    };
  }, [state.data]);

  if (state.loading && !state.data) return <Loading what="the overview" />;
  if (!state.data) return <ErrorText error={state.error} />;
  const { workspace, month, today } = state.data;
  const available = workspace.available_micros;
  const model = 'deepseek-v4-flash';

  return (
    <section aria-labelledby="overview-title">
      <h1 id="overview-title">Overview</h1>
      <ErrorText error={state.error} />
      {available <= 0 ? (
        <div className="banner danger" role="alert" data-testid="balance-banner">
          Your available balance is zero: requests stop when prepaid balance reaches zero. <Link to="/billing">Top up</Link> to continue.
        </div>
      ) : available < LOW_BALANCE_MICROS ? (
        <div className="banner warning" role="status" data-testid="balance-banner">
          Your available balance is low (<Money micros={available} />
          ): requests stop when prepaid balance reaches zero. <Link to="/billing">Top up</Link>.
        </div>
      ) : null}
      <div className="cards">
        <div className="card">
          <h2>Balance</h2>
          <p className="big">
            <Money micros={workspace.balance_micros} testId="balance" />
          </p>
          <p className="muted">settled</p>
        </div>
        <div className="card">
          <h2>Available</h2>
          <p className="big">
            <Money micros={available} testId="available" />
          </p>
          <p className="muted">balance minus requests in flight</p>
        </div>
        <div className="card">
          <h2>Spend this month</h2>
          <p className="big">
            <Money micros={month.totals.cost_micros} rounded testId="spend-month" />
          </p>
          <p className="muted">since the 1st (UTC)</p>
        </div>
        <div className="card">
          <h2>Requests today</h2>
          <p className="big" data-testid="requests-today">
            {integer(today.totals.requests)}
          </p>
          <p className="muted">since midnight UTC</p>
        </div>
      </div>
      <h2>Last 30 days</h2>
      {chart && <BarChart title="Day (UTC)" labels={state.data.days.data.length ? chart.labels : []} series={chart.series} />}
      <h2>Call the gateway</h2>
      <p>
        Base URL: <code data-testid="base-url">{baseUrl()}</code>. Use any OpenAI SDK with a key from the <Link to="/keys">Keys</Link> page.
      </p>
      <CodeBlock what="Python example" code={pythonSnippet('YOUR_NEXOROUTER_KEY', model)} />
      <CodeBlock what="Node.js example" code={nodeSnippet('YOUR_NEXOROUTER_KEY', model)} />
    </section>
  );
}
