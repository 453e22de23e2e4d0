import { getQueueToken } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { Agent, request } from 'undici';
import { HoldRepository } from '../../src/billing/hold.repository';
import { LeaseRepository } from '../../src/billing/leases/lease.repository';
import { JobName, QueueName } from '../../src/billing/settlement/settlement.constants';
import type { Settlement } from '../../src/billing/settlement/settlement.types';
import { ChildGateway, expectNoDrift, killChild, killChildGateways, startChildGateway } from '../helpers/child-gateway';
import { completion, FakeProvider, sleep } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';
import { costAt, promptBoundOf } from '../helpers/ledger';
import { closeAll, startWithFakeProvider } from '../helpers/setup';
import { waitFor } from '../helpers/wait';

const MODEL = 'deepseek-v4-flash';
const MESSAGES = [{ role: 'user', content: 'hi' }];
const cost = costAt(270_000, 1_100_000);

/** Short lease and hold lives, so dead leases are swept within seconds. */
const LEASE_ENV = {
  NEXO_ROLE: 'all',
  ESCROW_LEASES: 'true',
  LEASE_TTL_MS: '2000',
  LEASE_RENEW_MS: '100',
  HOLD_TTL_SECONDS: '2',
  SWEEP_INTERVAL_MS: '500',
};

interface Answer {
  status: number;
  requestId: string;
  costHeader: number | null;
  sentAt: number;
}

