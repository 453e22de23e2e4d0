import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { RedisService } from './redis.service';

const RECHECK_MS = 60_000;

export interface RedisDurability {
  /** Redis keeps what BullMQ needs: no eviction, and AOF or RDB persistence. */
  ok: boolean;
  /** What is wrong, in words an operator can act on (empty when ok or not known). */
  problems: string[];
  checkedAt: number;
}

/**
 * Settlement jobs live in Redis until a worker applies them. A Redis that evicts keys under
 * memory pressure, or that restarts without persistence, loses them: the requests they stand
 * for are then released unbilled by the sweeper (`outcome_unknown`). Production checks this at
 * start and says so in the log and in `/health/ready`.
 */
@Injectable()
export class RedisDurabilityCheck implements OnApplicationBootstrap {
  private readonly logger = new Logger('RedisDurability');
  private last: RedisDurability | null = null;

  constructor(
    private readonly redis: RedisService,
    private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (!this.config.isProduction) return;
    const result = await this.check();
    if (!result.ok) {
      this.logger.warn(
        `Redis may lose settlement jobs: ${result.problems.join('; ')}. ` +
          `Set maxmemory-policy noeviction and enable AOF (appendonly yes) or RDB snapshots (see README, "Production Redis").`,
      );
    }
  }

  /** The last result, refreshed at most once a minute. */
  async current(): Promise<RedisDurability> {
    if (this.last && Date.now() - this.last.checkedAt < RECHECK_MS) return this.last;
    return this.check();
  }

  async check(): Promise<RedisDurability> {
    const problems: string[] = [];
    try {
      const client = this.redis.client;
      const info = parseInfo(`${await client.info('memory')}\n${await client.info('persistence')}`);
      const policy = info.get('maxmemory_policy');
      if (policy && policy !== 'noeviction') problems.push(`maxmemory-policy is ${policy}, not noeviction (queued jobs can be evicted)`);
      const aof = info.get('aof_enabled') === '1';
      if (!aof && !(await rdbEnabled(client)))
        problems.push('neither AOF nor RDB persistence is enabled (a restart loses every queued job)');
    } catch (err) {
      problems.push(`could not inspect Redis (${(err as Error).message})`);
    }
    this.last = { ok: problems.length === 0, problems, checkedAt: Date.now() };
    return this.last;
  }
}

function parseInfo(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) map.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return map;
}

/** RDB snapshots are configured (`save` not empty); true when CONFIG is not allowed (managed Redis persists). */
async function rdbEnabled(client: RedisService['client']): Promise<boolean> {
  try {
    const reply = (await client.config('GET', 'save')) as string[];
    return typeof reply[1] === 'string' && reply[1].trim() !== '';
  } catch {
    return true;
  }
}
