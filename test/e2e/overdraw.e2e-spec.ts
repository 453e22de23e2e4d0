import { Agent, request } from 'undici';
import { ChildGateway, expectNoDrift, killChildGateways, startChildGateway } from '../helpers/child-gateway';
import { completion, FakeProvider } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';
import { costAt, promptBoundOf } from '../helpers/ledger';
import { closeAll, startWithFakeProvider } from '../helpers/setup';

const MODEL = 'deepseek-v4-flash';
const CONCURRENT = 200;
const MESSAGES = [{ role: 'user', content: 'Summarise the plot of a short novel in a few sentences.' }];
const MAX_TOKENS = 200;

const cost = costAt(270_000, 1_100_000);

/** The most one request can cost, as the gateway holds it. */
const HOLD = cost(promptBoundOf({ model: MODEL, messages: MESSAGES, max_tokens: MAX_TOKENS }), MAX_TOKENS);

interface Answer {
  status: number;
  requestId: string;
  costHeader: string | undefined;
  body: any;
}

describe('no overdraw under concurrency across gateway processes', () => {
  let gw: TestGateway;
  let provider: FakeProvider;
  let gateways: ChildGateway[] = [];
  const agent = new Agent({ connections: 512, pipelining: 1, keepAliveTimeout: 10_000 });

  beforeAll(async () => {
    // this in-process gateway owns the database and serves the admin API; the two child
    // processes serve the traffic and run the settlement workers
    ({ gw, provider } = await startWithFakeProvider({ providers: 'deepseek', gateway: { env: { NEXO_ROLE: 'api' } } }));
    provider.respond((req) => {
      // varying, plausible usage within what was asked for, answered after a small delay
      const max = Number(req.body.max_tokens);
      const usage = {
        prompt_tokens: 5 + Math.floor(Math.random() * 20),
        completion_tokens: 1 + Math.floor(Math.random() * max),
      };
      return {
        json: completion(req.body.model, 'Some summary.', { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens }),
        delayMs: Math.floor(Math.random() * 40),
      };
    });
    // with escrow leases on, as in production: near zero every request is held on its own
    const env = gw.env({ NEXO_ROLE: 'all', ESCROW_LEASES: 'true' });
    gateways = await Promise.all([startChildGateway(env), startChildGateway(env)]);
  }, 90_000);

  afterAll(async () => {
    await killChildGateways();
    await agent.close();
    await closeAll(gw, provider);
  });

  beforeEach(() => {
    provider.received.length = 0;
  });

  /** CONCURRENT chat requests at once, alternating between the two processes (and the given keys). */
  async function burst(keys: string[]): Promise<Answer[]> {
    return Promise.all(
      Array.from({ length: CONCURRENT }, async (_, i) => {
        const res = await request(`${gateways[i % 2].url}/v1/chat/completions`, {
          method: 'POST',
          dispatcher: agent,
          headers: { authorization: `Bearer ${keys[Math.floor(i / 2) % keys.length]}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: MODEL, messages: MESSAGES, max_tokens: MAX_TOKENS }),
        });
        const body = await res.body.json();
        return {
          status: res.statusCode,
          requestId: String(res.headers['x-request-id']),
          costHeader: res.headers['x-nexo-cost-micros'] as string | undefined,
          body,
        };
      }),
    );
  }

  async function createKey(workspaceId: string, body: Record<string, unknown> = {}): Promise<{ key: string; keyId: string }> {
    const res = await gw
      .admin()
      .post(`/admin/workspaces/${workspaceId}/keys`)
      .send({ name: 'another key', ...body })
      .expect(201);
    return { key: res.body.key, keyId: res.body.id };
  }

  /**
   * Bursts of CONCURRENT requests, each once the previous one has settled, until a burst has
   * nothing left to spend: the money is used up to what it can cover, never beyond.
   */
  async function spendDown(workspaceId: string, keys: string[], canCoverAHold: () => Promise<boolean>): Promise<Answer[]> {
    const answers: Answer[] = [];
    for (let round = 0; round < 15; round++) {
      const burstAnswers = await burst(keys);
      answers.push(...burstAnswers);
      await gw.settled(60_000);
      // nothing was held at the start of the burst, so one request at least got through
      expect(burstAnswers.some((a) => a.status === 200)).toBe(true);
      if (!(await canCoverAHold())) return answers;
    }
    throw new Error(`workspace ${workspaceId} could still pay for a request after 15 bursts`);
  }

  async function checkSettled(workspaceId: string, credit: number, answers: Answer[]) {
    await gw.settled(60_000);
    const [ws] = await gw.db.query('SELECT balance_micros, held_micros FROM workspaces WHERE id = $1', [workspaceId]);
    const balance = Number(ws.balance_micros);
    expect(Number(ws.held_micros)).toBe(0);
    expect(balance).toBeGreaterThanOrEqual(0);

    const ok = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status !== 200);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const r of refused) {
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe('insufficient_quota');
    }
    // only the requests that were served reached the provider
    expect(provider.received).toHaveLength(ok.length);

    const [{ served, total }] = await gw.db.query(
      `SELECT count(*)::int AS served, COALESCE(sum(cost_micros), 0)::bigint AS total
         FROM usage_logs WHERE workspace_id = $1 AND status = 200`,
      [workspaceId],
    );
    expect(served).toBe(ok.length);
    expect(Number(total)).toBe(credit - balance);

    // each served request: its header, its log and its one ledger entry agree
    const logs = new Map<string, number>(
      (await gw.db.query('SELECT request_id, cost_micros FROM usage_logs WHERE workspace_id = $1 AND status = 200', [workspaceId])).map(
        (r: any) => [r.request_id, Number(r.cost_micros)],
      ),
    );
    const entries = new Map<string, number[]>();
    for (const e of await gw.db.query(`SELECT reference, amount_micros FROM ledger_entries WHERE workspace_id = $1 AND kind = 'charge'`, [
      workspaceId,
    ])) {
      entries.set(e.reference, [...(entries.get(e.reference) ?? []), -Number(e.amount_micros)]);
    }
    for (const a of ok) {
      const charged = logs.get(a.requestId);
      expect(charged).toBeDefined();
      expect(a.costHeader).toBe(String(charged));
      expect(charged).toBeGreaterThan(0);
      expect(charged).toBeLessThanOrEqual(HOLD);
      expect(entries.get(`req:${a.requestId}`)).toEqual([charged]);
    }
    expect(entries.size).toBe(ok.length);
    return { balance, ok };
  }

  it('200 concurrent requests at a time over two processes and two keys never spend more than the balance', async () => {
    const credit = 10 * HOLD;
    const { workspaceId, key } = await gw.workspaceWithKey(credit);
    const second = await createKey(workspaceId);
    const balanceNow = async () =>
      Number((await gw.db.query('SELECT balance_micros FROM workspaces WHERE id = $1', [workspaceId]))[0].balance_micros);

    const answers = await spendDown(workspaceId, [key, second.key], async () => (await balanceNow()) >= HOLD);
    const { balance } = await checkSettled(workspaceId, credit, answers);
    expect(balance).toBeLessThan(HOLD);
    for (const r of answers.filter((a) => a.status === 403)) {
      expect(r.body.error.message).toMatch(/^Insufficient prepaid balance\. Current balance: \$\d+\.\d{6}\./);
    }
    await expectNoDrift(gw);
  }, 180_000);

  it('a key budget smaller than the balance is never exceeded, whatever the concurrency', async () => {
    const credit = 10 * HOLD;
    const budget = 4 * HOLD;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit, { budget_micros: budget });
    const spentNow = async () => Number((await gw.db.query('SELECT spent_micros FROM api_keys WHERE id = $1', [keyId]))[0].spent_micros);

    const answers = await spendDown(workspaceId, [key], async () => budget - (await spentNow()) >= HOLD);
    const { balance } = await checkSettled(workspaceId, credit, answers);
    const [k] = await gw.db.query('SELECT spent_micros, held_micros FROM api_keys WHERE id = $1', [keyId]);
    const spent = Number(k.spent_micros);
    expect(Number(k.held_micros)).toBe(0);
    expect(spent).toBeLessThanOrEqual(budget);
    expect(budget - spent).toBeLessThan(HOLD);
    expect(spent).toBe(credit - balance);
    expect(balance).toBeGreaterThanOrEqual(credit - budget);
    for (const r of answers.filter((a) => a.status === 403)) {
      expect(r.body.error.message).toMatch(/^Insufficient key budget\. Remaining key budget: \$\d+\.\d{6}\./);
    }
    await expectNoDrift(gw);
  }, 180_000);
});
