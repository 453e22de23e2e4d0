import { api, type SellableModel } from '../api';
import { CopyButton, ErrorText, Loading, useAsync } from '../components';
import { integer, pricePerMillion, usd } from '../format';

export function ModelsPage() {
  const models = useAsync(() => api<{ data: SellableModel[] }>('/dashboard/models'), []);
  return (
    <section aria-labelledby="models-title">
      <h1 id="models-title">Models</h1>
      <p className="muted">
        What your keys can call, at these prices per million tokens. A request costs exactly what the provider reports, rounded up to the
        micro-dollar.
      </p>
      <ErrorText error={models.error} />
      {models.loading && !models.data && <Loading what="models" />}
      {models.data && (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Sellable models and prices per million tokens</caption>
            <thead>
              <tr>
                <th scope="col">Model id</th>
                <th scope="col">Type</th>
                <th scope="col" className="num">
                  Input / 1M tokens
                </th>
                <th scope="col" className="num">
                  Output / 1M tokens
                </th>
                <th scope="col" className="num">
                  Max output tokens
                </th>
                <th scope="col" className="num">
                  Context
                </th>
              </tr>
            </thead>
            <tbody>
              {models.data.data.map((m) => (
                <tr key={m.id} data-testid="model-row">
                  <td>
                    <code>{m.id}</code> <CopyButton text={m.id} what={`model id ${m.id}`} />
                  </td>
                  <td>{m.type}</td>
                  <td className="num" title={usd(m.input_price_micros)}>
                    {pricePerMillion(m.input_price_micros)}
                  </td>
                  <td className="num" title={usd(m.output_price_micros)}>
                    {m.type === 'embedding' ? '—' : pricePerMillion(m.output_price_micros)}
                  </td>
                  <td className="num">{m.type === 'embedding' ? '—' : integer(m.max_output_tokens)}</td>
                  <td className="num">{m.context_length ? integer(m.context_length) : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
