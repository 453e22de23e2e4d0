import Redis from 'ioredis';
import { once } from 'node:events';
import { ChildGateway, killChildGateways, startChildGateway } from '../helpers/child-gateway';
import { REDIS_URL } from '../helpers/databases';
import { completion, FakeProvider, sleep, streamEvents } from '../helpers/fake-provider';
import { ADMIN_TOKEN, TestGateway } from '../helpers/gateway';
import { promptBoundOf } from '../helpers/ledger';
import { closeAll, startGatewayUsing } from '../helpers/setup';
import { waitFor } from '../helpers/wait';

const MODEL = 'deepseek-v4-flash';
/** OpenAI's reset format, a Go duration: `59ms`, `1s`, `1.5s`, `6m0s`. */
const GO_DURATION = /^(\d+ms|(\d+m)?\d+(\.\d+)?s)$/;
/** What the fake provider reports for every answer (DEFAULT_USAGE): 12 + 34 tokens. */
const USED = 46;

/** Seconds a Go duration (as the reset headers give it) stands for. */
function seconds(duration: string): number {
  const m = /^(?:(\d+)m)?(\d+(?:\.\d+)?)(ms|s)$/.exec(duration);
  if (!m) throw new Error(`not a duration: ${duration}`);
  return m[3] === 'ms' ? Number(m[2]) / 1000 : Number(m[1] ?? 0) * 60 + Number(m[2]);
}

/** Limits count in fixed one-minute windows: a test that needs one window waits out the end of the current one if it is near. */
async function awayFromWindowEnd(needMs = 15_000): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < needMs) await sleep(left + 100);
}

function rateHeaders(headers: Headers | Record<string, string>): Record<string, string> {
  const get = (name: string) => (headers instanceof Headers ? headers.get(name) : headers[name]);
  const out: Record<string, string> = {};
  for (const kind of ['requests', 'tokens']) {
    for (const what of ['limit', 'remaining', 'reset']) {
      const value = get(`x-ratelimit-${what}-${kind}`);
      if (value != null) out[`${what}-${kind}`] = value;
    }
  }
  return out;
}

/** A counter of a gateway's /metrics (summed over its labels, or those matching `labels`). */
async function metric(url: string, name: string, labels = ''): Promise<number> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const text = await res.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name && (m[2] ?? '').includes(labels)) sum += Number(m[3]);
  }
  return sum;
}

/** SIGTERM, as an orchestrator stops a gateway; resolves once the process has exited. */
async function terminate(child: ChildGateway): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  const exited = once(child.proc, 'exit');
  child.proc.kill('SIGTERM');
  await exited;
}