describe('escrow leases across gateway processes', () => {
  let gw: TestGateway;
  let provider: FakeProvider;
  let children: ChildGateway[] = [];
  const agent = new Agent({ connections: 256, keepAliveTimeout: 10_000 });

  beforeAll(async () => {
    // the in-process gateway owns the database and serves the admin API; three child processes
    // serve the traffic and run the settlement workers and the sweeper
    ({ gw, provider } = await startWithFakeProvider({ providers: 'deepseek', gateway: { env: { NEXO_ROLE: 'api' } } }));
    provider.respond((req) => ({
      json: completion(req.body.model, 'ok', { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 }),
      delayMs: Math.floor(Math.random() * 10),
    }));
    children = await Promise.all([0, 1, 2].map(() => startChildGateway(gw.env(LEASE_ENV))));
  }, 120_000);

  afterAll(async () => {
    await killChildGateways();
    await agent.close();
    await closeAll(gw, provider);
  });

  async function chat(url: string, key: string, body: Record<string, unknown> = {}): Promise<Answer> {
    const sentAt = Date.now();
    const res = await request(`${url}/v1/chat/completions`, {
      method: 'POST',
      dispatcher: agent,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: MESSAGES, max_tokens: 16, ...body }),
    });
    await res.body.dump();
    const header = res.headers['x-nexo-cost-micros'];
    return { status: res.statusCode, requestId: String(res.headers['x-request-id']), costHeader: header ? Number(header) : null, sentAt };
  }

  /** `total` requests, `concurrency` at a time, spread over the given processes. */
  async function traffic(urls: string[], key: string, total: number, concurrency: number, body?: Record<string, unknown>) {
    const answers: Answer[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) {
          const i = next++;
          answers.push(await chat(urls[i % urls.length], key, body));
        }
      }),
    );
    return answers;
  }

  async function books(workspaceId: string) {
    const [w] = await gw.db.query('SELECT balance_micros, held_micros FROM workspaces WHERE id = $1', [workspaceId]);
    const [l] = await gw.db.query(
      `SELECT COALESCE(sum(amount_micros), 0) AS leased, count(DISTINCT owner)::int AS owners FROM leases WHERE workspace_id = $1`,
      [workspaceId],
    );
    const [c] = await gw.db.query(
      `SELECT COALESCE(-sum(amount_micros), 0) AS charged, count(*)::int AS charges FROM ledger_entries WHERE workspace_id = $1 AND kind = 'charge'`,
      [workspaceId],
    );
    const [u] = await gw.db.query(
      `SELECT count(*)::int AS logs, COALESCE(sum(cost_micros), 0) AS logged FROM usage_logs WHERE workspace_id = $1`,
      [workspaceId],
    );
    return {
      balance: Number(w.balance_micros),
      held: Number(w.held_micros),
      leased: Number(l.leased),
      owners: l.owners as number,
      charged: Number(c.charged),
      charges: c.charges as number,
      logs: u.logs as number,
      logged: Number(u.logged),
    };
  }

  it('holds requests against leases in three processes and charges each answered request exactly once', async () => {
    const credit = 100_000_000;
    const { workspaceId, key } = await gw.workspaceWithKey(credit);
    const answers = await traffic(
      children.map((c) => c.url),
      key,
      600,
      48,
    );
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    await gw.settled(60_000);

    const b = await books(workspaceId);
    // every process took a lease, and no request needed a hold row of its own
    expect(b.owners).toBe(3);
    const [{ holds }] = await gw.db.query('SELECT count(*)::int AS holds FROM holds WHERE workspace_id = $1', [workspaceId]);
    expect(holds).toBe(0);
    // what the leases still hold is all that is held; settled charges are credits minus balance
    expect(b.held).toBe(b.leased);
    expect(b.charged).toBe(credit - b.balance);
    expect(b.logs).toBe(600);
    expect(b.charges).toBe(600);
    expect(b.logged).toBe(b.charged);
    // each answer's cost header is its log's cost
    const logged = new Map<string, number>(
      (await gw.db.query('SELECT request_id, cost_micros FROM usage_logs WHERE workspace_id = $1', [workspaceId])).map((r: any) => [
        r.request_id,
        Number(r.cost_micros),
      ]),
    );
    for (const a of answers) expect(logged.get(a.requestId)).toBe(a.costHeader);
    // the traces of requests handed to settlement are gone
    await waitFor(
      'the traces to be deleted',
      async () => {
        const [{ traces }] = await gw.db.query('SELECT count(*)::int AS traces FROM lease_traces WHERE workspace_id = $1', [workspaceId]);
        return traces === 0 ? true : undefined;
      },
      5_000,
    );
    await expectNoDrift(gw);
  }, 120_000);

  it('answers 200, not 403, when the money a request needs sits unused in another process lease', async () => {
    const body = { max_tokens: 4000 };
    const hold = cost(promptBoundOf({ model: MODEL, messages: MESSAGES, ...body }), 4000);
    // enough for the big request only if the other process's lease comes back
    const { workspaceId, key } = await gw.workspaceWithKey(hold + 600);
    const [a, b] = children;
    // small requests on one process: it leases a slice of the balance (64 of its holds at least)
    expect((await traffic([a.url], key, 20, 4)).every((x) => x.status === 200)).toBe(true);
    const [lease] = await gw.db.query(`SELECT amount_micros FROM leases WHERE workspace_id = $1 AND state = 'open'`, [workspaceId]);
    expect(Number(lease.amount_micros)).toBeGreaterThan(600);

    const big = await chat(b.url, key, body);
    expect(big.status).toBe(200);
    const [returned] = await gw.db.query(`SELECT state FROM leases WHERE workspace_id = $1 ORDER BY created_at LIMIT 1`, [workspaceId]);
    expect(returned.state).not.toBe('open');
    await gw.settled(30_000);
    const after = await books(workspaceId);
    expect(after.balance).toBeGreaterThanOrEqual(0);
  }, 60_000);

  it('stops every process within a second of a debit that takes the balance to zero, and never charges beyond credits', async () => {
    const credit = 10_000_000;
    const { workspaceId, key } = await gw.workspaceWithKey(credit);
    const urls = children.map((c) => c.url);
    expect((await traffic(urls, key, 150, 24)).every((x) => x.status === 200)).toBe(true);
    const [{ owners }] = await gw.db.query(
      `SELECT count(DISTINCT owner)::int AS owners FROM leases WHERE workspace_id = $1 AND state = 'open'`,
      [workspaceId],
    );
    expect(owners).toBe(3);

    // traffic keeps flowing while an operator correction takes the balance to zero
    let stop = false;
    const during: Answer[] = [];
    const load = Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        while (!stop) during.push(await chat(urls[i % 3], key));
      }),
    );
    await sleep(200);
    const [w] = await gw.db.query('SELECT balance_micros FROM workspaces WHERE id = $1', [workspaceId]);
    const debit = Number(w.balance_micros);
    await gw.admin().post(`/admin/workspaces/${workspaceId}/credits`).send({ amount_micros: -debit, reason: 'refund' }).expect(201);
    // the debit is committed by the time it is answered (how long it took to get there, under the
    // load of this process and the others, is not what this test measures)
    const debitedAt = Date.now();
    await sleep(1_500);
    stop = true;
    await load;

    // requests sent more than a second after the debit were all refused, on every process
    const late = during.filter((a) => a.sentAt > debitedAt + 1_000);
    expect(late.length).toBeGreaterThan(0);
    expect(
      late.filter((a) => a.status !== 403).map((a) => ({ status: a.status, requestId: a.requestId, afterMs: a.sentAt - debitedAt })),
    ).toEqual([]);
    await gw.settled(30_000);
    // the debit took all there was (charges applied between reading the balance and debiting it
    // take it below zero): from then on nothing was charged, in flight or not
    const [entry] = await gw.db.query(
      `SELECT id, balance_after_micros FROM ledger_entries WHERE workspace_id = $1 AND kind = 'correction'`,
      [workspaceId],
    );
    expect(Number(entry.balance_after_micros)).toBeLessThanOrEqual(0);
    const [{ after }] = await gw.db.query(
      `SELECT count(*)::int AS after FROM ledger_entries WHERE workspace_id = $1 AND kind = 'charge' AND id > $2`,
      [workspaceId, entry.id],
    );
    expect(after).toBe(0);
    const b = await books(workspaceId);
    expect(b.balance).toBe(Number(entry.balance_after_micros));
    expect(b.charged).toBe(credit - debit - b.balance);
    await expectNoDrift(gw);
  }, 60_000);

  it('never lets a leased key spend past a budget set while its requests run', async () => {
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(50_000_000);
    const urls = children.map((c) => c.url);
    let stop = false;
    const load = Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        while (!stop) await chat(urls[i % 3], key);
      }),
    );
    await sleep(500);
    const [k] = await gw.db.query('SELECT spent_micros FROM api_keys WHERE id = $1', [keyId]);
    const budget = Number(k.spent_micros) + 100;
    await gw.admin().patch(`/admin/keys/${keyId}`).send({ budget_micros: budget }).expect(200);
    // charges applied between the read above and the budget's commit were under no budget: the
    // key may already be past it, and then nothing more may be charged
    const [atBudget] = await gw.db.query('SELECT spent_micros FROM api_keys WHERE id = $1', [keyId]);
    await sleep(1_000);
    stop = true;
    await load;
    await gw.settled(30_000);
    const [after] = await gw.db.query('SELECT spent_micros FROM api_keys WHERE id = $1', [keyId]);
    expect(Number(after.spent_micros)).toBeLessThanOrEqual(Math.max(budget, Number(atBudget.spent_micros)));
    const b = await books(workspaceId);
    expect(b.charged).toBe(50_000_000 - b.balance);
    await expectNoDrift(gw);
  }, 60_000);

  it('charges a leased settlement delivered twice, even at once, only once', async () => {
    const { workspaceId, keyId } = await gw.workspaceWithKey(5_000_000);
    const leases = gw.app.get(LeaseRepository);
    const grant = await leases.take(null, workspaceId, 'test-owner', 100_000, 1, 60_000);
    expect(grant.granted).toBe(100_000);
    const settlement: Settlement = {
      requestId: `leased-twice-${Date.now()}`,
      workspaceId,
      keyId,
      model: MODEL,
      provider: 'deepseek',
      promptTokens: 5,
      completionTokens: 3,
      costMicros: 7,
      usageSource: 'provider',
      status: 200,
      errorCode: null,
      latencyMs: 3,
      stream: false,
      createdAt: Date.now(),
      leaseId: grant.leaseId!,
      holdMicros: 1_000,
    };
    const holds = gw.app.get(HoldRepository);
    const results = await Promise.all([holds.settleMany([settlement]), holds.settleMany([settlement]), holds.settle(settlement)]);
    const applied = results.map((r) => ('applied' in r ? r : r.get(settlement.requestId)!)).filter((r) => r.applied);
    expect(applied).toHaveLength(1);
    expect(applied[0].chargedMicros).toBe(7);
    const b = await books(workspaceId);
    expect(b.charges).toBe(1);
    expect(b.logs).toBe(1);
    expect(b.balance).toBe(5_000_000 - 7);
    // the hold left the lease once
    expect(b.leased).toBe(99_000);
    expect(b.held).toBe(99_000);
    // its owner gives back the free part once (a second return gives nothing)...
    expect(await leases.giveBack(grant.leaseId!, 'test-owner', 50_000)).toBe(50_000);
    expect(await leases.giveBack(grant.leaseId!, 'test-owner', 49_000)).toBe(0);
    let [row] = await gw.db.query('SELECT state, amount_micros FROM leases WHERE id = $1', [grant.leaseId]);
    expect(row).toEqual({ state: 'returned', amount_micros: '49000' });
    // ...and the last request held against it drains and closes it
    const last = { ...settlement, requestId: `${settlement.requestId}-last`, holdMicros: 49_000, costMicros: 10 };
    expect((await holds.settleMany([last])).get(last.requestId)).toEqual({ applied: true, chargedMicros: 10 });
    [row] = await gw.db.query('SELECT state, amount_micros FROM leases WHERE id = $1', [grant.leaseId]);
    expect(row).toEqual({ state: 'closed', amount_micros: '0' });
    expect((await books(workspaceId)).held).toBe(0);
    await expectNoDrift(gw);
  });

  it('closes a killed process leases with nothing overdrawn and logs its requests in flight', async () => {
    const { workspaceId, key } = await gw.workspaceWithKey(20_000_000);
    const victim = await startChildGateway(gw.env(LEASE_ENV));
    // warm up: the victim takes a lease
    expect((await traffic([victim.url], key, 20, 4)).every((x) => x.status === 200)).toBe(true);
    const [lease] = await gw.db.query(`SELECT id FROM leases WHERE workspace_id = $1 AND state = 'open'`, [workspaceId]);
    expect(lease).toBeDefined();

    // requests that will be in flight when it dies
    provider.respond((req) => ({ json: completion(req.body.model, 'slow'), delayMs: 5_000 }));
    const before = provider.received.length;
    const inFlight = Array.from({ length: 10 }, () => chat(victim.url, key).catch(() => null));
    await waitFor('the requests to reach the provider', async () => (provider.received.length >= before + 10 ? true : undefined), 10_000);
    await sleep(100); // their traces are written in groups every 20 ms
    await killChild(victim.proc);
    await Promise.all(inFlight);
    provider.respond((req) => ({ json: completion(req.body.model, 'ok', { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 }) }));

    // the sweeper of the other processes closes the lease once it expired a hold TTL ago
    await waitFor(
      'the dead lease to be closed',
      async () => {
        const [l] = await gw.db.query(`SELECT state FROM leases WHERE id = $1`, [lease.id]);
        return l.state === 'closed' ? true : undefined;
      },
      30_000,
    ).catch(async (err: Error) => {
      // it failed once in a full CI run and never alone: say what the lease and the sweepers saw
      const [l] = await gw.db.query(
        `SELECT state, amount_micros, in_use_micros, expires_at, now() AS now, recall FROM leases WHERE id = $1`,
        [lease.id],
      );
      const queue = gw.app.get<Queue>(getQueueToken(QueueName.Usage));
      const sweeps = { scheduler: await queue.getJobScheduler(JobName.SweepHolds), jobs: await queue.getJobCounts() };
      const logs = children.map((c, i) => `child ${i}:\n${c.output().split('\n').slice(-20).join('\n')}`).join('\n');
      throw new Error(`${err.message}; lease ${JSON.stringify(l)}; sweeps ${JSON.stringify(sweeps)}\n${logs}`);
    });
    await waitFor(
      'the requests in flight to be logged',
      async () => {
        const [{ unknown }] = await gw.db.query(
          `SELECT count(*)::int AS unknown FROM usage_logs WHERE workspace_id = $1 AND error_code = 'outcome_unknown'`,
          [workspaceId],
        );
        return unknown >= 10 ? unknown : undefined;
      },
      10_000,
    );
    // a job the victim's own worker held when it died (a settlement, or a hold sweep) is active
    // until a stall check hands it to another worker: its 10 s lock, then a check every 5 s
    await gw.settled(30_000);
    const b = await books(workspaceId);
    expect(b.balance).toBeGreaterThanOrEqual(0);
    expect(b.logs).toBe(30);
    expect(b.charged).toBe(20_000_000 - b.balance);
    await expectNoDrift(gw);
  }, 150_000);
});
