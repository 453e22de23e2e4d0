import { getQueueToken } from '@nestjs/bullmq';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import Redis from 'ioredis';
import { HoldRepository } from '../../src/billing/hold.repository';
import { reconcile } from '../../src/billing/reconcile';
import { HoldSweeper } from '../../src/billing/settlement/hold-sweeper.service';
import { QueueName } from '../../src/billing/settlement/settlement.constants';
import { REDIS_URL } from '../helpers/databases';
import { completion, FakeProvider, sleep, streamEvents } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';
import { closeAll, startGatewayUsing, startWithFakeProvider } from '../helpers/setup';
import { waitFor } from '../helpers/wait';

const MODEL = 'deepseek-v4-flash';
const NO_SCHEDULED_SWEEP = { SWEEP_INTERVAL_MS: '3600000' };

async function holdOf(gw: TestGateway, workspaceId: string): Promise<{ request_id: string; amount_micros: string } | undefined> {
  const [row] = await gw.db.query('SELECT request_id, amount_micros FROM holds WHERE workspace_id = $1', [workspaceId]);
  return row;
}

describe('a hold from request to settlement: budgets, sweeper, departures (end to end)', () => {
  let gw: TestGateway;
  let provider: FakeProvider;

  beforeAll(async () => {
    ({ gw, provider } = await startWithFakeProvider({ providers: 'deepseek', gateway: { env: NO_SCHEDULED_SWEEP } }));
  });
  afterAll(() => closeAll(gw, provider));
  afterEach(() => provider.respond(() => ({ json: completion(MODEL) })));

  it('never lets a key spend past a budget lowered while its request was in flight', async () => {
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(10_000_000, { budget_micros: 1_000_000 });
    provider.respond(() => ({ json: completion(MODEL, 'slow answer', { prompt_tokens: 500, completion_tokens: 400 }), delayMs: 400 }));
    const pending = gw
      .http()
      .post('/v1/chat/completions')
      .set('authorization', `Bearer ${key}`)
      .send({
        model: MODEL,
        messages: [{ role: 'user', content: 'x'.repeat(600) }],
        max_tokens: 500,
      });
    const inFlight = pending.then((r) => r);
    await waitFor('the hold', () => holdOf(gw, workspaceId));
    // the operator lowers the budget below what the request will cost
    await gw.admin().patch(`/admin/keys/${keyId}`).send({ budget_micros: 100 }).expect(200);
    const res = await inFlight;
    expect(res.status).toBe(200);
    await gw.settled();

    const [k] = await gw.db.query('SELECT spent_micros, held_micros, budget_micros FROM api_keys WHERE id = $1', [keyId]);
    expect(Number(k.spent_micros)).toBe(100);
    expect(Number(k.held_micros)).toBe(0);
    const [log] = await gw.db.query('SELECT cost_micros FROM usage_logs WHERE request_id = $1', [res.headers['x-request-id']]);
    expect(Number(log.cost_micros)).toBe(100);
    expect(await reconcile(gw.db)).toEqual([]);

    // and the next request is refused: nothing left in the budget
    const refused = await gw
      .http()
      .post('/v1/chat/completions')
      .set('authorization', `Bearer ${key}`)
      .send({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] });
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toMatch(/^Insufficient key budget\. Remaining key budget: \$0\.000000\./);
  });

  it('does not release a hold whose request is still alive, even if the sweeper listed it as expired', async () => {
    const { workspaceId, key } = await gw.workspaceWithKey();
    provider.respond(() => ({ json: completion(MODEL), delayMs: 500 }));
    const inFlight = gw
      .http()
      .post('/v1/chat/completions')
      .set('authorization', `Bearer ${key}`)
      .send({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] })
      .then((r) => r);
    const hold = await waitFor('the hold', () => holdOf(gw, workspaceId));
    const repo = gw.app.get(HoldRepository);
    const release = {
      requestId: hold.request_id,
      workspaceId,
      keyId: '00000000-0000-0000-0000-000000000000',
      model: MODEL,
      provider: null,
      promptTokens: 0,
      completionTokens: 0,
      costMicros: 0,
      usageSource: 'none' as const,
      status: null,
      errorCode: 'outcome_unknown',
      latencyMs: 1,
      stream: false,
      createdAt: Date.now(),
    };
    // the hold is not (or no longer) expired: the sweeper's release must leave it
    expect(await repo.settleIfExpired(release)).toBe(false);
    expect(await holdOf(gw, workspaceId)).toBeDefined();

    const res = await inFlight;
    expect(res.status).toBe(200);
    await gw.settled();
    const [log] = await gw.db.query('SELECT status, cost_micros, error_code FROM usage_logs WHERE request_id = $1', [hold.request_id]);
    expect(log).toMatchObject({ status: 200, error_code: null });
    expect(Number(log.cost_micros)).toBeGreaterThan(0);
  });

  it('keeps sweeping past a hold whose failed job cannot be settled', async () => {
    const api = await startGatewayUsing(provider, { providers: 'deepseek', gateway: { env: { NEXO_ROLE: 'api', ...NO_SCHEDULED_SWEEP } } });
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const giveUp = new Worker(QueueName.Usage, null, { connection, prefix: `${api.redisPrefix}:bull`, autorun: false });
    try {
      const { workspaceId, key } = await api.workspaceWithKey();
      const chat = () =>
        api
          .http()
          .post('/v1/chat/completions')
          .set('authorization', `Bearer ${key}`)
          .send({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] })
          .expect(200);
      const poisoned = (await chat()).headers['x-request-id'];
      const healthy = (await chat()).headers['x-request-id'];

      // the first job failed for good with data that cannot be settled (a negative token count)
      const token = 'edge-test';
      const job = await giveUp.getNextJob(token, { block: false });
      expect(job?.id).toBe(poisoned);
      await job.updateData({ ...job.data, promptTokens: -1 });
      await job.moveToFailed(new UnrecoverableError('gave up'), token, false);
      // the second job vanished (as if Redis lost it): its hold can only be released
      const queue = api.app.get<Queue>(getQueueToken(QueueName.Usage));
      await (await queue.getJob(healthy))!.remove();
      await api.db.query(`UPDATE holds SET expires_at = now() - interval '1 minute'`);

      const result = await api.app.get(HoldSweeper).sweep();
      expect(result).toEqual({ released: 1, settledFromFailedJobs: 0, leasesClosed: 0, skipped: 0, errors: 1 });
      const holds = await api.db.query('SELECT request_id FROM holds WHERE workspace_id = $1', [workspaceId]);
      expect(holds.map((h: { request_id: string }) => h.request_id)).toEqual([poisoned]);
      const [log] = await api.db.query('SELECT status, error_code, cost_micros FROM usage_logs WHERE request_id = $1', [healthy]);
      expect(log).toMatchObject({ status: null, error_code: 'outcome_unknown' });
      expect(Number(log.cost_micros)).toBe(0);
    } finally {
      await giveUp.close();
      connection.disconnect();
      await api.close();
    }
  });

  it('logs a client that leaves while the provider body is still arriving as 499, at no cost', async () => {
    const { workspaceId, key } = await gw.workspaceWithKey();
    const body = Buffer.from(JSON.stringify(completion(MODEL)));
    provider.respond(() => ({ pieces: [body.subarray(0, 10), body.subarray(10)], pieceGapMs: 1_000 }));
    const request = gw.abandonableChat(key, { model: MODEL, messages: [{ role: 'user', content: 'hi' }] });
    await waitFor('the provider to start answering', async () => (provider.received.length > 0 ? true : undefined));
    await sleep(200);
    expect(await request.abort()).toHaveProperty('name', 'AbortError');
    await gw.settled();
    const [log] = await waitFor('the usage log', async () => {
      const rows = await gw.db.query('SELECT status, error_code, cost_micros FROM usage_logs WHERE workspace_id = $1', [workspaceId]);
      return rows.length ? rows : undefined;
    });
    expect(log).toMatchObject({ status: 499, error_code: 'client_disconnected' });
    expect(Number(log.cost_micros)).toBe(0);
  });

  it('tells a streaming client that the provider cut its answer short, instead of ending normally', async () => {
    const { key } = await gw.workspaceWithKey();
    provider.respond((req) => ({ events: streamEvents(req.body.model, ['Once', ' upon'], null), cut: true, eventGapMs: 20 }));
    const raw = await gw
      .http()
      .post('/v1/chat/completions')
      .set('authorization', `Bearer ${key}`)
      .send({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'story' }] });
    expect(raw.status).toBe(200);
    expect(raw.text).not.toContain('[DONE]');
    expect(raw.text).toContain('"code":"gateway_error"');

    const stream = await gw
      .openai(key)
      .chat.completions.create({ model: MODEL, stream: true, messages: [{ role: 'user', content: 'story' }] });
    const received: string[] = [];
    await expect(
      (async () => {
        for await (const chunk of stream) received.push(chunk.choices[0]?.delta?.content ?? '');
      })(),
    ).rejects.toThrow(/ended the stream early/);
    expect(received.join('')).toBe('Once upon');
  });
});
