import { HoldRepository } from '../../src/billing/hold.repository';
import { reconcile } from '../../src/billing/reconcile';
import { addUtcMonths, UsageLogPartitionRepository } from '../../src/usage/usage-log-partition.repository';
import { UsageLogPartitions } from '../../src/usage/usage-log-partitions.service';
import { UsageLogEntity } from '../../src/usage/usage-log.entity';
import { UsageLogRepository, usageLogPageSql } from '../../src/usage/usage-log.repository';
import { UsageDailyRepository } from '../../src/usage/usage-daily.repository';
import { UsageService } from '../../src/usage/usage.service';
import { AppContext, requestId, settlement } from '../helpers/app-context';
import { waitFor } from '../helpers/wait';

const MODEL = 'deepseek-v4-flash';
const DAY_MS = 86_400_000;

/** usage_logs_YYYY_MM of the UTC month `months` after the one holding `at`. */
function partitionName(at: Date, months = 0): string {
  const m = addUtcMonths(at, months);
  return `usage_logs_${m.getUTCFullYear()}_${String(m.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** What the books say: usage_daily, the ledger and the money of every workspace, to compare before and after. */
async function books(ctx: AppContext): Promise<unknown> {
  return {
    daily: await ctx.db.query(
      `SELECT workspace_id, to_char(day, 'YYYY-MM-DD') AS day, key_id, model, requests, prompt_tokens, completion_tokens, cost_micros
         FROM usage_daily ORDER BY 1, 2, 3, 4`,
    ),
    ledger: await ctx.db.query('SELECT id, workspace_id, amount_micros, balance_after_micros, reference FROM ledger_entries ORDER BY id'),
    workspaces: await ctx.db.query('SELECT id, balance_micros, held_micros FROM workspaces ORDER BY id'),
    keys: await ctx.db.query('SELECT id, spent_micros, held_micros FROM api_keys ORDER BY id'),
  };
}

describe('usage_logs partitioned by month (PostgreSQL and Redis)', () => {
  let ctx: AppContext;
  let holds: HoldRepository;
  let partitions: UsageLogPartitionRepository;
  const monthStart = addUtcMonths(new Date(), 0);

  beforeAll(async () => {
    ctx = await AppContext.start();
    holds = ctx.get(HoldRepository);
    partitions = ctx.get(UsageLogPartitionRepository);
  });
  afterAll(() => ctx?.close());

  const partitionOf = async (id: string): Promise<string[]> =>
    (await ctx.db.query('SELECT tableoid::regclass::text AS p FROM usage_logs WHERE request_id = $1', [id])).map((r: { p: string }) => r.p);

  it('puts each log in the partition of its UTC month; a month created later takes its rows from the default partition', async () => {
    // the migration made this month's partition and two ahead; the upkeep finds them
    const kept = await ctx.get(UsageLogPartitions).maintain();
    expect(kept).toEqual({ ensured: [0, 1, 2].map((i) => partitionName(monthStart, i)), dropped: [] });

    const ids = await ctx.workspaceWithKey();
    const at = {
      now: Date.now(),
      lastOfMonth: addUtcMonths(monthStart, 1).getTime() - 1,
      nextMonth: addUtcMonths(monthStart, 1).getTime(),
      old: Date.UTC(2019, 5, 15, 12),
    };
    const logged: Record<string, string> = {};
    for (const [label, createdAt] of Object.entries(at)) {
      logged[label] = requestId(label);
      await holds.settle(settlement(ids, logged[label], 0, { createdAt }));
    }
    expect(await partitionOf(logged.now)).toEqual([partitionName(monthStart)]);
    expect(await partitionOf(logged.lastOfMonth)).toEqual([partitionName(monthStart)]);
    expect(await partitionOf(logged.nextMonth)).toEqual([partitionName(monthStart, 1)]);
    expect(await partitionOf(logged.old)).toEqual(['usage_logs_default']);

    expect(await partitions.ensureMonth(new Date(at.old), 1_000)).toBe('usage_logs_2019_06');
    expect(await partitionOf(logged.old)).toEqual(['usage_logs_2019_06']);
    expect(await ctx.db.query('SELECT count(*)::int AS n FROM usage_logs_default')).toEqual([{ n: 0 }]);
    expect((await partitions.list()).map((p) => p.name)).toEqual(
      expect.arrayContaining(['usage_logs_2019_06', ...[0, 1, 2].map((i) => partitionName(monthStart, i))]),
    );
    expect(await reconcile(ctx.db)).toEqual([]);
  });

  it('a settlement delivered twice, even many times at once, charges, counts and logs once', async () => {
    const ids = await ctx.workspaceWithKey(1_000_000);
    const id = requestId('twice');
    expect(await holds.placeHold(id, ids.workspaceId, ids.keyId, MODEL, 5_000, 600)).toEqual({ outcome: 'held' });
    const s = settlement(ids, id, 1_234);
    // eight deliveries side by side (each on its own connection), then a batch holding it twice
    const results = await Promise.all(Array.from({ length: 8 }, () => holds.settle(s)));
    expect(results.filter((r) => r.applied)).toEqual([{ applied: true, chargedMicros: 1_234 }]);
    expect((await holds.settleMany([s, s])).get(id)).toEqual({ applied: false, chargedMicros: 0 });

    expect(await ctx.money(ids.workspaceId, ids.keyId)).toEqual({ balance: 1_000_000 - 1_234, wsHeld: 0, spent: 1_234, keyHeld: 0 });
    expect(await ctx.db.query('SELECT cost_micros FROM usage_logs WHERE request_id = $1', [id])).toEqual([{ cost_micros: '1234' }]);
    expect(await ctx.db.query('SELECT amount_micros FROM ledger_entries WHERE reference = $1', [`req:${id}`])).toEqual([
      { amount_micros: '-1234' },
    ]);
    expect(await ctx.db.query('SELECT requests::int, cost_micros::int FROM usage_daily WHERE key_id = $1', [ids.keyId])).toEqual([
      { requests: 1, cost_micros: 1_234 },
    ]);

    // without a hold (it was released, or never placed): still one log, counted once
    const unheld = requestId('unheld');
    const u = settlement(ids, unheld, 99, { status: 502, errorCode: 'upstream_error' });
    const again = await Promise.all(Array.from({ length: 6 }, () => holds.settle(u)));
    expect(again.filter((r) => r.applied)).toHaveLength(1);
    expect(await ctx.db.query('SELECT cost_micros FROM usage_logs WHERE request_id = $1', [unheld])).toEqual([{ cost_micros: '0' }]);
    expect(await ctx.db.query('SELECT sum(requests)::int AS n FROM usage_daily WHERE key_id = $1', [ids.keyId])).toEqual([{ n: 2 }]);
    expect(await reconcile(ctx.db)).toEqual([]);

    // no foreign key any more: a settlement without a hold still needs the key to be the workspace's
    const stranger = await ctx.workspaceWithKey();
    await expect(holds.settle(settlement({ workspaceId: ids.workspaceId, keyId: stranger.keyId }, requestId('stray'), 0))).rejects.toThrow(
      /no key/,
    );
  });

  it('creates and drops partitions without locking workspaces or api_keys (what every request reads and holds)', async () => {
    const other = ctx.db.createQueryRunner();
    try {
      await other.startTransaction();
      // a request in flight: its key read, its hold placed
      await other.query('LOCK TABLE workspaces, api_keys IN ROW EXCLUSIVE MODE');
      expect(await partitions.ensureMonth(new Date(Date.UTC(1990, 0, 1)), 200)).toBe('usage_logs_1990_01');
      expect(await partitions.dropBefore(new Date(Date.UTC(1990, 1, 1)), 200)).toEqual(['usage_logs_1990_01']);
    } finally {
      await other.rollbackTransaction();
      await other.release();
    }
  });

  it('a worker process keeps the partitions ahead on its schedule, from its start', async () => {
    const ahead = partitionName(monthStart, 2);
    await ctx.db.query(`ALTER TABLE usage_logs DETACH PARTITION ${ahead}`);
    await ctx.db.query(`DROP TABLE ${ahead}`);
    expect((await partitions.list()).map((p) => p.name)).not.toContain(ahead);
    const worker = await AppContext.start({ workers: true, shareWith: ctx });
    try {
      await waitFor('the partition ahead', async () => ((await partitions.list()).some((p) => p.name === ahead) ? true : undefined));
    } finally {
      await worker.close();
    }
  });

  it('lists logs newest first through the indexes of the partitions, never a scan of all partitions (200k logs)', async () => {
    const target = await ctx.workspaceWithKey();
    const other = await ctx.workspaceWithKey();
    for (let i = -5; i < 0; i++) await partitions.ensureMonth(addUtcMonths(monthStart, i), 1_000);
    // 200,000 logs over the last six months, one in ten the target workspace's
    await ctx.db.query(
      `INSERT INTO usage_logs (request_id, workspace_id, key_id, model, provider, prompt_tokens, completion_tokens, cost_micros,
                               status, latency_ms, usage_source, created_at)
       SELECT 'req_bulk_' || i, CASE WHEN i % 10 = 0 THEN $1::uuid ELSE $3::uuid END, CASE WHEN i % 10 = 0 THEN $2::uuid ELSE $4::uuid END,
              CASE WHEN i % 3 = 0 THEN 'gpt-4o-mini' ELSE 'deepseek-v4-flash' END, 'deepseek', 10, 20, 0,
              CASE WHEN i % 7 = 0 THEN 502 ELSE 200 END, 5, 'provider',
              $5::timestamptz - (i * interval '75 seconds')
         FROM generate_series(1, 200000) AS i`,
      [target.workspaceId, target.keyId, other.workspaceId, other.keyId, new Date()],
    );
    await ctx.db.query('ANALYZE usage_logs');

    const plan = async (sql: { text: string; values: unknown[] }) => {
      const [row] = await ctx.db.query(`EXPLAIN (FORMAT JSON) ${sql.text}`, sql.values);
      const nodes: Array<{ type: string; relation?: string; index?: string }> = [];
      const walk = (n: Record<string, any>) => {
        nodes.push({ type: n['Node Type'], relation: n['Relation Name'], index: n['Index Name'] });
        for (const child of n.Plans ?? []) walk(child);
      };
      walk(row['QUERY PLAN'][0].Plan);
      return nodes;
    };
    const scans = (nodes: Array<{ type: string; relation?: string; index?: string }>) => nodes.filter((n) => n.relation);

    // the first page: each partition's (workspace_id, created_at, id) index, merged, stopped at the limit
    const first = await plan(usageLogPageSql(target.workspaceId, {}, null, 21));
    expect(first[0].type).toBe('Limit');
    expect(first.map((n) => n.type)).toContain('Merge Append');
    expect(first.map((n) => n.type)).not.toContain('Seq Scan');
    expect(first.map((n) => n.type)).not.toContain('Sort');
    for (const scan of scans(first)) {
      expect(scan.type).toBe('Index Scan');
      expect(scan.index).toMatch(/workspace_id_created_at_id_idx$/);
    }

    // a later page: the position prunes the months after it
    const [at] = await ctx.db.query(
      `SELECT ((extract(epoch FROM created_at) * 1000000)::bigint)::text AS micros, id FROM usage_logs
        WHERE workspace_id = $1 AND created_at < $2 ORDER BY created_at DESC, id DESC LIMIT 1`,
      [target.workspaceId, addUtcMonths(monthStart, -2)],
    );
    const later = scans(await plan(usageLogPageSql(target.workspaceId, {}, { createdAtMicros: at.micros, id: at.id }, 21)));
    const relations = later.map((s) => s.relation);
    expect(relations).toContain(partitionName(monthStart, -3));
    expect(relations).not.toContain(partitionName(monthStart, -1));
    expect(relations).not.toContain(partitionName(monthStart));
    expect(later.every((s) => s.type === 'Index Scan')).toBe(true);

    // by key, model and status: still an index in the listing's order (the key's, or the
    // workspace's when the planner finds it as good); a time range: its months only
    const byKey = await plan(usageLogPageSql(target.workspaceId, { keyId: target.keyId, model: MODEL, status: 200 }, null, 21));
    expect(byKey.map((n) => n.type)).not.toContain('Sort');
    expect(scans(byKey).every((s) => s.type === 'Index Scan' && /(key|workspace)_id_created_at_id_idx$/.test(s.index ?? ''))).toBe(true);
    const from = addUtcMonths(monthStart, -2);
    const ranged = scans(await plan(usageLogPageSql(target.workspaceId, { from, to: addUtcMonths(monthStart, -1) }, null, 21)));
    expect(ranged.map((s) => s.relation)).toEqual([partitionName(monthStart, -2)]);

    // and the pages are the logs in that order, with nothing skipped between them
    const expected: Array<{ request_id: string }> = await ctx.db.query(
      'SELECT request_id FROM usage_logs WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC LIMIT 500',
      [target.workspaceId],
    );
    // (the HTTP routes' service, over this database)
    const usage = new UsageService(new UsageLogRepository(ctx.db.getRepository(UsageLogEntity)), {} as UsageDailyRepository);
    const seen: string[] = [];
    let cursor: string | undefined;
    while (seen.length < 500) {
      const page = await usage.list(target.workspaceId, { limit: 100, cursor });
      seen.push(...page.data.map((l) => l.request_id));
      cursor = page.next_cursor ?? undefined;
    }
    expect(seen).toEqual(expected.map((r) => r.request_id));
  });
});

describe('USAGE_LOG_RETENTION_DAYS: whole old months dropped (PostgreSQL)', () => {
  let ctx: AppContext;

  beforeAll(async () => {
    ctx = await AppContext.start({ env: { USAGE_LOG_RETENTION_DAYS: '20' } });
  });
  afterAll(() => ctx?.close());

  it('drops the months that ended before now - retention, and usage_daily, the ledger and reconcile stay exact', async () => {
    const holds = ctx.get(HoldRepository);
    const partitions = ctx.get(UsageLogPartitionRepository);
    const month = addUtcMonths(new Date(), 0);
    for (let i = -3; i < 0; i++) await partitions.ensureMonth(addUtcMonths(month, i), 1_000);
    const ids = await ctx.workspaceWithKey(10_000_000);
    // a charged request in the middle of each of the last four months (the hold placed now)
    const requests: string[] = [];
    for (let i = -3; i <= 0; i++) {
      const id = requestId(`m${i}`);
      requests.push(id);
      expect(await holds.placeHold(id, ids.workspaceId, ids.keyId, MODEL, 10_000, 600)).toEqual({ outcome: 'held' });
      const createdAt = addUtcMonths(month, i).getTime() + (i === 0 ? 0 : 10 * DAY_MS);
      expect(await holds.settle(settlement(ids, id, 1_000 + i, { createdAt }))).toEqual({ applied: true, chargedMicros: 1_000 + i });
    }
    expect(await reconcile(ctx.db)).toEqual([]);
    const before = await books(ctx);

    // two weeks into this month with 20 days kept: the month before this one stays, older ones go
    const now = new Date(month.getTime() + 14 * DAY_MS);
    const result = await ctx.get(UsageLogPartitions).maintain(now);
    expect(result.dropped).toEqual([partitionName(month, -3), partitionName(month, -2)]);
    const names = (await partitions.list()).map((p) => p.name);
    expect(names).not.toContain(partitionName(month, -3));
    expect(names).not.toContain(partitionName(month, -2));
    expect(names).toEqual(expect.arrayContaining([-1, 0, 1, 2].map((i) => partitionName(month, i))));
    expect(await partitions.droppedBefore()).toEqual(addUtcMonths(month, -1));
    const left: Array<{ request_id: string }> = await ctx.db.query(
      'SELECT request_id FROM usage_logs WHERE workspace_id = $1 ORDER BY created_at',
      [ids.workspaceId],
    );
    expect(left.map((r) => r.request_id)).toEqual(requests.slice(2));

    // the aggregates and the books are untouched, and still reconcile with what is left
    expect(await books(ctx)).toEqual(before);
    expect(await reconcile(ctx.db)).toEqual([]);
    // again: nothing more to drop
    expect((await ctx.get(UsageLogPartitions).maintain(now)).dropped).toEqual([]);

    // a late repeat of a dropped request's settlement (its hold long gone) logs and counts nothing
    const late = settlement(ids, requests[0], 997, { createdAt: addUtcMonths(month, -3).getTime() + 10 * DAY_MS });
    expect(await holds.settle(late)).toEqual({ applied: false, chargedMicros: 0 });
    expect(await ctx.db.query('SELECT 1 FROM usage_logs WHERE request_id = $1', [requests[0]])).toEqual([]);
    expect(await books(ctx)).toEqual(before);
    expect(await reconcile(ctx.db)).toEqual([]);

    // reconcile still sees drift, in the months kept and in the months dropped
    const dropped = addUtcMonths(month, -3).toISOString().slice(0, 10);
    await ctx.db.query(`UPDATE usage_daily SET cost_micros = cost_micros + 1 WHERE key_id = $1 AND day >= $2::date AND day < $3::date`, [
      ids.keyId,
      dropped,
      addUtcMonths(month, -2).toISOString().slice(0, 10),
    ]);
    expect((await reconcile(ctx.db)).map((d) => [d.kind, d.expected, d.actual])).toEqual([['usage_vs_ledger', 3_994, 3_995]]);
    await ctx.db.query(`UPDATE usage_daily SET cost_micros = cost_micros - 1 WHERE key_id = $1 AND day >= $2::date AND day < $3::date`, [
      ids.keyId,
      dropped,
      addUtcMonths(month, -2).toISOString().slice(0, 10),
    ]);
    await ctx.db.query(`UPDATE usage_logs SET cost_micros = cost_micros + 1 WHERE request_id = $1`, [requests[3]]);
    expect((await reconcile(ctx.db)).map((d) => d.kind)).toEqual(['usage_vs_ledger', 'usage_daily_cost']);
  });
});