describe('rate limits (end to end)', () => {
  let gw: TestGateway;
  let provider: FakeProvider;
  let redis: Redis;

  beforeAll(async () => {
    provider = await FakeProvider.start();
    gw = await startGatewayUsing(provider, { providers: 'deepseek' });
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await killChildGateways();
    redis.disconnect();
    await closeAll(gw, provider);
  });

  const body = (extra: Record<string, unknown> = {}) => ({
    model: MODEL,
    messages: [{ role: 'user', content: 'hello' }],
    max_tokens: 100,
    ...extra,
  });

  const post = (url: string, key: string, payload: Record<string, unknown>) =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(payload),
    });

  it('hold across two gateway processes, and the headers count down on JSON and streamed answers', async () => {
    const children: ChildGateway[] = await Promise.all([startChildGateway(gw.env()), startChildGateway(gw.env())]);
    const { key } = await gw.workspaceWithKey(10_000_000, { rpm_limit: 4, tpm_limit: 100_000 });
    const bound = promptBoundOf(body()) + 100;
    await awayFromWindowEnd();

    let tokensLeft = 100_000;
    for (let i = 0; i < 4; i++) {
      const stream = i === 2;
      const res = await post(children[i % 2].url, key, body(stream ? { stream: true } : {}));
      expect(res.status).toBe(200);
      const headers = rateHeaders(res.headers);
      const thisBound = stream ? promptBoundOf(body({ stream: true })) + 100 : bound;
      tokensLeft -= thisBound;
      expect(headers).toMatchObject({
        'limit-requests': '4',
        'remaining-requests': String(3 - i),
        'limit-tokens': '100000',
      });
      // the earlier requests' give-backs may or may not have landed yet; this one's reservation counts
      expect(Number(headers['remaining-tokens'])).toBeGreaterThanOrEqual(tokensLeft);
      expect(Number(headers['remaining-tokens'])).toBeLessThanOrEqual(100_000 - thisBound);
      for (const reset of [headers['reset-requests'], headers['reset-tokens']]) {
        expect(reset).toMatch(GO_DURATION);
        expect(seconds(reset)).toBeGreaterThan(0);
        expect(seconds(reset)).toBeLessThanOrEqual(60);
      }
      if (stream) expect(res.headers.get('content-type')).toContain('text/event-stream');
      await res.text();
    }

    // the fifth, on either process, is refused: 429 with Retry-After, saying which limit
    for (const child of children) {
      const refused = await post(child.url, key, body());
      expect(refused.status).toBe(429);
      const error = ((await refused.json()) as { error: Record<string, unknown> }).error;
      expect(error).toMatchObject({ code: 'rate_limit_exceeded', type: 'requests' });
      expect(error.message).toContain('4 requests per minute');
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(rateHeaders(refused.headers)).toMatchObject({ 'limit-requests': '4', 'remaining-requests': '0' });
    }
    expect(provider.received.length).toBeGreaterThanOrEqual(4);

    // the other /v1 answers say where the windows stand, without counting themselves
    for (const path of ['/v1/models', '/v1/key', '/v1/models']) {
      const res = await fetch(`${children[0].url}${path}`, { headers: { authorization: `Bearer ${key}` } });
      expect(res.status).toBe(200);
      expect(rateHeaders(res.headers)).toMatchObject({ 'limit-requests': '4', 'remaining-requests': '0', 'limit-tokens': '100000' });
      expect(rateHeaders(res.headers)['reset-requests']).toMatch(GO_DURATION);
    }
    // so do refusals before the check (a bad body, an unknown model), which count nothing either
    for (const bad of [{ model: MODEL }, body({ model: 'no-such-model' })]) {
      const res = await post(children[1].url, key, bad);
      expect([400, 404]).toContain(res.status);
      expect(rateHeaders(res.headers)).toMatchObject({ 'limit-requests': '4', 'remaining-requests': '0', 'limit-tokens': '100000' });
    }
    const unlimited = await gw.workspaceWithKey();
    const plain = await gw.http().get('/v1/models').set('authorization', `Bearer ${unlimited.key}`).expect(200);
    expect(rateHeaders(plain.headers)).toEqual({});
  });

  it('a tokens-per-minute limit counts the real usage once the request is settled', async () => {
    const { key, keyId } = await gw.workspaceWithKey(10_000_000, { tpm_limit: 3_000 });
    const big = body({ max_tokens: 2_000 });
    const bound = promptBoundOf(big) + 2_000;
    expect(bound * 2).toBeGreaterThan(3_000); // two such bounds do not fit in one window...
    await awayFromWindowEnd();
    const window = Math.floor(Date.now() / 60_000);
    const counted = async () => Number(await redis.get(`${gw.redisPrefix}:rl:${keyId}:t:${window}`));

    const first = await gw.http().post('/v1/chat/completions').set('authorization', `Bearer ${key}`).send(big).expect(200);
    expect(rateHeaders(first.headers)).toMatchObject({ 'limit-tokens': '3000', 'remaining-tokens': String(3_000 - bound) });
    expect(first.headers['x-ratelimit-limit-requests']).toBeUndefined(); // no requests limit, no requests headers
    // ...but the first used 46 tokens, and the rest of its reservation is given back
    await waitFor('the unused tokens to be given back', async () => ((await counted()) === USED ? true : undefined));

    const second = await gw.http().post('/v1/chat/completions').set('authorization', `Bearer ${key}`).send(big).expect(200);
    expect(rateHeaders(second.headers)['remaining-tokens']).toBe(String(3_000 - USED - bound));

    // a stream gives back too, once settled
    provider.respond((req) => ({ events: streamEvents(req.body.model, ['a', 'b']) }));
    try {
      await waitFor('the second give-back', async () => ((await counted()) === 2 * USED ? true : undefined));
      const streamed = await post(gw.url, key, { ...big, stream: true });
      expect(streamed.status).toBe(200);
      await streamed.text();
      await waitFor('the stream give-back', async () => ((await counted()) === 3 * USED ? true : undefined));
    } finally {
      provider.respond((req) => ({ json: completion(req.body.model) }));
    }

    // a request whose bound exceeds what is left is refused, saying it is the tokens limit
    const tooBig = body({ max_tokens: 3_000 - 3 * USED });
    const refused = await gw.http().post('/v1/chat/completions').set('authorization', `Bearer ${key}`).send(tooBig).expect(429);
    expect(refused.body.error).toMatchObject({ code: 'rate_limit_exceeded', type: 'tokens' });
    expect(refused.body.error.message).toContain('3000 tokens per minute');
    expect(refused.body.error.message).toContain(`Used ${3 * USED}`);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(rateHeaders(refused.headers)['remaining-tokens']).toBe(String(3_000 - 3 * USED));
    expect(await counted()).toBe(3 * USED); // a refused request reserves nothing
  });

  it("a key without limits of its own has its workspace's, and a request refused later (no balance) gives its tokens back", async () => {
    const { key, keyId, workspaceId } = await gw.workspaceWithKey(1, {});
    await gw.admin().patch(`/admin/workspaces/${workspaceId}`).send({ rpm_limit: 7, tpm_limit: 50_000 }).expect(200);
    await awayFromWindowEnd();
    const window = Math.floor(Date.now() / 60_000);
    const res = await waitFor('the workspace limits to reach the key', async () => {
      const r = await gw.http().post('/v1/chat/completions').set('authorization', `Bearer ${key}`).send(body());
      return r.headers['x-ratelimit-limit-requests'] ? r : undefined;
    });
    expect(res.status).toBe(403); // $0.000001 covers nothing
    expect(res.body.error.code).toBe('insufficient_quota');
    expect(rateHeaders(res.headers)).toMatchObject({ 'limit-requests': '7', 'limit-tokens': '50000' });
    await waitFor('the tokens to be given back', async () =>
      Number(await redis.get(`${gw.redisPrefix}:rl:${keyId}:t:${window}`)) === 0 ? true : undefined,
    );
  });

  describe('a key with large limits (leases: RATE_LIMIT_LEASE_MIN_RPM, default 600)', () => {
    /**
     * Three gateway processes of the deployment. Their checks may wait for Redis longer than the
     * default 50 ms: on a loaded test machine a check that timed out would let its request
     * through unchecked (as it should), and the counts would no longer be exact.
     */
    const startProcesses = () => Promise.all([0, 1, 2].map(() => startChildGateway(gw.env({ RATE_LIMIT_TIMEOUT_MS: '2000' }))));

    /** Sends `count` requests to `url`, `concurrency` at a time; answers their statuses, headers and error bodies. */
    async function hammer(url: string, key: string, count: number, concurrency: number) {
      const answers: Array<{ status: number; headers: Headers; error?: Record<string, unknown> }> = [];
      let sent = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (sent < count) {
            sent++;
            const res = await post(url, key, body());
            const json = (await res.json()) as { error?: Record<string, unknown> };
            answers.push({ status: res.status, headers: res.headers, error: json.error });
          }
        }),
      );
      return answers;
    }

    it('admits exactly the RPM across three processes, mostly without a Redis call, and refuses the rest with 429', async () => {
      const children = await startProcesses();
      const urls = children.map((c) => c.url);
      const { key, keyId } = await gw.workspaceWithKey(100_000_000, { rpm_limit: 1_000, tpm_limit: 10_000_000 });
      await awayFromWindowEnd(30_000);
      const window = Math.floor(Date.now() / 60_000);
      const counted = async () => Number(await redis.get(`${gw.redisPrefix}:rl:${keyId}:r:${window}`));

      const answers = (await Promise.all(urls.map((url, i) => hammer(url, key, i === 0 ? 432 : 434, 6)))).flat();
      const sameWindow = Math.floor(Date.now() / 60_000) === window;
      const admitted = answers.filter((a) => a.status === 200);
      const refused = answers.filter((a) => a.status === 429);
      expect(admitted.length + refused.length).toBe(1_300);
      if (sameWindow) expect(admitted).toHaveLength(1_000);
      else expect(admitted.length).toBeLessThanOrEqual(2_000);
      for (const answer of refused) {
        expect(answer.error).toMatchObject({ code: 'rate_limit_exceeded', type: 'requests' });
        expect(rateHeaders(answer.headers)).toMatchObject({ 'limit-requests': '1000', 'remaining-requests': '0' });
        expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
      for (const answer of admitted) {
        const headers = rateHeaders(answer.headers);
        expect(headers['limit-requests']).toBe('1000');
        expect(Number(headers['remaining-requests'])).toBeGreaterThanOrEqual(0);
        expect(Number(headers['remaining-requests'])).toBeLessThan(1_000);
        expect(Number(headers['remaining-tokens'])).toBeLessThan(10_000_000);
        expect(headers['reset-requests']).toMatch(GO_DURATION);
      }
      // most admissions came from the processes' shares of the window, not from a check each
      const leased = (await Promise.all(urls.map((url) => metric(url, 'nexo_rate_limit_leased_total')))).reduce((a, b) => a + b);
      expect(leased).toBeGreaterThan(admitted.length / 2);
      expect(leased).toBeLessThanOrEqual(admitted.length);

      // once the processes are gone (shares given back at shutdown), the window counts what was admitted
      await Promise.all(children.map(terminate));
      expect(await counted()).toBeLessThanOrEqual(1_000);
      if (sameWindow) {
        await waitFor('every share to be given back', async () => ((await counted()) === admitted.length ? true : undefined));
      }
    });

    it('never reserves more than the TPM across processes, and counts what was used once the shares are given back', async () => {
      const children = await startProcesses();
      const urls = children.map((c) => c.url);
      const bound = promptBoundOf(body()) + 100;
      const tpm = 40 * bound;
      const { key, keyId } = await gw.workspaceWithKey(100_000_000, { rpm_limit: 100_000, tpm_limit: tpm });
      await awayFromWindowEnd(20_000);
      const window = Math.floor(Date.now() / 60_000);
      const counted = async () => Number(await redis.get(`${gw.redisPrefix}:rl:${keyId}:t:${window}`));

      // what the window counts, watched while the processes take shares of it
      let highest = 0;
      let hammering = true;
      const watching = (async () => {
        while (hammering) {
          highest = Math.max(highest, await counted());
          await sleep(2);
        }
      })();
      const answers = (await Promise.all(urls.map((url) => hammer(url, key, 80, 4)))).flat();
      hammering = false;
      await watching;
      const sameWindow = Math.floor(Date.now() / 60_000) === window;
      const admitted = answers.filter((a) => a.status === 200);
      const refused = answers.filter((a) => a.status === 429);
      expect(admitted.length + refused.length).toBe(240);
      expect(highest).toBeGreaterThan(0);
      expect(highest).toBeLessThanOrEqual(tpm);
      // 240 requests use more than the window holds (46 tokens each): some were refused
      expect(refused.length).toBeGreaterThan(0);
      // unused tokens of the answered requests came back and were used again
      expect(admitted.length).toBeGreaterThanOrEqual(40);
      for (const answer of refused) {
        expect(answer.error).toMatchObject({ code: 'rate_limit_exceeded', type: 'tokens' });
        expect(Number(answer.headers.get('x-ratelimit-remaining-tokens'))).toBeLessThan(bound);
      }
      for (const answer of admitted) expect(Number(answer.headers.get('x-ratelimit-remaining-tokens'))).toBeLessThanOrEqual(tpm - bound);
      expect(await counted()).toBeLessThanOrEqual(tpm);
      const leased = (await Promise.all(urls.map((url) => metric(url, 'nexo_rate_limit_leased_total')))).reduce((a, b) => a + b);
      expect(leased).toBeGreaterThan(0);

      // each answered request used 46 tokens: once shares and give-backs are in, the window counts exactly that
      await Promise.all(children.map(terminate));
      if (sameWindow) {
        await waitFor('the shares and give-backs to land', async () => ((await counted()) === admitted.length * USED ? true : undefined));
      }
    });

    it("gives a process's unused share back when it shuts down", async () => {
      const child = await startChildGateway(gw.env());
      const { key, keyId } = await gw.workspaceWithKey(100_000_000, { rpm_limit: 60_000 });
      await awayFromWindowEnd();
      const window = Math.floor(Date.now() / 60_000);
      const counted = async () => Number(await redis.get(`${gw.redisPrefix}:rl:${keyId}:r:${window}`));
      for (let i = 0; i < 30; i++) {
        const res = await post(child.url, key, body());
        expect(res.status).toBe(200);
        // alone on the key, the process's headers count down one by one: its unused share counts as room
        expect(res.headers.get('x-ratelimit-remaining-requests')).toBe(String(60_000 - i - 1));
        await res.text();
      }
      // the share was taken from the window before it was used
      expect(await counted()).toBeGreaterThan(30);
      await terminate(child);
      expect(child.proc.exitCode).toBe(0);
      expect(await counted()).toBe(30);
    });
  });
});
