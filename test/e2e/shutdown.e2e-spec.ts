import OpenAI from 'openai';
import request from 'supertest';
import { Pool } from 'undici';
import { ChildGateway, killChildGateways, startChildGateway } from '../helpers/child-gateway';
import { completion, FakeProvider, streamEvents } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';
import { closeAll, startWithFakeProvider } from '../helpers/setup';
import { waitFor } from '../helpers/wait';
import { HttpDrain } from '../../src/health/http-drain.service';

const MODEL = 'deepseek-v4-flash';
const IN_FLIGHT = 50;
const STREAMS = 15;
const WORDS = ['One', ' two', ' three', ' four', ' five', ' six'];
/** The provider takes this long for every answer: a JSON answer at once after it, a stream spread over it. */
const PROVIDER_MS = 1_500;
const GRACE_MS = 10_000;

/** Resolves with the exit code (and signal) once the process has exited. */
function exited(child: ChildGateway): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
    return Promise.resolve({ code: child.proc.exitCode, signal: child.proc.signalCode });
  }
  return new Promise((resolve) => child.proc.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('graceful shutdown on SIGTERM (a real gateway process)', () => {
  let gw: TestGateway;
  let provider: FakeProvider;

  beforeAll(async () => {
    // the test's own gateway serves the admin API only: no worker of its own takes the child's settlements
    ({ gw, provider } = await startWithFakeProvider({ providers: 'deepseek', gateway: { env: { NEXO_ROLE: 'api' } } }));
    provider.respond((req) =>
      req.body.stream
        ? { events: streamEvents(req.body.model, WORDS), eventGapMs: PROVIDER_MS / (WORDS.length + 2) }
        : { json: completion(req.body.model), delayMs: PROVIDER_MS },
    );
  }, 60_000);

  afterAll(async () => {
    await killChildGateways();
    await closeAll(gw, provider);
  });

  it('answers fifty requests in flight (streams among them), records every charge, turns a busy keep-alive client away and exits 0', async () => {
    const child = await startChildGateway(gw.env({ SHUTDOWN_GRACE_MS: String(GRACE_MS), NEXO_ROLE: 'all', LOG_LEVEL: 'log' }));
    const { key } = await gw.workspaceWithKey(100_000_000);
    const client = new OpenAI({ apiKey: key, baseURL: `${child.url}/v1`, maxRetries: 0 });
    const atProvider = () => provider.received.filter((r) => String(r.body.messages?.[0]?.content).startsWith('request ')).length;

    // a busy keep-alive client: one connection, one chat request after the other
    const busy = new Pool(child.url, { connections: 1, pipelining: 1 });
    const busyAnswers: Array<{ at: number; status: number; connection: string | undefined }> = [];
    let busyStopped = false;
    const busyLoop = (async () => {
      while (!busyStopped) {
        try {
          const res = await busy.request({
            path: '/v1/chat/completions',
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'busy' }] }),
          });
          await res.body.text();
          busyAnswers.push({ at: Date.now(), status: res.statusCode, connection: res.headers.connection as string | undefined });
        } catch {
          return; // turned away: the server takes no new connection
        }
      }
    })();
    await waitFor('the busy client to be answered', async () => (busyAnswers.length > 0 ? true : undefined));

    const requests = Array.from({ length: IN_FLIGHT }, async (_, i) => {
      const messages = [{ role: 'user' as const, content: `request ${i}` }];
      if (i < STREAMS) {
        const { data: stream, response } = await client.chat.completions
          .create({ model: MODEL, messages, stream: true, stream_options: { include_usage: true } })
          .withResponse();
        let text = '';
        let usage: unknown = null;
        for await (const chunk of stream) {
          text += chunk.choices[0]?.delta?.content ?? '';
          if (chunk.usage) usage = chunk.usage;
        }
        return { id: response.headers.get('x-request-id')!, text, usage, stream: true };
      }
      const { data, response } = await client.chat.completions.create({ model: MODEL, messages }).withResponse();
      return { id: response.headers.get('x-request-id')!, text: data.choices[0].message.content, usage: data.usage, stream: false };
    });
    const answered = Promise.allSettled(requests);

    // every request is at the provider, none answered yet
    await waitFor('the requests to reach the provider', async () => (atProvider() === IN_FLIGHT ? true : undefined));
    const exit = exited(child);
    const signalledAt = Date.now();
    child.proc.kill('SIGTERM');

    // at once, no new connection is taken
    await waitFor('the listener to close', async () => {
      const refused = await fetch(`${child.url}/health/live`).then(
        () => false,
        () => true,
      );
      return refused ? true : undefined;
    });
    expect(Date.now() - signalledAt).toBeLessThan(1_000);

    const results = await answered;
    const { code, signal } = await exit;
    const exitMs = Date.now() - signalledAt;
    busyStopped = true;
    await busyLoop;
    await busy.close();

    // every request in flight was answered in full
    const failures = results.filter((r) => r.status === 'rejected');
    expect(failures).toEqual([]);
    const answers = results.map((r) => (r as PromiseFulfilledResult<Awaited<(typeof requests)[number]>>).value);
    for (const a of answers) {
      expect(a.text).toBe(a.stream ? WORDS.join('') : 'Hello from the fake provider');
      expect(a.usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 34 });
    }

    // the process drained and exited cleanly, well within the grace period
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(exitMs).toBeLessThan(PROVIDER_MS + 5_000);
    expect(child.output()).toContain('SIGTERM: shutting down');

    // the busy keep-alive client got the answer it was waiting for, saying Connection: close, and no other
    const afterSignal = busyAnswers.filter((a) => a.at >= signalledAt);
    expect(afterSignal).toEqual([{ at: expect.any(Number), status: 200, connection: 'close' }]);

    // every answer has its usage log and its charge: the worker of the process that is gone recorded them all
    const ids = answers.map((a) => a.id);
    expect(new Set(ids).size).toBe(IN_FLIGHT);
    const logs = await gw.db.query('SELECT request_id, status, completion_tokens, cost_micros FROM usage_logs WHERE request_id = ANY($1)', [
      ids,
    ]);
    expect(logs).toHaveLength(IN_FLIGHT);
    for (const log of logs) expect(log).toMatchObject({ status: 200, completion_tokens: 34 });
    const charges = await gw.db.query('SELECT reference, amount_micros FROM ledger_entries WHERE reference = ANY($1)', [
      ids.map((id) => `req:${id}`),
    ]);
    expect(charges).toHaveLength(IN_FLIGHT);
    for (const charge of charges) expect(Number(charge.amount_micros)).toBeLessThan(0);
    const [{ holds }] = await gw.db.query('SELECT count(*)::int AS holds FROM holds WHERE request_id = ANY($1)', [ids]);
    expect(holds).toBe(0);
  }, 90_000);

  it('closes the connections of requests that outlive the grace period, still charges what they produced, and exits 0', async () => {
    const child = await startChildGateway(gw.env({ SHUTDOWN_GRACE_MS: '500', NEXO_ROLE: 'all', LOG_LEVEL: 'log' }));
    const { key } = await gw.workspaceWithKey(100_000_000);
    const client = new OpenAI({ apiKey: key, baseURL: `${child.url}/v1`, maxRetries: 0 });
    const received = provider.received.length;
    // a stream that would take 6 s: the first words go out, then the grace period ends
    provider.respond((req) => ({ events: streamEvents(req.body.model, WORDS), eventGapMs: 750 }));
    const { data: stream, response } = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: 'user', content: 'a long story' }], stream: true })
      .withResponse();
    const requestId = response.headers.get('x-request-id')!;
    const reading = (async () => {
      let text = '';
      try {
        for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
      } catch {
        // cut at the end of the grace period
      }
      return text;
    })();
    await waitFor('the stream to reach the provider', async () => (provider.received.length > received ? true : undefined));
    const exit = exited(child);
    const signalledAt = Date.now();
    child.proc.kill('SIGTERM');
    const { code } = await exit;
    const text = await reading;
    provider.respond((req) => (req.body.stream ? { events: streamEvents(req.body.model, WORDS) } : { json: completion(req.body.model) }));

    expect(code).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(5_000);
    expect(text.length).toBeLessThan(WORDS.join('').length);
    expect(child.output()).toContain('Grace period of 500 ms over');
    // a stream cut short is charged for what was produced, and its log says the client was cut off
    const [log] = await gw.db.query('SELECT status, error_code, cost_micros FROM usage_logs WHERE request_id = $1', [requestId]);
    expect(log).toMatchObject({ status: 200, error_code: 'client_disconnected' });
    const [charge] = await gw.db.query('SELECT amount_micros FROM ledger_entries WHERE reference = $1', [`req:${requestId}`]);
    expect(Number(charge.amount_micros)).toBe(-Number(log.cost_micros));
  }, 60_000);
});

