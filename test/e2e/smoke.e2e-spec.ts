import { FakeProvider } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';
import { closeAll, startWithFakeProvider } from '../helpers/setup';

describe('gateway smoke', () => {
  let gw: TestGateway;
  let provider: FakeProvider;

  beforeAll(async () => {
    ({ gw, provider } = await startWithFakeProvider({ providers: 'deepseek' }));
  });
  afterAll(() => closeAll(gw, provider));

  it('completes a chat through the OpenAI SDK and settles its cost', async () => {
    const { key } = await gw.workspaceWithKey();
    const client = gw.openai(key);
    const res = await client.chat.completions.create({ model: 'deepseek-v4-flash', messages: [{ role: 'user', content: 'hi' }] });
    expect(res.model).toBe('deepseek-v4-flash');
    await gw.settled();
    const [log] = await gw.db.query('SELECT cost_micros FROM usage_logs');
    // 12 * 270000 + 34 * 1100000 = 40_640_000 -> ceil(/1e6) = 41
    expect(Number(log.cost_micros)).toBe(41);
  });
});
