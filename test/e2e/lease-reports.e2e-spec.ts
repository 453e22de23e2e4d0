import { LeaseRepository } from '../../src/billing/leases/lease.repository';
import { completion, FakeProvider, sleep } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';
import { closeAll, startWithFakeProvider } from '../helpers/setup';
import { waitFor } from '../helpers/wait';

const MODEL = 'deepseek-v4-flash';
const HEARTBEAT_MS = 2_000;

/**
 * What a process writes to PostgreSQL about its leases while it answers requests: the heartbeat
 * (which reports the money its requests in flight use), a report soon after the last request
 * in flight ends when the heartbeat reported money in use, and the traces of requests in flight.
 */
describe('escrow lease reports', () => {
  let gw: TestGateway;
  let provider: FakeProvider;
  let leases: LeaseRepository;

  beforeAll(async () => {
    ({ gw, provider } = await startWithFakeProvider({
      providers: 'deepseek',
      gateway: { env: { NEXO_ROLE: 'all', ESCROW_LEASES: 'true', LEASE_TTL_MS: '10000', LEASE_RENEW_MS: String(HEARTBEAT_MS) } },
    }));
    leases = gw.app.get(LeaseRepository);
  }, 60_000);

  afterAll(() => closeAll(gw, provider));

  afterEach(() => {
    jest.restoreAllMocks();
    provider.respond((req) => ({ json: completion(req.body.model, 'ok') }));
  });

  async function inUse(workspaceId: string): Promise<number> {
    const [row] = await gw.db.query(`SELECT COALESCE(sum(in_use_micros), 0)::bigint AS used FROM leases WHERE workspace_id = $1`, [
      workspaceId,
    ]);
    return Number(row.used);
  }

  it('renews its leases on its heartbeat, not after each request, when requests come one at a time', async () => {
    provider.respond((req) => ({ json: completion(req.body.model, 'ok') }));
    const { key } = await gw.workspaceWithKey(50_000_000);
    const client = gw.openai(key);
    // the first request takes the lease
    await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 });
    const renew = jest.spyOn(leases, 'renew');
    const started = performance.now();
    for (let i = 0; i < 40; i++) {
      const answer = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 });
      expect(answer.choices[0].message.content).toBe('ok');
      await sleep(5);
    }
    await sleep(100);
    const heartbeats = Math.ceil((performance.now() - started) / HEARTBEAT_MS);
    // each heartbeat, and at most one report after it if it saw a request in flight
    expect(renew.mock.calls.length).toBeLessThanOrEqual(2 * heartbeats);
  }, 60_000);

  it('reports soon, not at the next heartbeat, that the money a finished request used is free again', async () => {
    const { key, workspaceId } = await gw.workspaceWithKey(50_000_000);
    const client = gw.openai(key);
    await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 });
    // a request that spans a heartbeat: the heartbeat reports its hold as in use
    provider.respond((req) => ({ json: completion(req.body.model, 'slow'), delayMs: HEARTBEAT_MS + 500 }));
    const slow = client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 });
    await waitFor('the heartbeat to report the request in flight', async () => ((await inUse(workspaceId)) > 0 ? true : undefined), 5_000);
    await slow;
    const answered = performance.now();
    await waitFor('the lease to be reported idle', async () => ((await inUse(workspaceId)) === 0 ? true : undefined), 5_000);
    // well before the next heartbeat, due up to HEARTBEAT_MS after the answer
    expect(performance.now() - answered).toBeLessThan(HEARTBEAT_MS / 4);
  }, 60_000);

  it('writes the traces of new requests and forgets finished ones in one statement', async () => {
    const { key, keyId, workspaceId } = await gw.workspaceWithKey(50_000_000);
    await gw.openai(key).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 });
    const [lease] = await gw.db.query(`SELECT id FROM leases WHERE workspace_id = $1 AND state = 'open'`, [workspaceId]);
    const trace = (requestId: string) => ({ requestId, keyId, model: MODEL, createdAt: Date.now() });
    const [first] = await leases.trace([{ leaseId: lease.id, workspaceId, requests: [trace('req_trace_a')] }]);
    const [second] = await leases.trace([{ leaseId: lease.id, workspaceId, requests: [trace('req_trace_b')] }], [first]);
    const rows = await gw.db.query(`SELECT id, requests FROM lease_traces WHERE id = ANY($1::bigint[]) ORDER BY id`, [[first, second]]);
    expect(rows.map((r: any) => [String(r.id), r.requests.map((t: any) => t.r)])).toEqual([[second, ['req_trace_b']]]);
    // only forgetting: no row written
    expect(await leases.trace([], [second])).toEqual([]);
    expect(await gw.db.query(`SELECT id FROM lease_traces WHERE id = $1`, [second])).toEqual([]);
  });
});
