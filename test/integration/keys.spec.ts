import { HoldRepository } from '../../src/billing/hold.repository';
import { generateApiKey, hashApiKey } from '../../src/keys/api-key-format';
import { KeysRepository } from '../../src/keys/keys.repository';
import { KeysService } from '../../src/keys/keys.service';
import { WorkspacesService } from '../../src/workspaces/workspaces.service';
import { AppContext, requestId } from '../helpers/app-context';
import { waitFor } from '../helpers/wait';
import { failure } from '../helpers/deployment';

describe('API keys: lookup and cache (PostgreSQL and Redis)', () => {
  let ctx: AppContext;
  let other: AppContext;
  let keys: KeysService;
  let repo: KeysRepository;

  beforeAll(async () => {
    ctx = await AppContext.start({ env: { UNKNOWN_KEY_LOOKUPS_PER_MINUTE: '3' } });
    // a second gateway process of the same deployment
    other = await AppContext.start({ shareWith: ctx });
    keys = ctx.get(KeysService);
    repo = ctx.get(KeysRepository);
  });
  afterAll(async () => {
    await other?.close();
    await ctx?.close();
  });
  afterEach(() => jest.restoreAllMocks());

  it('finds a key by its hash with its workspace limits, and never by anything else', async () => {
    const workspace = await ctx.get(WorkspacesService).create({ name: 'limits', rpm_limit: 60, tpm_limit: 6_000 });
    const created = await keys.create(workspace.id, { name: 'own rpm', rpm_limit: 5, models: ['deepseek-v4-flash'], budget_micros: 900 });
    expect(await repo.findByHash(hashApiKey(created.key))).toEqual({
      id: created.id,
      workspaceId: workspace.id,
      name: 'own rpm',
      prefix: created.prefix,
      models: ['deepseek-v4-flash'],
      budgetMicros: 900,
      expiresAt: null,
      disabled: false,
      revoked: false,
      rpmLimit: 5,
      tpmLimit: null,
      workspaceRpmLimit: 60,
      workspaceTpmLimit: 6_000,
    });
    expect(await repo.findByHash(hashApiKey(generateApiKey().key))).toBeNull();

    const key = await keys.authenticate(created.key, '10.0.0.1');
    expect(key).toMatchObject({
      id: created.id,
      workspaceId: workspace.id,
      budgetMicros: 900,
      rpmLimit: 5,
      tpmLimit: 6_000,
      expiresAt: null,
    });
    expect(key.models).toEqual(new Set(['deepseek-v4-flash']));
  });

  it('looks a key up once: concurrent requests share the query, later ones use the cache', async () => {
    const { key } = await ctx.workspaceWithKey();
    const lookup = jest.spyOn(repo, 'findByHash');
    const found = await Promise.all(Array.from({ length: 10 }, () => keys.authenticate(key, '10.0.0.2')));
    expect(new Set(found.map((k) => k.id)).size).toBe(1);
    await keys.authenticate(key, '10.0.0.2');
    expect(lookup).toHaveBeenCalledTimes(1);
  });

  it('refuses a malformed key without a query, and limits the lookups of unknown keys per address', async () => {
    const lookup = jest.spyOn(repo, 'findByHash');
    expect((await failure(keys.authenticate('nxr_not-a-key', '10.0.0.3'))).status).toBe(401);
    expect((await failure(keys.authenticate(undefined, '10.0.0.3'))).status).toBe(401);
    expect(lookup).not.toHaveBeenCalled();

    for (let i = 0; i < 3; i++) expect((await failure(keys.authenticate(generateApiKey().key, '10.0.0.4'))).status).toBe(401);
    const throttled = await failure(keys.authenticate(generateApiKey().key, '10.0.0.4'));
    expect(throttled).toMatchObject({ status: 429, code: 'rate_limit_exceeded' });
    expect(Number(throttled.headers['retry-after'])).toBeGreaterThan(0);
    expect(lookup).toHaveBeenCalledTimes(3);
    // another address has its own budget
    expect((await failure(keys.authenticate(generateApiKey().key, '10.0.0.5'))).status).toBe(401);
  });

  it('sees a key disabled or expired in another process within a second, through Redis', async () => {
    const { key, keyId } = await ctx.workspaceWithKey();
    await keys.authenticate(key, '10.0.0.6'); // cached here
    await other.get(KeysService).update(keyId, { disabled: true });
    await waitFor(
      'the key to be refused',
      async () => ((await failure(keys.authenticate(key, '10.0.0.6'))).status === 401 ? true : undefined),
      3_000,
    );

    await other.get(KeysService).update(keyId, { disabled: false, expires_at: new Date(Date.now() - 1_000).toISOString() });
    const expired = await waitFor(
      'the key to be expired',
      async () => {
        const err = await failure(keys.authenticate(key, '10.0.0.6'));
        return err.message === 'This API key has expired.' ? err : undefined;
      },
      3_000,
    );
    expect(expired.status).toBe(401);
  });

  it('reports spend and what is left: the smaller of the budget left and the available balance', async () => {
    const ids = await ctx.workspaceWithKey(5_000, { budget_micros: 4_000 });
    const key = await keys.authenticate(ids.key, '10.0.0.7');
    const hold = requestId('keys');
    await ctx.get(HoldRepository).placeHold(hold, ids.workspaceId, ids.keyId, 'deepseek-v4-flash', 1_500, 900);
    expect(await keys.info(key)).toMatchObject({
      id: ids.keyId,
      budget_micros: 4_000,
      spent_micros: 0,
      remaining_micros: 2_500,
      workspace: { id: ids.workspaceId, balance_micros: 5_000, available_micros: 3_500 },
    });
    expect(await repo.spend(ids.keyId)).toEqual({
      models: null,
      expiresAt: null,
      budgetMicros: 4_000,
      budgetPeriod: null,
      spentMicros: 0,
      heldMicros: 1_500,
      workspaceBalanceMicros: 5_000,
      workspaceHeldMicros: 1_500,
    });
  });

  it('updates only the columns named, scoped to a workspace when one is given', async () => {
    const a = await ctx.workspaceWithKey();
    const b = await ctx.workspaceWithKey();
    expect((await failure(keys.update(a.keyId, { name: 'x' }, b.workspaceId))).status).toBe(404);
    const updated = await keys.update(a.keyId, { name: 'renamed', rpm_limit: 7 }, a.workspaceId);
    expect(updated).toMatchObject({ id: a.keyId, name: 'renamed', rpm_limit: 7, budget_micros: null, disabled: false });
    expect((await keys.listForWorkspace(a.workspaceId)).map((k) => k.name)).toEqual(['renamed']);
    expect((await failure(keys.create('00000000-0000-4000-8000-000000000000', { name: 'orphan' }))).status).toBe(404);
  });
});