describe('readiness while draining (in process)', () => {
  let gw: TestGateway;
  let provider: FakeProvider;

  beforeAll(async () => {
    ({ gw, provider } = await startWithFakeProvider({ providers: 'deepseek' }));
  });
  afterAll(() => closeAll(gw, provider));

  it('turns /health/ready to 503 at once, and answers requests in flight with Connection: close', async () => {
    const { key } = await gw.workspaceWithKey();
    await gw.http().get('/health/ready').expect(200);
    provider.respond((req) => ({ json: completion(req.body.model), delayMs: 500 }));
    const inFlight = fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }),
    });
    await waitFor('the request to reach the provider', async () => (provider.received.length > 0 ? true : undefined));

    const drain = gw.app.get(HttpDrain);
    const drained = drain.drain(5_000);
    // the listener is closed: the application is asked directly
    const ready = await request(gw.app.getHttpAdapter().getInstance()).get('/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ status: 'unavailable', checks: { postgres: 'up', redis: 'up', process: 'draining' } });
    expect(ready.headers.connection).toBe('close');
    await request(gw.app.getHttpAdapter().getInstance()).get('/health/live').expect(200);

    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.headers.get('connection')).toBe('close');
    await res.json();
    expect(await drained).toMatchObject({ clean: true, forced: 0 });
    expect(drain.inFlight).toBe(0);
  });
});
