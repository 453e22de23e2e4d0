import { FakeProvider } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';

describe('gateway smoke', () => {
  let gw: TestGateway;
  let provider: FakeProvider;

  beforeAll(async () => {
    provider = await FakeProvider.start();
    gw = await TestGateway.start();
    await gw.useProvider('deepseek', provider.url);
  });
  afterAll(async () => {
    await gw.close();
    await provider.close();
  });

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
